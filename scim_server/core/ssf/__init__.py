"""The Shared Signals (OpenID SSF 1.0) transmitter: provisioning events as Security Event
Tokens, per tenant, to the receivers of its streams (docs/ssf.md).

``sets`` turns an outbox event into the SETs a stream delivers (pure functions), ``keys`` signs
them with the server's key, ``transmitter`` keeps receivers and streams and answers polls
(RFC 8936), and ``push`` describes an RFC 8935 push for the delivery engine that will send it.
"""
