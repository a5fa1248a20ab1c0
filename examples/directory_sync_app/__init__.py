"""A SaaS application kept in step with the identity provider by the server's webhooks."""
