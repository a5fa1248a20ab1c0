"""Reading MongoDB ``explain()`` output: the tests that prove a query runs on an index."""

from __future__ import annotations

from typing import Any


def plan_stages(plan: Any, stage: str) -> list[dict[str, Any]]:
    """Every ``stage`` node of an ``explain()`` output, whatever the server nests them in."""
    if isinstance(plan, dict):
        found = [plan] if plan.get("stage") == stage else []
        return found + [node for value in plan.values() for node in plan_stages(value, stage)]
    if isinstance(plan, list):
        return [node for item in plan for node in plan_stages(item, stage)]
    return []


def index_scans(plan: Any) -> list[dict[str, Any]]:
    """The index scans of a plan: empty when the query read the whole collection."""
    return plan_stages(plan, "IXSCAN")
