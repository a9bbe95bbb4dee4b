"""Building our outbound emails: our own Message-ID, In-Reply-To / References, a ``Re:``
subject, plain text and HTML alternatives, inline images and attachments, and
``Auto-Submitted: auto-replied`` when a machine wrote the message (RFC 3834)."""

from __future__ import annotations

import email.policy
import email.utils
import html as html_lib
from dataclasses import dataclass, field
from email.message import EmailMessage

from ._text import html_to_text

__all__ = ["OutboundAttachment", "OutboundEmail", "build_message", "plain_to_html"]


@dataclass
class OutboundAttachment:
    """A file to attach (or an image to show inline by its Content-ID)."""

    data: bytes
    """The bytes."""
    content_type: str = "application/octet-stream"
    """MIME type."""
    filename: str | None = None
    """File name shown to the recipient."""
    content_id: str | None = None
    """Set to show the image inline, referenced as ``cid:<content_id>`` in the HTML."""


@dataclass
class OutboundEmail:
    """Everything one outbound email says, independent of how it is handed over."""

    message_id: str
    """Our Message-ID, without brackets (also the external id)."""
    from_address: str
    """Our address."""
    to: list[tuple[str, str]]
    """Recipients as ``(name, address)``."""
    subject: str = ""
    """Subject line."""
    text: str = ""
    """Plain-text body."""
    html: str | None = None
    """HTML alternative."""
    from_name: str | None = None
    """Our display name."""
    cc: list[tuple[str, str]] = field(default_factory=list)
    """Copies."""
    reply_to: str | None = None
    """Where replies go (our plus address)."""
    in_reply_to: str | None = None
    """The Message-ID we answer."""
    references: list[str] = field(default_factory=list)
    """The thread's Message-IDs, oldest first."""
    auto_submitted: bool = False
    """Whether a bot or the system wrote it (adds ``Auto-Submitted: auto-replied``)."""
    attachments: list[OutboundAttachment] = field(default_factory=list)
    """Files and inline images."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers."""

    def header_pairs(self) -> list[tuple[str, str]]:
        """The threading and loop headers, as vendors' APIs take them."""
        pairs = [("Message-ID", f"<{self.message_id}>")]
        if self.in_reply_to:
            pairs.append(("In-Reply-To", f"<{self.in_reply_to}>"))
        if self.references:
            pairs.append(("References", " ".join(f"<{r}>" for r in self.references)))
        if self.auto_submitted:
            pairs.append(("Auto-Submitted", "auto-replied"))
            pairs.append(("X-Auto-Response-Suppress", "All"))
        pairs.extend(self.headers.items())
        return pairs


def plain_to_html(text: str) -> str:
    """Escaped paragraphs and line breaks: the HTML alternative of plain text."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html_lib.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs)


def _addr(name: str | None, address: str) -> str:
    return email.utils.formataddr((name or "", address))


def build_message(out: OutboundEmail) -> EmailMessage:
    """The RFC 5322 message for ``out`` (CRLF line ends, ready for SMTP or a MIME API)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Message-ID"] = f"<{out.message_id}>"
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["From"] = _addr(out.from_name, out.from_address)
    msg["To"] = ", ".join(_addr(n, a) for n, a in out.to)
    if out.cc:
        msg["Cc"] = ", ".join(_addr(n, a) for n, a in out.cc)
    msg["Subject"] = out.subject
    if out.reply_to:
        msg["Reply-To"] = out.reply_to
    for name, value in out.header_pairs()[1:]:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    text = out.text or (html_to_text(out.html) if out.html else "")
    msg.set_content(text, charset="utf-8")
    inline = [a for a in out.attachments if a.content_id and out.html]
    files = [a for a in out.attachments if a not in inline]
    if out.html is not None:
        msg.add_alternative(out.html, subtype="html", charset="utf-8")
        if inline:
            html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
            assert isinstance(html_part, EmailMessage)
            for att in inline:
                maintype, _, subtype = att.content_type.partition("/")
                html_part.add_related(att.data, maintype=maintype or "application",
                                      subtype=subtype or "octet-stream",
                                      cid=f"<{att.content_id}>", filename=att.filename)
    for att in files:
        maintype, _, subtype = att.content_type.partition("/")
        if maintype == "text":
            msg.add_attachment(att.data, maintype="application", subtype="octet-stream",
                               filename=att.filename or "attachment")
            continue
        msg.add_attachment(att.data, maintype=maintype or "application",
                           subtype=subtype or "octet-stream", filename=att.filename or "attachment")
    return msg
