"""The normalized model: addresses, parts, messages, conversations, contacts, receipts.

Every model is a frozen pydantic v2 model; change one with ``model_copy(update=...)``. The JSON
field names are public API (see SPEC §6). Vendor-only data lives in ``metadata``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

import nh3
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._addresses import normalize_handle

__all__ = [
    "media_kind",
    "Action",
    "ActionsPart",
    "Address",
    "Author",
    "Contact",
    "ContactMerge",
    "Conversation",
    "DeadLetter",
    "EventPart",
    "LocationPart",
    "MediaPart",
    "MergeProposal",
    "Message",
    "MessageError",
    "MessageStatus",
    "Part",
    "StatusUpdate",
    "TemplatePart",
    "TextPart",
    "TranscriptPart",
    "TranscriptSegment",
    "utcnow",
]

MessageStatus = Literal["received", "queued", "sent", "delivered", "read", "failed"]

#: Order of outbound delivery states; a status never moves to a lower rank.
STATUS_RANK: dict[str, int] = {
    "received": 0,
    "queued": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "failed": 2,  # may follow queued/sent, never delivered/read
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class OmniModel(BaseModel):
    """Frozen base of all our own models."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Address(OmniModel):
    """Where a person or an account can be reached on one channel."""

    channel: str
    """Channel kind: ``sms``, ``email``, ``wechat``, ``messenger``, ``webchat``, ``voice``…"""
    handle: str
    """E.164 phone, lower-cased email address, PSID, OpenID, visitor id."""
    display_name: str | None = None
    """The name the channel shows for this address, when it gives one."""

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("handle"), str):
            channel = str(data.get("channel", ""))
            data = {**data, "handle": normalize_handle(channel, data["handle"])}
        return data


# ----------------------------------------------------------------------------------------------
# parts


class TextPart(OmniModel):
    """Text. ``html`` is sanitized on creation (no script, no event handlers)."""

    type: Literal["text"] = "text"
    text: str
    """The text itself."""
    format: Literal["plain", "markdown", "html"] = "plain"
    """How ``text`` is written."""

    @model_validator(mode="after")
    def _sanitize(self) -> TextPart:
        if self.format == "html":
            clean = nh3.clean(self.text)
            if clean != self.text:
                object.__setattr__(self, "text", clean)
        return self


def media_kind(content_type: str | None) -> Literal["image", "audio", "video", "file"]:
    """The :attr:`MediaPart.kind` of a MIME type: ``image/*``, ``audio/*`` and ``video/*``
    are what they say (case and parameters ignored), everything else is a ``file``."""
    major = (content_type or "").split("/", 1)[0].strip().lower()
    if major == "image":
        return "image"
    if major == "audio":
        return "audio"
    if major == "video":
        return "video"
    return "file"


class MediaPart(OmniModel):
    """An image, audio, video, file or sticker."""

    type: Literal["media"] = "media"
    kind: Literal["image", "audio", "video", "file", "sticker"]
    """What sort of media this is."""
    url: str | None = None
    """Where the vendor (or we) serve it; vendor URLs often expire."""
    content_type: str | None = None
    """MIME type, e.g. ``image/jpeg``."""
    filename: str | None = None
    """Original file name, when known."""
    size: int | None = Field(default=None, ge=0)
    """Size in bytes, when known."""
    sha256: str | None = None
    """Hex SHA-256 of the bytes, once downloaded."""
    caption: str | None = None
    """Caption shown with the media."""
    duration: float | None = Field(default=None, ge=0)
    """Seconds of audio or video."""
    blob_key: str | None = None
    """Key of the bytes in the hub's blob store once downloaded (vendor URLs expire)."""


class LocationPart(OmniModel):
    """A point on the map."""

    type: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    """Degrees north."""
    longitude: float = Field(ge=-180, le=180)
    """Degrees east."""
    label: str | None = None
    """A name for the place."""
    address: str | None = None
    """A postal address for the place."""


class Action(OmniModel):
    """One choice offered to the customer (button, quick reply, link)."""

    id: str
    """Stable id; answers to the action carry it back."""
    title: str
    """What the customer sees."""
    kind: Literal["reply", "url", "postback", "call"] = "reply"
    """``reply`` sends the title back, ``postback`` the value, ``url`` opens, ``call`` dials."""
    value: str | None = None
    """URL, phone number or postback payload."""


class ActionsPart(OmniModel):
    """A prompt with choices."""

    type: Literal["actions"] = "actions"
    prompt: str | None = None
    """Text shown above the choices."""
    actions: list[Action] = Field(min_length=1)
    """The choices, in order."""


class TemplatePart(OmniModel):
    """A vendor-approved template message (WeChat template, WhatsApp/Messenger templates)."""

    type: Literal["template"] = "template"
    name: str
    """Template name or id at the vendor."""
    language: str | None = None
    """Template language, e.g. ``en_US``."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Values for the template's placeholders."""


