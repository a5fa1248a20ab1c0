"""The simulated SAML IdP: Okta- and JumpCloud-shaped signed responses, and broken ones."""

from idp_sim.saml.response import (
    IdentityProvider,
    SamlSubject,
    ServiceProvider,
    signed_response,
)
from idp_sim.saml.shapes import IdpShape, jumpcloud, okta

__all__ = [
    "IdentityProvider",
    "IdpShape",
    "SamlSubject",
    "ServiceProvider",
    "jumpcloud",
    "okta",
    "signed_response",
]
