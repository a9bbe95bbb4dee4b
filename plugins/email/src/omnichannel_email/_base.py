"""What every email adapter shares: settings, capabilities, turning a parsed email into an
:class:`~omnichannel_sdk.InboundMessage` (or a bounce receipt), threading, and composing our
outbound mail with the thread's headers."""

from __future__ import annotations

import dataclasses
import html as html_lib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator
from typing_extensions import TypeVar

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    InboundMessage,
    MediaPart,
    Message,
    OmnichannelError,
    ParseResult,
    Part,
    RejectedError,
    TextPart,
    media_kind,
    normalize_email,
)

from ._compose import OutboundAttachment, OutboundEmail, plain_to_html
from ._dsn import auto_reply_reason, bounce_status
from ._mime import ParsedEmail, decode_header_value, parse_mime, safe_filename, storable_value
from ._text import html_to_text, sanitize_html, split_reply
from ._threading import (
    conversation_from_token,
    plus_address,
    reply_subject,
    subject_thread_key,
)

__all__ = [
    "UNKNOWN_SENDER", "EmailAdapter", "EmailSettings", "EmailSettingsT", "put_blob_now", "storable_result"]

log = logging.getLogger("omnichannel_email")

_KEPT_HEADERS = ("auto-submitted", "precedence", "list-id", "x-mailer", "user-agent",
                 "x-autoreply", "x-auto-response-suppress", "return-path", "delivered-to",
                 "x-original-to")


UNKNOWN_SENDER = "unknown-sender@unknown.invalid"
"""The sender of mail that names none we can use (``.invalid`` is reserved: RFC 2606); such
mail carries ``metadata.sender_unknown = true``."""

MAX_REFERENCES = 50
"""The most (nearest) References ids handed to the core per message."""


def put_blob_now(blobs: Any, data: bytes) -> Any:
    """Store ``data`` in the hub's blob store from synchronous code (``parse`` is sans-IO
    and synchronous, the blob store's API is async). The built-in stores never really
    suspend, so their coroutine completes on its first step; a store that would suspend is
    left alone and ``None`` returned (the part keeps its size and SHA-256, without a key)."""
    if blobs is None:
        return None
    coro = blobs.put(data)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    except (OmnichannelError, OSError) as exc:
        log.warning("could not store an attachment: %s", type(exc).__name__)
        return None
    coro.close()
    return None


def storable_result(result: ParseResult) -> ParseResult:
    """``result`` with every item storable: a vendor's JSON may carry NUL (``\\u0000``) or
    lone surrogates in any field, which PostgreSQL and JSON refuse; those strings are
    cleaned, everything else is left as it came."""
    items: list[Any] = []
    changed = False
    for item in result.items:
        try:
            clean = "\\u0000" not in item.model_dump_json()
        except ValueError:  # a lone surrogate
            clean = False
        if clean:
            items.append(item)
        else:
            changed = True
            items.append(type(item).model_validate(storable_value(item.model_dump())))
    return dataclasses.replace(result, items=items) if changed else result