class TranscriptSegment(OmniModel):
    """One speaker turn of a transcript."""

    speaker: str | None = None
    """Stable speaker label (``caller``, ``agent``, ``speaker_0``)."""
    start: float = Field(ge=0)
    """Start, in seconds from the beginning of the recording."""
    end: float = Field(ge=0)
    """End, in seconds from the beginning of the recording."""
    text: str
    """What was said."""
    confidence: float | None = Field(default=None, ge=0, le=1)
    """Recognizer confidence from 0 to 1."""


class TranscriptPart(OmniModel):
    """A speaker-attributed transcript of audio."""

    type: Literal["transcript"] = "transcript"
    segments: list[TranscriptSegment] = Field(default_factory=list)
    """Speaker turns in time order."""
    language: str | None = None
    """Language of the speech, e.g. ``en``."""


class EventPart(OmniModel):
    """Something that happened rather than something said (subscribe, postback, opt-out…)."""

    type: Literal["event"] = "event"
    name: str
    """``subscribe``, ``unsubscribe``, ``postback``, ``opt_out``, ``opt_in``, ``reaction``…"""
    data: dict[str, Any] = Field(default_factory=dict)
    """Event details."""


Part = Annotated[
    Union[TextPart, MediaPart, LocationPart, ActionsPart, TemplatePart, TranscriptPart, EventPart],
    Field(discriminator="type"),
]
"""A message part, discriminated by ``type``."""


# ----------------------------------------------------------------------------------------------
# messages


class MessageError(OmniModel):
    """Why a message failed."""

    code: str
    """Our error class: ``rejected``, ``auth``, ``rate_limited``, ``transport``, ``undelivered``…"""
    message: str
    """Human-readable reason."""
    vendor_code: str | None = None
    """The vendor's own error code."""


class Author(OmniModel):
    """Who wrote an outbound message: a human agent, a bot, or the system."""

    kind: Literal["human", "bot", "system"] = "human"
    """Policies (Messenger ``HUMAN_AGENT``) treat only ``human`` as a person."""
    id: str | None = None
    """The author's id in the helpdesk."""
    name: str | None = None
    """The author's display name."""


class Message(OmniModel):
    """One message in a conversation, inbound or outbound."""

    id: str
    """SDK-assigned, sortable id."""
    channel: str
    """Channel kind."""
    channel_key: str
    """The configured channel (``[channels.<key>]``)."""
    adapter: str
    """Adapter name, e.g. ``twilio-sms``."""
    external_id: str | None = None
    """The vendor's id: MessageSid, mid, MsgId, Message-ID."""
    direction: Literal["inbound", "outbound"]
    """Customer to us, or us to customer."""
    conversation_id: str
    """The conversation this message belongs to."""
    sender: Address
    """Who sent it."""
    recipients: list[Address] = Field(default_factory=list)
    """Who it was sent to."""
    parts: list[Part] = Field(default_factory=list)
    """What it says, in order."""
    subject: str | None = None
    """Subject line (email)."""
    reply_to: str | None = None
    """Our id of the message this one answers, when known."""
    created_at: datetime
    """When the vendor says it was created (UTC)."""
    received_at: datetime
    """When the SDK stored it (UTC)."""
    status: MessageStatus
    """Delivery state; inbound messages are ``received``."""
    error: MessageError | None = None
    """Why it failed, when ``status`` is ``failed``."""
    author: Author | None = None
    """Who wrote an outbound message."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Vendor extras (JSON)."""

    _utc = field_validator("created_at", "received_at")(_as_utc)

    @property
    def text(self) -> str:
        """All text parts joined by blank lines (a convenience for display and bots)."""
        return "\n\n".join(p.text for p in self.parts if isinstance(p, TextPart))


class Conversation(OmniModel):
    """A thread between a contact and the helpdesk on one configured channel."""

    id: str
    """SDK-assigned, sortable id."""
    channel: str
    """Channel kind."""
    channel_key: str
    """The configured channel."""
    contact_id: str
    """The customer."""
    participants: list[Address] = Field(default_factory=list)
    """Every address seen in the thread (customer and ours)."""
    thread_key: str
    """What threads messages together on this channel (e.g. customer number + our number)."""
    subject: str | None = None
    """Subject (email) or a title."""
    status: Literal["open", "closed"] = "open"
    """Open until closed by the helpdesk."""
    created_at: datetime
    """When the first message arrived or was sent."""
    last_inbound_at: datetime | None = None
    """When the customer last wrote."""
    window_expires_at: datetime | None = None
    """When the channel's reply window closes, or ``None`` if the channel has none."""

    _utc = field_validator("created_at", "last_inbound_at", "window_expires_at")(_as_utc)


class Contact(OmniModel):
    """A person, with every address they were seen on."""

    id: str
    """SDK-assigned id."""
    display_name: str | None = None
    """Best known name."""
    addresses: list[Address] = Field(default_factory=list)
    """Every address of this person, on every channel."""
    profile: dict[str, Any] = Field(default_factory=dict)
    """Locale, timezone and other facts."""
    opted_out: list[str] = Field(default_factory=list)
    """Channel kinds on which the person opted out."""


