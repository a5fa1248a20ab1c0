"""Deliberately broken SAML Responses: every attack of docs/saml.md that fits in a document.

Each variant is a small recipe run through the real builder (:meth:`IdentityProvider.build`):
``prepare`` steps change the unsigned tree as a misbehaving IdP would, ``sign`` signs it (maybe
with the wrong key or algorithm), ``attack`` steps change the signed tree as an attacker holding
a genuine response would, and ``text`` steps rewrite the serialised bytes (DTDs, entities, PIs).
A correct SP must refuse every one of them (those tagged ``policy`` only under the stated policy).

The XXE/DTD/XInclude variants point at ``probe_url`` and ``file_path`` (see :func:`variants`) so
a test can run a loopback listener, or a FIFO, and prove that nothing was ever fetched or opened.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

from idp_sim.saml.response import (
    IdentityProvider,
    SamlSubject,
    ServiceProvider,
    sign_document,
)
from samlkit.authn_request import new_request_id
from samlkit.bindings import encode_post
from samlkit.certs import SigningKey, certificate_pem
from samlkit.namespaces import (
    ASSERTION,
    ATTRNAME_UNSPECIFIED,
    DSIG,
    HOLDER_OF_KEY,
    PROTOCOL,
    STATUS_RESPONDER,
    XENC,
    XML,
    q,
)
from samlkit.signing import EXC_C14N, find_by_id, sign_enveloped
from samlkit.timefmt import format_instant
from samlkit.xml import to_bytes

DEFAULT_PROBE_URL = "http://127.0.0.1:9/saml-probe"
DEFAULT_FILE_PATH = "/etc/passwd"
EVIL_DOMAIN = "evil.example"
OVERSIZE_BYTES = 300 * 1024

Build = Callable[[IdentityProvider, SamlSubject, ServiceProvider, datetime, str | None], str]
Tree = etree._Element

_NS = {"p": PROTOCOL, "a": ASSERTION, "ds": DSIG}
_TIME_ATTRIBUTES = (
    "IssueInstant",
    "NotBefore",
    "NotOnOrAfter",
    "AuthnInstant",
    "SessionNotOnOrAfter",
)


@dataclass(frozen=True)
class Variant:
    """One broken response: ``build(idp, subject, sp, now, in_response_to)`` returns base64."""

    name: str
    description: str
    build: Build
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Context:
    idp: IdentityProvider
    subject: SamlSubject
    sp: ServiceProvider
    now: datetime
    in_response_to: str | None


TreeStep = Callable[[Tree, _Context], Tree]
TextStep = Callable[[bytes, _Context], bytes]
ElementSigner = Callable[[_Context], Callable[[Tree, str], Tree]]


@functools.cache
def attacker_key() -> SigningKey:
    """The attacker's own key pair, made once per process (RSA generation costs ~50 ms)."""
    return SigningKey.generate("attacker.evil.example")


def impersonated(subject: SamlSubject) -> SamlSubject:
    """The account an attacker wants: an admin in the victim's email domain."""
    domain = subject.email.rpartition("@")[2] or "example.com"
    return SamlSubject(
        login=f"admin@{domain}",
        email=f"admin@{domain}",
        first_name="Evil",
        last_name="Admin",
        user_id="evil-admin",
        groups=("Admins",),
    )


# --- signing ----------------------------------------------------------------------------------


class _PermissiveSigner(XMLSigner):
    """signxml refuses to *make* SHA-1 signatures; the downgrade variants need exactly that."""

    def check_deprecated_methods(self) -> None:
        """Allow SHA-1: producing the weak signature is the point of the variant."""


def _signer(signature: SignatureMethod, digest: DigestAlgorithm) -> XMLSigner:
    return _PermissiveSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=signature,
        digest_algorithm=digest,
        c14n_algorithm=EXC_C14N,
    )


def _unsigned(tree: Tree, ctx: _Context) -> Tree:
    return tree


def _genuine(ctx: _Context) -> Callable[[Tree, str], Tree]:
    return ctx.idp.sign_element


def _custom(
    *,
    attacker: bool = False,
    cert_from_idp: bool = True,
    key_value: bool = False,
    signer: XMLSigner | None = None,
) -> ElementSigner:
    """Sign with the attacker's key and/or another algorithm; X509Data from the IdP or attacker."""

    def make(ctx: _Context) -> Callable[[Tree, str], Tree]:
        key = attacker_key() if attacker else ctx.idp.key
        certificate = ctx.idp.key.certificate if cert_from_idp else key.certificate
        return lambda root, element_id: sign_enveloped(
            root,
            find_by_id(root, element_id),
            key=key.private_key,
            certificate=certificate,
            signer=signer,
            key_value=key_value,
        )

    return make


