"""Writing resources: create, replace, patch and delete, without lost updates.

Every write of an existing resource is optimistic: it reads the resource, computes the
new state, and writes it only onto the version it read. A writer that lost the race
reads again and re-applies its change (``_rewrite``); with ``If-Match`` the client asked
for exactly the version it saw, so losing is its 412. Within one process the writers of a
resource queue in its line instead of racing, and those queued together are written in one
round: one read, one conditional write (``_write_turns``). Seats are reserved around the
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
    SCIMException,
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
from scim_server.core.patch import PatchPlan, apply_operations, plan_patch
from scim_server.core.preconditions import UNCONDITIONAL, Preconditions, resource_changed
from scim_server.core.projection import Selection
from scim_server.core.queries import ALL_ATTRIBUTES, Answer
from scim_server.core.rendering import Renderer, to_payload
from scim_server.core.scope import Scope
from scim_server.core.seats import Seats, holds_seat, seat_change
from scim_server.models import GROUPS, USERS, EnterpriseUser, Member, ResourceKind, is_users
from scim_server.storage.documents import StoredForm, StoredResource, rewritten, stored_form
from scim_server.storage.events import USER_UPDATED, Client, Emission
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import NewResource, ResourceRepository
from scim_server.storage.tenants import TenantRepository

Payload = dict[str, Any]
Written = TypeVar("Written")

MAX_WRITE_ATTEMPTS = 20
"""Optimistic-concurrency retries before a PATCH gives up (each retry re-reads and re-applies)."""
TOO_MANY_CHANGES = "too many concurrent changes to this resource"


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
        self._lines: weakref.WeakValueDictionary[tuple[str, str, str], _Line] = (
            weakref.WeakValueDictionary()
        )

    def _line(self, kind: ResourceKind, tenant: str, resource_id: str) -> _Line:
        """One line per resource: this process's read-modify-writes of it take turns.

        Without it, N concurrent writers all read the same version and all but one
        lose, round after round, so the last needs N attempts and more than
        ``MAX_WRITE_ATTEMPTS`` writers got 412 without ever sending If-Match. The
        conditional write and its retry still guard against other processes. A line is
        kept only while a writer holds a reference to it.
        """
        key = (kind.name, tenant, resource_id)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line()
        return line

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
            # Its version moves on with the members, whose event is the creation's: read.
            stored = await self.memberships.add(scope.tenant, stored.id, members, None) or stored
            self.relay.written(kind, scope.tenant, [stored.id])
        else:
            self.relay.created(kind, scope.tenant, [stored])
        # Rendered from what was just written: a new resource is only related to the
        # members it was created with, so there is nothing else to read back.
        payloads = await self.renderer.render(
            kind, scope, [stored], ALL_ATTRIBUTES, related=bool(members)
        )
        return Answer(payloads[0], stored.version)

    async def create_users(
        self, scope: Scope, bodies: Sequence[Payload], *, users: ResourceKind = USERS
    ) -> list[StoredResource | Exception]:
        """Create users as one batch: for each body, the user as stored or what ``create``
        raises.

        Each body is validated on its own, so a bad one fails alone. The users that take a
        seat reserve theirs together, as many as are free, in request order; those beyond
        get the ``SeatLimitExceeded`` a ``create`` raises. The users go to the store in one
        unordered insert, where a taken userName fails its user alone, and the seats of
        the inserts that failed are given back. When seats were given back and users were
        refused, the refused try again, so that as many get in as one ``create`` after the
        other would have let in.
        """
        outcomes: dict[int, StoredResource | Exception] = {}
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
            landed: list[StoredResource] = []
            for position, answer in zip(going, stored, strict=True):
                outcomes[position] = answer
                if isinstance(answer, StoredResource):
                    landed.append(answer)
                else:
                    await self.one_team.give_back(scope.tenant, claims[position])
            self.relay.created(users, scope.tenant, landed)
            waiting = []
            if reservation is not None:
                seats_landed = sum(
                    isinstance(outcomes.get(position), StoredResource) for position in seated
                )
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
        outcomes: dict[int, StoredResource | Exception],
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
            changed = await self._replace_members(scope, resource_id, members, written)
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
        lone = _lone_member_add(plan, preconditions)
        written: StoredResource | None
        if lone is not None and self.memberships.claims_in_one_command:
            written = await self.members.add_one(scope, resource_id, lone, scope.client)
            if written is not None:
                self.relay.written(kind, scope.tenant, [resource_id])
        else:
            written = await self._patch_in_turn(kind, scope, resource_id, plan, preconditions)
        if written is None:
            # Only member changes, none of which changed anything (or no such group).
            written = await self._read(kind, scope, resource_id)
        return await self._answer(kind, scope, written, selection)

    async def _patch_in_turn(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        plan: PatchPlan,
        preconditions: Preconditions,
    ) -> StoredResource | None:
        """A PATCH's attribute operations, then its member changes in their order; answers
        the resource as the last of them wrote it (None: none wrote it)."""
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
            applied = await (
                self._replace_members(scope, resource_id, members)
                if change.op == "replace"
                else self.members.apply(scope.tenant, resource_id, change, members, scope.client)
            )
            if applied is not None:
                written = applied
                self.relay.written(kind, scope.tenant, [resource_id])
        return written

    async def _replace_members(
        self,
        scope: Scope,
        group_id: str,
        members: tuple[Member, ...],
        read: StoredResource | None = None,
    ) -> StoredResource | None:
        """Set a group's members to exactly ``members``; answers the group at the last
        version this gave it, if it changed the members. ``read``: the group as just written
        or read, if the caller has it (a PUT), which spares a read.

        A replacement reads the members and then removes and adds the differences: two at once
        would both read the old members and leave the union of theirs. In this process the
        replacements take turns in the group's line. Against other processes, whose lines
        this one does not see, a round checks that the versions it gave the group directly
        follow the one it started from (every member change gives the group a new version): one
        in between is another writer's, which may have acted on members this round read
        before it, so the differences are applied again to the members as they are now, until
        a round ran alone. The group then holds exactly ``members``, as if the replacements
        had run one after the other.
        """
        last: StoredResource | None = None
        async with self._line(GROUPS, scope.tenant, group_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                start = (
                    read
                    if attempt == 0 and read is not None
                    else await self._version(scope.tenant, group_id)
                )
                if start is None:  # deleted meanwhile
                    return last
                landed = await self.members.replace(scope.tenant, group_id, members, scope.client)
                if landed:
                    last = landed[-1]
                if not landed or landed[-1].version == start.version + len(landed):
                    return last
                await _back_off(attempt)
        raise TooManyConcurrentChanges(detail=TOO_MANY_CHANGES)

    async def _version(self, tenant: str, group_id: str) -> StoredResource | None:
        """The group at its version now (no attribute read), or None when it is gone."""
        return await self.repositories[GROUPS.name].read(tenant, group_id, attributes=())

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

        The rewrite waits in the resource's line, and whichever rewrite takes the line
        next writes every one waiting by then (``_write_turns``): under load, the writers
        of one resource share a read and a write instead of paying one each in turn.
        """
        line = self._line(kind, scope.tenant, resource_id)
        turn = _Turn(scope, preconditions, transform)
        line.waiting.append(turn)
        try:
            async with line:
                if turn.outcome is None:
                    turns, line.waiting = line.waiting, []
                    try:
                        await self._write_turns(kind, resource_id, turns)
                    finally:
                        # Cancelled mid-round (a server stopping): the turns it did not answer
                        # go back to the head of the line for the next holder, which reads the
                        # resource again; a PATCH or PUT applied again to the state it already
                        # made changes nothing.
                        line.waiting[:0] = [
                            other for other in turns if other.outcome is None and other is not turn
                        ]
        finally:
            if turn in line.waiting:  # cancelled while waiting: nobody is to write it any more
                line.waiting.remove(turn)
        if isinstance(turn.outcome, Exception):
            raise turn.outcome
        assert turn.outcome is not None  # _write_turns answers every turn it takes
        return turn.outcome

    async def _write_turns(self, kind: ResourceKind, resource_id: str, turns: list[_Turn]) -> None:
        """Answer each of these rewrites of one resource, in order, in as few rounds as it takes.

        A round reads the resource (or starts from what the round before wrote), applies
        each turn to the state the turn before it left (``_applied``) and writes the last
        state once, on the version read, with a version and an event for each change: each
        turn answers the state after it at its own version, or its own error, exactly as if
        the rewrites had run one after the other (RFC 7644 §3.5.2: each PATCH is atomic).
        A change that takes or gives up something outside the document ends its round
        (``_reserving``), so a seat, a unique name or a team's claim is only ever checked on
        a state that is written. Nothing is answered before its round lands: if another
        process wrote first, the round is read again and applied again (a turn with
        ``If-Match`` gets its 412, as a lone writer would). When the store refuses a write
        of several changes (a taken name, no seat left), they are written again one round
        each, so that the refusal reaches the change it is about.

        A round that lost is applied again with half its turns, and the rounds grow back by
        doubling once one lands: the longer a round takes to apply, the likelier another
        process's write lands between its read and its write. Two processes writing one
        resource otherwise starved the one whose clients queued more: its rounds, of many
        changes, lost to the other's rounds of one or two, which grew its line and its rounds
        further, until ``MAX_WRITE_ATTEMPTS`` lost rounds in a row answered 503. Only a round
        of one turn that lost counts toward that limit: it races another process's rounds on
        the most even terms this process can give it. (One change much longer to apply than
        the other process's, hundreds of operations against a stream of one-operation PATCHes,
        can still lose every time: only a turn taken across processes would make it wait.)
        """
        pending = turns
        stored: StoredResource | None = None
        solo = False
        size = len(turns)  # the most turns a round applies
        lost = starved = 0
        while pending:
            try:
                if stored is None:
                    stored = await self._read(kind, pending[0].scope, resource_id)
            except Exception as error:  # gone, or the store away: the answer of every turn
                _answer(pending, error)
                return
            now = datetime.now(UTC)
            # Validating the stored state, transforming it and laying out the result is CPU
            # work that grows with the resource and the requests (a thousand emails, a
            # thousand operations): a worker thread keeps the event loop serving every
            # other tenant meanwhile.
            steps = await asyncio.to_thread(
                _applied, kind, resource_id, stored, pending[:size], now, solo
            )
            changed = [n for n, step in enumerate(steps) if step.change is not None]
            try:
                written = await self._write_steps(kind, stored, steps, now)
            except SCIMException as error:
                if len(changed) > 1:
                    solo = True  # nothing landed: the same turns again, one change a round
                    continue
                # The round's one change was refused: the turns after it run again without it.
                (refused,) = changed
                steps[refused] = _Step(steps[refused].turn, error)
                _settle(steps[: refused + 1])
                pending = pending[refused + 1 :]
                continue
            except Exception as error:  # the store away, say: whether it landed is unknown
                _answer([step.turn for step in steps], error)
                pending, stored = pending[len(steps) :], None
                continue
            if written is None:
                # Another process wrote first: read again and apply again, fewer, a little later.
                lost += 1
                starved += len(steps) == 1
                if starved == MAX_WRITE_ATTEMPTS:
                    _answer(pending, TooManyConcurrentChanges(detail=TOO_MANY_CHANGES))
                    return
                asked = [step.turn for step in steps if step.turn.preconditions.if_match]
                _answer(asked, resource_changed())
                pending, stored = [turn for turn in pending if turn.outcome is None], None
                size = max(1, len(steps) // 2)
                await _back_off(lost - 1)
                continue
            if changed:
                steps[changed[-1]] = _Step(steps[changed[-1]].turn, written)
            _settle(steps)
            pending, stored, lost, starved = pending[len(steps) :], written, 0, 0
            size *= 2

    async def _write_steps(
        self,
        kind: ResourceKind,
        stored: StoredResource,
        steps: Sequence[_Step],
        now: datetime,
    ) -> StoredResource | None:
        """Write the changes of one round onto ``stored``, as read, at once; answers the resource
        as written (``stored`` when there is nothing to write), or None when another writer
        got there first.

        Only the last state is stored, with the password the last change that set one set
        (hashed only now, once). A new name shows in every group the resource belongs to, so
        it is refreshed there after the write, unless the member-of hint says the resource is
        in no group: the write then also requires the hint to be still zero, so that a
        membership added meanwhile makes it lose the round and look again (see
        storage/memberships.py).
        """
        changes = [change for step in steps if (change := step.change)]
        if not changes:
            return stored
        scope = next(step.turn.scope for step in reversed(steps) if step.change)
        last = changes[-1].state
        password = next((c.state.password for c in reversed(changes) if c.state.password), None)
        password_hash = None if password is None else await hash_password(password)
        renamed = last.form.name != stored.name
        write = partial(
            self.repositories[kind.name].update,
            scope.tenant,
            stored,
            last.form,
            password_hash,
            now,
            [change.emission for change in changes],
            in_no_group=renamed and not stored.member_of,
        )
        before_and_after = (stored.attributes, last.attributes)
        await self._mark_managers(kind, scope.tenant, [before_and_after])
        written = await self._unique_or_shared(kind, scope.tenant, before_and_after, write)
        if written is not None:
            self.relay.written(kind, scope.tenant, [stored.id])
            if renamed and stored.member_of:
                groups = await self.memberships.rename_member(
                    scope.tenant, stored.id, last.form.name, scope.client
                )
                self.relay.written(GROUPS, scope.tenant, groups)
        return written

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
        seat_limited: bool | None = None,
    ) -> Written:
        """``write`` inside what it reserves: the seat it takes (or frees once landed) and,
        for a user, the userName it takes (or gives up) under the one-team policy.
        ``seat_limited``: whether the tenant has a seat limit, read with ``before``."""
        change = _seats_taken(kind, before, after)
        seated = partial(self.seats.around, tenant, change, write, limited=seat_limited)
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
        delete then misses and reads again, as ``_rewrite`` does. The read also serves the
        move of the events (those read, then the deletion's) and the removal, which a
        member-of hint read as 0 spares its membership lookup: four commands for a user in
        no group (docs/events.md).

        A deleted user leaves no user naming it as ``manager``: once it is gone, the users
        naming it lose their manager. That costs nothing for a user no one was given as
        manager (the hint ``_mark_managers`` sets, read with the user): the delete then
        requires the hint still unset, so a manager assigned meanwhile, whose hint landed
        before its reference, makes it miss, read again and clear. A reference written after
        the clearing named a user already gone, as a reference to an unknown id does.
        """
        repository = self.repositories[kind.name]
        async with self._line(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                # One read serves the seat, the manager and member-of hints, and the move of
                # its events after the mark: they are the events read, and the mark's.
                deleting = await repository.read_for_deletion(
                    scope.tenant, resource_id, ("active", "userName"), self.relay.events
                )
                if deleting is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                stored = deleting.resource
                expected = preconditions.expected_version(stored.version)
                manages_nobody = is_users(kind) and not stored.manages
                write = partial(
                    repository.delete,
                    scope.tenant,
                    deleting.pending,
                    deletion(kind, scope.client),
                    datetime.now(UTC),
                    manages_nobody=manages_nobody,
                )
                marked = await self._reserved(
                    kind, scope.tenant, stored.attributes, None, write, deleting.seat_limited
                )
                if marked is not None:
                    # The deletion landed as a mark carrying its event: moving the events to
                    # the outbox removes the document, then its memberships (docs/events.md).
                    await self.relay.remove(
                        kind, marked, deleting.last, in_no_group=not stored.member_of
                    )
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
        raise TooManyConcurrentChanges(detail=TOO_MANY_CHANGES)


@dataclass(eq=False)
class _Turn:
    """One rewrite of a resource in its line: what it asks and, once its round has landed,
    what it answers (the resource after its change, or its error)."""

    scope: Scope
    preconditions: Preconditions
    transform: Callable[[Resource[Any]], Resource[Any] | None]
    outcome: StoredResource | Exception | None = None


class _Line:
    """This process's writes of one resource: they take turns holding it (``async with``),
    and a rewrite that takes it writes every rewrite ``waiting`` then.

    Holding the line, not only its lock, is what keeps it in ``Writes._lines``: a writer
    holding a lock whose line was let go would share the resource with the next writer, who
    finds no line and makes another.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting: list[_Turn] = []

    def held(self) -> bool:
        return self._lock.locked()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *_: object) -> None:
        self._lock.release()


