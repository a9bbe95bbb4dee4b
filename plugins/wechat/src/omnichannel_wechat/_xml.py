"""WeChat's flat XML, read with defusedxml only (no DTD, no entities, no external references).

Inbound payloads are one ``<xml>`` element whose children are the fields; a few events carry
nested groups (``ScanCodeInfo``, ``SendPicsInfo``…), read as dicts (repeated tags as lists).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]

__all__ = ["XmlError", "build_xml", "flat_fields", "parse_xml"]

MAX_XML_BYTES = 1024 * 1024
"""Largest XML document accepted (WeChat's own payloads are a few kilobytes)."""
_MAX_DEPTH = 6
_KEEP = _MAX_DEPTH + 1  # open elements kept: the root and six levels of fields


class XmlError(ValueError):
    """The bytes are not an acceptable WeChat XML document."""


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """The children of the root element as ``{tag: text}`` (nested groups as dicts, repeated
    tags as lists; what is nested deeper than six levels is dropped).

    Raises :class:`XmlError` for malformed XML, any DTD (entity bombs and external entities
    are refused before expansion), or a document over :data:`MAX_XML_BYTES`.
    """
    if len(data) > MAX_XML_BYTES:
        raise XmlError("XML document too large")
    if not data.strip():
        raise XmlError("empty body")
    flat = flat_fields(data)
    if flat is not None:
        return flat
    return _parse(data)


# The shape of every WeChat payload: one root, flat fields, each a CDATA section or plain
# text. Documents of exactly this shape are read with two regular expressions (half the cost
# of expat on these small documents); anything else — a prolog, a BOM, attributes, nesting,
# entities or character references, comments, repeated or namespaced tags, carriage returns
# (which XML normalises), characters XML cannot carry — goes to the defused parser, so no
# document is read differently (``tests/test_wechat_fuzz.py`` checks the two agree).
# A CDATA section's content never holds "]]>" (so a section cannot swallow the fields after
# it, and a failed match backtracks in linear time); plain text holds no markup.
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
_VALUE = r"(?:<!\[CDATA\[([^\]]*(?:\](?!\]>)[^\]]*)*)\]\]>|([^<&]*))"
_FLAT_DOC = re.compile(
    rf"[ \t\n]*<({_NAME})>((?:[ \t\n]*<{_NAME}>{_VALUE}</{_NAME}>)*)[ \t\n]*</\1>[ \t\n]*")
_FLAT_FIELD = re.compile(rf"<({_NAME})>{_VALUE}</({_NAME})>")
_REFUSED = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_FLAT_MAX = 64 * 1024
"""Larger documents always go to the parser (WeChat's are a few kilobytes)."""


def flat_fields(data: bytes | str) -> dict[str, Any] | None:
    """The fields of a document of WeChat's flat shape, exactly as the XML parser reads them,
    or ``None`` when the document is not of that shape (the parser must decide)."""
    if len(data) > _FLAT_MAX:
        return None
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        text = data
    doc = _FLAT_DOC.fullmatch(text)
    if doc is None or _REFUSED.search(text) is not None:
        return None
    found = _FLAT_FIELD.findall(doc.group(2))
    fields: dict[str, Any] = {}
    for name, cdata, plain, closing in found:
        # a mismatched end tag is malformed, "]]>" is not allowed in text: the parser says so
        if closing != name or (plain and "]]>" in plain):
            return None
        fields[name] = cdata or plain  # (an empty section and empty text are both "")
    return fields if len(found) == len(fields) else None  # a repeated tag is a list: the parser


def _parse(data: bytes | str) -> dict[str, Any]:
    target = _Fields()
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    # element events straight to the target, skipping ElementTree's namespace fix-up (we
    # read no namespaces); defusedxml's DTD, entity and external-reference handlers stay
    expat = parser.parser
    expat.StartElementHandler = target.start
    expat.EndElementHandler = target.end
    # ElementTree's default handler only reports doctypes and undefined entities: DTDs are
    # refused above, and without one expat rejects an undefined entity itself
    expat.DefaultHandlerExpand = None
    try:
        parser.feed(data)
        fields: dict[str, Any] = parser.close()
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise XmlError(f"not acceptable XML: {type(exc).__name__}") from None
    return fields


class _Fields:
    """A parser target that builds the field dicts directly, without an element tree. Open
    elements live on three parallel stacks of tags, child fields and text, so a document
    allocates little more than its result (few objects for the garbage collector to track)."""

    __slots__ = ("_children", "_depth", "_result", "_tags", "_texts")

    def __init__(self) -> None:
        self._tags: list[str] = []
        self._children: list[dict[str, Any] | None] = []
        self._texts: list[str] = []
        self._depth = 0
        self._result: dict[str, Any] = {}

    def start(self, tag: str, attrib: Any) -> None:
        """An element opens."""
        self._depth += 1
        if self._depth <= _KEEP:
            self._tags.append(tag)
            self._children.append(None)
            self._texts.append("")

    def data(self, text: str) -> None:
        """Character data of the innermost element."""
        if self._depth <= _KEEP and self._texts:
            self._texts[-1] += text

    def end(self, tag: str) -> None:
        """An element closes: its value goes into its parent's fields."""
        self._depth -= 1
        if self._depth >= _KEEP:
            return
        name = self._tags.pop()
        children = self._children.pop()
        text = self._texts.pop()
        if not self._tags:  # the root closed
            self._result = children or {}
            return
        value: Any = children if children is not None else text
        fields = self._children[-1]
        if fields is None:
            fields = self._children[-1] = {}
        if name in fields:
            previous = fields[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                fields[name] = [previous, value]
        else:
            fields[name] = value

    def close(self) -> dict[str, Any]:
        """The root's fields."""
        return self._result


_NOT_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _cdata(text: str) -> str:
    # characters XML 1.0 cannot carry are dropped; "]]>" cannot appear inside one CDATA
    # section, so it is split across two
    text = _NOT_XML_CHARS.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _node(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(_node(k, v) for k, v in value.items()) + f"</{tag}>"
    if isinstance(value, list):
        return "".join(_node(tag, v) for v in value)
    if isinstance(value, bool | int):
        return f"<{tag}>{int(value)}</{tag}>"
    return f"<{tag}>{_cdata(str(value))}</{tag}>"


def build_xml(fields: dict[str, Any]) -> bytes:
    """An ``<xml>`` document of ``fields`` (strings as CDATA, integers bare, dicts nested,
    lists as repeated tags), UTF-8."""
    return ("<xml>" + "".join(_node(k, v) for k, v in fields.items()) + "</xml>").encode("utf-8")
