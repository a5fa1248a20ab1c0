"""Deliberately broken WS-Federation tokens: the attacks of docs/wsfed.md that fit in a token.

Each variant is built by the real simulator (:class:`~idp_sim.wsfed.token.WsFedIdp`) and then
broken as a misbehaving IdP (before the signature) or an attacker holding a genuine token
(after it) would. A correct SP refuses every one, each with its own reason in its SSO log; the
attacks that need no broken token (a replayed token, a wctx or browser that is not the one the
sign-in started from) are HTTP-level and live with the tests that post them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lxml import etree

from idp_sim.saml.response import SamlSubject
from idp_sim.saml.tampering import attacker_key, impersonated
from idp_sim.wsfed.token import RelyingParty, WsFedIdp, serialise
from samlkit.namespaces import ASSERTION, ASSERTION_11, DSIG, TRUST_2005, q

Tree = etree._Element
Build = Callable[[WsFedIdp, SamlSubject, RelyingParty, datetime], str]
NAME_IDS = (q(ASSERTION, "NameID"), q(ASSERTION_11, "NameIdentifier"))


@dataclass(frozen=True)
class Variant:
    """One broken token: ``build(idp, subject, rp, now)`` returns the ``wresult``; ``reason``
    is a fragment of the SP's logged reason for refusing it."""

    name: str
    description: str
    build: Build
    reason: str


def _assertion(root: Tree) -> Tree:
    """The token's assertion, SAML 2.0 or 1.1."""
    token = root.find(q(TRUST_2005, "RequestedSecurityToken"))
    assert token is not None and len(token) == 1
    return token[0]


def _impersonate(assertion: Tree, subject: SamlSubject) -> None:
    """Every NameID of the assertion renamed to the account the attacker wants."""
    for name_id in assertion.iter(*NAME_IDS):
        name_id.text = impersonated(subject).email


def _wrong_audience(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    return idp.wresult(subject, replace(rp, realm="urn:evil.example:app"), now=now)


def _expired(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    return idp.wresult(subject, rp, now=now - timedelta(hours=1))


def _unsigned(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    return serialise(idp.build(subject, rp, now=now))


def _wrong_key(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    return serialise(idp.sign(idp.build(subject, rp, now=now), attacker_key()))


def _altered_after_signing(
    idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime
) -> str:
    """The genuine token with its NameID changed to the account the attacker wants."""
    root = idp.sign(idp.build(subject, rp, now=now))
    _impersonate(_assertion(root), subject)
    return serialise(root)


def _wrapped(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    """XSW: the attacker's unsigned assertion where the token is read, the genuine signed one
    moved aside (into the response's Lifetime) for its signature to still verify."""
    root = idp.sign(idp.build(subject, rp, now=now))
    genuine = _assertion(root)
    token = genuine.getparent()
    assert token is not None
    evil = idp.build(impersonated(subject), rp, now=now)
    forged = copy.deepcopy(_assertion(evil))
    lifetime = root.find(q(TRUST_2005, "Lifetime"))
    assert lifetime is not None
    lifetime.append(genuine)
    token.append(forged)
    return serialise(root)


def _signature_moved(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    """The genuine signature lifted out of the assertion onto the envelope, the assertion then
    rewritten: a signature that no longer sits in what it is said to cover."""
    root = idp.sign(idp.build(subject, rp, now=now))
    assertion = _assertion(root)
    signature = assertion.find(q(DSIG, "Signature"))
    assert signature is not None
    root.append(signature)
    _impersonate(assertion, subject)
    return serialise(root)


def _comment_in_name_id(
    idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime
) -> str:
    """Comment injection: ``admin@example.com<!---->.evil.example`` canonicalises (without
    comments) to the same digest as a name the attacker owns."""
    text = idp.wresult(subject, rp, now=now)
    return text.replace(f">{subject.email}<", f">{subject.email}<!---->.evil.example<", 1)


def _wrong_issuer(idp: WsFedIdp, subject: SamlSubject, rp: RelyingParty, now: datetime) -> str:
    other = WsFedIdp(replace(idp.shape, entity_id="https://sts.evil.example/"), idp.key)
    return other.wresult(subject, rp, now=now)


VARIANTS: tuple[Variant, ...] = (
    Variant("wrong_audience", "signed for another realm", _wrong_audience, "is for"),
    Variant("expired", "issued an hour ago, valid five minutes", _expired, "expired"),
    Variant("unsigned", "no signature at all", _unsigned, "is not signed"),
    Variant("wrong_key", "signed by a key the tenant never pinned", _wrong_key, "does not verify"),
    Variant(
        "altered", "the NameID changed after signing", _altered_after_signing, "does not verify"
    ),
    Variant("wrapped", "XSW: a forged assertion beside the signed one", _wrapped, "2 assertions"),
    Variant("signature_moved", "the signature lifted onto the envelope", _signature_moved, "once"),
    Variant("comment", "a comment spliced into the NameID", _comment_in_name_id, "comments"),
    Variant("wrong_issuer", "issued by another STS", _wrong_issuer, "is not this tenant's IdP"),
)
"""Every broken token, by name."""
