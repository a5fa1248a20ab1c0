"""The HTTP-Redirect and HTTP-POST bindings: encoding, bounded decoding and the auto-post page.

Both decoders are bounded before any work is done, because both inputs come straight from a
browser: a 1 KB DEFLATE stream can inflate to gigabytes (zip bomb), so inflation stops at
``max_bytes`` instead of trusting the stream.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import zlib
from collections.abc import Mapping

DEFAULT_MAX_BYTES = 256 * 1024
_WHITESPACE = re.compile(rb"[ \t\r\n]+")


def encode_redirect(xml: bytes) -> str:
    """Raw DEFLATE then base64: the ``SAMLRequest`` value before URL-encoding."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode("ascii")


def decode_redirect(value: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Inverse of :func:`encode_redirect`; ValueError on bad base64, bad DEFLATE or oversize."""
    compressed = _b64decode(value, max_bytes=max_bytes)
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError("SAMLRequest is not raw DEFLATE data") from exc
    if len(xml) > max_bytes or inflater.unconsumed_tail:
        raise ValueError(f"SAMLRequest inflates beyond {max_bytes} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("SAMLRequest is not one complete DEFLATE stream")
    return xml


def encode_post(xml: bytes) -> str:
    """Plain base64: the ``SAMLResponse`` / ``SAMLRequest`` form value of the POST binding."""
    return base64.b64encode(xml).decode("ascii")


def decode_post(value: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Strict base64 (line breaks tolerated, as some IdPs wrap at 76); ValueError otherwise."""
    return _b64decode(value, max_bytes=max_bytes)


def _b64decode(value: str, *, max_bytes: int) -> bytes:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("not base64: non-ASCII characters") from exc
    compact = _WHITESPACE.sub(b"", raw)
    if len(compact) > (max_bytes + 2) // 3 * 4:
        raise ValueError(f"encoded value is larger than {max_bytes} bytes")
    try:
        decoded = base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    if len(decoded) > max_bytes:
        raise ValueError(f"encoded value is larger than {max_bytes} bytes")
    return decoded


def post_form(action: str, fields: Mapping[str, str], *, title: str) -> str:
    """An HTML page that POSTs ``fields`` to ``action`` on load, with a Continue button for no-JS.

    Every value is escaped: ``RelayState`` is attacker-influenced and lands in an attribute.
    """
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        '<body onload="document.forms[0].submit()">\n'
        f'<form method="post" action="{html.escape(action)}">\n{inputs}\n'
        "<noscript><p>JavaScript is disabled. Press Continue to proceed.</p>"
        '<button type="submit" id="continue" data-testid="continue">Continue</button></noscript>\n'
        "</form>\n</body></html>\n"
    )
