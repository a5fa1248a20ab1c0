"""The protocol core: every SCIM and sign-on rule, free of HTTP.

Handlers in ``scim_server.web`` call it with parsed input; it answers data or raises a
scim2-models ``SCIMException``; it reaches the database only through ``scim_server.storage``.
"""
