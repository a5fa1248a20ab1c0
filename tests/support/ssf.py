"""An SSF receiver as the tests drive one: its token, its streams, its polls, and each SET
verified with pyjwt against the JWKS the server publishes."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from aiohttp.test_utils import TestClient

from tests.support.scim import ADMIN

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
PROV = "urn:ietf:params:SCIM:event:prov:"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
ROUNDS = 400
"""How many polls a receiver makes for SETs it expects before it fails (0.025 s apart)."""


async def receiver_token(client: TestClient[Any, Any], tenant: str) -> dict[str, Any]:
    response = await client.post(f"/admin/tenants/{tenant}/ssf/receivers", headers=ADMIN, json={})
    assert response.status == 201, await response.text()
    return dict(await response.json())


class Receiver:
    """A receiver of one tenant: bearer token, stream management, polls, verified SETs."""

    def __init__(self, client: TestClient[Any, Any], tenant: str, token: str) -> None:
        self.client = client
        self.tenant = tenant
        self.headers = {"Authorization": f"Bearer {token}"}
        self.streams = f"/ssf/{tenant}/streams"

    @classmethod
    async def of(cls, client: TestClient[Any, Any], tenant: str) -> Receiver:
        return cls(client, tenant, (await receiver_token(client, tenant))["token"])

    async def create_stream(self, *events: str, **extra: Any) -> dict[str, Any]:
        body = {"delivery": {"method": POLL}, "events_requested": list(events), **extra}
        response = await self.client.post(self.streams, json=body, headers=self.headers)
        assert response.status == 201, await response.text()
        return dict(await response.json())

    async def poll(self, stream: dict[str, Any], **body: Any) -> dict[str, Any]:
        """One RFC 8936 poll (returning immediately unless told otherwise)."""
        path = stream["delivery"]["endpoint_url"].split("://", 1)[1].partition("/")[2]
        response = await self.client.post(
            f"/{path}", json={"returnImmediately": True, **body}, headers=self.headers
        )
        assert response.status == 200, await response.text()
        return dict(await response.json())

    async def verified(self, stream: dict[str, Any], sets: dict[str, str]) -> dict[str, Any]:
        """Each SET's claims, checked: signed by a key of the published JWKS (by ``kid``),
        ``typ`` secevent+jwt, issued by the stream's ``iss`` for its ``aud``, under its jti."""
        keys = jwt.PyJWKSet.from_dict(await (await self.client.get("/ssf/jwks")).json())
        found = {}
        for set_id, token in sets.items():
            header = jwt.get_unverified_header(token)
            assert header["typ"] == "secevent+jwt" and header["alg"] == "RS256"
            claims = jwt.decode(
                token,
                keys[header["kid"]].key,
                algorithms=["RS256"],
                audience=stream["aud"],
                issuer=stream["iss"],
            )
            assert claims["jti"] == set_id
            assert len(claims["events"]) == 1
            found[set_id] = claims
        return found

    async def awaited(self, stream: dict[str, Any], count: int) -> dict[str, Any]:
        """The stream's unacknowledged SETs, verified, once there are at least ``count``."""
        for _ in range(ROUNDS):
            answer = await self.poll(stream, maxEvents=1000)
            if len(answer["sets"]) >= count:
                return await self.verified(stream, answer["sets"])
            await asyncio.sleep(0.025)
        raise AssertionError(f"{count} SETs expected, {len(answer['sets'])} came")


def event_uri(claims: dict[str, Any]) -> str:
    (uri,) = claims["events"]
    return str(uri)


def in_order(sets: dict[str, Any]) -> list[dict[str, Any]]:
    """The SETs as a poll answers them: oldest event first."""
    return list(sets.values())
