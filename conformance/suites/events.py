"""The ``events`` suite: every IdP lifecycle leaves exactly the provisioning events it should.

Why derived from the IdP's traffic: a server's event feed is only worth something if it says
what the IdP did, so the expected events are worked out from what each ``idp_sim`` profile sent
(its journal), by the rules of docs/events.md, never from what the server emitted. The rules are
a table (``RULES``: each kind of request the profiles send, and the events it makes), applied
to a model of what the profile has set so far: a creation names the attributes it sets, a ``PUT``
the top-level attributes it changes (one event even when it changes none: a ``PUT`` always
writes a version), a ``PATCH`` the attributes it changes (none: no event), each member
operation that changes something its own members event, a deletion its resource's last event
and a ``group.members_removed`` in each group that held the user.

Each profile runs its full lifecycle on a fresh tenant (created and deleted through the admin
API, so the sequence starts at 1), then the refused steps its IdP really sends (``REFUSED``: a
user or group created again, 409), then one more accepted change, after which nothing the refused
steps could have emitted can still be on its way. The feed is then read once
(``GET /admin/tenants/{name}/events``) and each check judges one family of rules on it; the
lifecycle runs once per profile, shared by its checks. Events of different resources may come in
any order (docs/events.md promises order per resource), so the sequence is compared resource by
resource. While the lifecycle runs, a webhook and an SSF poll stream of the tenant listen to it
(``event_channels``): the ``webhooks`` and ``ssf`` checks judge what they heard against the feed.
Needs the server's admin token (``--admin-token``); without it every check skips.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from typing import Any, TypeVar

from conformance.admin import admin_http, server_root
from conformance.checks import CheckFailed, CheckSkipped, Context, check, expect_object, require
from conformance.fixtures import Fixtures, Tracker
from conformance.http import Exchange, ScimHttp
from conformance.options import option
from conformance.suites.event_channels import (
    RECEIVER_HOST,
    Listeners,
    SsfHeard,
    Unheard,
    WebhookHeard,
    judge_sets,
    judge_webhooks,
    until,
)
from conformance.suites.flows import check_prefix, drive
from conformance.urns import ENTERPRISE, GROUP, USER
from idp_sim import Journal, JournalEntry, Profile
from idp_sim.scenarios import Steps, lifecycle

SUITE = "events"
SOURCE = "docs/events.md"
PROFILES = ("okta-oin", "okta-aiw", "jumpcloud", "entra")
IDP_FAMILY = {"okta-oin": "okta", "okta-aiw": "okta", "jumpcloud": "other", "entra": "entra"}
"""The ``client.idp`` each profile's events carry: the family its ``User-Agent`` names
(JumpCloud's is unknown, so idp_sim sends none: ``other``)."""
REFUSED: dict[str, tuple[str, ...]] = {
    "okta-oin": ("user", "group"),
    "okta-aiw": ("user", "group"),
    "jumpcloud": ("user", "group"),
    "entra": ("user", "group"),
}
"""The refused steps each IdP sends: a ``POST`` of a user (or group) the server already holds,
as when its existence check misses (409 ``uniqueness``). No profile sends ``If-Match``, so none
meets a 412."""
SKIPPED = frozenset({"id", "meta", "schemas", "groups", "members", "password"})
"""What a body carries that is not an attribute an event names as set: read-only attributes,
``members`` (said by members events) and the password (named, never kept)."""
LATE_ROUNDS = 20
"""Rounds waited for the rest once the last change's resource shows in the feed."""
FEED_SETTLE_SECONDS = 0.05
"""Waited before the feed's last read, one round: the lifecycle ends with an accepted change,
after which nothing earlier is still on its way to the feed, and a duplicate arrives as late as
any event (the listeners, whose deliveries go out after the feed, settle longer)."""
PAGE = 1000
H = TypeVar("H")


@dataclass(frozen=True)
class Expected:
    """One event the profile's traffic must have caused."""

    type: str
    resource: str
    attributes: tuple[str, ...] = ()
    members: tuple[str, ...] = ()

    def shape(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        return self.type, self.attributes, tuple(sorted(self.members))


def observed_shape(event: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """An event of the feed as :meth:`Expected.shape` says one."""
    return (
        str(event.get("type")),
        tuple(event.get("attributes") or ()),
        tuple(sorted(event.get("members") or ())),
    )


def settable(body: Any) -> dict[str, Any]:
    """The attributes a body sets, as a server keeps them: no read-only ones, no empty ones,
    ``active`` as a boolean even when sent as Entra's ``"True"``/``"False"``."""
    if not isinstance(body, dict):
        return {}
    kept = {k: v for k, v in body.items() if k not in SKIPPED and v not in (None, [], {})}
    if isinstance(kept.get("active"), str):
        kept["active"] = kept["active"].lower() == "true"
    return kept


def differing(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(name for name in {*before, *after} if before.get(name) != after.get(name))


ENTERPRISE_ATTRIBUTES = frozenset(
    {"employeeNumber", "costCenter", "organization", "division", "department", "manager"}
)
"""RFC 7643 §4.3's enterprise attributes: a path naming one unqualified (Entra's ``manager``)
changes the extension, the top-level attribute an event names."""


def head(path: str) -> str:
    """The top-level attribute a PATCH path names, as an event names it: a core attribute by
    its own name, however qualified (``name.givenName`` and ``urn:…:core:2.0:User:name`` →
    ``name``, ``emails[type eq "work"].value`` → ``emails``); an extension attribute, or the
    extension itself, by the extension's URN (``urn:…:User:department``, or the unqualified
    ``department`` Entra sends → the enterprise URN)."""
    bare = path.split("[", 1)[0]
    for core in (USER, GROUP):
        if bare.startswith(f"{core}:"):
            return head(path[len(core) + 1 :])
    if bare == ENTERPRISE or bare.startswith(f"{ENTERPRISE}:"):
        return ENTERPRISE
    if bare.startswith("urn:"):
        return bare.rsplit(":", 1)[0]
    name = bare.split(".", 1)[0]
    return ENTERPRISE if name in ENTERPRISE_ATTRIBUTES else name


def display(attributes: dict[str, Any]) -> Any:
    """The name a member shows in its groups."""
    return attributes.get("displayName") or attributes.get("userName")


def member_values(value: Any) -> list[str]:
    return [str(m["value"]) for m in value or [] if isinstance(m, dict) and "value" in m]


@dataclass
class Model:
    """What the profile has set on the server so far, and the events that made it so."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    expected: list[Expected] = field(default_factory=list)

    def emit(self, *events: Expected) -> None:
        self.expected.extend(events)

    def user_changed(self, user: str, after: dict[str, Any], password: bool) -> None:
        """The one event of a user's update, typed by what it does to ``active``; a new
        display name shows in every group the user is in."""
        before = self.users[user]
        names = differing(before, after) + (["password"] if password else [])
        was, now = before.get("active") is not False, after.get("active") is not False
        kind = "user.updated" if was == now else ("user.reactivated" if now else "user.deactivated")
        self.emit(Expected(kind, user, tuple(sorted(names))))
        self.users[user] = after
        if display(before) != display(after):
            for group, members in self.members.items():
                if user in members:
                    self.emit(Expected("group.updated", group, ("members",)))

    def members_set(self, group: str, wanted: list[str]) -> None:
        """A replacement of the members: those that left, then those that joined."""
        current = self.members[group]
        self.members_removed(group, [m for m in current if m not in wanted])
        self.members_added(group, wanted)

    def members_added(self, group: str, added: list[str]) -> None:
        new = [m for m in dict.fromkeys(added) if m not in self.members[group]]
        if new:
            self.members[group] += new
            self.emit(Expected("group.members_added", group, members=tuple(new)))

    def members_removed(self, group: str, removed: list[str]) -> None:
        gone = [m for m in dict.fromkeys(removed) if m in self.members[group]]
        if gone:
            self.members[group] = [m for m in self.members[group] if m not in gone]
            self.emit(Expected("group.members_removed", group, members=tuple(gone)))


def patched(attributes: dict[str, Any], operations: list[Any]) -> tuple[dict[str, Any], bool]:
    """The attributes after a PATCH's attribute operations (member ones are left out), and
    whether it sets a password. A key below the top level (``name.givenName``) replaces its
    attribute by a marker that differs from anything: it counts as changed."""
    after = dict(attributes)
    password = False
    for operation in operations:
        op, path = str(operation.get("op", "")).lower(), operation.get("path")
        value = operation.get("value")
        changes = dict(value) if path is None and isinstance(value, dict) else {path: value}
        for key, new in changes.items():
            name = head(str(key))
            if name == "members":
                continue
            if name == "password":
                password = True
            elif op == "remove":
                after.pop(name, None)
            elif name == key:
                after.pop(name, None)
                after.update(settable({name: new}))
            elif name not in SKIPPED:
                after[name] = object()
    return after, password


def member_operations(model: Model, group: str, operations: list[Any]) -> None:
    """Each member operation of a group PATCH that changes something: one event."""
    for operation in operations:
        op, path = str(operation.get("op", "")).lower(), operation.get("path")
        value = operation.get("value")
        if not isinstance(path, str) or head(path) != "members":
            continue
        if op == "add":
            model.members_added(group, member_values(value))
        elif op == "replace":
            model.members_set(group, member_values(value))
        elif "[" in path:  # members[value eq "id"]
            model.members_removed(group, [path.split('"')[1]])
        else:
            model.members_removed(group, member_values(value) or list(model.members[group]))


def created(model: Model, entry: JournalEntry, resource: str) -> None:
    body = entry.body if isinstance(entry.body, dict) else {}
    attributes = settable(body)
    names = sorted(attributes) + (["password"] if body.get("password") else [])
    if entry.path == "/Users":
        model.users[resource] = attributes
        model.emit(Expected("user.created", resource, tuple(sorted(names))))
        return
    members = member_values(body.get("members"))
    model.groups[resource], model.members[resource] = attributes, members
    named = tuple(sorted([*names, "members"] if members else names))
    model.emit(Expected("group.created", resource, named, tuple(members)))


def replaced(model: Model, entry: JournalEntry, resource: str) -> None:
    body = entry.body if isinstance(entry.body, dict) else {}
    if resource in model.users:
        model.user_changed(resource, settable(body), bool(body.get("password")))
        return
    after = settable(body)
    names = differing(model.groups[resource], after)
    model.groups[resource] = after
    model.emit(Expected("group.updated", resource, tuple(names)))
    model.members_set(resource, member_values(body.get("members")))


def patched_resource(model: Model, entry: JournalEntry, resource: str) -> None:
    operations = list((entry.body or {}).get("Operations") or [])
    if resource in model.users:
        after, password = patched(model.users[resource], operations)
        if differing(model.users[resource], after) or password:
            model.user_changed(resource, after, password)
        return
    after, _ = patched(model.groups[resource], operations)
    names = differing(model.groups[resource], after)
    if names:
        model.groups[resource] = after
        model.emit(Expected("group.updated", resource, tuple(names)))
    member_operations(model, resource, operations)


def deleted(model: Model, entry: JournalEntry, resource: str) -> None:
    if model.users.pop(resource, None) is not None:
        model.emit(Expected("user.deleted", resource))
        for group in model.members:
            model.members_removed(group, [resource])
        return
    model.groups.pop(resource, None)
    model.members.pop(resource, None)
    model.emit(Expected("group.deleted", resource))


Rule = Callable[[Model, JournalEntry, str], None]
RULES: dict[tuple[str, str], Rule] = {
    ("POST", "collection"): created,
    ("PUT", "resource"): replaced,
    ("PATCH", "resource"): patched_resource,
    ("DELETE", "resource"): deleted,
}
"""Each kind of accepted write an IdP sends, and the rule that says the events it makes; a
request that was refused (any status but 2xx) or reads makes none."""


def expected_events(journal: Journal) -> list[Expected]:
    """The events the profile's accepted writes make, in the order it sent them."""
    model = Model()
    for entry in journal:
        if not 200 <= entry.status < 300:
            continue
        path = entry.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if parts[0] not in ("Users", "Groups"):
            continue
        where = "collection" if len(parts) == 1 else "resource"
        rule = RULES.get((entry.method, where))
        if rule is None:
            continue
        if where == "collection":
            answer = entry.response_body if isinstance(entry.response_body, dict) else {}
            rule(model, entry, str(answer.get("id")))
        else:
            rule(model, entry, parts[1])
    return model.expected


# --- running a profile on a fresh tenant ---------------------------------------------------------


@dataclass
class Tenant:
    """A fresh tenant of the server, reached as an IdP reaches it."""

    name: str
    base_url: str
    token: str
    token_id: str


@dataclass
class ProfileRun:
    """One profile's lifecycle and the feed it left: what every check of the profile judges."""

    profile: str
    tenant: Tenant
    expected: list[Expected]
    events: list[dict[str, Any]]
    refused: list[JournalEntry]
    passwords: list[str]
    transcript: list[Exchange]
    webhook: WebhookHeard | Unheard
    ssf: SsfHeard | Unheard


async def fresh_tenant(admin: ScimHttp, name: str) -> Tenant:
    response = await admin.post("/tenants", {"name": name})
    require(
        response.status == 201,
        f"creating tenant {name}: HTTP {response.status} {response.text[:200]!r}",
    )
    body = expect_object(response, "created tenant")
    return Tenant(name, body["scim_base_url"], body["token"], body["token_id"])


async def feed(admin: ScimHttp, tenant: str, expected: list[Expected]) -> list[dict[str, Any]]:
    """The tenant's events from the first, once all the expected ones may be there (waited as
    the listeners are, ``until``): as many as the IdP's requests make, or the last change's
    event and ``LATE_ROUNDS`` more (a feed that lost one never has them all). Read once more
    after a short settle: a duplicate arrives as late as any event."""
    last = expected[-1].resource if expected else None
    found: list[dict[str, Any]] = []
    after_last = 0

    async def enough() -> bool:
        nonlocal found, after_last
        found = await read_feed(admin, tenant)
        if any(resource_of(e) == last for e in found):
            after_last += 1
        return len(found) >= len(expected) or after_last > LATE_ROUNDS

    await until(enough, FEED_SETTLE_SECONDS)
    return found


async def read_feed(admin: ScimHttp, tenant: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    sequence = 1
    while True:
        response = await admin.get(
            f"/tenants/{tenant}/events",
            params={"from_sequence": str(sequence), "limit": str(PAGE)},
        )
        require(response.status == 200, f"the events feed answered HTTP {response.status}")
        page = expect_object(response, "events page")
        events = page.get("events")
        require(isinstance(events, list), "the events page has no events array")
        if not events:
            return found
        found += events
        sequence = int(page["next_sequence"])


def refusal(profile: Profile, endpoint: str) -> dict[str, Any]:
    """The profile's own creation body of a user (or group) it still links, as it would send
    it now (a group under its current name): sent again, the server already holds it."""
    links = profile.user_links if endpoint == "/Users" else profile.group_links
    linked = {scim_id: directory_id for directory_id, scim_id in links.items()}
    for entry in profile.transport.journal:
        answer = entry.response_body if isinstance(entry.response_body, dict) else {}
        if entry.method == "POST" and entry.path == endpoint and answer.get("id") in linked:
            body = dict(entry.body)
            if endpoint == "/Groups":
                body["displayName"] = profile.directory.group(linked[answer["id"]]).name
            return body
    raise CheckFailed(f"the lifecycle left no {endpoint[1:-1].lower()} to create again")


async def refuse(profile: Profile, kind: str) -> None:
    """The IdP's creation of a user (or group) the server already holds: a 409."""
    endpoint = "/Users" if kind == "user" else "/Groups"
    body = refusal(profile, endpoint)
    await profile.call("refused", "POST", endpoint, body=body, expect=(409,))


async def play(profile: Profile) -> None:
    """The full lifecycle, the refused steps, then one accepted change after them."""
    steps = Steps(profile, None)
    await lifecycle(profile, steps)
    for kind in REFUSED[profile.name]:
        await steps.step(f"refused {kind}", partial(refuse, profile, kind))
    subject = next(u for u in profile.directory.users if u.id in profile.user_links)
    await steps.step("deactivate after the refusals", lambda: profile.deactivate_user(subject))


def passwords_sent(journal: Journal) -> list[str]:
    """Every password value the profile sent, in bodies or PATCH values."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "password" and isinstance(item, str):
                    found.append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for entry in journal:
        walk(entry.body)
    return found


async def run_profile(context: Context, name: str) -> ProfileRun:
    """The profile's run, once per profile and run: later checks of the profile share it."""
    runs: dict[str, ProfileRun | CheckFailed] = context.fixtures.tracker.shared.setdefault(
        "events-runs", {}
    )
    if name not in runs:
        try:
            runs[name] = await fresh_run(context, name)
        except CheckFailed as failed:
            runs[name] = failed
    done = runs[name]
    if isinstance(done, CheckFailed):
        raise CheckFailed(f"the {name} lifecycle did not run as its IdP runs it: {done}")
    context.http.transcript.extend(done.transcript)
    return done


async def fresh_run(context: Context, name: str) -> ProfileRun:
    """The profile's lifecycle on a tenant of its own (deleted afterwards unless ``--keep``),
    then the tenant's feed, once the events the lifecycle makes may all be there."""
    admin = admin_http(context).bound_to([])
    prefix = check_prefix(context, f"events-{name}")
    tenant = await fresh_tenant(admin, prefix.rstrip("-"))
    http = context.http
    on_tenant = Context(
        ScimHttp(http.session, tenant.base_url, tenant.token, [], http.timeout),
        context.spc,
        Fixtures(http, Tracker()),  # the tenant's deletion removes what the lifecycle made
    )
    listeners = await Listeners.open(
        admin,
        server_root(context),
        tenant.name,
        option(context, "events_receiver_host") or RECEIVER_HOST,
        option(context, "events_receiver_port") or 0,
    )
    try:
        [profile] = await drive(on_tenant, prefix, [name], lambda ps: play(ps[0]))
        journal = profile.transport.journal
        expected = expected_events(journal)
        events = await feed(admin, tenant.name, expected)
        webhook, ssf = await listeners.hear(expected, events)
    finally:
        await listeners.close()
        if not option(context, "keep"):
            await admin.delete(f"/tenants/{tenant.name}")
    refused = [e for e in journal if e.method == "POST" and e.status == 409]
    unexpected = [str(f) for f in profile.failures if f.operation != "refused"]
    if unexpected:
        raise CheckFailed(f"the lifecycle was not accepted: {'; '.join(unexpected[:3])}")
    require(
        len(refused) == len(REFUSED[name]),
        f"the refused steps were not refused with 409: "
        f"{[str(f) for f in profile.failures if f.operation == 'refused']}",
    )
    return ProfileRun(
        name,
        tenant,
        expected,
        events,
        refused,
        passwords_sent(journal),
        [*on_tenant.http.transcript, *admin.transcript],
        webhook,
        ssf,
    )


# --- the checks: one family of rules each, for every profile -------------------------------------


def by_resource(items: list[Any], resource: Callable[[Any], str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        grouped[resource(item)].append(item)
    return grouped


def resource_of(event: dict[str, Any]) -> str:
    return str((event.get("resource") or {}).get("id"))


async def sequence_check(context: Context, name: str) -> None:
    """Per resource, exactly the expected events (type, attributes, members) in order."""
    run = await run_profile(context, name)
    wanted = by_resource(run.expected, lambda e: e.resource)
    seen = by_resource(run.events, resource_of)
    for resource in sorted({*wanted, *seen}):
        expected = [e.shape() for e in wanted.get(resource, [])]
        observed = [observed_shape(e) for e in seen.get(resource, [])]
        require(
            observed == expected,
            f"resource {resource}: the feed says {observed}, the IdP's requests make {expected}",
        )
    require(
        len(run.events) == len(run.expected),
        f"{len(run.events)} events in the feed, the IdP's requests make {len(run.expected)}",
    )


async def numbering_check(context: Context, name: str) -> None:
    """Sequence numbers 1, 2, 3, … with no gap or repeat; versions rising per resource."""
    run = await run_profile(context, name)
    numbers = [e.get("sequence") for e in run.events]
    require(
        numbers == list(range(1, len(numbers) + 1)),
        f"a fresh tenant's sequence numbers are {numbers}, expected 1..{len(numbers)}",
    )
    for resource, events in by_resource(run.events, resource_of).items():
        versions = [(e.get("resource") or {}).get("version") for e in events]
        numbered = [v for v in versions if isinstance(v, int)]
        require(
            len(numbered) == len(versions) and all(a < b for a, b in pairwise(numbered)),
            f"resource {resource}: versions {versions} do not rise event after event",
        )
    ids = [e.get("id") for e in run.events]
    require(len(set(ids)) == len(ids), "two events of the feed share an id")


async def attributes_check(context: Context, name: str) -> None:
    """Each event's resource type, and no password value anywhere (named, never valued)."""
    run = await run_profile(context, name)
    for event in run.events:
        kind = str(event.get("type", "")).split(".", 1)[0]
        resource = event.get("resource") or {}
        require(
            resource.get("type") == kind.capitalize(),
            f"event {event.get('sequence')} ({event.get('type')}) is about a "
            f"{resource.get('type')!r}",
        )
        values = event.get("values") or {}
        require("password" not in values, f"event {event.get('sequence')} carries a password")
        text = json.dumps(event)
        leaked = [p for p in run.passwords if p in text]
        require(not leaked, f"event {event.get('sequence')} carries a password the IdP sent")
        for attribute in values:
            require(
                attribute in (event.get("attributes") or []),
                f"event {event.get('sequence')} values {attribute!r} without naming it",
            )
    named = [e for e in run.events if "password" in (e.get("attributes") or [])]
    wanted = [e for e in run.expected if "password" in e.attributes]
    require(
        len(named) == len(wanted),
        f"{len(named)} events name a password set, the IdP set one {len(wanted)} times",
    )


async def client_check(context: Context, name: str) -> None:
    """Every event says it came by SCIM, with the tenant's token and the IdP's family."""
    run = await run_profile(context, name)
    wanted = {"via": "scim", "token_id": run.tenant.token_id, "idp": IDP_FAMILY[name]}
    for event in run.events:
        require(
            event.get("client") == wanted,
            f"event {event.get('sequence')} ({event.get('type')}) says client "
            f"{event.get('client')}, expected {wanted}",
        )
        require(
            event.get("tenant") == run.tenant.name,
            f"event {event.get('sequence')} names tenant {event.get('tenant')!r}",
        )


async def refused_check(context: Context, name: str) -> None:
    """The refused creations emit nothing: their userName or displayName is created once."""
    run = await run_profile(context, name)
    for entry in run.refused:
        body = entry.body if isinstance(entry.body, dict) else {}
        key = "userName" if entry.path == "/Users" else "displayName"
        creations = [
            e
            for e in run.events
            if str(e.get("type", "")).endswith(".created")
            and (e.get("values") or {}).get(key) == body.get(key)
        ]
        require(
            len(creations) <= 1,
            f"{entry.method} {entry.path} of {body.get(key)!r} was refused with 409, yet "
            f"{len(creations)} creations of it are in the feed",
        )
    later = [e for e in run.events if e.get("type") == "user.deactivated"]
    require(later, "the accepted change after the refusals left no event")


def heard(heard: H | Unheard, channel: str) -> H:
    """What a listener heard; its skip, or its failure to listen, as the check's."""
    if isinstance(heard, CheckSkipped):
        raise heard
    if isinstance(heard, CheckFailed):
        raise CheckFailed(f"the suite's {channel} heard nothing: {heard}")
    return heard


async def webhooks_check(context: Context, name: str) -> None:
    """The webhook's deliveries are the feed's events, signed, each once, in order."""
    run = await run_profile(context, name)
    judge_webhooks(heard(run.webhook, "webhook"), run.events)


async def ssf_check(context: Context, name: str) -> None:
    """The stream's SETs are the feed's events told as docs/ssf.md's table says, in order."""
    run = await run_profile(context, name)
    judge_sets(heard(run.ssf, "SSF stream"), run.events)


FAMILIES: dict[str, tuple[str, str, Callable[[Context, str], Awaitable[None]]]] = {
    "sequence": (
        "exactly the expected events, per resource",
        "Every accepted change emits one event, in order per resource: its type, the "
        "attributes it set and the members it changed, as the IdP's requests make them.",
        sequence_check,
    ),
    "numbering": (
        "gap-free sequence numbers, rising versions",
        "A tenant's sequence is 1, 2, 3, … with no gap; each resource's events carry its "
        "meta.version after the change, rising.",
        numbering_check,
    ),
    "attributes": (
        "attributes named, never a password",
        "An event values only attributes it names; a password set is named, never valued.",
        attributes_check,
    ),
    "client": (
        "the client names the token and the IdP",
        'client is {"via": "scim", "token_id", "idp"}: the bearer token\'s id and the IdP '
        "family its User-Agent names.",
        client_check,
    ),
    "refused": (
        "refused requests emit nothing",
        "A change that did not land (a 409, a 412) emits nothing.",
        refused_check,
    ),
    "webhooks": (
        "the webhook delivers exactly the feed",
        "Each event is POSTed to the tenant's webhook, signed per Standard Webhooks "
        "(webhook-id the event id), its body the feed's event; every event, nothing else, in "
        "order per resource; a duplicate only as a redelivery.",
        webhooks_check,
    ),
    "ssf": (
        "the SSF stream tells exactly the feed",
        "Each event makes the SETs docs/ssf.md's table says, signed by the published key for "
        "the tenant's issuer and the receiver's audience, in order per subject, none other.",
        ssf_check,
    ),
}


def register() -> None:
    """Check ``events.<profile>.<family>`` for every profile and family, a profile's checks
    together, each counted towards its profile's verdict line."""
    for name in PROFILES:
        for family, (what, rule, body) in FAMILIES.items():

            async def run(
                context: Context,
                name: str = name,
                body: Callable[[Context, str], Awaitable[None]] = body,
            ) -> None:
                await body(context, name)

            check(
                SUITE,
                f"events.{name}.{family}",
                f"{name}: {what}",
                SOURCE,
                rule,
                profiles=(f"events {name}",),
            )(run)


register()