def _hmac(ctx: _Context) -> Callable[[Tree, str], Tree]:
    """HMAC keyed with the public cert PEM: fools verifiers that take the algorithm from the doc."""
    secret = certificate_pem(ctx.idp.key.certificate).encode()
    signer = _signer(SignatureMethod.HMAC_SHA256, DigestAlgorithm.SHA256)
    return lambda root, element_id: sign_enveloped(
        root, find_by_id(root, element_id), key=secret, certificate=None, signer=signer
    )


def _sign(
    *,
    response: bool | None = None,
    assertion: bool | None = None,
    by: ElementSigner = _genuine,
) -> TreeStep:
    """Sign like the shape (or as forced) with ``by``."""

    def step(tree: Tree, ctx: _Context) -> Tree:
        shape = ctx.idp.shape
        return sign_document(
            tree,
            response=shape.sign_response if response is None else response,
            assertion=shape.sign_assertion if assertion is None else assertion,
            sign_element=by(ctx),
        )

    return step


def _sign_response_referencing(*targets: str) -> TreeStep:
    """A signature in the Response whose references point at ``targets`` (xpaths to elements)."""

    def step(tree: Tree, ctx: _Context) -> Tree:
        uris = ["#" + _one(tree, target).get("ID", "") for target in targets]
        return sign_enveloped(
            tree,
            tree,
            key=ctx.idp.key.private_key,
            certificate=ctx.idp.key.certificate,
            references=uris,
        )

    return step


def _resign_with_empty_uri(tree: Tree, ctx: _Context) -> Tree:
    """Point the Response signature at ``URI=""`` (the whole document) and re-sign SignedInfo."""
    signature = _one(tree, "/p:Response/ds:Signature")
    _one(signature, "ds:SignedInfo/ds:Reference").set("URI", "")
    signed_info = _one(signature, "ds:SignedInfo")
    value = ctx.idp.key.private_key.sign(
        etree.tostring(signed_info, method="c14n", exclusive=True), PKCS1v15(), SHA256()
    )
    _one(signature, "ds:SignatureValue").text = base64.b64encode(value).decode("ascii")
    return tree


# --- tree steps -------------------------------------------------------------------------------


def _all(tree: Tree, path: str) -> list[Tree]:
    found = tree.xpath(path, namespaces=_NS)
    if not found:
        # A step that silently matches nothing would yield a valid response, i.e. a test of nothing.
        raise LookupError(f"tampering step found no {path}")
    # Every path of this module selects elements, never text or attribute values.
    return [element for element in found if isinstance(element, etree._Element)]


def _one(tree: Tree, path: str) -> Tree:
    return _all(tree, path)[0]


def _set(path: str, attribute: str | None, value: Callable[[_Context], str | None]) -> TreeStep:
    """Set an attribute (None: the text) on every match; a None value deletes the attribute."""

    def step(tree: Tree, ctx: _Context) -> Tree:
        for element in _all(tree, path):
            new = value(ctx)
            if attribute is None:
                element.text = new
            elif new is None:
                element.attrib.pop(attribute)
            else:
                element.set(attribute, new)
        return tree

    return step


def _const(text: str | None) -> Callable[[_Context], str | None]:
    return lambda ctx: text


def _request_id_or_new(ctx: _Context) -> str:
    return ctx.in_response_to or new_request_id()


def _at(offset: timedelta) -> Callable[[_Context], str]:
    return lambda ctx: format_instant(ctx.now + offset)


def _remove(path: str) -> TreeStep:
    def step(tree: Tree, ctx: _Context) -> Tree:
        for element in _all(tree, path):
            parent = element.getparent()
            if parent is not None:
                parent.remove(element)
        return tree

    return step


def _append(path: str, make: Callable[[_Context], Tree]) -> TreeStep:
    def step(tree: Tree, ctx: _Context) -> Tree:
        _one(tree, path).append(make(ctx))
        return tree

    return step


def _drop_timezones(tree: Tree, ctx: _Context) -> Tree:
    """``2026-01-01T10:00:00.000Z`` -> ``2026-01-01T10:00:00.000``: an ambiguous local time."""
    for element in tree.iter(etree.Element):
        for name in _TIME_ATTRIBUTES:
            value = element.get(name, "")
            if value.endswith("Z"):
                element.set(name, value[:-1])
    return tree


def _suffix(path: str, suffix: str) -> TreeStep:
    def step(tree: Tree, ctx: _Context) -> Tree:
        element = _one(tree, path)
        element.text = (element.text or "") + suffix
        return tree

    return step


