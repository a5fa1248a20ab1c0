"""Which identity provider a request comes from, as far as its ``User-Agent`` tells.

The access log and the metrics group requests by this family, so one function decides it.
The patterns are the ``User-Agent`` strings each provider is documented or seen to send
(docs/idp-traffic.md): Okta's ``Okta SCIM Client 1.0.0`` (``OKTA SCIM Integration`` in Okta's
own test suite), Entra ID's ``Microsoft Azure AD SCIM provisioning``, and JumpCloud, which no
public source names, by its name wherever it appears. Words are matched whole, so that a
client named ``Centralis`` is not taken for Entra.
"""

from __future__ import annotations

import re
from typing import Final

OKTA: Final = "okta"
ENTRA: Final = "entra"
JUMPCLOUD: Final = "jumpcloud"
OTHER: Final = "other"

FAMILIES: Final = (OKTA, ENTRA, JUMPCLOUD, OTHER)
"""Every answer of :func:`idp_family`, for callers that enumerate them (metrics labels)."""

MAX_INSPECTED_CHARACTERS: Final = 512
"""Only the start of a ``User-Agent`` is read: the family names come first, and a header of
8 KiB should cost no more than a short one."""

_PATTERNS: Final = (
    (OKTA, re.compile(r"\bokta\b", re.IGNORECASE)),
    (ENTRA, re.compile(r"\b(?:azure\s*ad|azure active directory|entra)\b", re.IGNORECASE)),
    (JUMPCLOUD, re.compile(r"\bjump\s*cloud\b", re.IGNORECASE)),
)


def idp_family(user_agent: str | None) -> str:
    """``okta``, ``entra``, ``jumpcloud`` or ``other`` (also for no ``User-Agent`` at all)."""
    if not user_agent:
        return OTHER
    head = user_agent[:MAX_INSPECTED_CHARACTERS]
    for family, pattern in _PATTERNS:
        if pattern.search(head):
            return family
    return OTHER
