"""What one email says (:class:`ParsedEmail`) and its files (:class:`Attachment`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._headers import _valid_addr, parse_addresses, salvage_address


@dataclass
class Attachment:
    """A file or inline image found in the message."""

    data: bytes
    """The decoded bytes."""
    content_type: str
    """Its MIME type, lower-cased."""
    filename: str | None = None
    """The file name, decoded (RFC 2231 / RFC 2047)."""
    content_id: str | None = None
    """``Content-ID`` without brackets, for inline ``cid:`` images."""
    inline: bool = False
    """Whether the part was shown inline (disposition ``inline`` with a Content-ID)."""
    original_filename: str | None = None
    """The name as the mail gave it, when :attr:`filename` had to be made safe."""
    from_tnef: bool = False
    """Unpacked from an Outlook ``winmail.dat`` (TNEF)."""

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedEmail:
    """What one email says, independent of how it arrived."""

    message_id: str | None = None
    """``Message-ID`` without brackets."""
    in_reply_to: list[str] = field(default_factory=list)
    """``In-Reply-To`` ids."""
    references: list[str] = field(default_factory=list)
    """``References`` ids, oldest first."""
    subject: str = ""
    """Decoded subject."""
    from_: list[tuple[str, str]] = field(default_factory=list)
    """``From`` (name, address) pairs."""
    to: list[tuple[str, str]] = field(default_factory=list)
    """``To`` pairs."""
    cc: list[tuple[str, str]] = field(default_factory=list)
    """``Cc`` pairs."""
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    """``Reply-To`` pairs."""
    envelope_to: list[str] = field(default_factory=list)
    """SMTP ``RCPT TO`` addresses, when the transport knows them."""
    envelope_from: str | None = None
    """SMTP ``MAIL FROM`` (empty for bounces)."""
    date: datetime | None = None
    """``Date``, in UTC."""
    text: str | None = None
    """The plain-text body."""
    html: str | None = None
    """The HTML body (not yet sanitized)."""
    attachments: list[Attachment] = field(default_factory=list)
    """Files and inline images."""
    headers: dict[str, str] = field(default_factory=dict)
    """Every header, decoded, lower-case names (the first of repeated ones)."""
    dsn: dict[str, Any] | None = None
    """A delivery status notification's report (see :mod:`._dsn`)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """Attachments left out (too large, too many), with why."""
    defects: list[str] = field(default_factory=list)
    """Malformations the parser tolerated."""
    raw_sha256: str | None = None
    """SHA-256 of the raw message (the external id of mail without a Message-ID)."""

    sender_header: list[tuple[str, str]] = field(default_factory=list)
    """``Sender`` pairs."""
    return_path: str | None = None
    """``Return-Path`` address (what the last MTA recorded as the envelope sender)."""
    from_raw: list[str] = field(default_factory=list)
    """Every ``From`` header as it came (a mail may carry a junk one and a good one)."""
    hint: str | None = None
    """The charset the message's text parts declare (raw 8-bit headers are read in it)."""

    def author(self) -> tuple[tuple[str, str] | None, str]:
        """The author and where it was found: ``from``, ``from-salvaged`` (an address dug out
        of a From that does not parse), ``sender``, ``reply-to``, ``return-path``,
        ``envelope``, ``from-2`` (a second From header); ``(None, "unknown")`` when nothing
        names one."""
        if self.from_:
            return self.from_[0], "from"
        first = self.from_raw[0] if self.from_raw else None
        salvaged = salvage_address(first, self.hint)
        if salvaged is not None:
            return salvaged, "from-salvaged"
        if self.sender_header:
            return self.sender_header[0], "sender"
        if self.reply_to:
            return self.reply_to[0], "reply-to"
        for source, value in (("return-path", self.return_path), ("envelope", self.envelope_from)):
            if value and _valid_addr(value):
                return ("", value), source
        for value in self.from_raw[1:]:
            found = parse_addresses(value, self.hint)
            pair = found[0] if found else salvage_address(value, self.hint)
            if pair is not None:
                return pair, "from-2"
        return None, "unknown"

    @property
    def sender(self) -> tuple[str, str] | None:
        """The author (see :meth:`author`), ``None`` when the mail names none."""
        return self.author()[0]