class EmailSettings(AdapterSettings):
    """Settings every email adapter takes."""

    from_address: str
    """Our mailbox, e.g. ``support@example.com`` (From of our mail, To of the customer's)."""
    from_name: str | None = None
    """Display name on our mail."""
    domain: str | None = None
    """Our mail domain (Message-IDs, plus addresses); default: the domain of ``from_address``."""
    plus_addressing: bool = True
    """Send with ``Reply-To: local+<conversation>@domain`` so replies thread by token."""
    remote_images: bool = False
    """Keep remote (http) images in sanitized HTML; off by default (tracking pixels)."""
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """Largest attachment stored; larger ones are listed in ``attachments_skipped``."""
    max_attachments: int = Field(default=100, gt=0)
    """Most attachments stored per message."""
    keep_html: bool = True
    """Keep the sanitized HTML body in the message metadata (``html``)."""

    @field_validator("from_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return normalize_email(value)


EmailSettingsT = TypeVar("EmailSettingsT", bound=EmailSettings, default=EmailSettings, covariant=True)
"""The settings model of an :class:`EmailAdapter` (``EmailAdapter[MailgunSettings]``)."""


class EmailAdapter(ChannelAdapter[EmailSettingsT]):
    """Base of the email adapters (not registered itself), generic over the vendor's settings."""

    channel: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(
        formats=frozenset({"plain", "markdown", "html"}),
        media_kinds=frozenset({"image", "audio", "video", "file", "sticker"}),
        max_media_size=25 * 1024 * 1024,
    )

    parse_in_thread_above: ClassVar[int | None] = 256 * 1024
    """MIME (and Postmark's JSON with base64 attachments) larger than 256 KiB is parsed in a
    bounded worker thread, off the event loop."""

    # -- addresses and threading ----------------------------------------------------------

    @property
    def from_address(self) -> str:
        """Our mailbox (``omnichannel normalize`` may build settings without it: then a
        placeholder, so payloads can still be explored)."""
        return getattr(self.settings, "from_address", None) or "unknown@invalid"

    @property
    def mail_domain(self) -> str:
        """Our mail domain."""
        return (self.settings.domain or self.from_address.partition("@")[2]).lower()

    def own_address(self) -> Address:
        """Our mailbox."""
        return Address(channel="email", handle=self.from_address,
                       display_name=self.settings.from_name)

    def thread_key_for(self, customer: Address, message: InboundMessage | None = None) -> str:
        """Inbound mail: customer + our mailbox + normalized subject (Re:/AW:/回复: stripped),
        reached only when no plus token and no stored Message-ID threaded the mail (replaceable
        with the ``omni_inbound_thread_key`` hook). Conversations we start get a key no inbound
        mail computes; the customer's reply finds them through our Message-ID and plus address
        instead."""
        if message is None:
            return f"{customer.handle}|{self.from_address}|started"
        return subject_thread_key(message.sender.handle, self.from_address,
                                  message.subject, message.external_id)

    # -- inbound -----------------------------------------------------------------------------

    def parse_raw(self, raw: bytes, *, envelope_to: Sequence[str] = (),
                  envelope_from: str | None = None, metadata: dict[str, Any] | None = None
                  ) -> ParseResult:
        """Parse one raw RFC 5322 message into a message or a bounce receipt."""
        parsed = parse_mime(raw, max_attachment_bytes=self.settings.max_attachment_bytes,
                            max_attachments=self.settings.max_attachments)
        parsed.envelope_to = [a for a in envelope_to if a]
        if envelope_from is not None:
            parsed.envelope_from = envelope_from.strip().strip("<>")
        return self.result_from_parsed(parsed, metadata)

    def result_from_parsed(self, parsed: ParsedEmail, metadata: dict[str, Any] | None = None
                           ) -> ParseResult:
        """A bounce becomes a ``failed`` receipt for our message; anything else a message."""
        receipt = bounce_status(parsed)
        if receipt is not None:
            return ParseResult(items=[receipt.model_copy(update={
                "metadata": storable_value(receipt.metadata),
                "error": receipt.error.model_copy(update={
                    "message": storable_value(receipt.error.message)}) if receipt.error else None,
            })])
        return ParseResult(items=[self.inbound_from_parsed(parsed, metadata)])

    def _address(self, name: str, address: str) -> Address | None:
        try:
            return Address(channel="email", handle=storable_value(address),
                           display_name=storable_value(name) or None)
        except ValueError:
            return None

    def conversation_token(self, parsed: ParsedEmail) -> str | None:
        """Our conversation id from a plus address the mail was sent to."""
        candidates = [*parsed.envelope_to, *(a for _, a in parsed.to), *(a for _, a in parsed.cc)]
        for header in ("delivered-to", "x-original-to"):
            if parsed.headers.get(header):
                candidates.append(parsed.headers[header].strip().strip("<>"))
        for address in candidates:
            found = conversation_from_token(address, self.from_address, self.settings.domain)
            if found:
                return found
        return None

    def inbound_from_parsed(self, parsed: ParsedEmail, extra: dict[str, Any] | None = None
                            ) -> InboundMessage:
        """The normalized message for a parsed email (attachments go to the blob store)."""
        author, source = parsed.author()
        sender = self._address(*author) if author else None
        if sender is None:
            # a helpdesk keeps the mail of a broken sender: stored under an explicit unknown
            # address and flagged, never dead-lettered for it
            source = "unknown"
            sender = Address(channel="email", handle=UNKNOWN_SENDER,
                             display_name=storable_value(author[0]) or None if author else None)
        recipients: list[Address] = []
        seen = {sender.handle}
        for name, addr in [*parsed.to, *parsed.cc, *(("", a) for a in parsed.envelope_to)]:
            address = self._address(name, addr)
            if address is not None and address.handle not in seen:
                seen.add(address.handle)
                recipients.append(address)
        html = sanitize_html(parsed.html, remote_images=self.settings.remote_images) \
            if parsed.html else None
        full_text = parsed.text if parsed.text and parsed.text.strip() else (
            html_to_text(html) if html else "")
        split = split_reply(full_text)
        parts: list[Part] = []
        if split.new:
            parts.append(TextPart(text=storable_value(split.new)))
        inline: dict[str, str] = {}
        skipped = list(parsed.skipped)
        blobs = self.context.blobs
        for att in parsed.attachments:
            info = put_blob_now(blobs, att.data)
            parts.append(MediaPart(
                kind=media_kind(att.content_type),
                content_type=storable_value(att.content_type),
                filename=safe_filename(storable_value(att.filename)), size=len(att.data),
                sha256=att.sha256, blob_key=info.key if info is not None else None))
            if att.content_id:
                inline[storable_value(att.content_id)] = att.sha256
        reason = auto_reply_reason(parsed)
        references = [r for r in parsed.references if r not in parsed.in_reply_to]
        references += parsed.in_reply_to  # the nearest ancestor last: the core reads backwards
        references = references[-MAX_REFERENCES:]  # each one may cost the core a lookup
        metadata: dict[str, Any] = {
            "message_id": parsed.message_id,
            "auto_reply": reason is not None,
            "full_text": full_text,
        }
        if reason:
            metadata["auto_reply_reason"] = reason
        if split.quoted:
            metadata["quoted"] = split.quoted
        if split.signature:
            metadata["signature"] = split.signature
        if html and self.settings.keep_html:
            metadata["html"] = html
        if inline:
            metadata["inline_images"] = inline
        if skipped:
            metadata["attachments_skipped"] = skipped
        if parsed.in_reply_to:
            metadata["in_reply_to"] = parsed.in_reply_to[-1]
        if parsed.cc:
            metadata["cc"] = [a for _, a in parsed.cc]
        if parsed.reply_to:
            metadata["reply_to"] = parsed.reply_to[0][1]
        kept = {k: parsed.headers[k] for k in _KEPT_HEADERS if k in parsed.headers}
        if kept:
            metadata["headers"] = kept
        if parsed.defects:
            metadata["mime_defects"] = parsed.defects
        if parsed.dsn is not None:
            metadata["dsn"] = parsed.dsn
        if source != "from":
            metadata["sender_fallback"] = source
            if source == "unknown":
                metadata["sender_unknown"] = True
            if parsed.from_raw:
                metadata["from_header"] = decode_header_value(parsed.from_raw[0], parsed.hint)[:998]
        originals = {a.sha256: a.original_filename for a in parsed.attachments if a.original_filename}
        if originals:
            metadata["original_filenames"] = originals
        if any(a.from_tnef for a in parsed.attachments):
            metadata["tnef_unpacked"] = True
        metadata.update(extra or {})
        metadata = storable_value(metadata)  # NUL and raw bytes from vendors' fields too
        token = self.conversation_token(parsed) if self.settings.plus_addressing else None
        return InboundMessage(
            external_id=storable_value(parsed.message_id) or f"sha256:{parsed.raw_sha256}",
            sender=sender, recipients=recipients, parts=parts,
            subject=storable_value(parsed.subject) or None,
            created_at=parsed.date, references=references, conversation_hint=token,
            profile={"name": sender.display_name} if sender.display_name else {},
            metadata=metadata)

    # -- outbound ----------------------------------------------------------------------------

    def message_id_for(self, message: Message) -> str:
        """Our Message-ID for ``message`` (stable across retries: the idempotency key)."""
        return f"{message.id}@{self.mail_domain}"

    async def _thread_of(self, message: Message) -> list[Message]:
        services = self.context.services
        if not services.running:
            return []
        try:
            return [m for m in await services.store.list_messages(message.conversation_id)
                    if m.id != message.id]
        except OmnichannelError:
            return []

    async def outbound_email(self, message: Message, parts: Sequence[Part]) -> OutboundEmail:
        """Our email for ``message``: headers of the thread, bodies, attachments.

        Refuses (:class:`RejectedError`) to let a bot or the system answer an automatic
        message — the auto-reply loop RFC 3834 warns about.
        """
        thread = await self._thread_of(message)
        automatic = message.author is None or message.author.kind != "human"
        answered = next((m for m in thread if m.id == message.reply_to), None) if message.reply_to \
            else next((m for m in reversed(thread) if m.direction == "inbound"), None)
        if automatic and answered is not None and answered.metadata.get("auto_reply"):
            raise RejectedError(f"{self.name}: not answering an automatic email automatically "
                                f"({answered.metadata.get('auto_reply_reason', 'auto-reply')})")
        ids = [m.external_id for m in thread if m.external_id and m.channel == "email"]
        references = ids if len(ids) <= 20 else [ids[0], *ids[-19:]]
        in_reply_to = answered.external_id if answered is not None else (ids[-1] if ids else None)
        subject = message.subject or ""
        if references:
            subject = reply_subject(subject)
        texts: list[str] = []
        htmls: list[str] = []
        attachments: list[OutboundAttachment] = []
        for part in parts:
            if isinstance(part, TextPart):
                if part.format == "html":
                    htmls.append(part.text)
                    texts.append(html_to_text(part.text))
                else:
                    texts.append(part.text)
                    htmls.append(plain_to_html(part.text))
            elif isinstance(part, MediaPart):
                data = None
                if part.blob_key and self.context.blobs is not None:
                    try:
                        data = await self.context.blobs.get(part.blob_key)
                    except OmnichannelError:
                        data = None
                if data is not None:
                    attachments.append(OutboundAttachment(
                        data=data, content_type=part.content_type or "application/octet-stream",
                        filename=part.filename or f"{part.kind}"))
                elif part.url:
                    label = part.caption or part.filename or part.kind
                    texts.append(f"{label}: {part.url}")
                    htmls.append(f'<p><a href="{html_lib.escape(part.url)}">{html_lib.escape(label)}</a></p>')
                if part.caption and data is not None:
                    texts.append(part.caption)
                    htmls.append(plain_to_html(part.caption))
        to = [(a.display_name or "", a.handle) for a in message.recipients]
        if not to:
            raise RejectedError(f"{self.name}: the message has no recipient")
        return OutboundEmail(
            message_id=self.message_id_for(message), from_address=self.from_address,
            from_name=self.settings.from_name, to=to, subject=subject,
            text="\n\n".join(t for t in texts if t), html="".join(htmls) or None,
            reply_to=plus_address(self.from_address, message.conversation_id)
            if self.settings.plus_addressing else None,
            in_reply_to=in_reply_to, references=references, auto_submitted=automatic,
            attachments=attachments)

