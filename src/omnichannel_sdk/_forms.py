"""Reading HTML form bodies the way vendors post them: ``application/x-www-form-urlencoded``
and ``multipart/form-data`` (with files, and parts such as a ``message/rfc822`` e-mail), with
python-multipart's streaming parsers.

One reader for every plugin: :func:`read_form` takes a :class:`~omnichannel_sdk.WebhookRequest`
(or :func:`parse_form` a content type and bytes) and returns :class:`FormData`. Values stay bytes
(a vendor may post a raw e-mail, a file, or text in a legacy charset); :meth:`FormData.text`
decodes with the part's own ``charset``, the form's ``_charset_`` field, or UTF-8.

Hostile input ends in :class:`~omnichannel_sdk.UnparseablePayloadError`, never another
exception: a multipart body without its closing boundary (cut off in transfer), more fields or
bytes than the limits allow, malformed part headers.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import MultipartParseError, QuerystringParseError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header

from ._errors import UnparseablePayloadError
from ._webhook import WebhookRequest

__all__ = ["FormData", "FormField", "parse_form", "read_form"]

MAX_FIELDS = 10_000
"""Default most fields (parts) one form may have."""
MAX_PART_HEADERS = 32
"""Most header lines one multipart part may have."""


@dataclass
class FormField:
    """One field of a form: a plain value or an uploaded file."""

    name: str
    """The field name (decoded as UTF-8, undecodable bytes replaced)."""
    data: bytes
    """The value's bytes (a part's ``Content-Transfer-Encoding`` undone)."""
    filename: str | None = None
    """The file name a multipart part gave (``filename`` / RFC 7578 ``filename*``), or ``None``."""
    content_type: str | None = None
    """The part's MIME type, lower-cased, without parameters (``None``: not given)."""
    charset: str | None = None
    """The ``charset`` parameter of the part's ``Content-Type``."""
    headers: dict[str, str] = field(default_factory=dict)
    """The part's headers, lower-case names (the first of repeated ones)."""

    @property
    def is_file(self) -> bool:
        """Whether the part is a file: it has a file name, or a content type that is not text
        (a ``message/rfc822`` part is one)."""
        if self.filename is not None:
            return True
        return self.content_type is not None and not self.content_type.startswith("text/")

    def text(self, default_charset: str = "utf-8") -> str:
        """The value as text in its own charset (else ``default_charset``); bytes that do not
        decode are replaced, an unknown charset label falls back to UTF-8."""
        for charset in (self.charset, default_charset, "utf-8"):
            if not charset:
                continue
            try:
                return self.data.decode(charset, errors="replace")
            except LookupError:
                continue
        return self.data.decode("utf-8", errors="replace")  # pragma: no cover - utf-8 exists


class FormData:
    """A parsed form: its fields in order, looked up by name (the first value wins)."""

    def __init__(self, items: list[FormField]) -> None:
        self.items = items
        """Every field in the order it came."""
        self._first: dict[str, FormField] = {}
        for item in items:
            self._first.setdefault(item.name, item)
        charset = self._first.get("_charset_")
        self.charset = charset.data.decode("ascii", "replace").strip() if charset else "utf-8"
        """The form's charset (its ``_charset_`` field, HTML's convention), else UTF-8."""

    def field(self, name: str) -> FormField | None:
        """The first field called ``name``."""
        return self._first.get(name)

    def get(self, name: str) -> bytes | None:
        """The raw value of the first field called ``name``."""
        item = self._first.get(name)
        return item.data if item is not None else None

    def getlist(self, name: str) -> list[bytes]:
        """Every value of the fields called ``name``."""
        return [item.data for item in self.items if item.name == name]

    def text(self, name: str, default: str = "") -> str:
        """Field ``name`` as text (see :meth:`FormField.text`), ``default`` when absent."""
        item = self._first.get(name)
        return default if item is None else item.text(self.charset)

    @property
    def fields(self) -> dict[str, bytes]:
        """Every plain (non-file) field by name, first value each."""
        return {name: item.data for name, item in self._first.items() if not item.is_file}

    @property
    def files(self) -> dict[str, FormField]:
        """Every file part by field name (first each)."""
        return {name: item for name, item in self._first.items() if item.is_file}

    @property
    def filenames(self) -> dict[str, str]:
        """File names by field name, for the parts that gave one."""
        return {name: item.filename for name, item in self._first.items() if item.filename}

    def keys(self) -> list[str]:
        """Field names in order of first appearance."""
        return list(self._first)

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"<FormData {len(self.items)} fields>"


def read_form(
    request: WebhookRequest, *, max_fields: int = MAX_FIELDS, max_bytes: int | None = None
) -> FormData:
    """The form a request carries (see :func:`parse_form`)."""
    return parse_form(request.header("content-type") or "", request.body,
                      max_fields=max_fields, max_bytes=max_bytes)


