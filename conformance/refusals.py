"""Refusal checks over a tampering catalogue, as the ``wsfed`` and ``oidc`` suites declare them.

Each such check is one variant of ``idp_sim``'s catalogue for that protocol, named after it
(``wsfed.wrong-key-refused``), with the rule and its source; the suite's subclass says how the
variant is staged and judged (:meth:`Refusal.run`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from conformance.checks import Context, check


@dataclass(frozen=True)
class Refusal:
    """A check that the RP refuses the catalogue's ``variant``."""

    suite: ClassVar[str]
    variant: str
    title: str
    source: str
    rule: str

    @property
    def id(self) -> str:
        return f"{self.suite}.{self.variant.replace('_', '-')}-refused"

    async def run(self, context: Context) -> None:
        raise NotImplementedError


def register(refusals: Iterable[Refusal], judged: str, profiles: tuple[str, ...]) -> None:
    """Register each refusal as a check of its suite; ``judged`` (how the verdict is reached)
    is appended to each rule."""
    for refusal in refusals:
        check(
            refusal.suite,
            refusal.id,
            refusal.title,
            refusal.source,
            refusal.rule + judged,
            profiles,
        )(refusal.run)