def _comment_in(path: str, before_suffix: str | None = None) -> TreeStep:
    """Split the text of ``path`` with ``<!---->``: before ``before_suffix``, else mid-way.

    c14n drops comments, so the signature still holds, while a verifier that reads ``.text``
    sees only the part before the comment (CVE-2017-11427 family, xml-crypto CVE-2025-29775).
    """

    def step(tree: Tree, ctx: _Context) -> Tree:
        element = _one(tree, path)
        text = element.text or ""
        cut = len(text) - len(before_suffix) if before_suffix else len(text) // 2
        comment = etree.Comment("")
        comment.tail = text[cut:]
        element.text = text[:cut]
        element.insert(0, comment)
        return tree

    return step


def _fresh_assertion(ctx: _Context, subject: SamlSubject) -> Tree:
    """A new unsigned assertion from the same IdP, with fresh IDs."""
    built = ctx.idp.build(subject, ctx.sp, in_response_to=ctx.in_response_to, now=ctx.now)
    return _one(built, "a:Assertion")


def _evil_assertion(ctx: _Context) -> Tree:
    return _fresh_assertion(ctx, impersonated(ctx.subject))


def _extensions(root: Tree) -> Tree:
    """A ``samlp:Extensions`` in its schema place: after Issuer and Signature, before Status."""
    extensions = etree.Element(q(PROTOCOL, "Extensions"))
    status = _one(root, "p:Status")
    status.addprevious(extensions)
    return extensions


def _into_extensions(tree: Tree, ctx: _Context) -> Tree:
    """Move the (only) assertion into Extensions: present, but not a direct child."""
    _extensions(tree).append(_one(tree, "a:Assertion"))
    return tree


def _second_assertion(tree: Tree, ctx: _Context) -> Tree:
    tree.append(_fresh_assertion(ctx, ctx.subject))
    return tree


def _encrypted_assertion(tree: Tree, ctx: _Context) -> Tree:
    """Replace the assertion with an EncryptedAssertion (opaque bytes; we support no decryption)."""
    assertion = _one(tree, "a:Assertion")
    encrypted = etree.Element(q(ASSERTION, "EncryptedAssertion"))
    data = etree.SubElement(encrypted, q(XENC, "EncryptedData"), nsmap={"xenc": XENC})
    cipher = etree.SubElement(data, q(XENC, "CipherData"))
    etree.SubElement(cipher, q(XENC, "CipherValue")).text = base64.b64encode(b"\0" * 48).decode()
    assertion.addprevious(encrypted)
    tree.remove(assertion)
    return tree


def _padding_attribute(ctx: _Context) -> Tree:
    attribute = etree.Element(
        q(ASSERTION, "Attribute"), {"Name": "padding", "NameFormat": ATTRNAME_UNSPECIFIED}
    )
    etree.SubElement(attribute, q(ASSERTION, "AttributeValue")).text = "A" * OVERSIZE_BYTES
    return attribute


def _admin_group_attribute(ctx: _Context) -> Tree:
    name = ctx.idp.shape.groups_attribute or "groups"
    attribute = etree.Element(
        q(ASSERTION, "Attribute"), {"Name": name, "NameFormat": ATTRNAME_UNSPECIFIED}
    )
    etree.SubElement(attribute, q(ASSERTION, "AttributeValue")).text = "Admins"
    return attribute


def _second_audience_restriction(ctx: _Context) -> Tree:
    restriction = etree.Element(q(ASSERTION, "AudienceRestriction"))
    etree.SubElement(restriction, q(ASSERTION, "Audience")).text = f"https://sp.{EVIL_DOMAIN}/"
    return restriction


def _xinclude(url: str) -> TreeStep:
    """The NameID's content becomes an ``xi:include``: harmless unless someone runs xinclude()."""

    def step(tree: Tree, ctx: _Context) -> Tree:
        name_id = _one(tree, "a:Assertion/a:Subject/a:NameID")
        name_id.text = None
        etree.SubElement(
            name_id,
            "{http://www.w3.org/2001/XInclude}include",
            {"href": url, "parse": "text"},
            nsmap={"xi": "http://www.w3.org/2001/XInclude"},
        )
        return tree

    return step


def _assertion_as_root(tree: Tree, ctx: _Context) -> Tree:
    """The signed assertion alone, without its Response: the wrong document root."""
    return _one(tree, "a:Assertion")


def _duplicate_ids(tree: Tree, ctx: _Context) -> Tree:
    tree.set("ID", _one(tree, "a:Assertion").get("ID", ""))
    return tree