def parse_form(
    content_type: str, body: bytes, *, max_fields: int = MAX_FIELDS, max_bytes: int | None = None
) -> FormData:
    """Parse a form body given its full ``Content-Type`` header.

    Raises :class:`~omnichannel_sdk.UnparseablePayloadError` when the body is not a form, is
    truncated (a multipart body without its closing boundary), or exceeds ``max_fields`` fields
    or ``max_bytes`` bytes (default: no byte limit beyond the body itself).
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise UnparseablePayloadError(f"form body larger than {max_bytes} bytes")
    try:
        ctype_raw, params = parse_options_header(content_type)
    except (ValueError, UnicodeError):
        raise UnparseablePayloadError("unreadable Content-Type") from None
    ctype = ctype_raw.decode("latin-1").lower()
    if ctype == "application/x-www-form-urlencoded":
        return _urlencoded(body, max_fields)
    if ctype == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise UnparseablePayloadError("multipart form without a boundary")
        return _multipart(boundary, body, max_fields)
    raise UnparseablePayloadError(f"expected a form, got {ctype or 'no content type'}")


def _urlencoded(body: bytes, max_fields: int) -> FormData:
    pairs: list[tuple[bytes, bytes]] = []
    current: dict[str, bytearray] = {"name": bytearray(), "data": bytearray()}

    def on_field_start() -> None:
        current["name"] = bytearray()
        current["data"] = bytearray()

    def on_field_name(data: bytes, start: int, end: int) -> None:
        current["name"] += data[start:end]

    def on_field_data(data: bytes, start: int, end: int) -> None:
        current["data"] += data[start:end]

    def on_field_end() -> None:
        if len(pairs) >= max_fields:
            raise UnparseablePayloadError(f"more than {max_fields} form fields")
        pairs.append((bytes(current["name"]), bytes(current["data"])))

    parser = QuerystringParser({"on_field_start": on_field_start, "on_field_name": on_field_name,
                                "on_field_data": on_field_data, "on_field_end": on_field_end})
    try:
        parser.write(body)
        parser.finalize()
    except QuerystringParseError:
        raise UnparseablePayloadError("unreadable form body") from None
    items = []
    for name, value in pairs:
        if not name and not value:
            continue
        # "+" is a space in forms; percent escapes are bytes in the form's charset
        items.append(FormField(name=unquote_to_bytes(name.replace(b"+", b" ")).decode(
            "utf-8", errors="replace"), data=unquote_to_bytes(value.replace(b"+", b" "))))
    return FormData(items)


class _Collector:
    """Callbacks of python-multipart's streaming parser, collecting whole parts."""

    def __init__(self, max_fields: int) -> None:
        self.max_fields = max_fields
        self.parts: list[tuple[list[tuple[bytes, bytes]], bytearray]] = []
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
            "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end, "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        if len(self.parts) >= self.max_fields:
            raise UnparseablePayloadError(f"more than {self.max_fields} form fields")
        self.parts.append(([], bytearray()))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1][1].extend(data[start:end])

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.parts[-1][0].append((bytes(self.header_name), bytes(self.header_value)))
        self.header_name = bytearray()
        self.header_value = bytearray()

    def on_end(self) -> None:
        self.ended = True


def _multipart(boundary: bytes, body: bytes, max_fields: int) -> FormData:
    collector = _Collector(max_fields)
    try:
        parser = MultipartParser(boundary, collector.callbacks(),  # type: ignore[arg-type]
                                 max_header_count=MAX_PART_HEADERS)
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError):
        raise UnparseablePayloadError("unreadable multipart form") from None
    if not collector.ended:
        # the closing boundary never came: the body was cut off, and a cut body is never parsed
        raise UnparseablePayloadError("truncated multipart form (no closing boundary)")
    items = []
    for raw_headers, data in collector.parts:
        item = _field(raw_headers, bytes(data))
        if item is not None:
            items.append(item)
    return FormData(items)


def _field(raw_headers: list[tuple[bytes, bytes]], data: bytes) -> FormField | None:
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        # header values are UTF-8 in practice (RFC 7578 allows it); Latin-1 never fails
        headers.setdefault(raw_name.decode("latin-1").strip().lower(), _text(raw_value).strip())
    disposition, dparams = _options(headers.get("content-disposition"))
    if disposition != "form-data":
        return None
    name = dparams.get("name")
    if name is None:
        return None
    filename = _filename(dparams, headers.get("content-disposition", ""))
    ctype, cparams = _options(headers.get("content-type"))
    encoding = headers.get("content-transfer-encoding", "").strip().lower()
    if encoding == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()), validate=False)
        except (binascii.Error, ValueError):
            raise UnparseablePayloadError(f"form field {name!r}: bad base64") from None
    elif encoding == "quoted-printable":
        data = quopri.decodestring(data)
    return FormField(name=name, data=data, filename=filename, content_type=ctype or None,
                     charset=cparams.get("charset") or None, headers=headers)


def _options(value: str | None) -> tuple[str, dict[str, str]]:
    if not value:
        return "", {}
    try:
        main, params = parse_options_header(value.encode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeError):
        return "", {}
    decoded = {k.decode("latin-1").lower(): _text(v) for k, v in params.items()}
    return main.decode("latin-1").lower(), decoded


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


_EXT_FILENAME = re.compile(r"(?i)(?:^|;)\s*filename\*\s*=\s*\"?([^;\"]*)")


def _filename(params: dict[str, str], disposition: str) -> str | None:
    found = _EXT_FILENAME.search(disposition)
    if found:  # RFC 5987 (charset'language'percent-encoded); the parser drops these
        charset, _, rest = found.group(1).strip().partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return unquote_to_bytes(encoded).decode(charset or "utf-8", errors="replace")
        except LookupError:
            return unquote_to_bytes(encoded).decode("utf-8", errors="replace")
    return params.get("filename")
