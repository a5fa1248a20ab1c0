"""Run-wide options a suite reads (second tenant, ``--large``, the SAML SP), set once by the runner.

Why not more Context fields: checks already reach the run-wide ``Tracker``, so the options ride
on it under one key, and a suite that needs none of them is untouched.
"""

from __future__ import annotations

from typing import Any

from conformance.checks import Context

KEY = "run-options"


def option(context: Context, name: str, default: Any = None) -> Any:
    """The run option ``name`` (``second_base_url``, ``second_token``, ``large``, ``saml``...)."""
    options = context.fixtures.tracker.shared.get(KEY) or {}
    return options.get(name, default)
