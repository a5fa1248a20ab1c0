"""X.509 certificates and the IdP signing key, in the encodings admins and metadata use.

IdP certificates reach us as PEM files, DER downloads or the bare base64 body copied out of a
``<ds:X509Certificate>``; all three load through :func:`load_certificate`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
_WHITESPACE = re.compile(rb"\s+")


def load_certificate(data: bytes | str) -> x509.Certificate:
    """A certificate from PEM, DER or bare base64 DER; ValueError for anything else."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        if _PEM_MARKER in raw:
            return x509.load_pem_x509_certificate(raw)
        if raw[:1] == b"\x30":
            return x509.load_der_x509_certificate(raw)
        der = base64.b64decode(_WHITESPACE.sub(b"", raw), validate=True)
        return x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not an X.509 certificate in PEM, DER or base64 form") from exc


def certificate_pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_b64(cert: x509.Certificate) -> str:
    """The DER certificate as one line of base64: the ``<ds:X509Certificate>`` content."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """``AB:CD:...``: the form IdP admin consoles display, so admins can compare by eye."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclass(frozen=True)
class SigningKey:
    """An RSA private key and its certificate, parsed once.

    Loading a PEM key costs ~45 ms (cryptography validates it), 60x the signature itself, so the
    key object is kept and reused for every response (docs/saml.md, pitfalls).
    """

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(
        cls,
        common_name: str,
        *,
        bits: int = 2048,
        valid_days: int = 3650,
        now: datetime | None = None,
    ) -> SigningKey:
        """A fresh key and a self-signed certificate, as IdPs issue for each SAML app."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        issued = now or datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
            .not_valid_before(issued - timedelta(days=1))
            .not_valid_after(issued + timedelta(days=valid_days))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes) -> SigningKey:
        """Load a PEM key and certificate; ValueError unless the key is RSA and matches the cert."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the SAML signing key must be RSA")
        cert = load_certificate(cert_pem)
        if cert.public_key() != key.public_key():
            raise ValueError("the certificate does not belong to the private key")
        return cls(key, cert)

    def private_key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM, for writing next to the simulator's config."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
