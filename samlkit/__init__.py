"""SAML 2.0 primitives shared by the service provider (scim_server.core.sso) and the IdP (idp_sim).

No aiohttp and no MongoDB here: hardened XML parsing, the two bindings, timestamps, AuthnRequests,
metadata, certificates and enveloped signing, so both sides read and write SAML the same way.
"""
