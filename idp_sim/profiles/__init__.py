"""IdP profiles by name, and how to build one with its own transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp_sim.directory import Directory
from idp_sim.profiles.base import Failure, NotSupported, Profile
from idp_sim.profiles.entra import Entra, entra_transport
from idp_sim.profiles.jumpcloud import JumpCloud, jumpcloud_transport
from idp_sim.profiles.okta_aiw import OktaAIW
from idp_sim.profiles.okta_entitlements import OktaEntitlements
from idp_sim.profiles.okta_oin import OktaOIN, okta_transport
from idp_sim.transport import Transport

PROFILES: dict[str, tuple[type[Profile], Callable[..., Transport]]] = {
    "okta-oin": (OktaOIN, okta_transport),
    "okta-aiw": (OktaAIW, okta_transport),
    "okta-entitlements": (OktaEntitlements, okta_transport),
    "entra": (Entra, entra_transport),
    "entra-optscim062020": (Entra, entra_transport),
    "jumpcloud": (JumpCloud, jumpcloud_transport),
}


def build_profile(
    name: str,
    base_url: str,
    token: str,
    directory: Directory,
    *,
    seed: int = 0,
    transport_options: dict[str, Any] | None = None,
    profile_options: dict[str, Any] | None = None,
) -> Profile:
    """The named profile on a fresh transport (``transport_options`` e.g. ``journal``,
    ``sleep``, ``space``, ``auth`` for Okta, ``user_agent`` for JumpCloud/Entra)."""
    cls, make_transport = PROFILES[name]
    options = dict(profile_options or {})
    if name == "entra-optscim062020":
        options.setdefault("optscim062020", True)
    transport = make_transport(base_url, token, **(transport_options or {}))
    profile = cls(transport, directory, seed=seed, **options)
    profile.name = name
    return profile


__all__ = [
    "PROFILES",
    "Entra",
    "Failure",
    "JumpCloud",
    "NotSupported",
    "OktaAIW",
    "OktaEntitlements",
    "OktaOIN",
    "Profile",
    "build_profile",
]
