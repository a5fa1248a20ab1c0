"""The aiohttp application: middlewares, routes, and the database bound to its event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from scim_server.config import Settings
from scim_server.core.cursors import CursorCodec
from scim_server.core.custom import CustomResources
from scim_server.core.delivery import DeliveryEngine, RetryPolicy
from scim_server.core.instances import InstanceGroups
from scim_server.core.journal import ProvisioningJournal
from scim_server.core.provisioning import Provisioning
from scim_server.core.rate_limits import RateLimits
from scim_server.core.ssf import push
from scim_server.core.ssf.keys import ServerKey
from scim_server.core.ssf.transmitter import Transmitter
from scim_server.core.sso.instances import CrossInstanceSignIn
from scim_server.core.sso.service import SingleSignOn
from scim_server.core.sso.sessions import SessionCodec
from scim_server.core.tenancy import Tenancy
from scim_server.core.tokens import TokenAuthority
from scim_server.core.webhooks import CHANNEL, WebhookChannel, Webhooks
from scim_server.storage.database import Database
from scim_server.storage.delivery import DeliveryRepository
from scim_server.storage.rate_limits import RateLimitRepository
from scim_server.storage.ssf import SsfRepository
from scim_server.storage.sso import SsoRepository
from scim_server.storage.tenants import TenantRepository
from scim_server.web.access_log import request_context
from scim_server.web.idp_http import IdpClient
from scim_server.web.journaling import journal_bodies, journal_requests
from scim_server.web.middleware import PARSER_LIMITS, body_limit, scim_errors
from scim_server.web.outbound import HttpSender
from scim_server.web.request_metrics import count_requests
from scim_server.web.routes import BULK, add_routes
from scim_server.web.state import SERVICES, Services

log = logging.getLogger(__name__)

JOURNAL_FINAL_FLUSH_SECONDS = 1.0
"""How long shutdown waits for the journal's last entries: a database that is gone must not
hold it up for a server-selection timeout per batch."""


def create_app(settings: Settings) -> web.Application:
    """Build the application; ``settings.mongodb_uri`` must point at a running server."""
    if not settings.mongodb_uri:
        raise ValueError("create_app needs a MongoDB URI; `scim-server serve` starts one")
    app = web.Application(
        middlewares=[
            # Outermost: the request id on every response and log line; the access log line.
            request_context(access_log=settings.access_log),
            count_requests,  # then the final status and whole duration, for /metrics
            journal_requests,  # it sees the final status, errors included
            scim_errors,
            body_limit(settings.max_body_bytes, {BULK: settings.bulk_max_payload_bytes}),
            journal_bodies,  # innermost: it sees the request the handler read the body of
        ],
        # The largest of the limits; body_limit holds each route to its own.
        client_max_size=max(settings.max_body_bytes, settings.bulk_max_payload_bytes),
        handler_args=PARSER_LIMITS,
    )
    add_routes(app, metrics_on_main_port=settings.metrics_bind is None)
    app.cleanup_ctx.append(_services(settings))
    return app


def _services(settings: Settings):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        # The async client belongs to the loop it was created on: create it here, in the app's loop.
        assert settings.mongodb_uri is not None
        database = Database.connect(settings.mongodb_uri, settings.database)
        await database.ensure_indexes(settings.journal_ttl_seconds)
        await database.learn_store()
        tenants = TenantRepository(database)
        secret = (await database.server_secret("token-signing-secret", settings.token_secret)).value
        admin_token = await database.server_secret("admin-token", settings.admin_token)
        journal = ProvisioningJournal(database, enabled=settings.journal_enabled)
        provisioning = Provisioning(
            database,
            max_results=settings.max_results,
            cursors=CursorCodec(secret, settings.cursor_timeout_seconds),
            patch_max_operations=settings.patch_max_operations,
            one_team_server_wide=settings.one_team_server_wide,
        )
        await provisioning.instance_groups.ensure_indexes()
        sso_repository = SsoRepository(database)
        await sso_repository.ensure_indexes()
        sso_secret = (await database.server_secret("sso-session-secret", None)).value
        tokens = TokenAuthority(secret, tenants)
        rate_limit_repository = RateLimitRepository(database)
        await rate_limit_repository.ensure_indexes()
        rate_limits = RateLimits(rate_limit_repository, settings.rate_limit_per_second)
        sso = SingleSignOn(sso_repository, SessionCodec(sso_secret), provisioning, IdpClient())
        instances = InstanceGroups(
            provisioning.instance_groups, tenants, provisioning.directory, provisioning.one_team
        )
        ssf_repository = SsfRepository(database)
        await ssf_repository.ensure_indexes()
        delivery = DeliveryRepository(database)
        await delivery.ensure_indexes(settings.webhook_log_ttl_seconds)
        sender = HttpSender(allow_private=settings.webhook_allow_private)
        ssf_key = ServerKey(database)
        engine = DeliveryEngine(
            delivery,
            provisioning.relay,
            {CHANNEL: WebhookChannel(), push.CHANNEL: push.PushChannel(ssf_repository, ssf_key)},
            sender,
            RetryPolicy(
                base_seconds=settings.webhook_retry_base_seconds,
                cap_seconds=settings.webhook_retry_cap_seconds,
                horizon_seconds=settings.webhook_retry_horizon_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
            ),
        )
        app[SERVICES] = Services(
            settings=settings,
            database=database,
            provisioning=provisioning,
            tenants=tenants,
            tenancy=Tenancy(
                tenants,
                tokens,
                provisioning,
                journal,
                sso_repository,
                rate_limits,
                ssf_repository,
                delivery,
            ),
            tokens=tokens,
            admin_token=admin_token.value,
            admin_token_generated=admin_token.generated,
            journal=journal,
            sso=sso,
            rate_limits=rate_limits,
            instances=instances,
            cross_instance=CrossInstanceSignIn(sso, instances),
            transmitter=Transmitter(
                ssf_key,
                ssf_repository,
                provisioning.relay,
                delivery,
                engine,
                allow_private=settings.webhook_allow_private,
            ),
            webhooks=Webhooks(
                delivery,
                engine,
                provisioning.relay,
                allow_private=settings.webhook_allow_private,
            ),
            custom=CustomResources(tenants, provisioning),
        )
        await journal.start()
        await provisioning.relay.start()
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()
            await sender.close()
            await provisioning.relay.stop()
            try:  # writes what is still queued, while the database is open
                await asyncio.wait_for(journal.stop(), JOURNAL_FINAL_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("provisioning journal: entries left unwritten at shutdown")
            await database.close()

    return context