def _namespaced_duplicate_id(tree: Tree, ctx: _Context) -> Tree:
    """The Response gets an ``xml:id`` equal to the assertion's ID: signxml resolves references
    by the attribute's local name, so a namespaced ID is as much an ID as a plain one."""
    tree.set(q(XML, "id"), _one(tree, "a:Assertion").get("ID", ""))
    return tree


def _unsolicited(tree: Tree, ctx: _Context) -> Tree:
    """An IdP-initiated response: no InResponseTo anywhere, whatever the builder was given."""
    for element in (tree, *_all(tree, _SCD)):
        if "InResponseTo" in element.attrib:
            del element.attrib["InResponseTo"]
    return tree


def _empty_modulus_key_value(tree: Tree, ctx: _Context) -> Tree:
    """A ``KeyValue`` with an empty RSA Modulus added to the KeyInfo of a genuine signature
    (KeyInfo is not signed, so anyone holding one genuine response can add it)."""
    key_info = _one(tree, "(//ds:Signature/ds:KeyInfo)[1]")
    key_value = etree.SubElement(key_info, q(DSIG, "KeyValue"))
    rsa_key = etree.SubElement(key_value, q(DSIG, "RSAKeyValue"))
    etree.SubElement(rsa_key, q(DSIG, "Modulus"))
    etree.SubElement(rsa_key, q(DSIG, "Exponent")).text = "AQAB"
    return tree


# --- wrapping (signature wrapping, docs/saml.md) ------------------------------------------------


def _wrap_evil_first(tree: Tree, ctx: _Context) -> Tree:
    """An unsigned evil assertion takes the genuine one's place, the genuine to Extensions."""
    genuine = _one(tree, "a:Assertion")
    genuine.addprevious(_evil_assertion(ctx))
    _extensions(tree).append(genuine)
    return tree


def _wrap_same_id(tree: Tree, ctx: _Context) -> Tree:
    """An evil assertion with the genuine ID carries the signed one inside its Advice."""
    genuine = _one(tree, "a:Assertion")
    evil = _evil_assertion(ctx)
    evil.set("ID", genuine.get("ID", ""))
    genuine.addprevious(evil)
    advice = etree.Element(q(ASSERTION, "Advice"))
    _one(evil, "a:Conditions").addnext(advice)
    advice.append(genuine)
    return tree


def _steal_signature(tree: Tree, ctx: _Context) -> tuple[Tree, Tree, Tree]:
    """Move the genuine assertion's Signature into an evil assertion placed before it."""
    genuine = _one(tree, "a:Assertion")
    signature = _one(genuine, "ds:Signature")
    evil = _evil_assertion(ctx)
    _one(evil, "a:Issuer").addnext(signature)
    genuine.addprevious(evil)
    return genuine, evil, signature


def _wrap_in_signature_object(tree: Tree, ctx: _Context) -> Tree:
    """The evil assertion holds the genuine Signature; the genuine sits in its ds:Object."""
    genuine, _, signature = _steal_signature(tree, ctx)
    etree.SubElement(signature, q(DSIG, "Object")).append(genuine)
    return tree


def _wrap_copied_signature(tree: Tree, ctx: _Context) -> Tree:
    """The evil assertion holds the genuine Signature; the genuine is in Extensions."""
    genuine, _, _ = _steal_signature(tree, ctx)
    _extensions(tree).append(genuine)
    return tree


def _wrap_response(tree: Tree, ctx: _Context) -> Tree:
    """The genuine signed Response goes into the Extensions of an unsigned evil Response."""
    evil = ctx.idp.build(
        impersonated(ctx.subject), ctx.sp, in_response_to=ctx.in_response_to, now=ctx.now
    )
    _extensions(evil).append(tree)
    return evil


def _move_response_signature_into_assertion(tree: Tree, ctx: _Context) -> Tree:
    """The Response's signature (URI = Response ID) relocated to where an assertion's goes."""
    _one(tree, "a:Assertion/a:Issuer").addnext(_one(tree, "ds:Signature"))
    return tree


# --- text steps ---------------------------------------------------------------------------------

_NAME_ID_CONTENT = re.compile(rb"(<[A-Za-z0-9_]+:NameID\b[^>]*>)[^<]*(</)")


def _prolog(make: Callable[[_Context], str] | str) -> TextStep:
    """Insert a DOCTYPE or PI right after the XML declaration (first line of ``to_bytes``)."""

    def step(xml: bytes, ctx: _Context) -> bytes:
        declaration, _, body = xml.partition(b"\n")
        text = make if isinstance(make, str) else make(ctx)
        return declaration + b"\n" + text.encode() + b"\n" + body

    return step


