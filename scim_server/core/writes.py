"""Writing resources: create, replace, patch and delete, without lost updates.

Every write of an existing resource is optimistic: it reads the resource, computes the
new state, and writes it only onto the version it read. A writer that lost the race
reads again and re-applies its change (``_rewrite``); with ``If-Match`` the client asked
for exactly the version it saw, so losing is its 412. Seats are reserved around the
writes that change whether a user holds one, a userName under the one-team policy is claimed
around the writes that make a user hold it (``one_team.py``), and members are applied through
``members.py`` after the resource's own attributes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidValueException,
    MutabilityException,
    Resource,
    UniquenessException,
)

from scim_server.core.errors import (
    TooManyConcurrentChanges,
    from_validation_error,
    resource_not_found,
)
from scim_server.core.events import Relay, deletion, emission
from scim_server.core.members import Members, declared_members
from scim_server.core.one_team import OneTeam, Taken
from scim_server.core.passwords import hash_password
from scim_server.core.patch import apply_operations, plan_patch
from scim_server.core.preconditions import UNCONDITIONAL, Preconditions, resource_changed
from scim_server.core.projection import Selection
from scim_server.core.queries import ALL_ATTRIBUTES, Answer
from scim_server.core.rendering import Renderer, to_payload
from scim_server.core.scope import Scope
from scim_server.core.seats import Seats, holds_seat, seat_change
from scim_server.models import GROUPS, USERS, EnterpriseUser, ResourceKind, is_users
from scim_server.storage.documents import StoredForm, StoredResource, stored_form
from scim_server.storage.events import USER_UPDATED, Client, Emission
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import NewResource, ResourceRepository
from scim_server.storage.tenants import TenantRepository

Payload = dict[str, Any]
Written = TypeVar("Written")

MAX_WRITE_ATTEMPTS = 20
"""Optimistic-concurrency retries before a PATCH gives up (each retry re-reads and re-applies)."""


class Writes:
    """The write side of ``Provisioning``: tenant and base URL come with each call."""

    def __init__(
        self,
        repositories: dict[str, ResourceRepository],
        memberships: MembershipRepository,
        renderer: Renderer,
        seats: Seats,
        tenants: TenantRepository,
        relay: Relay,
        one_team: OneTeam,
        *,
        patch_max_operations: int,
    ) -> None:
        self.repositories = repositories
        self.tenants = tenants
        self.memberships = memberships
        self.members = Members(repositories, memberships)
        self.renderer = renderer
        self.seats = seats
        self.one_team = one_team
        self.relay = relay
        self.patch_max_operations = patch_max_operations
        self._writers: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _writing(self, kind: ResourceKind, tenant: str, resource_id: str) -> asyncio.Lock:
        """One lock per resource: this process's read-modify-writes of it take turns.

        Without it, N concurrent writers all read the same version and all but one
        lose, round after round, so the last needs N attempts and more than
        ``MAX_WRITE_ATTEMPTS`` writers got 412 without ever sending If-Match. The
        conditional write and its retry still guard against other processes.
        """
        key = (kind.name, tenant, resource_id)
        lock = self._writers.get(key)
        if lock is None:
            lock = self._writers[key] = asyncio.Lock()
        return lock

    async def create(self, kind: ResourceKind, scope: Scope, body: Payload) -> Answer:
        state = await _new_state(kind, body)
        members = await self.members.check(scope, None, declared_members(kind, body))

        created = _emission(scope.client, kind, None, state, tuple(m.value for m in members))
        # Adding the members bumps the version after they land (storage/memberships.py),
        # so the group starts one below: complete, it is at version 1 like any new resource.
        # Its creation's event, which names the members, is stored with it.
        insert = partial(
            self.repositories[kind.name].insert,
            scope.tenant,
            str(uuid.uuid4()),
            state.form,
            state.password_hash,
            datetime.now(UTC),
            created,
            version=0 if members else 1,
        )
        await self._mark_managers(kind, scope.tenant, [(None, state.attributes)])
        stored = await self._unique_or_shared(kind, scope.tenant, (None, state.attributes), insert)
        if members:
            stored = await self.memberships.add(scope.tenant, stored.id, members, None) or stored
        self.relay.written(kind, scope.tenant, [stored.id])
        # Rendered from what was just written: a new resource is only related to the
        # members it was created with, so there is nothing else to read back.
        payloads = await self.renderer.render(
            kind, scope, [stored], ALL_ATTRIBUTES, related=bool(members)
        )
        return Answer(payloads[0], stored.version)

    async def create_users(
        self, scope: Scope, bodies: Sequence[Payload], *, users: ResourceKind = USERS
    ) -> list[Answer | Exception]:
        """Create users as one batch: for each body, what ``create`` answers or raises.

        Each body is validated on its own, so a bad one fails alone. The users that take a
        seat reserve theirs together, as many as are free, in request order; those beyond
        get the ``SeatLimitExceeded`` a ``create`` raises. The users go to the store in one
        unordered insert, where a taken userName fails its user alone, and the seats of
        the inserts that failed are given back. When seats were given back and users were
        refused, the refused try again, so that as many get in as one ``create`` after the
        other would have let in.
        """
        outcomes: dict[int, Answer | Exception] = {}
        states: dict[int, _State] = {}
        for position, body in enumerate(bodies):
            try:
                states[position] = await _new_state(users, body)
            except Exception as error:  # that user's outcome, as ``create`` raises it
                outcomes[position] = error
        waiting = list(states)
        while waiting:
            seated = [position for position in waiting if holds_seat(states[position].attributes)]
            reservation = await self.seats.reserve(scope.tenant, len(seated)) if seated else None
            refused = seated[reservation.granted :] if reservation is not None else []
            going = sorted(set(waiting) - set(refused))
            claims = await self._claim_names(scope.tenant, states, going, outcomes)
            going = [position for position in going if position in claims]
            news = [(None, states[position].attributes) for position in going]
            await self._mark_managers(users, scope.tenant, news)
            stored = await self.repositories[USERS.name].insert_many(
                scope.tenant,
                [_new_resource(states[position], scope.client) for position in going],
                datetime.now(UTC),
            )
            landed: dict[int, StoredResource] = {}
            for position, answer in zip(going, stored, strict=True):
                if isinstance(answer, StoredResource):
                    landed[position] = answer
                else:
                    outcomes[position] = answer
                    await self.one_team.give_back(scope.tenant, claims[position])
            self.relay.written(users, scope.tenant, [user.id for user in landed.values()])
            # A new user is in no group: rendered from what was written, as ``create`` does.
            payloads = await self.renderer.render(
                users, scope, list(landed.values()), ALL_ATTRIBUTES, related=False
            )
            for (position, written), payload in zip(landed.items(), payloads, strict=True):
                outcomes[position] = Answer(payload, written.version)
            waiting = []
            if reservation is not None:
                seats_landed = sum(position in landed for position in seated)
                await self.seats.settle(scope.tenant, reservation, seats_landed)
                if reservation.granted > seats_landed:
                    waiting = refused  # seats were given back: the refused try again
                elif reservation.refusal is not None:
                    outcomes.update(dict.fromkeys(refused, reservation.refusal))
        return [outcomes[position] for position in range(len(bodies))]

    async def _claim_names(
        self,
        tenant: str,
        states: Mapping[int, _State],
        positions: Sequence[int],
        outcomes: dict[int, Answer | Exception],
    ) -> dict[int, list[Taken]]:
        """Claim each new user's userName under the one-team policy, as ``create`` does: what
        each claimed, by position; a user refused has its outcome set instead."""
        claims: dict[int, list[Taken]] = {}
        for position in positions:
            try:
                claims[position] = await self.one_team.take(
                    tenant, None, states[position].attributes
                )
            except Exception as error:  # that user's outcome, as ``create`` raises it
                outcomes[position] = error
        return claims

    async def replace(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        body: Payload,
        preconditions: Preconditions = UNCONDITIONAL,
        selection: Selection | None = ALL_ATTRIBUTES,
    ) -> Answer:
        """PUT: the body becomes the resource; readOnly attributes and the password are kept.

        ``selection=None`` answers the new version only, with no payload (as ``patch``).
        """
        if body.get("id") not in (None, resource_id):
            raise MutabilityException(detail="id is immutable")
        members = await self.members.check(scope, resource_id, declared_members(kind, body))

        def replaced(original: Resource[Any]) -> Resource[Any]:
            replacement = validate(kind, body, Context.RESOURCE_REPLACEMENT_REQUEST)
            try:
                replacement.replace(original)
            except ValidationError as error:
                raise from_validation_error(error) from None
            return replacement

        written = await self._rewrite(kind, scope, resource_id, preconditions, replaced)
        if kind is GROUPS:
            changed = await self.members.replace(scope.tenant, resource_id, members, scope.client)
            if changed is not None:
                written = changed
                self.relay.written(kind, scope.tenant, [resource_id])
        return await self._answer(kind, scope, written, selection)

    async def patch(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        body: Any,
        preconditions: Preconditions = UNCONDITIONAL,
        selection: Selection | None = ALL_ATTRIBUTES,
    ) -> Answer:
        """Apply a PatchOp; ``selection=None`` answers the new version only, with no payload."""
        # Planning walks every operation and entry: as the application of the plan, off the loop.
        plan = await asyncio.to_thread(plan_patch, kind, body, self.patch_max_operations)
        # Every member id is checked before anything is written: a bad one fails the whole PATCH.
        resolved = [
            await self.members.check(scope, resource_id, change.members)
            if change.op in ("add", "replace")
            else change.members
            for change in plan.member_changes
        ]

        def patched(resource: Resource[Any]) -> Resource[Any] | None:
            return resource if apply_operations(kind, resource, plan.operations) else None

        written: StoredResource | None = None
        if plan.operations or preconditions.if_match is not None:
            written = await self._rewrite(kind, scope, resource_id, preconditions, patched)
        # Each member change that changes something bumps the version after it lands, and
        # answers the group at that version.
        for change, members in zip(plan.member_changes, resolved, strict=True):
            applied = await self.members.apply(
                scope.tenant, resource_id, change, members, scope.client
            )
            if applied is not None:
                written = applied
                self.relay.written(kind, scope.tenant, [resource_id])
        if written is None:
            # Only member changes, none of which changed anything (or no such group).
            written = await self._read(kind, scope, resource_id)
        return await self._answer(kind, scope, written, selection)

    async def _read(self, kind: ResourceKind, scope: Scope, resource_id: str) -> StoredResource:
        stored = await self.repositories[kind.name].read(scope.tenant, resource_id)
        if stored is None:
            raise resource_not_found(kind.endpoint, resource_id)
        return stored

    async def _answer(
        self,
        kind: ResourceKind,
        scope: Scope,
        written: StoredResource,
        selection: Selection | None = ALL_ATTRIBUTES,
    ) -> Answer:
        """The answer to a write: rendered from the state it wrote, never read back; with no
        selection (a 204, a Bulk operation), its version only, so nothing is rendered."""
        if selection is None:
            return Answer({}, written.version)
        payloads = await self.renderer.render(kind, scope, [written], selection)
        return Answer(payloads[0], written.version)

    async def _rewrite(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        preconditions: Preconditions,
        transform: Callable[[Resource[Any]], Resource[Any] | None],
    ) -> StoredResource:
        """Read, transform and conditionally write one resource; answers it as it now is.

        The write only lands on the version that was read. When another writer got
        there first, the resource is read again and the transform re-applied, so
        concurrent writers never drop each other's changes; with ``If-Match`` the
        client asked for exactly the version it saw, so a conflict is its 412.
        ``transform`` answers None when there is nothing to write (the resource as read
        is then the answer).

        A new name shows in every group the resource belongs to, so it is refreshed there
        after the write, unless the member-of hint says the resource is in no group: the
        write then also requires the hint to be still zero, so that a membership added
        meanwhile makes it lose the round and look again (see storage/memberships.py).
        """
        repository = self.repositories[kind.name]
        location = scope.location(kind, resource_id)
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                stored = await self._read(kind, scope, resource_id)
                expected = preconditions.expected_version(stored.version)
                # Validating the stored state, transforming it and laying out the result is
                # CPU work that grows with the resource and the request (a thousand emails, a
                # thousand operations): a worker thread keeps the event loop serving every
                # other tenant meanwhile.
                changed = await asyncio.to_thread(
                    _transformed, kind, to_payload(kind, stored, location), transform
                )
                if changed is None:
                    return stored
                state = await _with_password_hash(changed)
                renamed = state.form.name != stored.name
                write = partial(
                    repository.update,
                    scope.tenant,
                    stored,
                    state.form,
                    state.password_hash,
                    datetime.now(UTC),
                    _emission(scope.client, kind, stored, state),
                    in_no_group=renamed and not stored.member_of,
                )
                change = (stored.attributes, state.attributes)
                await self._mark_managers(kind, scope.tenant, [change])
                written = await self._unique_or_shared(kind, scope.tenant, change, write)
                if written is not None:
                    self.relay.written(kind, scope.tenant, [resource_id])
                    if renamed and stored.member_of:
                        groups = await self.memberships.rename_member(
                            scope.tenant, resource_id, state.form.name, scope.client
                        )
                        self.relay.written(GROUPS, scope.tenant, groups)
                    return written
                if expected is not None:
                    raise resource_changed()
                # Another process won this round: back off a little, with jitter, and retry.
                await _back_off(attempt)
        raise TooManyConcurrentChanges(detail="too many concurrent changes to this resource")

    async def _unique_or_shared(
        self,
        kind: ResourceKind,
        tenant: str,
        change: tuple[Mapping[str, Any] | None, Mapping[str, Any]],
        write: Callable[..., Awaitable[Written]],
    ) -> Written:
        """``write`` a resource from ``change``'s first state (None: new) to its second,
        inside its seat reservation and its one-team claim (``_reserved``), under its unique
        name; in a tenant that lets groups share displayNames, a group the unique index
        refused is written again, sharing its name (``write`` takes ``shared_name``).

        The tenant's setting is only read when the name is taken, so that a write costs no
        command more for it.
        """
        try:
            return await self._reserved(kind, tenant, *change, partial(write, shared_name=False))
        except UniquenessException:
            if kind is not GROUPS or not await self.tenants.duplicate_group_names(tenant):
                raise
        return await self._reserved(kind, tenant, *change, partial(write, shared_name=True))

    async def _reserved(
        self,
        kind: ResourceKind,
        tenant: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        write: Callable[[], Awaitable[Written]],
    ) -> Written:
        """``write`` inside what it reserves: the seat it takes (or frees once landed) and,
        for a user, the userName it takes (or gives up) under the one-team policy."""
        seated = partial(self.seats.around, tenant, _seats_taken(kind, before, after), write)
        if not is_users(kind):
            return await seated()
        return await self.one_team.around(tenant, before, after, seated)

    async def _mark_managers(
        self,
        kind: ResourceKind,
        tenant: str,
        changes: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any]]],
    ) -> None:
        """Before users are written naming a new ``manager``, hint that those managers manage.

        Each change is a user's attributes before (None for a new user) and after. One
        command for them all, and none when no manager changes. See ``delete`` for why the
        hint must land first.
        """
        if not is_users(kind):
            return
        managers = [
            manager
            for before, after in changes
            if (manager := _manager(after)) and manager != _manager(before)
        ]
        await self.repositories[USERS.name].mark_managers(tenant, managers)

    async def delete(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        preconditions: Preconditions = UNCONDITIONAL,
    ) -> None:
        """Delete the version that was read, so whether it held a seat is known, not raced.

        A PATCH landing between the read and the delete changes the version: the
        delete then misses and reads again, as ``_rewrite`` does.

        A deleted user leaves no user naming it as ``manager``: once it is gone, the users
        naming it lose their manager. That costs nothing for a user no one was given as
        manager (the hint ``_mark_managers`` sets, read with the user): the delete then
        requires the hint still unset, so a manager assigned meanwhile, whose hint landed
        before its reference, makes it miss, read again and clear. A reference written after
        the clearing named a user already gone, as a reference to an unknown id does.
        """
        repository = self.repositories[kind.name]
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                stored = await repository.read(
                    scope.tenant, resource_id, attributes=("active", "userName")
                )
                if stored is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                expected = preconditions.expected_version(stored.version)
                manages_nobody = is_users(kind) and not stored.manages
                write = partial(
                    repository.delete,
                    scope.tenant,
                    resource_id,
                    stored.version,
                    deletion(kind, scope.client),
                    datetime.now(UTC),
                    manages_nobody=manages_nobody,
                )
                if await self._reserved(kind, scope.tenant, stored.attributes, None, write):
                    # The deletion landed as a mark carrying its event: moving the event to
                    # the outbox removes the document, then its memberships (docs/events.md).
                    await self.relay.move(kind, scope.tenant, [resource_id])
                    if is_users(kind) and stored.manages:
                        managed = await repository.clear_manager(
                            scope.tenant, resource_id, datetime.now(UTC), _manager_cleared(scope)
                        )
                        self.relay.written(USERS, scope.tenant, managed)
                    return
                if expected is not None and not manages_nobody:
                    raise resource_changed()
                # Missed: the version moved (read again: 412 with If-Match), or, when the hint
                # had to be unset, someone was just given this user as manager (no change to it).
                await _back_off(attempt)
        raise TooManyConcurrentChanges(detail="too many concurrent changes to this resource")


async def _back_off(attempt: int) -> None:
    """A short, jittered, growing pause before an optimistic write's next round."""
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _manager(attributes: Mapping[str, Any] | None) -> str | None:
    """The id a user's attributes name as its enterprise ``manager``, if any."""
    extension = (attributes or {}).get(str(EnterpriseUser.__schema__)) or {}
    manager = extension.get("manager") or {}
    value = manager.get("value") if isinstance(manager, Mapping) else None
    return value if isinstance(value, str) and value else None


