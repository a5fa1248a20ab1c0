"""``scim-server serve``: start the store if needed, run the application, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

from aiohttp import web

from scim_server.app import create_app
from scim_server.config import Settings
from scim_server.embedded import EmbeddedMongo
from scim_server.state import SERVICES

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    embedded = None
    store = "MongoDB at MONGODB_URI"
    if not settings.mongodb_uri:
        embedded = EmbeddedMongo(settings.data_dir)
        settings = replace(settings, mongodb_uri=embedded.start())
        store = f"embedded SecantusDB, data in {settings.data_dir}"
    try:
        asyncio.run(_run(settings, store))
    finally:
        if embedded is not None:
            embedded.stop()


async def _run(settings: Settings, store: str) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    _announce(settings, store, app[SERVICES].admin_token)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    # cleanup() stops accepting, lets in-flight requests finish, then closes the database.
    await runner.cleanup()


def _announce(settings: Settings, store: str, admin_token: str) -> None:
    root = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(
        f"SCIM server listening on {root} ({store})\n"
        f"Create a tenant and get its SCIM bearer token:\n"
        f"  curl -s -X POST {root}/admin/tenants -H 'Authorization: Bearer {admin_token}' "
        f"-H 'Content-Type: application/json' -d '{{\"name\": \"acme\"}}'\n"
        f"or: SCIM_ADMIN_TOKEN={admin_token} scim-server tenants create acme --url {root}",
        flush=True,
    )