@dataclass(frozen=True)
class _Change:
    """The state a turn makes, and the event of that change."""

    state: _State
    emission: Emission


@dataclass(frozen=True)
class _Step:
    """A turn applied in a round: what it answers once the round lands and, when it changes
    the resource, its change."""

    turn: _Turn
    outcome: StoredResource | Exception
    change: _Change | None = None


def _applied(
    kind: ResourceKind,
    resource_id: str,
    stored: StoredResource,
    turns: Sequence[_Turn],
    now: datetime,
    solo: bool,
) -> list[_Step]:
    """The turns of a round, each applied to the state the one before it left: a step each,
    up to the first change that reserves something (``_reserving``) or, ``solo``, the first
    change at all. A turn's ``If-Match`` is checked on the version it is applied to."""
    steps: list[_Step] = []
    current = stored
    for turn in turns:
        try:
            turn.preconditions.expected_version(current.version)
            payload = to_payload(kind, current, turn.scope.location(kind, resource_id))
            state = _transformed(kind, payload, turn.transform)
        except Exception as error:  # that turn's outcome, as a lone rewrite raises it
            steps.append(_Step(turn, error))
            continue
        if state is None:
            steps.append(_Step(turn, current))
            continue
        after = rewritten(current, state.form, None, now)
        change = _Change(state, _emission(turn.scope.client, kind, current, state))
        steps.append(_Step(turn, after, change))
        if solo or _reserving(kind, current, state):
            break
        current = after
    return steps