def _seats_taken(
    kind: ResourceKind, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> int:
    """The seats a write takes (1), frees (-1) or neither; only users hold seats."""
    return seat_change(before, after) if is_users(kind) else 0


@dataclass(frozen=True)
class _State:
    """A new resource state: its SCIM attributes, laid out for storage, and its password."""

    attributes: Payload
    form: StoredForm
    password: str | None = None
    """The password the state sets, until it is hashed; never stored."""
    password_hash: str | None = None


def _transformed(
    kind: ResourceKind,
    payload: Payload,
    transform: Callable[[Resource[Any]], Resource[Any] | None],
) -> _State | None:
    """A stored resource's payload validated, transformed and laid out (``_state``).

    None when the transform has nothing to write (see ``_rewrite``).
    """
    changed = transform(validate(kind, payload, Context.DEFAULT))
    return None if changed is None else _state(kind, changed)


def _state(kind: ResourceKind, resource: Resource[Any]) -> _State:
    """A resource state laid out for storage, with the password it sets, if any."""
    attributes = resource.model_dump(scim_ctx=Context.DEFAULT)
    password = attributes.get("password") if is_users(kind) else None
    return _State(attributes, stored_form(kind, attributes), password or None)


async def _new_state(kind: ResourceKind, body: Payload) -> _State:
    """A creation request's body validated and laid out, its password hashed."""
    resource = validate(kind, body, Context.RESOURCE_CREATION_REQUEST)
    return await _with_password_hash(_state(kind, resource))


def _new_resource(state: _State, client: Client) -> NewResource:
    """A new user of that state, under a new id, with its creation's event, for ``insert_many``."""
    created = _emission(client, USERS, None, state)
    return NewResource(str(uuid.uuid4()), state.form, state.password_hash, created)


def _manager_cleared(scope: Scope) -> Emission:
    """The event of a user whose manager was deleted: its ``manager`` is gone."""
    manager = f"{EnterpriseUser.__schema__}:manager"
    return Emission(USER_UPDATED, scope.client, attributes=(manager,), values={manager: None})


def _emission(
    client: Client,
    kind: ResourceKind,
    stored: StoredResource | None,
    state: _State,
    members: tuple[str, ...] = (),
) -> Emission:
    """The event of writing ``state`` over ``stored`` (None: a creation)."""
    before = None if stored is None else stored.attributes
    # A state carries a password hash only when it sets a password.
    password_set = state.password_hash is not None
    return emission(
        kind, client, before, state.form.attributes, password_set=password_set, members=members
    )


async def _with_password_hash(state: _State) -> _State:
    """The state with the hash of the password it sets (scrypt, off the loop)."""
    if state.password is None:
        return state
    return replace(state, password=None, password_hash=await hash_password(state.password))


def validate(kind: ResourceKind, body: Payload, context: Context) -> Resource[Any]:
    """A request body (or a stored state) as the resource type's scim2-models model."""
    if not isinstance(body, dict):
        raise InvalidValueException(detail="the body is a JSON object")
    payload = {
        key: value
        for key, value in body.items()
        if not (kind is GROUPS and key.lower() == "members")
    }
    if isinstance(payload.get("schemas"), list):
        payload["schemas"] = _served_schemas(kind, payload)
    try:
        return kind.model.model_validate(payload, scim_ctx=context)
    except ValidationError as error:
        raise from_validation_error(error) from None


def _served_schemas(kind: ResourceKind, payload: Payload) -> list[Any]:
    """``schemas`` without the URNs this server does not serve and the body carries nothing of.

    Entra ID lists ``http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group``
    on every group it creates, with no attribute under it. Dropping such a bare URN loses
    nothing; a URN that does carry attributes is still refused, since they could not be kept.
    """
    served = {urn.lower() for urn in (kind.schema, *kind.extensions)}
    carried = {key.lower() for key in payload}
    return [
        urn
        for urn in payload["schemas"]
        if not isinstance(urn, str) or urn.lower() in served or urn.lower() in carried
    ]
