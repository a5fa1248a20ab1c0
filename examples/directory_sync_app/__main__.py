"""``python -m examples.directory_sync_app``: serve the webhook receiver (``POST
/webhooks/scim``) and its tables (``GET /users``, ``GET /groups``); the webhook's ``whsec_…``
secret is read from ``WEBHOOK_SECRET``."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from aiohttp import web

from examples.directory_sync_app.app import Settings, create_app


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m examples.directory_sync_app", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8090, help="port to serve on (default: %(default)s)")
    p.add_argument(
        "--smtp-host", default="127.0.0.1", help="the mail server (default: %(default)s)"
    )
    p.add_argument(
        "--smtp-port", type=int, default=8025, help="the mail server's port (default: %(default)s)"
    )
    p.add_argument("--database", default=":memory:", help="SQLite file (default: in memory)")
    args = p.parse_args(argv)
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        p.error("set WEBHOOK_SECRET to the whsec_… secret the webhook was registered with")
    logging.basicConfig(level=logging.INFO)
    settings = Settings(secret, args.smtp_host, args.smtp_port, database=args.database)
    web.run_app(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
