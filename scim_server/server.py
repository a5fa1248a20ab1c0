"""``scim-server serve``: start the store if needed, run N workers on one port, stop cleanly.

Workers share the listening port through ``SO_REUSEPORT`` and share nothing
else: every piece of state lives in MongoDB (in-process caches are only caches),
so any worker can answer any request.

The process that starts the embedded store also supervises it: a store that dies
is restarted on the same port and data directory while the workers keep running
(they answer 503 meanwhile); a store that cannot be restarted stops the server
with a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.synchronize import Event

from aiohttp import web

from scim_server import metrics
from scim_server.config import Settings
from scim_server.embedded import EmbeddedMongo, EmbeddedStoreError, StoreSupervisor
from scim_server.logs import configure_logging
from scim_server.tracing import start_tracing, stop_tracing, trace_ids
from scim_server.web.app import create_app
from scim_server.web.metrics import metrics_application
from scim_server.web.state import SERVICES

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 30.0
ANNOUNCE_POLL_SECONDS = 0.2
"""How often the supervisor checks that the first worker, not yet announced, is still alive."""


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT; raise ``EmbeddedStoreError`` if the store is lost.

    Raises ``TracingUnavailable`` before anything starts when tracing is asked for without the
    ``tracing`` extra. Every process of this run (this one, which supervises the store, and
    each worker) counts its metrics in one private directory, read whole by every scrape; it
    goes at the end.
    """
    _configure_process(settings)
    with metrics.shared_across_processes():
        _serve_on_store(settings)


def _serve_on_store(settings: Settings) -> None:
    if settings.mongodb_uri:
        _serve(settings, "MongoDB at MONGODB_URI")  # the operator's: never supervised here
        return
    store = EmbeddedMongo(settings.data_dir)
    settings = replace(settings, mongodb_uri=store.start())
    supervisor = StoreSupervisor(store, on_give_up=_stop_serving, restarts=settings.store_restarts)
    supervisor.start()
    try:
        # Once shutting down, a store that is gone stays gone: nothing waits for a restart.
        _serve(
            settings,
            f"embedded SecantusDB, data in {settings.data_dir}",
            supervisor.stop_restarting,
        )
    finally:
        supervisor.stop()
    if supervisor.gave_up:
        raise EmbeddedStoreError("the embedded store died and could not be restarted")


def _serve(settings: Settings, store: str, on_stop: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, calling ``on_stop`` as soon as one arrives."""
    if settings.workers <= 1:
        asyncio.run(_run(settings, store, announce=True, reuse_port=False, on_stop=on_stop))
    else:
        _supervise(settings, store, on_stop)


def _stop_serving() -> None:
    """Shut this server down as SIGTERM does: in-flight requests drain, workers stop."""
    os.kill(os.getpid(), signal.SIGTERM)


def _configure_process(settings: Settings) -> None:
    """What each process (the server's, and each worker's) sets up once: its tracing, its log
    (whose lines then carry the ids of the trace they belong to)."""
    if settings.tracing:
        start_tracing()
    configure_logging(
        settings.log_level, settings.log_format, fields=[trace_ids] if settings.tracing else []
    )


def _worker(settings: Settings, store: str, announced: Event | None) -> None:
    """One worker; the one given ``announced`` announces the server, then sets it."""
    _configure_process(settings)
    on_announced = announced.set if announced is not None else None
    asyncio.run(
        _run(
            settings,
            store,
            announce=announced is not None,
            reuse_port=True,
            on_announced=on_announced,
        )
    )


def _supervise(settings: Settings, store: str, on_stop: Callable[[], None] | None) -> None:
    """Run the workers; SIGTERM or SIGINT is passed on to each, which drain and exit.

    The first worker starts alone and announces before the others start: it alone settles the
    server's secrets, so it alone can have generated the admin token that the announcement
    shows on that run only.
    """
    context = multiprocessing.get_context("spawn")
    announced = context.Event()
    workers = [
        context.Process(
            target=_worker,
            args=(settings, store, announced if index == 0 else None),
            name=f"worker-{index}",
        )
        for index in range(settings.workers)
    ]

    stopping: list[int] = []  # the signals received: once one is, no further worker starts

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        if on_stop is not None:
            on_stop()
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()

    # Installed first: a signal from the first moment on stops the workers and the store.
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        first, *others = workers
        first.start()
        while first.is_alive() and not announced.wait(ANNOUNCE_POLL_SECONDS):
            pass
        for worker in others:
            if stopping or not first.is_alive():
                break
            worker.start()
            if stopping:  # the signal came while it was starting: stop() could not see it yet
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:  # started
                worker.join()
                metrics.process_exited(worker.pid)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("all %d workers stopped", len(workers))


async def _run(
    settings: Settings,
    store: str,
    *,
    announce: bool,
    reuse_port: bool,
    on_announced: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> None:
    # Installed first: a signal from the first moment on (even right after the announcement,
    # or while starting) drains and stops cleanly rather than killing the process outright.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    app = create_app(settings)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port)
    await site.start()
    metrics_runner = None
    if settings.metrics_bind is not None:  # every worker listens: any of them answers a scrape
        metrics_runner = web.AppRunner(metrics_application(), handle_signals=False, access_log=None)
        await metrics_runner.setup()
        host, port = settings.metrics_address
        await web.TCPSite(metrics_runner, host, port, reuse_port=reuse_port).start()
    if announce:
        services = app[SERVICES]
        print(
            _announcement(settings, store, services.admin_token, services.admin_token_generated),
            flush=True,
        )
        log.info("listening on %s", _root(settings))  # the same news, as a log line
        if on_announced is not None:
            on_announced()
    await stop.wait()
    if on_stop is not None:
        on_stop()
    log.info("shutting down: finishing in-flight requests")
    # cleanup() stops accepting, lets in-flight requests finish, then closes the database.
    await runner.cleanup()
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    if settings.tracing:
        stop_tracing()  # exports the spans still buffered


def _root(settings: Settings) -> str:
    """The URL the server answers at, as clients reach it."""
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def _announcement(settings: Settings, store: str, admin_token: str, generated: bool) -> str:
    """Where the server listens and how to create a first tenant.

    The admin token itself appears only on the run that generated it, so that logs of
    later runs, and of any run with ``SCIM_ADMIN_TOKEN`` set, never hold it.
    """
    root = _root(settings)
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    if generated:
        origin = (
            f"Admin token (generated now and kept in the database; shown only this once, "
            f"setting SCIM_ADMIN_TOKEN replaces it): {admin_token}"
        )
        bearer, cli = admin_token, f"SCIM_ADMIN_TOKEN={admin_token} "
    else:
        if settings.admin_token:
            origin = "Admin token: the one set by SCIM_ADMIN_TOKEN (or --admin-token)"
        else:
            origin = (
                "Admin token: generated and printed at the first start on this database; "
                "setting SCIM_ADMIN_TOKEN replaces it"
            )
        bearer, cli = "$SCIM_ADMIN_TOKEN", ""
    return (
        f"SCIM server listening on {root} ({store}{workers})\n"
        f"{origin}\n"
        f"Create a tenant and get its SCIM bearer token:\n"
        f'  curl -s -X POST {root}/admin/tenants -H "Authorization: Bearer {bearer}" '
        f"-H 'Content-Type: application/json' -d '{{\"name\": \"acme\"}}'\n"
        f"or: {cli}scim-server tenants create acme --url {root}"
    )
