"""The one way SAML XML is parsed: no DTD, no entities, no comments, no processing instructions.

Real IdPs and SPs emit none of these, and each one is an attack vector (XXE, billion laughs,
comment-injection that splits a signed NameID: see docs/saml.md), so they are refused outright
instead of being neutralised. XInclude is never processed: nothing here calls ``xinclude()``.
"""

from __future__ import annotations

from lxml import etree

DEFAULT_MAX_BYTES = 256 * 1024


class XmlRejected(ValueError):
    """The document is not XML this project is willing to read; the message says why."""


def strict_parser(*, allow_comments: bool = False) -> etree.XMLParser:
    """A new parser with this module's settings (lxml parsers are not shared across threads).

    It resolves no entity, loads no DTD and touches no network; what it still accepts (comments,
    processing instructions) :func:`parse_strict` refuses after parsing. Hand it to any library
    that re-parses a document already read here (signxml), so there is one way of parsing.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=allow_comments,
        remove_pis=False,
        remove_blank_text=False,
        encoding="utf-8",
    )


def parse_strict(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, allow_comments: bool = False
) -> etree._Element:
    """Parse ``data`` as UTF-8 XML and return its root, or raise :class:`XmlRejected`.

    ``allow_comments`` drops comments instead of refusing them; it exists for metadata that admins
    paste from federation files, never for protocol messages.
    """
    if len(data) > max_bytes:
        raise XmlRejected(f"document larger than {max_bytes} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlRejected("document is not UTF-8") from exc
    try:
        root = etree.fromstring(data, strict_parser(allow_comments=allow_comments))
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"malformed XML: {exc.msg}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("DTDs are not allowed")
    outside = [*root.itersiblings(preceding=True), *root.itersiblings()]
    for node in [*outside, *root.iter()]:
        _refuse_node(node)
    return root


def _refuse_node(node: etree._Element) -> None:
    if isinstance(node, etree._Entity):
        raise XmlRejected("entity references are not allowed")
    if isinstance(node, etree._Comment):
        raise XmlRejected("comments are not allowed")
    if isinstance(node, etree._ProcessingInstruction):
        raise XmlRejected("processing instructions are not allowed")


_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def to_bytes(element: etree._Element) -> bytes:
    """Serialise ``element`` as UTF-8 with an XML declaration, byte-for-byte what was signed."""
    return _DECLARATION + etree.tostring(element, encoding="UTF-8", xml_declaration=False)
