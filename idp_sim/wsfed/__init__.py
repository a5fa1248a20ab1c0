"""A WS-Federation passive requestor IdP shaped like Entra ID and AD FS (docs/wsfed.md)."""
