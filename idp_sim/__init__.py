"""An identity-provider simulator: Okta, JumpCloud and Entra ID provisioning traffic."""

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.journal import Journal, JournalEntry
from idp_sim.profiles import (
    PROFILES,
    Entra,
    JumpCloud,
    NotSupported,
    OktaAIW,
    OktaOIN,
    Profile,
    build_profile,
)
from idp_sim.scenarios import (
    SCENARIOS,
    Summary,
    full_lifecycle,
    relay,
    restart,
    returning_users,
)
from idp_sim.transport import HeaderProfile, Response, RetryPolicy, Transport

__all__ = [
    "PROFILES",
    "SCENARIOS",
    "Directory",
    "DirectoryGroup",
    "DirectoryUser",
    "Entra",
    "HeaderProfile",
    "Journal",
    "JournalEntry",
    "JumpCloud",
    "NotSupported",
    "OktaAIW",
    "OktaOIN",
    "Profile",
    "Response",
    "RetryPolicy",
    "Summary",
    "Transport",
    "build_profile",
    "full_lifecycle",
    "relay",
    "restart",
    "returning_users",
]
