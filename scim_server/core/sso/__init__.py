"""SAML 2.0 single sign-on: the service provider side, free of HTTP."""
