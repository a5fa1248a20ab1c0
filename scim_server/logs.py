"""The server's log: one format for every line, configured once per process.

Every line goes through the standard ``logging`` module, whatever emitted it (aiohttp,
PyMongo, our own ``logging.getLogger`` calls, the access log, or a ``structlog`` logger), and
leaves through one handler on stderr whose structlog ``ProcessorFormatter`` renders it:

- ``json``: one JSON object per line, for containers and log shippers (the default when stderr
  is not a terminal);
- ``text``: readable ``key=value`` lines without colours (the default on a terminal).

Each line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``process`` and
``event``; ``extra=`` fields of a stdlib call become fields of their own; and whatever is bound
with ``structlog.contextvars`` while it is emitted, such as the ``request_id`` of the request
being handled, is added to it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

JSON: Final = "json"
TEXT: Final = "text"
FORMATS: Final = (JSON, TEXT)

_CONTROL_CHARACTERS: Final = {
    code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if chr(code) not in "\n\r\t"
} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
"""How a text line shows control characters: escaped, so that client text in a message (a
decoded path holding ``%0A``) can never start a forged line of its own."""


def default_format(stream: TextIO) -> str:
    """``text`` on a terminal, ``json`` everywhere else (containers, files, pipes)."""
    try:
        return TEXT if stream.isatty() else JSON
    except ValueError:  # a closed stream
        return JSON


def configure_logging(
    level: str,
    log_format: str | None = None,
    stream: TextIO | None = None,
    fields: Sequence[Processor] = (),
) -> None:
    """Route every log record of this process to ``stream`` (stderr), rendered as ``log_format``.

    ``log_format`` is ``json`` or ``text``; ``None`` chooses by whether ``stream`` is a terminal.
    ``fields`` are processors that add fields of their own to every line (tracing's ids).
    Calling it again replaces the previous configuration.
    """
    # Imported here, not with the module: the CLI reads ``FORMATS`` for its help and settings,
    # and structlog (with the rich tracebacks it loads) was a third of every command's start.
    import structlog

    stream = sys.stderr if stream is None else stream
    log_format = default_format(stream) if log_format is None else log_format
    if log_format not in FORMATS:
        raise ValueError(f"the log format is one of {', '.join(FORMATS)}, not {log_format!r}")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process,
        *fields,
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderer(log_format),
            ],
        )
    )
    root = logging.getLogger()
    for previous in list(root.handlers):  # a copy: removing shortens the list itself
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _renderer(log_format: str) -> Iterable[Processor]:
    import structlog

    if log_format == JSON:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [
        _escape_control_characters,
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        ),
    ]


def _escape_control_characters(
    _logger: WrappedLogger, _name: str, event_dict: EventDict
) -> EventDict:
    """Escape control characters in every text field (a traceback keeps its own lines)."""
    return {
        key: value.translate(_CONTROL_CHARACTERS) if isinstance(value, str) else value
        for key, value in event_dict.items()
    }


def _add_process(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """The process id, which tells workers apart (structlog's call-site adder would inspect the
    caller's frames on every line, the access line of every request included, to find it)."""
    event_dict["process"] = os.getpid()
    return event_dict