def _reserving(kind: ResourceKind, before: StoredResource, state: _State) -> bool:
    """Whether a change takes or gives up something outside the resource's document: a seat,
    its unique name (a user's userName, which is also what it claims in a team; a group's
    displayName). A new name its groups show is not: only the one written is refreshed."""
    unique = "userName" if kind is USERS else "displayName"
    return _seats_taken(kind, before.attributes, state.attributes) != 0 or before.attributes.get(
        unique
    ) != state.attributes.get(unique)


def _settle(steps: Sequence[_Step]) -> None:
    """Give each turn of a round that landed its outcome."""
    for step in steps:
        step.turn.outcome = step.outcome


def _answer(turns: Sequence[_Turn], error: Exception) -> None:
    """Give each of these turns the same error."""
    for turn in turns:
        turn.outcome = error


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
    # A state carries a password, or once hashed its hash, only when it sets a password.
    password_set = state.password is not None or state.password_hash is not None
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


def _lone_member_add(plan: PatchPlan, preconditions: Preconditions) -> Member | None:
    """The member a PATCH adds, when adding that one member is all it does, with no
    ``If-Match``: how Okta and Entra send each member change. Nothing can then fail once the
    member is claimed (``Members.add_one``)."""
    if plan.operations or preconditions.if_match is not None or len(plan.member_changes) != 1:
        return None
    (change,) = plan.member_changes
    return change.members[0] if change.op == "add" and len(change.members) == 1 else None
