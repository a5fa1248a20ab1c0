"""The Shared Signals transmitter's HTTP face: metadata, JWKS, stream management, poll.

Each tenant is its own transmitter, of issuer ``{public root}/ssf/{tenant}``; its metadata is
at the path-suffix well-known URL of OpenID SSF 1.0 §7.2,
``/.well-known/ssf-configuration/ssf/{tenant}``. The key is the server's, published at
``/ssf/jwks``. Stream management (SSF §8.1) and the poll endpoint (RFC 8936) need a receiver
token of the tenant (``Authorization: Bearer ssf_…``, issued through the admin API); errors
are RFC 7644 §3.12 JSON bodies, as everywhere on the server.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from scim_server import metrics
from scim_server.core.ssf.sets import EVENTS_SUPPORTED, events_delivered
from scim_server.core.ssf.transmitter import POLL, PUSH, poll_request
from scim_server.storage.ssf import StreamRecord
from scim_server.web.responses import json_response, public_root, read_object
from scim_server.web.state import services

SSF: Final = "/ssf/{tenant}"
STREAMS: Final = f"{SSF}/streams"
STATUS: Final = f"{STREAMS}/status"
VERIFY: Final = f"{STREAMS}/verify"
ADD_SUBJECT: Final = f"{STREAMS}/subjects:add"
REMOVE_SUBJECT: Final = f"{STREAMS}/subjects:remove"
POLL_PATH: Final = f"{SSF}/poll/{{stream_id}}"
JWKS: Final = "/ssf/jwks"
METADATA: Final = "/.well-known/ssf-configuration/ssf/{tenant}"
SPEC_VERSION: Final = "1_0"
BEARER: Final = "urn:ietf:rfc:6750"


def _root(request: web.Request) -> str:
    return public_root(request, services(request).settings.public_url)


def issuer(request: web.Request, tenant: str) -> str:
    return f"{_root(request)}/ssf/{tenant}"


async def _authenticated(request: web.Request) -> tuple[str, str]:
    """The tenant of the URL and the receiver token id, once the request's token is proven to
    be a live receiver token of that tenant (401 otherwise)."""
    tenant = request.match_info["tenant"]
    receiver = await services(request).transmitter.authenticate(
        tenant, request.headers.get("Authorization")
    )
    metrics.attribute_to_tenant(tenant)
    return tenant, receiver


async def _receiver(request: web.Request) -> str:
    """The tenant of the URL, once the request's receiver token is proven to be its (401)."""
    return (await _authenticated(request))[0]


def stream_view(request: web.Request, stream: StreamRecord) -> dict[str, Any]:
    """SSF §8.1.1: the stream's configuration; the push ``authorization_header`` is a secret
    the receiver gave, never shown again."""
    configuration = stream.configuration
    delivery: dict[str, Any] = {"method": configuration.delivery.method}
    if configuration.delivery.method == POLL:
        delivery["endpoint_url"] = f"{issuer(request, stream.tenant)}/poll/{stream.id}"
    else:
        delivery["endpoint_url"] = configuration.delivery.endpoint_url
    view: dict[str, Any] = {
        "stream_id": stream.id,
        "iss": issuer(request, stream.tenant),
        "aud": stream.audience,
        "events_supported": list(EVENTS_SUPPORTED),
        "events_requested": list(configuration.events_requested),
        "events_delivered": list(events_delivered(configuration.events_requested)),
        "delivery": delivery,
    }
    if configuration.description is not None:
        view["description"] = configuration.description
    return view


def status_view(stream: StreamRecord) -> dict[str, Any]:
    view: dict[str, Any] = {"stream_id": stream.id, "status": stream.status}
    if stream.reason is not None:
        view["reason"] = stream.reason
    return view


async def metadata(request: web.Request) -> web.Response:
    """SSF §7.1: the tenant's transmitter configuration metadata (public, like a JWKS)."""
    tenant = (await services(request).tenancy.require(request.match_info["tenant"])).name
    own = issuer(request, tenant)
    return json_response(
        {
            "spec_version": SPEC_VERSION,
            "issuer": own,
            "jwks_uri": f"{_root(request)}{JWKS}",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": f"{own}/streams",
            "status_endpoint": f"{own}/streams/status",
            "verification_endpoint": f"{own}/streams/verify",
            "add_subject_endpoint": f"{own}/streams/subjects:add",
            "remove_subject_endpoint": f"{own}/streams/subjects:remove",
            "authorization_schemes": [{"spec_urn": BEARER}],
            "default_subjects": "ALL",
        }
    )


