"""A SCIM 2.0 server on MongoDB (RFC 7643/7644), multi-tenant."""
