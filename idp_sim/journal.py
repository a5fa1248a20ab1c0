"""The traffic journal: every request an IdP profile sent and what came back, as JSON lines.

Why: a QA engineer must be able to show exactly what hit the server (and replay it), so each
exchange is kept verbatim except the credential, which is redacted before anything is stored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

REDACTED = "<redacted>"


def redact_authorization(value: str) -> str:
    """Keep the scheme (``Bearer``, ``Basic``) so the journal shows the form, drop the secret."""
    scheme, sep, _secret = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep else REDACTED


@dataclass
class JournalEntry:
    """One exchange; ``status`` 0 means no HTTP answer (``error`` says why, e.g. a timeout)."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    response_body: Any
    elapsed: float
    attempt: int = 1
    error: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


class Journal:
    """Entries in memory, and appended to a JSON-lines file when one is given."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.entries: list[JournalEntry] = []
        # Held open for the run (closed by close()): a journal is appended to per request.
        self._handle: IO[str] | None = (
            Path(path).open("a", encoding="utf-8")  # noqa: SIM115
            if path is not None
            else None
        )

    def record(self, entry: JournalEntry) -> None:
        if entry.headers.get("Authorization"):
            entry.headers["Authorization"] = redact_authorization(entry.headers["Authorization"])
        self.entries.append(entry)
        if self._handle is not None:
            self._handle.write(entry.to_json() + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def counts(self) -> dict[str, int]:
        """Requests by ``METHOD STATUS``, e.g. ``{"POST 201": 20, "GET 200": 41}``."""
        return dict(sorted(Counter(f"{e.method} {e.status}" for e in self.entries).items()))

    @staticmethod
    def read(path: str | Path) -> list[JournalEntry]:
        with Path(path).open(encoding="utf-8") as handle:
            return [JournalEntry(**json.loads(line)) for line in handle if line.strip()]
