"""The HTTP surface: the aiohttp application, its middlewares, and one module per endpoint family.

``app`` builds the application, ``routes`` is the URL map, ``middleware`` turns every error into
an RFC 7644 §3.12 response; the handlers parse requests, call ``scim_server.core`` and answer.
"""