def _doctype(internal_subset: str = "", system_url: str | None = None) -> TextStep:
    def make(ctx: _Context) -> str:
        root = f"{ctx.idp.shape.protocol_prefix}:Response"
        system = f' SYSTEM "{system_url}"' if system_url else ""
        subset = f" [{internal_subset}]" if internal_subset else ""
        return f"<!DOCTYPE {root}{system}{subset}>"

    return _prolog(make)


def _entity_in_name_id(reference: str) -> TextStep:
    def step(xml: bytes, ctx: _Context) -> bytes:
        replaced, count = _NAME_ID_CONTENT.subn(rb"\1" + reference.encode() + rb"\2", xml, 1)
        if count != 1:
            raise LookupError("tampering step found no NameID")
        return replaced

    return step


def _billion_laughs() -> str:
    levels = ['<!ENTITY lol0 "lol">']
    levels += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return "".join(levels)


def _corrupt_base64(xml: bytes) -> str:
    encoded = encode_post(xml)
    return encoded[:40] + "*!" + encoded[40:]


# --- the recipe -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipe:
    """build -> prepare -> sign -> attack -> serialise -> text -> encode."""

    prepare: Sequence[TreeStep] = ()
    sign: TreeStep = field(default_factory=_sign)
    attack: Sequence[TreeStep] = ()
    text: Sequence[TextStep] = ()
    shift: timedelta = timedelta(0)
    encode: Callable[[bytes], str] = encode_post

    def __call__(
        self,
        idp: IdentityProvider,
        subject: SamlSubject,
        sp: ServiceProvider,
        now: datetime,
        in_response_to: str | None,
    ) -> str:
        ctx = _Context(idp, subject, sp, now + self.shift, in_response_to)
        tree = idp.build(subject, sp, in_response_to=in_response_to, now=ctx.now)
        for step in self.prepare:
            tree = step(tree, ctx)
        tree = self.sign(tree, ctx)
        for step in self.attack:
            tree = step(tree, ctx)
        xml = to_bytes(tree)
        for text_step in self.text:
            xml = text_step(xml, ctx)
        return self.encode(xml)


_CONFIRMATION = "a:Assertion/a:Subject/a:SubjectConfirmation"
_SCD = f"{_CONFIRMATION}/a:SubjectConfirmationData"
_NAME_ID = "a:Assertion/a:Subject/a:NameID"
_CONDITIONS = "a:Assertion/a:Conditions"
_AUTHN = "a:Assertion/a:AuthnStatement"
_ATTRIBUTES = "a:Assertion/a:AttributeStatement"
_FIRST_VALUE = f"({_ATTRIBUTES}/a:Attribute/a:AttributeValue)[1]"
_STATUS_CODE = "p:Status/p:StatusCode"
_BOTH = _sign(response=True, assertion=True)
_ASSERTION_ONLY = _sign(response=False, assertion=True)
_RESPONSE_ONLY = _sign(response=True, assertion=False)
_INJECTED = ".evil.test"


