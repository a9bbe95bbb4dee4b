"""HTML form bodies as vendors post them: ``application/x-www-form-urlencoded`` and
``multipart/form-data`` (read with the standard library's MIME parser)."""

from __future__ import annotations

import email.parser
import email.policy
from email.message import Message
from urllib.parse import parse_qsl

from omnichannel_sdk import UnparseablePayloadError, WebhookRequest

__all__ = ["FormData", "read_form"]


class FormData:
    """Form fields by name (first value wins); values are bytes, :meth:`text` decodes."""

    def __init__(self, fields: dict[str, bytes], filenames: dict[str, str]) -> None:
        self.fields = fields
        self.filenames = filenames

    def get(self, name: str) -> bytes | None:
        """The raw value of field ``name``."""
        return self.fields.get(name)

    def text(self, name: str, default: str = "") -> str:
        """Field ``name`` as text (UTF-8, undecodable bytes replaced)."""
        value = self.fields.get(name)
        return default if value is None else value.decode("utf-8", errors="replace")

    def __contains__(self, name: object) -> bool:
        return name in self.fields


def read_form(request: WebhookRequest) -> FormData:
    """The request's form; :class:`UnparseablePayloadError` when it is not one."""
    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise UnparseablePayloadError("form body is not UTF-8") from None
        fields: dict[str, bytes] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            fields.setdefault(key, value.encode("utf-8"))
        return FormData(fields, {})
    if ctype != "multipart/form-data":
        raise UnparseablePayloadError(f"expected a form, got {ctype or 'no content type'}")
    header = request.header("content-type") or ""
    if "boundary=" not in header.lower():
        raise UnparseablePayloadError("multipart form without a boundary")
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    try:
        root = parser.parsebytes(b"Content-Type: " + header.encode("latin-1", "replace")
                                 + b"\r\n\r\n" + request.body)
    except (ValueError, TypeError, IndexError, LookupError, RecursionError):
        raise UnparseablePayloadError("unreadable multipart form") from None
    payload = root.get_payload()
    if not root.is_multipart() or not isinstance(payload, list):
        raise UnparseablePayloadError("unreadable multipart form")
    fields = {}
    filenames: dict[str, str] = {}
    for part in payload:
        if not isinstance(part, Message):
            continue
        try:
            name = part.get_param("name", header="content-disposition")
            filename = part.get_param("filename", header="content-disposition")
        except (ValueError, IndexError, LookupError):
            continue
        if not isinstance(name, str) or name in fields:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            raw = part.get_payload()
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        fields[name] = data
        if isinstance(filename, str):
            filenames[name] = filename
    return FormData(fields, filenames)
