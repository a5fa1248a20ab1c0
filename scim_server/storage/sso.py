"""What single sign-on keeps in MongoDB.

- The tenant's SSO settings, inside its tenant document.
- ``saml_requests``: the sign-ins this SP started and not yet completed: SAML AuthnRequest IDs
  (a response's InResponseTo must take one out) and OIDC states (with the nonce, the PKCE
  verifier and the issuer the browser was sent to). One use each; they expire by a TTL index.
- ``saml_assertions``: the assertion IDs (and OIDC authorization codes, by digest) already
  consumed, kept until they would have expired anyway. Insert-if-absent on a unique index
  makes replay detection atomic across worker processes and restarts.
- ``sso_links``: which tenant user an (IdP issuer, subject) pair signs in as.
- ``jit_group_claims``: which sign-in is creating a group just in time, by lowercased
  displayName (a unique index), so concurrent first sign-ins into a new group create it once.
  A claim lasts while its group is created; one older than ``GROUP_CLAIM_SECONDS`` is stale
  (its creator died) and may be taken over, and a TTL index removes it.
- ``password_failures``: recent failed password sign-ins per user, expiring by TTL, which
  throttle guessing.
- ``password_resets``: the one-time password reset links an admin issued, each under the
  SHA-256 digest of its token (the token itself is only in the link), with its user and
  expiry; one use each (the delete that takes it is the use), one at a time per user (a new
  one replaces the last), removed by a TTL index.
- ``sso_log``: every sign-in attempt with its precise outcome, for the admin; the browser
  only ever sees a generic page.
- ``sso_sessions``: the signed-in browsers (``storage/sessions.py``, reached as ``sessions``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, Document, translate_driver_errors
from scim_server.storage.sessions import SessionRepository

SSO_LOG_TTL_SECONDS = 30 * 24 * 3600
GROUP_CLAIM_SECONDS = 30
REVISION = "sso_revision"

INDEXES: dict[str, list[IndexModel]] = {
    "saml_requests": [
        IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ],
    "saml_assertions": [
        IndexModel(
            [("tenant", ASCENDING), ("issuer", ASCENDING), ("assertion", ASCENDING)],
            unique=True,
            name="tenant_issuer_assertion_unique",
        ),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ],
    "sso_links": [
        IndexModel(
            [("tenant", ASCENDING), ("issuer", ASCENDING), ("subject", ASCENDING)],
            unique=True,
            name="tenant_issuer_subject_unique",
        ),
        IndexModel([("tenant", ASCENDING), ("user", ASCENDING)], name="tenant_user"),
    ],
    "jit_group_claims": [
        IndexModel(
            [("tenant", ASCENDING), ("name", ASCENDING)],
            unique=True,
            name="tenant_name_unique",
        ),
        IndexModel([("at", ASCENDING)], expireAfterSeconds=GROUP_CLAIM_SECONDS, name="at_ttl"),
    ],
    "password_failures": [
        IndexModel([("tenant", ASCENDING), ("user", ASCENDING)], name="tenant_user"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ],
    "password_resets": [
        IndexModel([("tenant", ASCENDING), ("user", ASCENDING)], name="tenant_user"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ],
    "sso_log": [
        IndexModel([("tenant", ASCENDING), ("at", DESCENDING)], name="tenant_at"),
        IndexModel([("at", ASCENDING)], expireAfterSeconds=SSO_LOG_TTL_SECONDS, name="at_ttl"),
    ],
}


RequestProtocol = Literal["saml", "oidc", "wsfed"]
"""What a pending request was issued for: only an answer of the same protocol may take it."""


@dataclass(frozen=True)
class PendingRequest:
    """A sign-in this SP started (a SAML AuthnRequest, an OIDC authorization request): what
    its answer may do. ``id`` is the AuthnRequest ID or the OIDC state."""

    id: str
    relay_state: str | None
    test: bool
    browser: str | None
    """The digest of the binding key of the browser that started it (see ``sso.sessions``)."""
    protocol: RequestProtocol = "saml"
    nonce: str | None = None
    verifier: str | None = None
    """The PKCE code verifier, sent with the code to the token endpoint."""
    issuer: str | None = None
    """The OIDC issuer the browser was sent to: only its answer is accepted (mix-up)."""


@dataclass(frozen=True)
class StoredReset:
    """A password reset link taken out of the store: whom it is for, and until when."""

    user: str
    expires: datetime


@translate_driver_errors
class SsoRepository:
    def __init__(self, database: Database) -> None:
        self.tenants = database.tenants
        self.requests = database["saml_requests"]
        self.assertions = database["saml_assertions"]
        self.links = database["sso_links"]
        self.log = database["sso_log"]
        self.password_failures = database["password_failures"]
        self.password_resets = database["password_resets"]
        self.sessions = SessionRepository(database)
        self.group_claims = database["jit_group_claims"]

    async def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            await self.links.database[name].create_indexes(indexes)
        await self.sessions.ensure_indexes()

    # -- settings ------------------------------------------------------------------

    async def settings_document(self, tenant: str) -> tuple[Document, int | None] | None:
        """The tenant's stored SSO settings and their revision; None when there is no tenant.

        The settings are a sub-document of the tenant whose fields the core defines
        (``scim_server.core.sso.settings``); here they are only read and written whole.
        """
        document = await self.tenants.find_one({"_id": tenant}, {"sso": 1, REVISION: 1})
        if document is None:
            return None
        return dict(document.get("sso") or {}), document.get(REVISION)

    async def replace_settings(self, tenant: str, revision: int | None, settings: Document) -> bool:
        """Store ``settings`` if the revision is still ``revision``; False when it moved on."""
        result = await self.tenants.update_one(
            {"_id": tenant, REVISION: revision},
            {"$set": {"sso": settings}, "$inc": {REVISION: 1}},
        )
        return result.modified_count == 1

    # -- requests and replay -------------------------------------------------------

    async def remember_request(
        self, tenant: str, request: PendingRequest, expires: datetime
    ) -> None:
        await self.requests.insert_one(
            {
                "_id": request.id,
                "tenant": tenant,
                "relay_state": request.relay_state,
                "test": request.test,
                "browser": request.browser,
                "protocol": request.protocol,
                "nonce": request.nonce,
                "verifier": request.verifier,
                "issuer": request.issuer,
                "expires": expires,
            }
        )

    async def take_request(
        self,
        tenant: str,
        request_id: str,
        now: datetime,
        protocol: RequestProtocol = "saml",
    ) -> PendingRequest | None:
        """Consume an outstanding request of ``protocol``: of concurrent takers only the one
        whose delete succeeds gets it, so it is one use. TTL deletion runs about once a minute,
        so expiry is also checked here.
        """
        # A request stored before requests had a protocol is a SAML one (null matches absent).
        kind = {"$in": ["saml", None]} if protocol == "saml" else protocol
        query = {"tenant": tenant, "_id": request_id, "protocol": kind}
        document = await self.requests.find_one(query)
        if document is None or (await self.requests.delete_one(query)).deleted_count != 1:
            return None
        if document["expires"] <= now:
            return None
        return PendingRequest(
            id=request_id,
            relay_state=document.get("relay_state"),
            test=bool(document.get("test")),
            browser=document.get("browser"),
            protocol=protocol,
            nonce=document.get("nonce"),
            verifier=document.get("verifier"),
            issuer=document.get("issuer"),
        )

    async def consume_assertion(
        self, tenant: str, issuer: str, assertion_id: str, expires: datetime
    ) -> bool:
        """Record an assertion as used; False when it already was (a replay)."""
        try:
            await self.assertions.insert_one(
                {"tenant": tenant, "issuer": issuer, "assertion": assertion_id, "expires": expires}
            )
        except DuplicateKeyError:
            return False
        return True

    # -- links ----------------------------------------------------------------------

    async def linked_user(self, tenant: str, issuer: str, subject: str) -> str | None:
        document = await self.links.find_one(
            {"tenant": tenant, "issuer": issuer, "subject": subject}
        )
        return None if document is None else str(document["user"])

    async def link(self, tenant: str, issuer: str, subject: str, user: str, now: datetime) -> bool:
        """Bind (issuer, subject) to a user; False when another sign-in bound it first."""
        try:
            await self.links.insert_one(
                {
                    "tenant": tenant,
                    "issuer": issuer,
                    "subject": subject,
                    "user": user,
                    "created": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def unlink(self, tenant: str, issuer: str, subject: str) -> None:
        await self.links.delete_one({"tenant": tenant, "issuer": issuer, "subject": subject})

    async def issuers_of(self, tenant: str, user: str) -> list[str]:
        """The IdPs a user is already linked to (it may sign in from none other)."""
        links = await self.links.find({"tenant": tenant, "user": user}, {"issuer": 1}).to_list(None)
        return [str(link["issuer"]) for link in links]

    # -- groups created just in time ----------------------------------------------------

    async def claim_group_name(self, tenant: str, name: str, now: datetime) -> str | None:
        """Claim the creation of the group ``name`` (lowercased by the caller): the claim's
        token, or None when another sign-in holds a claim younger than
        ``GROUP_CLAIM_SECONDS``."""
        token = secrets.token_hex(8)
        try:
            await self.group_claims.insert_one(
                {"tenant": tenant, "name": name, "at": now, "token": token}
            )
        except DuplicateKeyError:
            stale = now - timedelta(seconds=GROUP_CLAIM_SECONDS)
            taken = await self.group_claims.update_one(
                {"tenant": tenant, "name": name, "at": {"$lt": stale}},
                {"$set": {"at": now, "token": token}},
            )
            return token if taken.modified_count == 1 else None
        return token

    async def release_group_name(self, tenant: str, name: str, token: str) -> None:
        """Give a claim up, unless it was taken over meanwhile (then it is no longer ours)."""
        await self.group_claims.delete_one({"tenant": tenant, "name": name, "token": token})

    # -- password throttling ------------------------------------------------------------

    async def password_failures_since(self, tenant: str, user: str, since: datetime) -> int:
        return await self.password_failures.count_documents(
            {"tenant": tenant, "user": user, "at": {"$gt": since}}
        )

    async def record_password_failure(
        self, tenant: str, user: str, at: datetime, expires: datetime
    ) -> None:
        await self.password_failures.insert_one(
            {"tenant": tenant, "user": user, "at": at, "expires": expires}
        )

    async def clear_password_failures(self, tenant: str, user: str) -> None:
        await self.password_failures.delete_many({"tenant": tenant, "user": user})

    # -- password reset links -----------------------------------------------------------

    async def remember_reset(self, tenant: str, digest: str, user: str, expires: datetime) -> None:
        """Store a reset link under the digest of its token, for ``user``, until ``expires``,
        in place of any earlier link of the user's: only the newest one works."""
        await self.password_resets.delete_many({"tenant": tenant, "user": user})
        await self.password_resets.insert_one(
            {"_id": digest, "tenant": tenant, "user": user, "expires": expires}
        )

    async def take_reset(self, tenant: str, digest: str) -> StoredReset | None:
        """Consume the reset link of that digest: None when there is no such link, or a
        concurrent taker got it (only the one whose delete succeeds does, so it is one use).
        TTL deletion runs about once a minute, so the caller checks ``expires`` too."""
        query = {"_id": digest, "tenant": tenant}
        document = await self.password_resets.find_one(query)
        if document is None or (await self.password_resets.delete_one(query)).deleted_count != 1:
            return None
        return StoredReset(user=str(document["user"]), expires=document["expires"])

    # -- log ------------------------------------------------------------------------

    async def record(self, tenant: str, entry: dict[str, Any]) -> None:
        await self.log.insert_one({"tenant": tenant, **entry})

    async def entries(self, tenant: str, limit: int) -> list[Document]:
        cursor = self.log.find({"tenant": tenant}, {"_id": 0, "tenant": 0})
        return await cursor.sort("at", DESCENDING).limit(limit).to_list(None)

    async def delete_tenant(self, tenant: str) -> None:
        for collection in (
            self.requests,
            self.assertions,
            self.links,
            self.log,
            self.password_failures,
            self.password_resets,
            self.group_claims,
        ):
            await collection.delete_many({"tenant": tenant})
        await self.sessions.delete_tenant(tenant)