def variants(
    *, probe_url: str = DEFAULT_PROBE_URL, file_path: str = DEFAULT_FILE_PATH
) -> Mapping[str, Variant]:
    """Every variant; the DTD/XInclude ones fetch ``probe_url`` or open ``file_path`` if obeyed."""
    evil_acs = f"https://sp.{EVIL_DOMAIN}/acs"
    evil_idp = f"https://idp.{EVIL_DOMAIN}/"
    stylesheet = f'<?xml-stylesheet type="text/xsl" href="{probe_url}"?>'
    never_issued = "_" + "0" * 32
    sha1_signature = _signer(SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA256)
    sha1_digest = _signer(SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA1)
    table = [
        # signatures
        _v("unsigned", "no signature anywhere", _Recipe(sign=_unsigned), "signature"),
        _v(
            "assertion_signature_stripped",
            "signed twice, then the assertion signature removed (the response digest breaks)",
            _Recipe(sign=_BOTH, attack=[_remove("a:Assertion/ds:Signature")]),
            "signature",
        ),
        _v(
            "response_only_signed",
            "only the Response is signed; refused when the SP requires a signed assertion",
            _Recipe(sign=_RESPONSE_ONLY),
            "signature",
            "policy:require_signed_assertion",
        ),
        _v(
            "wrong_key",
            "signed by the attacker's key, attacker's certificate in KeyInfo",
            _Recipe(sign=_sign(by=_custom(attacker=True, cert_from_idp=False))),
            "signature",
        ),
        _v(
            "key_value_mismatch",
            "signed by the attacker's key: KeyValue is the attacker's, X509Data the IdP's cert",
            _Recipe(sign=_sign(by=_custom(attacker=True, key_value=True))),
            "signature",
        ),
        _v(
            "tampered_attribute",
            "an Admins group attribute added after signing",
            _Recipe(attack=[_append("a:Assertion/a:AttributeStatement", _admin_group_attribute)]),
            "signature",
        ),
        _v(
            "tampered_name_id",
            "NameID changed to the impersonated admin after signing",
            _Recipe(attack=[_set(_NAME_ID, None, lambda ctx: impersonated(ctx.subject).email)]),
            "signature",
        ),
        _v(
            "tampered_status",
            "Status changed to Responder after signing the Response",
            _Recipe(sign=_BOTH, attack=[_set(_STATUS_CODE, "Value", _const(STATUS_RESPONDER))]),
            "signature",
        ),
        _v(
            "hmac_confusion",
            "HMAC-SHA256 keyed with the IdP's public certificate PEM",
            _Recipe(sign=_sign(by=_hmac)),
            "signature",
            "algorithm",
        ),
        _v(
            "rsa_sha1_signature",
            "RSA-SHA1 signature method (downgrade)",
            _Recipe(sign=_sign(by=_custom(signer=sha1_signature))),
            "signature",
            "algorithm",
        ),
        _v(
            "sha1_digest",
            "SHA-1 reference digest (downgrade)",
            _Recipe(sign=_sign(by=_custom(signer=sha1_digest))),
            "signature",
            "algorithm",
        ),
        _v(
            "empty_signature_value",
            "the Response's <ds:SignatureValue/> emptied: no key needed, crashed signxml",
            _Recipe(sign=_BOTH, attack=[_set("(//ds:SignatureValue)[1]", None, _const(None))]),
            "signature",
        ),
        _v(
            "key_value_empty_modulus",
            "a genuine signature plus a KeyInfo/KeyValue whose RSA Modulus is empty",
            _Recipe(sign=_BOTH, attack=[_empty_modulus_key_value]),
            "signature",
        ),
        _v(
            "reference_uri_empty",
            'the Response signature re-made with Reference URI="" (the whole document)',
            _Recipe(sign=_RESPONSE_ONLY, attack=[_resign_with_empty_uri]),
            "signature",
        ),
        _v(
            "reference_to_other_element",
            "the only signature sits in the Response but its Reference points at the Assertion",
            _Recipe(sign=_sign_response_referencing("a:Assertion")),
            "signature",
        ),
        _v(
            "two_references",
            "one Response signature with two References (Response and Assertion)",
            _Recipe(sign=_sign_response_referencing("/p:Response", "a:Assertion")),
            "signature",
        ),
        # issuer
        _v(
            "wrong_issuer",
            "both Issuers name another IdP; signed with the right key",
            _Recipe(prepare=[_set("//a:Issuer", None, _const(evil_idp))]),
            "issuer",
        ),
        _v(
            "response_issuer_mismatch",
            "the Response Issuer differs from the Assertion Issuer",
            _Recipe(prepare=[_set("a:Issuer", None, _const(evil_idp))]),
            "issuer",
        ),
        # time
        _v(
            "expired",
            "issued an hour ago: every NotOnOrAfter is 55 minutes past",
            _Recipe(shift=timedelta(hours=-1)),
            "time",
        ),
        _v(
            "not_yet_valid",
            "issued an hour in the future",
            _Recipe(shift=timedelta(hours=1)),
            "time",
        ),
        _v(
            "subject_confirmation_expired",
            "SubjectConfirmationData NotOnOrAfter 10 minutes past, Conditions still valid",
            _Recipe(prepare=[_set(_SCD, "NotOnOrAfter", _at(timedelta(minutes=-10)))]),
            "time",
        ),
        _v(
            "conditions_without_not_on_or_after",
            "Conditions without NotOnOrAfter (an assertion that never expires)",
            _Recipe(prepare=[_set(_CONDITIONS, "NotOnOrAfter", _const(None))]),
            "time",
        ),
        _v(
            "subject_confirmation_without_not_on_or_after",
            "bearer SubjectConfirmationData without NotOnOrAfter",
            _Recipe(prepare=[_set(_SCD, "NotOnOrAfter", _const(None))]),
            "time",
        ),
        _v(
            "timestamps_without_timezone",
            "every timestamp without its Z (an ambiguous local time)",
            _Recipe(prepare=[_drop_timezones]),
            "time",
        ),
        _v(
            "session_not_on_or_after_past",
            "AuthnStatement SessionNotOnOrAfter a minute ago",
            _Recipe(prepare=[_set(_AUTHN, "SessionNotOnOrAfter", _at(timedelta(minutes=-1)))]),
            "time",
        ),
        # binding
        _v(
            "wrong_audience",
            "the Audience is another SP",
            _Recipe(prepare=[_set("//a:Audience", None, _const(f"https://sp.{EVIL_DOMAIN}/"))]),
            "binding",
        ),
        _v(
            "extra_audience_restriction",
            "a second AudienceRestriction that does not name us",
            _Recipe(prepare=[_append(_CONDITIONS, _second_audience_restriction)]),
            "binding",
        ),
        _v(
            "wrong_recipient",
            "SubjectConfirmationData Recipient is another ACS",
            _Recipe(prepare=[_set(_SCD, "Recipient", _const(evil_acs))]),
            "binding",
        ),
        _v(
            "wrong_destination",
            "Response Destination is another ACS",
            _Recipe(prepare=[_set("/p:Response", "Destination", _const(evil_acs))]),
            "binding",
        ),
        _v(
            "in_response_to_mismatch",
            "Response and SubjectConfirmationData InResponseTo disagree",
            _Recipe(
                prepare=[
                    _set("/p:Response", "InResponseTo", _request_id_or_new),
                    _set(_SCD, "InResponseTo", lambda ctx: new_request_id()),
                ]
            ),
            "binding",
        ),
        _v(
            "unknown_in_response_to",
            "InResponseTo names a request this SP never issued",
            _Recipe(
                prepare=[
                    _set("/p:Response", "InResponseTo", _const(never_issued)),
                    _set(_SCD, "InResponseTo", _const(never_issued)),
                ]
            ),
            "binding",
        ),
        _v(
            "signed_response_without_destination",
            "a signed Response without Destination (it could be posted to any SP's ACS)",
            _Recipe(prepare=[_set("/p:Response", "Destination", _const(None))], sign=_BOTH),
            "binding",
        ),
        _v(
            "laundered_unsolicited",
            "an IdP-initiated response signed twice, its Response signature stripped and a "
            "fresh AuthnRequest ID put in the now unsigned Response/@InResponseTo",
            _Recipe(
                prepare=[_unsolicited],
                sign=_BOTH,
                attack=[
                    _remove("ds:Signature"),
                    _set("/p:Response", "InResponseTo", _request_id_or_new),
                ],
            ),
            "binding",
            "policy:no_idp_initiated",
        ),
        _v(
            "non_bearer_confirmation",
            "the only SubjectConfirmation is holder-of-key, not bearer",
            _Recipe(prepare=[_set(_CONFIRMATION, "Method", _const(HOLDER_OF_KEY))]),
            "binding",
        ),
        # shape
        _v(
            "two_signed_assertions",
            "two genuinely signed assertions in one Response",
            _Recipe(prepare=[_second_assertion], sign=_sign(assertion=True)),
            "shape",
            "wrapping",
        ),
        _v(
            "assertion_not_direct_child",
            "the only assertion (validly signed) sits in samlp:Extensions",
            _Recipe(prepare=[_into_extensions], sign=_sign(assertion=True)),
            "shape",
        ),
        _v(
            "encrypted_assertion",
            "an EncryptedAssertion instead of an Assertion (not supported)",
            _Recipe(prepare=[_encrypted_assertion], sign=_RESPONSE_ONLY),
            "shape",
        ),
        _v(
            "wrong_root",
            "a signed Assertion posted on its own, without a Response",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_assertion_as_root]),
            "shape",
        ),
        _v(
            "wrong_version",
            'Response Version="1.1"',
            _Recipe(prepare=[_set("/p:Response", "Version", _const("1.1"))]),
            "shape",
        ),
        _v(
            "duplicate_ids",
            "the Response ID repeats the signed Assertion's ID",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_duplicate_ids]),
            "shape",
        ),
        _v(
            "namespaced_duplicate_id",
            "the Response carries an xml:id equal to the signed Assertion's ID",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_namespaced_duplicate_id]),
            "shape",
        ),
        _v(
            "assertion_without_id",
            "a signed Response whose assertion has no ID (nothing to key replay protection on)",
            _Recipe(prepare=[_set("a:Assertion", "ID", _const(None))], sign=_RESPONSE_ONLY),
            "shape",
        ),
        _v(
            "oversized",
            f"a signed response padded past {OVERSIZE_BYTES // 1024} KB",
            _Recipe(prepare=[_append(_ATTRIBUTES, _padding_attribute)]),
            "shape",
        ),
        _v(
            "bad_base64",
            "the SAMLResponse value is not valid base64",
            _Recipe(encode=_corrupt_base64),
            "shape",
        ),
        _v(
            "status_responder",
            "a signed Response whose Status is Responder, assertion included",
            _Recipe(prepare=[_set(_STATUS_CODE, "Value", _const(STATUS_RESPONDER))]),
            "shape",
        ),
        # signature wrapping
        _v(
            "wrap_evil_first",
            "an unsigned evil assertion first, the signed one moved into Extensions",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_wrap_evil_first]),
            "wrapping",
        ),
        _v(
            "wrap_same_id",
            "an evil assertion with the genuine ID wraps the signed one (in its Advice)",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_wrap_same_id]),
            "wrapping",
        ),
        _v(
            "wrap_in_signature_object",
            "the evil assertion holds the genuine Signature, the genuine in its ds:Object",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_wrap_in_signature_object]),
            "wrapping",
        ),
        _v(
            "wrap_copied_signature",
            "the evil assertion holds the genuine Signature, the genuine in Extensions",
            _Recipe(sign=_ASSERTION_ONLY, attack=[_wrap_copied_signature]),
            "wrapping",
        ),
        _v(
            "wrap_response",
            "the signed Response inside the Extensions of an unsigned evil Response",
            _Recipe(sign=_RESPONSE_ONLY, attack=[_wrap_response]),
            "wrapping",
        ),
        _v(
            "wrap_okta",
            "an Okta doc (both signed), its Response signature dropped, then wrap_evil_first",
            _Recipe(sign=_BOTH, attack=[_remove("ds:Signature"), _wrap_evil_first]),
            "wrapping",
        ),
        _v(
            "signature_moved_into_assertion",
            "the Response's signature (URI = Response ID) moved into the Assertion",
            _Recipe(sign=_RESPONSE_ONLY, attack=[_move_response_signature_into_assertion]),
            "wrapping",
        ),
        # injection
        _v(
            "comment_in_name_id",
            "NameID <email>.evil.test signed, then <!----> before .evil.test (CVE-2017-11427)",
            _Recipe(
                prepare=[_suffix(_NAME_ID, _INJECTED)], attack=[_comment_in(_NAME_ID, _INJECTED)]
            ),
            "injection",
        ),
        _v(
            "comment_in_attribute",
            "the same comment injection in the first attribute value",
            _Recipe(
                prepare=[_suffix(_FIRST_VALUE, _INJECTED)],
                attack=[_comment_in(_FIRST_VALUE, _INJECTED)],
            ),
            "injection",
        ),
        _v(
            "comment_in_digest_value",
            "a comment inside DigestValue (xml-crypto CVE-2025-29775)",
            _Recipe(attack=[_comment_in("(//ds:DigestValue)[1]")]),
            "injection",
        ),
        _v(
            "comment_in_signature_value",
            "a comment inside SignatureValue",
            _Recipe(attack=[_comment_in("(//ds:SignatureValue)[1]")]),
            "injection",
        ),
        _v(
            "processing_instruction",
            "an xml-stylesheet PI (probe URL) before the root, signature intact",
            _Recipe(text=[_prolog(stylesheet)]),
            "injection",
            "network",
        ),
        # XXE and friends
        _v(
            "xxe_file_entity",
            f"an internal DTD entity reading {file_path}, used in NameID",
            _Recipe(
                text=[
                    _doctype(f'<!ENTITY xxe SYSTEM "file://{file_path}">'),
                    _entity_in_name_id("&xxe;"),
                ]
            ),
            "xxe",
            "file",
        ),
        _v(
            "external_dtd",
            "a DOCTYPE whose external DTD is the probe URL",
            _Recipe(text=[_doctype(system_url=probe_url)]),
            "xxe",
            "network",
        ),
        _v(
            "parameter_entity",
            "a parameter entity that fetches the probe URL",
            _Recipe(text=[_doctype(f'<!ENTITY % remote SYSTEM "{probe_url}"> %remote;')]),
            "xxe",
            "network",
        ),
        _v(
            "xinclude",
            "a signed NameID whose content is an xi:include of the probe URL",
            _Recipe(prepare=[_xinclude(probe_url)]),
            "xxe",
            "network",
        ),
        _v(
            "billion_laughs",
            "nested entities expanding to 10^9 'lol's in NameID",
            _Recipe(text=[_doctype(_billion_laughs()), _entity_in_name_id("&lol9;")]),
            "xxe",
        ),
    ]
    return MappingProxyType({variant.name: variant for variant in table})


def _v(name: str, description: str, recipe: _Recipe, *tags: str) -> Variant:
    return Variant(name, description, recipe, frozenset(tags))


VARIANTS: Mapping[str, Variant] = variants()
