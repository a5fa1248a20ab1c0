"""Which identity provider a SCIM client is, told from its ``User-Agent``: a small, pure function.

The families are the IdPs whose traffic the server is tuned for (``docs/idp-traffic.md``); any
other client, and a request without a ``User-Agent`` (JumpCloud sends none), is ``other``.
"""

from __future__ import annotations

from typing import Literal

IdpFamily = Literal["okta", "entra", "jumpcloud", "other"]

_MARKS: tuple[tuple[str, IdpFamily], ...] = (
    ("okta", "okta"),  # "Okta SCIM Client 1.0.0"
    ("azure", "entra"),  # "Microsoft Azure AD SCIM provisioning"
    ("entra", "entra"),
    ("jumpcloud", "jumpcloud"),
)
"""A lower-case mark in the ``User-Agent`` and the family it names, the first match winning."""


def idp_family(user_agent: str | None) -> IdpFamily:
    """The IdP family a ``User-Agent`` names: ``okta``, ``entra``, ``jumpcloud`` or ``other``."""
    agent = (user_agent or "").lower()
    for mark, family in _MARKS:
        if mark in agent:
            return family
    return "other"