class StatusUpdate(OmniModel):
    """A delivery, read or failure receipt for an outbound message."""

    channel_key: str | None = None
    """Filled in by the hub."""
    external_id: str | None = None
    """Vendor id of the message the receipt is for."""
    status: MessageStatus
    """The new state."""
    timestamp: datetime = Field(default_factory=utcnow)
    """When the vendor says it happened."""
    error: MessageError | None = None
    """Why, for ``failed``."""
    watermark: datetime | None = None
    """For watermark receipts (Messenger read/delivery): every outbound message to
    ``recipient`` created at or before this time gets ``status``."""
    recipient: Address | None = None
    """The customer whose messages a watermark applies to."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Vendor extras."""

    _utc = field_validator("timestamp", "watermark")(_as_utc)


class MergeProposal(OmniModel):
    """Two contacts that may be one person. Nothing is merged until the helpdesk confirms
    (``hub.confirm_merge``) or rejects (``hub.reject_merge``); ``hub.merge_proposals()`` lists
    the open ones.

    Made from an address one contact only claimed (``reason="claimed"``: a web chat visitor
    typing a customer's email, ``verified`` false) or from verified addresses that name the
    same person on two channels (``"same_phone"``: one E.164 number on SMS, WhatsApp and
    voice; ``"same_email"``: one email address; ``verified`` true)."""

    id: str
    """Stable id: the two contact ids (one proposal per pair: a rejected pair stays rejected)."""
    contact_id: str
    """The contact that claimed or newly showed the address (the visitor, the new number)."""
    existing_contact_id: str
    """The contact that already owned the address (or its match on another channel)."""
    address: Address
    """The claimed address, or the new contact's verified address that matched."""
    message_id: str | None = None
    """The message that carried the claim or the address, when one did."""
    created_at: datetime
    """When it was first proposed."""
    reason: Literal["claimed", "same_phone", "same_email"] = "claimed"
    """Why the two may be one person."""
    verified: bool = False
    """Whether both addresses were proven by a vendor (never true for a claim)."""
    matched: Address | None = None
    """The existing contact's address that matched (``None``: ``address`` itself)."""
    status: Literal["open", "confirmed", "rejected"] = "open"
    """Open until the helpdesk decides; a proposal whose contacts merged otherwise is confirmed."""
    decided_at: datetime | None = None
    """When it was confirmed or rejected."""
    decided_by: str | None = None
    """Who decided (the ``by`` given to ``confirm_merge`` / ``reject_merge``)."""


class ContactMerge(OmniModel):
    """The record of one merge of two contacts into one, kept so it can be undone
    (``hub.unmerge(merge.id)``). ``hub.merges(contact_id)`` lists a contact's merges."""

    id: str
    """SDK-assigned id."""
    kept_id: str
    """The contact that remained (the older one)."""
    absorbed_id: str
    """The contact merged into it (it no longer exists until the merge is undone)."""
    merged_at: datetime
    """When the merge happened."""
    by: str | None = None
    """Who merged: the ``by`` of ``confirm_merge`` / ``merge_contacts``; ``None`` when the hub
    merged by itself because a vendor proved two addresses are one person."""
    reason: Literal["proposal", "manual", "verified"] = "verified"
    """A confirmed proposal, a merge asked for by id, or addresses a vendor proved (a caller's
    number on voice and SMS)."""
    proposal_id: str | None = None
    """The confirmed proposal, for ``reason="proposal"``."""
    addresses: list[Address] = Field(default_factory=list)
    """The addresses that moved from the absorbed contact to the kept one."""
    conversation_ids: list[str] = Field(default_factory=list)
    """The conversations that moved from the absorbed contact to the kept one."""
    kept_conversation_ids: list[str] = Field(default_factory=list)
    """The kept contact's own conversations at the merge (undoing it leaves them there)."""
    kept_before: Contact
    """The kept contact as it was just before the merge."""
    absorbed_before: Contact
    """The absorbed contact as it was just before the merge."""
    result: Contact
    """The kept contact as the merge left it."""
    unmerged_at: datetime | None = None
    """When the merge was undone (``None``: it stands)."""
    unmerged_by: str | None = None
    """Who undid it."""


class DeadLetter(OmniModel):
    """A verified payload (or an outbound send) that could not be processed; replayable."""

    id: str
    """SDK-assigned id."""
    kind: Literal["inbound", "outbound", "webhook"] = "inbound"
    """Inbound payload, outbound send, or an outgoing webhook of the service API."""
    channel_key: str
    """The configured channel."""
    adapter: str
    """Adapter name."""
    error: str
    """What went wrong."""
    created_at: datetime
    """When it was dead-lettered."""
    replayed_at: datetime | None = None
    """When it was last replayed successfully."""
    raw_id: str | None = None
    """The stored raw payload (inbound)."""
    message_id: str | None = None
    """The message (outbound)."""
