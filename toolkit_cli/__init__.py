"""What the toolkit's three commands (``scim-server``, ``idp-sim``, ``scim-conformance``) share
at their entry point, beside nothing of each other: this package imports none of ours, so any of
them may import it without crossing the layer contracts (pyproject.toml's import-linter)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

CLOSED_PIPE_STATUS = 128 + 13
"""The status a shell gives a command that SIGPIPE ended (``yes | head`` leaves ``yes`` 141)."""


def quiet_on_closed_pipe(main: Callable[P, int]) -> Callable[P, int]:
    """A command's ``main`` that ends quietly when its output is a pipe the reader has closed
    (``scim-conformance --list | head -1``, ``| true``): status 141, as a command SIGPIPE ended,
    instead of a ``BrokenPipeError`` traceback.

    Python ignores SIGPIPE, so writing to such a pipe raises; the output is flushed here, where
    that can still be caught, and standard output is then pointed at ``/dev/null`` so that the
    interpreter's own flush at exit has nothing left to fail on (the recipe of Python's
    documentation, "Note on SIGPIPE", in the ``signal`` module).
    """

    @functools.wraps(main)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            try:
                return main(*args, **kwargs)
            finally:
                # Also when argparse ends with SystemExit after --help, its text still buffered.
                sys.stdout.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return CLOSED_PIPE_STATUS

    return wrapped
