"""Replay a traffic journal against another (or the same, fresh) server and diff the statuses.

Server ids differ between runs, so ids learnt from the original POST answers are mapped to the
replay's own and substituted in later paths and bodies; otherwise every later request would 404.
Each logical request is sent once (429 retries in the journal are collapsed; the transport
retries as usual). The replay is one phase for a :class:`~idp_sim.progress.PhaseProgress`: one
item per logical request, a status difference counting as an error.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from idp_sim.journal import REDACTED, Journal, JournalEntry
from idp_sim.progress import PhaseProgress, PhaseReport, Silent
from idp_sim.transport import AuthForm, HeaderProfile, Transport


@dataclass
class Difference:
    index: int
    method: str
    path: str
    expected: int
    got: int

    def __str__(self) -> str:
        return f"#{self.index} {self.method} {self.path}: was {self.expected}, now {self.got}"


@dataclass
class ReplayResult:
    sent: int
    differences: list[Difference] = field(default_factory=list)
    journal: Journal = field(default_factory=Journal)

    def render(self) -> str:
        lines = [f"replayed {self.sent} requests, {len(self.differences)} status differences"]
        return "\n".join(lines + [f"  {d}" for d in self.differences])


def _substitute(text: str, ids: dict[str, str]) -> str:
    for old, new in ids.items():
        text = text.replace(old, new)
    return text


async def replay(
    entries: list[JournalEntry],
    base_url: str,
    token: str,
    *,
    timeout: float = 60.0,
    progress: PhaseProgress | None = None,
) -> ReplayResult:
    """Re-send ``entries`` (their recorded headers, token restored in the recorded form)."""
    shown = progress if progress is not None else Silent()
    started = time.monotonic()
    logical = [
        e
        for i, e in enumerate(entries)
        if not (i + 1 < len(entries) and entries[i + 1].attempt > e.attempt)
    ]
    journal = Journal()
    transport = Transport(
        base_url, token, HeaderProfile(user_agent=None), journal=journal, timeout=timeout
    )
    result = ReplayResult(len(logical), journal=journal)
    ids: dict[str, str] = {}
    shown.begin("replay", len(logical))
    try:
        for index, entry in enumerate(logical, 1):
            headers = dict(entry.headers)
            if "Authorization" in headers:
                auth = headers["Authorization"]
                scheme = auth.partition(" ")[0] if auth != REDACTED else ""
                form: AuthForm = (
                    "header" if not scheme else "basic" if scheme == "Basic" else "bearer"
                )
                headers["Authorization"] = HeaderProfile(user_agent=None, auth=form).authorization(
                    token
                )
            path, _, query = _substitute(entry.path, ids).partition("?")
            body: Any = (
                json.loads(_substitute(json.dumps(entry.body), ids))
                if entry.body is not None
                else None
            )
            response = await transport.request(
                entry.method, path, body=body, raw_query=query, headers=headers
            )
            old_id = (
                entry.response_body.get("id") if isinstance(entry.response_body, dict) else None
            )
            new_id = response.body.get("id") if isinstance(response.body, dict) else None
            if entry.method == "POST" and old_id and new_id and old_id != new_id:
                ids[str(old_id)] = str(new_id)
            if response.status != entry.status:
                result.differences.append(
                    Difference(index, entry.method, entry.path, entry.status, response.status)
                )
            shown.advance()
    finally:
        await transport.close()
    shown.end(
        PhaseReport(
            "replay",
            len(logical),
            len(logical),
            len(journal),
            len(result.differences),
            time.monotonic() - started,
        )
    )
    return result
