"""Check suites; importing a module registers its checks."""

from __future__ import annotations

import importlib

SUITE_MODULES = (
    "conformance.suites.rfc",
    "conformance.suites.schema_driven",
    "conformance.suites.okta_spec",
    "conformance.suites.okta_entitlements",
    "conformance.suites.flows",
    "conformance.suites.tenancy",
    "conformance.suites.large",
    "conformance.suites.entra_validator",
    "conformance.suites.interop",
    "conformance.suites.ipsie",
    "conformance.suites.saml",
    "conformance.suites.wsfed",
    "conformance.suites.oidc",
    "conformance.suites.events",
    "conformance.suites.cross_instance",
)


def load() -> None:
    for module in SUITE_MODULES:
        importlib.import_module(module)
