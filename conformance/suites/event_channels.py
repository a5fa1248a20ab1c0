"""The ``events`` suite's two listeners: a webhook and a Shared Signals poll stream.

Why these listen while the lifecycle runs: a server's webhooks and SSF streams are only worth
something if they tell a consumer what the feed says, no more and no less. So, before a profile's
lifecycle, the suite registers a webhook on the fresh tenant pointing at a receiver it serves
itself (aiohttp, in this process, on ``--events-receiver-host``/``--events-receiver-port``,
127.0.0.1 and a free port unless told), issues an SSF receiver token and creates a poll stream
requesting every event (full payloads). Once the feed holds the lifecycle's events, each
listener is waited for (``until``) until it heard what the IdP's own requests make (the suite's
expected events, worked out before waiting, never the feed's count: a broken feed would have the
wait sit out its bound), or until a loss already shows (something missing that a later item of
its own resource or subject overtook: no later arrival can make that channel right), then for a
short settle window in which one delivery too many can still show. Only a channel genuinely
short of them waits the whole bound, and its check fails as late. What was heard is judged
against the feed: the feed itself is judged by the suite's other checks.

What a feed event makes on a stream is the table of docs/ssf.md written as data (``SETS``),
never read from what the server emits.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from conformance.checks import CheckFailed, CheckSkipped, expect_object, require, skip
from conformance.http import ScimHttp

RECEIVER_HOST = "127.0.0.1"
"""Where the receiver listens unless `--events-receiver-host` says: this machine."""
ROUNDS, ROUND_SECONDS = 200, 0.05
"""How long deliveries and SETs are waited for at most: ten seconds, far beyond a prompt
server's. Only a channel still short of what the IdP's requests make waits them all."""
SETTLE_SECONDS = 0.5
"""Waited once everything awaited came (or a loss showed), so that a delivery or SET too many
(an extra event, a duplicate with another body) can still show before the channel is judged."""
POLL_MAX = 1000
T = TypeVar("T")


async def until(
    heard_enough: Callable[[], Awaitable[bool]], settle: float = SETTLE_SECONDS
) -> bool:
    """Ask ``heard_enough`` each round until it says yes or the bound is over; once it said
    yes, ask once more after ``settle`` seconds (it gathers what came meanwhile). Whether it
    said yes in time: no means what was awaited is late."""
    for _ in range(ROUNDS):
        if await heard_enough():
            await asyncio.sleep(settle)
            await heard_enough()
            return True
        await asyncio.sleep(ROUND_SECONDS)
    return False


def overtaken(orders: Iterable[list[str]], arrived: Collection[str]) -> bool:
    """Whether a loss already shows: in one of ``orders`` (a resource's events, a subject's
    SETs, as the feed orders them) an item has not arrived while a later one has. Whatever
    arrives afterwards, that channel is then wrong (the item missing, or out of order), so
    there is no more to wait for."""
    for order in orders:
        missing = [place for place, item in enumerate(order) if item not in arrived]
        if missing and any(item in arrived for item in order[missing[0] + 1 :]):
            return True
    return False


def lateness(late: bool, awaited: int, what: str) -> str:
    """The failure of a channel that never had what the IdP's requests make, or ''."""
    if not late:
        return ""
    return (
        f"late: the IdP's requests make {awaited} {what}, fewer came within the whole "
        f"{ROUNDS * ROUND_SECONDS:g} s wait"
    )


def also(late: str) -> str:
    """``late`` appended to a failure it may explain, or ''."""
    return f"; {late}" if late else ""


class Made(Protocol):
    """One event the IdP's requests must make, as the suite worked it out from them."""

    @property
    def type(self) -> str: ...

    @property
    def attributes(self) -> tuple[str, ...]: ...


PROV = "urn:ietf:params:SCIM:event:prov:"
CREATE, PATCH = f"{PROV}create:full", f"{PROV}patch:full"
ACTIVATE, DEACTIVATE, DELETE = f"{PROV}activate", f"{PROV}deactivate", f"{PROV}delete"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
REQUESTED = (
    CREATE,
    PATCH,
    ACTIVATE,
    DEACTIVATE,
    DELETE,
    SESSION_REVOKED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
)
"""What the suite's stream requests: every event the transmitter offers, in full form."""

SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "user.created": ((CREATE, "scim"),),
    "group.created": ((CREATE, "scim"),),
    "user.updated": ((PATCH, "scim"),),
    "group.updated": ((PATCH, "scim"),),
    "group.members_added": ((PATCH, "scim"),),
    "group.members_removed": ((PATCH, "scim"),),
    "user.deactivated": (
        (DEACTIVATE, "scim"),
        (SESSION_REVOKED, "iss_sub"),
        (ACCOUNT_DISABLED, "iss_sub"),
    ),
    "user.reactivated": ((ACTIVATE, "scim"), (ACCOUNT_ENABLED, "iss_sub")),
    "user.deleted": ((DELETE, "scim"), (SESSION_REVOKED, "iss_sub"), (ACCOUNT_DISABLED, "iss_sub")),
    "group.deleted": ((DELETE, "scim"),),
}
"""docs/ssf.md's table: each feed event's SETs on a stream that requested them all, each with
the format of its ``sub_id`` (the resource's ``scim`` path, or the person as ``iss_sub``)."""
ALSO_PATCHED = frozenset({"user.deactivated", "user.reactivated"})
"""Events that also make a ``patch`` SET, after their own, when they changed more than
``active`` (a ``PUT`` that deactivates and changes a title)."""


# --- the webhook receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST as the suite's receiver got it."""

    headers: dict[str, str]
    body: bytes

    def lowered(self) -> dict[str, str]:
        """Its headers, names in lower case."""
        return {name.lower(): value for name, value in self.headers.items()}

    def event_id(self) -> str:
        """The event it says it is (``webhook-id``)."""
        return self.lowered().get("webhook-id", "")


