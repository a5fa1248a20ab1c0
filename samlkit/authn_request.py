"""The SP's ``samlp:AuthnRequest``: built by the SP, parsed (hardened) by the IdP simulator."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from samlkit.namespaces import ASSERTION, HTTP_POST, PROTOCOL, q
from samlkit.timefmt import format_instant, parse_instant
from samlkit.xml import parse_strict, to_bytes

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class AuthnRequest:
    """What an IdP needs from an AuthnRequest; ``acs_url``/``destination`` are None when absent."""

    id: str
    issuer: str
    destination: str | None
    acs_url: str | None
    issue_instant: datetime
    name_id_format: str | None
    force_authn: bool = False


def new_request_id() -> str:
    """``_`` + 32 hex digits: 128 random bits, and a valid xs:ID (NCName) for any verifier."""
    return "_" + secrets.token_hex(16)


def build_authn_request(req: AuthnRequest) -> bytes:
    """The request document, asking for the HTTP-POST binding back to ``req.acs_url``."""
    attrs = {
        "ID": req.id,
        "Version": "2.0",
        "IssueInstant": format_instant(req.issue_instant),
        "ProtocolBinding": HTTP_POST,
    }
    if req.destination is not None:
        attrs["Destination"] = req.destination
    if req.acs_url is not None:
        attrs["AssertionConsumerServiceURL"] = req.acs_url
    if req.force_authn:
        attrs["ForceAuthn"] = "true"
    root = etree.Element(
        q(PROTOCOL, "AuthnRequest"), attrs, nsmap={"samlp": PROTOCOL, "saml": ASSERTION}
    )
    etree.SubElement(root, q(ASSERTION, "Issuer")).text = req.issuer
    if req.name_id_format is not None:
        etree.SubElement(
            root, q(PROTOCOL, "NameIDPolicy"), {"Format": req.name_id_format, "AllowCreate": "true"}
        )
    return to_bytes(root)


def parse_authn_request(xml: bytes) -> AuthnRequest:
    """Read an AuthnRequest; XmlRejected for unsafe XML, ValueError for anything malformed."""
    root = parse_strict(xml)
    if root.tag != q(PROTOCOL, "AuthnRequest"):
        raise ValueError("not a samlp:AuthnRequest")
    if root.get("Version") != "2.0":
        raise ValueError("AuthnRequest Version is not 2.0")
    request_id = root.get("ID", "")
    if not _NCNAME.fullmatch(request_id):
        raise ValueError("AuthnRequest ID is missing or not an NCName")
    issuers = root.findall(q(ASSERTION, "Issuer"))
    if len(issuers) != 1 or not (issuers[0].text or "").strip() or len(issuers[0]):
        raise ValueError("AuthnRequest needs exactly one non-empty Issuer")
    policy = root.find(q(PROTOCOL, "NameIDPolicy"))
    force = root.get("ForceAuthn", "false")
    if force not in ("true", "false", "1", "0"):
        raise ValueError("ForceAuthn is not an xs:boolean")
    return AuthnRequest(
        id=request_id,
        issuer=(issuers[0].text or "").strip(),
        destination=root.get("Destination"),
        acs_url=root.get("AssertionConsumerServiceURL"),
        issue_instant=parse_instant(root.get("IssueInstant", "")),
        name_id_format=policy.get("Format") if policy is not None else None,
        force_authn=force in ("true", "1"),
    )