async def jwks(request: web.Request) -> web.Response:
    """The public key every tenant's SETs are signed with."""
    key = await services(request).transmitter.signing_key()
    return json_response(key.jwks())


async def create_stream(request: web.Request) -> web.Response:
    tenant, receiver = await _authenticated(request)
    stream = await services(request).transmitter.create_stream(
        tenant, receiver, issuer(request, tenant), await read_object(request)
    )
    return json_response(stream_view(request, stream), status=201)


async def read_streams(request: web.Request) -> web.Response:
    """One stream (``?stream_id=``), or all the tenant's as a list (SSF §8.1.1.2)."""
    tenant = await _receiver(request)
    transmitter = services(request).transmitter
    if "stream_id" in request.query:
        stream = await transmitter.stream(tenant, request.query["stream_id"])
        return json_response(stream_view(request, stream))
    return json_response([stream_view(request, s) for s in await transmitter.streams(tenant)])


async def update_stream(request: web.Request) -> web.Response:
    tenant = await _receiver(request)
    stream = await services(request).transmitter.configure(
        tenant, await read_object(request), replace_all=request.method == "PUT"
    )
    return json_response(stream_view(request, stream))


async def delete_stream(request: web.Request) -> web.Response:
    tenant = await _receiver(request)
    await services(request).transmitter.delete_stream(tenant, request.query.get("stream_id"))
    return web.Response(status=204)


async def read_status(request: web.Request) -> web.Response:
    tenant = await _receiver(request)
    stream = await services(request).transmitter.stream(tenant, request.query.get("stream_id"))
    return json_response(status_view(stream))


async def update_status(request: web.Request) -> web.Response:
    tenant = await _receiver(request)
    stream = await services(request).transmitter.set_status(tenant, await read_object(request))
    return json_response(status_view(stream))


async def verify(request: web.Request) -> web.Response:
    tenant = await _receiver(request)
    await services(request).transmitter.verify(tenant, await read_object(request))
    return web.Response(status=204)


async def add_subject(request: web.Request) -> web.Response:
    """SSF §8.1.3.2: ``{"stream_id", "subject"}`` → 200."""
    tenant = await _receiver(request)
    await services(request).transmitter.change_subject(
        tenant, issuer(request, tenant), await read_object(request), add=True
    )
    return web.Response(status=200)


async def remove_subject(request: web.Request) -> web.Response:
    """SSF §8.1.3.3: ``{"stream_id", "subject"}`` → 204."""
    tenant = await _receiver(request)
    await services(request).transmitter.change_subject(
        tenant, issuer(request, tenant), await read_object(request), add=False
    )
    return web.Response(status=204)


async def poll(request: web.Request) -> web.Response:
    """RFC 8936 §2.4: ``{"sets": {jti: SET}, "moreAvailable": bool}``."""
    tenant = await _receiver(request)
    body = await read_object(request) if request.can_read_body else {}
    answer = await services(request).transmitter.poll(
        tenant, request.match_info["stream_id"], issuer(request, tenant), poll_request(body)
    )
    return json_response({"sets": answer.sets, "moreAvailable": answer.more_available})


def add_ssf_routes(router: web.UrlDispatcher) -> None:
    router.add_get(METADATA, metadata)
    router.add_get(JWKS, jwks)
    router.add_post(STREAMS, create_stream)
    router.add_get(STREAMS, read_streams)
    router.add_patch(STREAMS, update_stream)
    router.add_put(STREAMS, update_stream)
    router.add_delete(STREAMS, delete_stream)
    router.add_get(STATUS, read_status)
    router.add_post(STATUS, update_status)
    router.add_post(VERIFY, verify)
    router.add_post(ADD_SUBJECT, add_subject)
    router.add_post(REMOVE_SUBJECT, remove_subject)
    router.add_post(POLL_PATH, poll)