@dataclass
class HookReceiver:
    """The suite's own webhook endpoint: records every POST and answers 204."""

    deliveries: list[Delivery] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> str:
        """Serve on ``host:port`` (0: a free port); the URL the webhook is to be given."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, reuse_address=True)
        await site.start()
        served = self.runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{served}/webhook"

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def wait_for(self, awaited: int, orders: list[list[str]]) -> tuple[list[Delivery], str]:
        """The deliveries once ``awaited`` distinct events came or a loss in one of ``orders``
        (each resource's event ids) shows (``until``), and why they are late ('' if not)."""

        async def enough() -> bool:
            came = {delivery.event_id() for delivery in self.deliveries}
            return len(came) >= awaited or overtaken(orders, came)

        in_time = await until(enough)
        return list(self.deliveries), lateness(not in_time, awaited, "deliveries")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class WebhookHeard:
    """The deliveries of the suite's webhook, and the secret its registration answered."""

    secret: str
    deliveries: list[Delivery]
    late: str = ""
    """Why the deliveries are late: fewer than the IdP's requests make came in the whole wait."""


def parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def judge_webhooks(heard: WebhookHeard, events: list[dict[str, Any]]) -> None:
    """Every delivery verifies and is the feed's event of its ``webhook-id``; every event is
    delivered, in order per resource; a duplicate is only a redelivery (same id, same body)."""
    feed = {str(e.get("id")): e for e in events}
    verifier = Webhook(heard.secret)
    first: dict[str, bytes] = {}
    for n, delivery in enumerate(heard.deliveries, 1):
        headers = delivery.lowered()
        try:
            verifier.verify(delivery.body, headers)
        except WebhookVerificationError as error:
            raise CheckFailed(
                f"delivery {n} does not verify against the secret the webhook's 201 gave: {error}"
            ) from error
        event_id = headers.get("webhook-id", "")
        require(event_id in feed, f"delivery {n} (webhook-id {event_id!r}) is no event of the feed")
        require(
            parsed(delivery.body) == feed[event_id],
            f"delivery {n} is not the feed's event {event_id}: "
            f"{delivery.body[:300]!r}, the feed says {json.dumps(feed[event_id])[:300]}",
        )
        if event_id in first:
            require(
                first[event_id] == delivery.body,
                f"delivery {n} repeats event {event_id} with another body: not a redelivery",
            )
        first.setdefault(event_id, delivery.body)
    missing = [e.get("sequence") for e in events if str(e.get("id")) not in first]
    require(
        not missing,
        f"{len(missing)} of the feed's {len(events)} events were never delivered "
        f"(sequences {missing[:10]}){also(heard.late)}",
    )
    arrived = {event_id: place for place, event_id in enumerate(first)}
    for resource, in_feed in per_resource(events).items():
        ids = [str(e.get("id")) for e in in_feed]
        came = sorted(ids, key=arrived.__getitem__)
        require(
            came == ids,
            f"resource {resource}: its events were delivered as sequences "
            f"{[feed[i].get('sequence') for i in came]}, the feed orders them "
            f"{[feed[i].get('sequence') for i in ids]}",
        )
    require(not heard.late, heard.late)


def per_resource(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[str((event.get("resource") or {}).get("id"))].append(event)
    return grouped


# --- the Shared Signals stream -------------------------------------------------------------------


@dataclass
class SsfHeard:
    """The SETs the suite's stream answered, in the order its polls answered them, and what
    they are to be verified against."""

    issuer: str
    audience: str
    jwks: dict[str, Any]
    sets: list[tuple[str, str]]
    """Each SET as ``(jti, compact JWT)``, every time a poll answered it."""
    late: str = ""
    """Why the SETs are late: fewer than the IdP's requests make came in the whole wait."""


@dataclass
class SsfStream:
    """The suite's receiver token and poll stream on one tenant."""

    http: ScimHttp
    issuer: str
    audience: str
    poll_path: str

    @classmethod
    async def open(cls, admin: ScimHttp, root: str, tenant: str) -> SsfStream:
        """Issue a receiver token (admin API) and create a poll stream requesting everything."""
        issued = await admin.post(
            f"/tenants/{tenant}/ssf/receivers", {"description": "scim-conformance events"}
        )
        require(issued.status == 201, f"issuing an SSF receiver token: HTTP {issued.status}")
        receiver = expect_object(issued, "receiver token")
        http = ScimHttp(admin.session, root, receiver["token"], admin.transcript, admin.timeout)
        body = {"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": list(REQUESTED)}
        created = await http.post(f"/ssf/{tenant}/streams", body)
        require(
            created.status == 201,
            f"creating a poll stream: HTTP {created.status} {created.text[:200]!r}",
        )
        stream = expect_object(created, "stream")
        delivered = stream.get("events_delivered")
        require(
            sorted(delivered or ()) == sorted(REQUESTED),
            f"the stream delivers {delivered}, requested {list(REQUESTED)}",
        )
        endpoint = str((stream.get("delivery") or {}).get("endpoint_url", ""))
        return cls(
            http, str(receiver["issuer"]), str(receiver["token_id"]), urlsplit(endpoint).path
        )

    async def drain(self, awaited: int, orders: list[list[str]]) -> SsfHeard:
        """Poll, acknowledging each answer in the next poll, until ``awaited`` distinct SETs
        came or a loss in one of ``orders`` (each subject's SETs, as :func:`placed` says them)
        shows (``until``)."""
        answered: list[tuple[str, str]] = []
        acks: list[str] = []

        async def enough() -> bool:
            response = await self.http.post(
                self.poll_path, {"returnImmediately": True, "maxEvents": POLL_MAX, "ack": acks}
            )
            require(response.status == 200, f"a poll answered HTTP {response.status}")
            sets = expect_object(response, "poll answer").get("sets")
            if not isinstance(sets, dict):
                raise CheckFailed(f"a poll answer has no sets object: {response.text[:200]!r}")
            answered.extend((str(jti), str(token)) for jti, token in sets.items())
            acks[:] = sets
            came = {claimed(token) for _, token in answered}
            return len({jti for jti, _ in answered}) >= awaited or overtaken(orders, came)

        in_time = await until(enough)
        jwks = expect_object(await self.http.get("/ssf/jwks", auth=False), "JWKS")
        late = lateness(not in_time, awaited, "SETs")
        return SsfHeard(self.issuer, self.audience, jwks, answered, late)


def placed(uri: str, txn: str) -> str:
    """A SET as a subject's order lists it: its event URI at its feed event."""
    return f"{uri}@{txn}"


def claimed(token: str) -> str:
    """What a SET says it is (:func:`placed`), unverified: only to know when the wait may end,
    the judging verifies it ('' when it says nothing readable)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        return ""
    return placed(str(next(iter(events))), str(claims.get("txn")))


def verified(heard: SsfHeard) -> list[dict[str, Any]]:
    """Each distinct SET's claims, in the order first answered, once it verifies: signed RS256
    by a key of the JWKS (by ``kid``), ``typ`` secevent+jwt, the tenant's issuer, the receiver
    token's audience, its ``jti`` the one it was answered under, exactly one event. A SET
    answered again must be the same SET."""
    keys = jwt.PyJWKSet.from_dict(heard.jwks)
    first: dict[str, str] = {}
    found: list[dict[str, Any]] = []
    for jti, token in heard.sets:
        if jti in first:
            require(first[jti] == token, f"SET {jti} was answered again as another token")
            continue
        first[jti] = token
        try:
            header = jwt.get_unverified_header(token)
            require(
                header.get("typ") == "secevent+jwt" and header.get("alg") == "RS256",
                f"SET {jti} has header {header}, expected typ secevent+jwt, alg RS256",
            )
            claims = jwt.decode(
                token,
                keys[str(header.get("kid"))].key,
                algorithms=["RS256"],
                audience=heard.audience,
                issuer=heard.issuer,
            )
        except (jwt.PyJWTError, KeyError) as error:
            raise CheckFailed(f"SET {jti} does not verify against /ssf/jwks: {error!r}") from error
        require(claims.get("jti") == jti, f"SET {jti} says jti {claims.get('jti')!r}")
        events = claims.get("events")
        require(
            isinstance(events, dict) and len(events) == 1,
            f"SET {jti} holds events {events}, expected exactly one",
        )
        found.append(claims)
    return found


Subject = tuple[tuple[str, str], ...]
"""A ``sub_id`` made comparable: its members, sorted."""


def subject(sub_id: Any) -> Subject:
    return tuple(sorted((str(k), str(v)) for k, v in (sub_id or {}).items()))


def made_by(kind: str, attributes: Iterable[str]) -> list[tuple[str, str]]:
    """The SETs docs/ssf.md's table makes of one event of ``kind`` naming ``attributes``: event
    URI and the format of its subject each."""
    made = list(SETS.get(kind, ()))
    if kind in ALSO_PATCHED and set(attributes) - {"active"}:
        made.insert(1, (PATCH, "scim"))
    return made


def expected_sets(event: dict[str, Any], issuer: str) -> list[tuple[str, Subject]]:
    """The SETs docs/ssf.md's table makes of one feed event: event URI and subject each."""
    resource = event.get("resource") or {}
    kind, resource_id = str(event.get("type")), str(resource.get("id"))
    subjects = {
        "scim": subject({"format": "scim", "uri": f"/{resource.get('type')}s/{resource_id}"}),
        "iss_sub": subject({"format": "iss_sub", "iss": issuer, "sub": resource_id}),
    }
    return [(uri, subjects[form]) for uri, form in made_by(kind, event.get("attributes") or ())]


def wanted(events: list[dict[str, Any]], issuer: str) -> dict[Subject, list[str]]:
    """Each subject's SETs (:func:`placed`) in the order the feed's events make them."""
    order: dict[Subject, list[str]] = defaultdict(list)
    for event in events:
        for uri, said in expected_sets(event, issuer):
            order[said].append(placed(uri, str(event.get("id"))))
    return order


def judge_sets(heard: SsfHeard, events: list[dict[str, Any]]) -> None:
    """Every SET verifies and belongs (``txn``) to an event of the feed; each event made
    exactly its SETs of the table; per subject, the SETs come in the feed's order."""
    by_txn: dict[str, list[tuple[str, Subject]]] = defaultdict(list)
    observed: dict[Subject, list[str]] = defaultdict(list)
    feed = {str(e.get("id")) for e in events}
    for claims in verified(heard):
        [(uri, payload)] = claims["events"].items()
        txn = str(claims.get("txn"))
        require(txn in feed, f"SET {claims['jti']} ({uri}) names txn {txn!r}, no event of the feed")
        said = subject(claims.get("sub_id"))
        by_txn[txn].append((uri, said))
        observed[said].append(placed(uri, txn))
        check_payload(claims["jti"], uri, payload, events, txn)
    for event in events:
        made = expected_sets(event, heard.issuer)
        event_id = str(event.get("id"))
        require(
            sorted(by_txn.get(event_id, [])) == sorted(made),
            f"event {event.get('sequence')} ({event.get('type')}) made SETs "
            f"{[uri for uri, _ in by_txn.get(event_id, [])]}, docs/ssf.md's table makes "
            f"{[uri for uri, _ in made]}{also(heard.late)}",
        )
    for said, order in wanted(events, heard.issuer).items():
        require(
            observed[said] == order,
            f"subject {dict(said)}: the SETs came as {observed[said]}, "
            f"the feed orders them {order}",
        )
    require(not heard.late, heard.late)


VERSIONED = frozenset({CREATE, PATCH, ACTIVATE, DEACTIVATE})


def check_payload(jti: str, uri: str, payload: Any, events: list[dict[str, Any]], txn: str) -> None:
    """A versioned SET carries its event's resource version as the ETag says it."""
    if uri not in VERSIONED:
        return
    [event] = [e for e in events if str(e.get("id")) == txn]
    version = (event.get("resource") or {}).get("version")
    said = payload.get("version") if isinstance(payload, dict) else None
    require(
        said == f'W/"{version}"',
        f"SET {jti} ({uri}) says version {said!r}, its event is at version {version}",
    )


# --- both listeners, around one lifecycle --------------------------------------------------------


Unheard = CheckFailed | CheckSkipped
"""Why a listener heard nothing: it could not be set up (a skip when the server may not reach
the receiver, a failure otherwise)."""


async def register_webhook(
    admin: ScimHttp, receiver: HookReceiver, tenant: str, host: str, port: int
) -> str:
    """Serve the receiver and register it as a webhook of every event; its secret."""
    try:
        url = await receiver.start(host, port)
    except OSError as error:
        raise CheckFailed(f"the receiver cannot listen on {host}:{port}: {error}") from error
    response = await admin.post(f"/tenants/{tenant}/webhooks", {"url": url})
    if response.status == 400:
        skip(
            f"the server refused the receiver's URL {url} (HTTP 400 {response.text[:200]!r}): "
            "start it with SCIM_WEBHOOK_ALLOW_PRIVATE=1, or give --events-receiver-host an "
            "address it may reach"
        )
    require(response.status == 201, f"registering the webhook: HTTP {response.status}")
    secret = expect_object(response, "webhook").get("secret")
    require(isinstance(secret, str), "the webhook's 201 shows no secret")
    return str(secret)


async def attempt(opening: Awaitable[T]) -> T | Unheard:
    """What ``opening`` gives, or why it could not."""
    try:
        return await opening
    except (CheckFailed, CheckSkipped) as why:
        return why


@dataclass
class Listeners:
    """The suite's webhook receiver and SSF stream on one fresh tenant."""

    receiver: HookReceiver
    webhook: str | Unheard
    stream: SsfStream | Unheard

    @classmethod
    async def open(cls, admin: ScimHttp, root: str, tenant: str, host: str, port: int) -> Listeners:
        receiver = HookReceiver()
        webhook = await attempt(register_webhook(admin, receiver, tenant, host, port))
        return cls(receiver, webhook, await attempt(SsfStream.open(admin, root, tenant)))

    async def hear(
        self, made: Sequence[Made], events: list[dict[str, Any]]
    ) -> tuple[WebhookHeard | Unheard, SsfHeard | Unheard]:
        """What each listener heard of the events the IdP's requests ``made``, once the feed
        holds ``events`` (whose order per resource tells when a loss already shows)."""
        webhook: WebhookHeard | Unheard
        if isinstance(self.webhook, str):
            orders = [[str(e.get("id")) for e in mine] for mine in per_resource(events).values()]
            webhook = WebhookHeard(self.webhook, *await self.receiver.wait_for(len(made), orders))
        else:
            webhook = self.webhook
        if not isinstance(self.stream, SsfStream):
            return webhook, self.stream
        awaited = sum(len(made_by(m.type, m.attributes)) for m in made)
        orders = list(wanted(events, self.stream.issuer).values())
        return webhook, await attempt(self.stream.drain(awaited, orders))

    async def close(self) -> None:
        await self.receiver.stop()
