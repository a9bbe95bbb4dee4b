"""The settings of a ``json-mapping`` channel: paths, rules, signature and outbound request.

Every path is a JMESPath expression compiled when the configuration is validated, so a mapping
that cannot compile fails at ``Hub.from_config`` naming the channel key, the field and the
expression. 0.1.0's flat settings (``auth``, ``secret``, ``signature_header``,
``signature_prefix``, ``items``, ``media_url``, ``media_type``, ``send_url``, ``send_token``,
``response_id``) are still accepted and mean what they meant.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    model_validator,
)

from .._adapter import AdapterSettings
from ._paths import CompiledBody, Path, Template, compile_path

__all__ = [
    "EventRule",
    "MappingSettings",
    "MediaRule",
    "OutboundAuth",
    "OutboundSettings",
    "ReceiptRule",
    "SignatureSettings",
]


def _path(value: Any) -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise ValueError("a path is a JMESPath expression (a string)")
    if not value.strip():
        return None  # "" meant "not mapped" in 0.1.0
    return compile_path(value)


def _template(value: Any) -> Template | None:
    if value is None or isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise ValueError("a template is a string with {expression} placeholders")
    return Template(value)


def _body(value: Any) -> CompiledBody | None:
    if value is None or isinstance(value, CompiledBody):
        return value
    return CompiledBody(value)


JPath = Annotated[Path, BeforeValidator(_path), PlainSerializer(lambda p: p.expression)]
"""A JMESPath expression, compiled."""
OptPath = Annotated[Path | None, BeforeValidator(_path),
                    PlainSerializer(lambda p: p.expression if p is not None else None)]
"""An optional JMESPath expression ("" is none)."""
OptTemplate = Annotated[Template | None, BeforeValidator(_template),
                        PlainSerializer(lambda t: t.source if t is not None else None)]
"""An optional ``{placeholder}`` template."""
OptBody = Annotated[CompiledBody | None, BeforeValidator(_body), PlainSerializer(lambda b: None)]
"""A JSON body template."""

_MODEL = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SignatureSettings(BaseModel):
    """How a request proves it comes from the vendor (``[channels.<key>.signature]``)."""

    model_config = _MODEL

    scheme: Literal["hmac", "token", "basic", "none"] = "hmac"
    """``hmac``: a keyed digest of the raw body; ``token``: a static secret in a header;
    ``basic``: HTTP Basic credentials; ``none``: local experiments only."""
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    """The HMAC's hash."""
    encoding: Literal["hex", "base64"] = "hex"
    """How the digest is written in the header."""
    header: str = "x-signature"
    """The header carrying the digest or the token (``authorization`` for ``basic``)."""
    prefix: str = ""
    """Text before the digest or token (``sha256=``, ``Bearer ``)."""
    secret: SecretStr | None = None
    """The HMAC key, or the token."""
    username: str | None = None
    """``basic``: the user name."""
    password: SecretStr | None = None
    """``basic``: the password."""
    timestamp_header: str | None = None
    """A header with the request time that is part of the signed content (seconds or
    milliseconds since the epoch); requests older than ``tolerance`` are refused."""
    signed: str = "{body}"
    """What is signed: ``{body}`` (the raw body), or with a timestamp e.g.
    ``{timestamp}.{body}`` or ``v0:{timestamp}:{body}``."""
    tolerance: float = Field(default=300.0, gt=0)
    """Seconds a timestamped request stays valid."""

    @model_validator(mode="after")
    def _complete(self) -> SignatureSettings:
        if self.scheme in ("hmac", "token") and self.secret is None:
            raise ValueError(f"signature scheme {self.scheme!r} needs a secret")
        if self.scheme == "basic" and (self.username is None or self.password is None):
            raise ValueError("signature scheme 'basic' needs a username and a password")
        rest = self.signed.replace("{body}", "").replace("{timestamp}", "")
        if "{" in rest or "}" in rest or "{body}" not in self.signed:
            raise ValueError(f"signed must contain {{body}} and may contain {{timestamp}}: "
                             f"{self.signed!r}")
        if "{timestamp}" in self.signed and not self.timestamp_header:
            raise ValueError("signed uses {timestamp}: set timestamp_header")
        return self

    def expectation(self) -> str:
        """What a valid request carries, for log lines (never a secret)."""
        if self.scheme == "hmac":
            what = "the body" if self.signed == "{body}" else repr(self.signed)
            return (f"a {self.encoding} HMAC-{self.algorithm.upper()} of {what} in header "
                    f"{self.header!r}" + (f" after {self.prefix!r}" if self.prefix else ""))
        if self.scheme == "token":
            return f"the shared token in header {self.header!r}"
        if self.scheme == "basic":
            return "HTTP Basic credentials in header 'authorization'"
        return "nothing"


class MediaRule(BaseModel):
    """Media parts taken from an event (``[[channels.<key>.media]]``)."""

    model_config = _MODEL

    when: OptPath = None
    """Only for events where this is truthy (``message.type == 'image'``)."""
    each: OptPath = None
    """A list in the event: one media part per element, the other paths relative to it."""
    kind: Literal["auto", "image", "audio", "video", "file", "sticker"] = "auto"
    """The media kind; ``auto`` decides by the content type (``file`` when unknown)."""
    url: OptPath = None
    """Where the media's URL is."""
    url_template: OptTemplate = None
    """Or an URL built from the event: ``https://api-data.line.me/v2/bot/message/{message.id}/content``."""
    content_type: OptPath = None
    """Where its MIME type is."""
    filename: OptPath = None
    """Where its file name is."""
    caption: OptPath = None
    """Where its caption is."""
    auth: Literal["none", "outbound"] = "none"
    """``outbound``: download with the channel's outbound credentials."""

    @model_validator(mode="after")
    def _one_url(self) -> MediaRule:
        if (self.url is None) == (self.url_template is None):
            raise ValueError("a media rule has exactly one of url and url_template")
        return self


class EventRule(BaseModel):
    """Events that become an ``event`` part (``[[channels.<key>.event_parts]]``)."""

    model_config = _MODEL

    when: JPath
    """Events where this is truthy (``type == 'follow'``)."""
    name: str
    """The event part's name (``subscribe``, ``unsubscribe``, ``sticker``, …)."""
    data: OptPath = None
    """What goes into the part's ``data`` (an object; other values are kept as ``value``)."""


class ReceiptRule(BaseModel):
    """Events that are delivery receipts (``[[channels.<key>.receipts]]``)."""

    model_config = _MODEL

    when: JPath
    """Events where this is truthy."""
    status: Literal["sent", "delivered", "read", "failed"]
    """The status the receipt reports."""
    external_id: JPath
    """The vendor id of our message the receipt is for."""
    timestamp: OptPath = None
    """When it happened."""
    error: OptPath = None
    """For ``failed``: the vendor's reason."""
    error_code: OptPath = None
    """For ``failed``: the vendor's code."""


class OutboundAuth(BaseModel):
    """Credentials of outbound calls (``auth = {type = "bearer", token = "…"}``)."""

    model_config = _MODEL

    type: Literal["none", "bearer", "basic", "header"] = "none"
    """How the vendor API authenticates."""
    token: SecretStr | None = None
    """``bearer``: the token."""
    username: str | None = None
    """``basic``: the user (a key id)."""
    password: SecretStr | None = None
    """``basic``: the password (a key secret)."""
    name: str | None = None
    """``header``: the header's name."""
    value: SecretStr | None = None
    """``header``: its value."""

    @model_validator(mode="after")
    def _complete(self) -> OutboundAuth:
        need = {"bearer": ("token",), "basic": ("username", "password"), "header": ("name", "value")}
        for name in need.get(self.type, ()):
            if getattr(self, name) is None:
                raise ValueError(f"auth type {self.type!r} needs {name}")
        return self

    def headers(self) -> dict[str, str]:
        """The headers that carry these credentials."""
        import base64

        if self.type == "bearer" and self.token is not None:
            return {"authorization": f"Bearer {self.token.get_secret_value()}"}
        if self.type == "basic" and self.password is not None:
            pair = f"{self.username}:{self.password.get_secret_value()}".encode()
            return {"authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.type == "header" and self.name and self.value is not None:
            return {self.name: self.value.get_secret_value()}
        return {}


class OutboundSettings(BaseModel):
    """How replies are sent (``[channels.<key>.outbound]``)."""

    model_config = _MODEL

    url: OptTemplate = None
    """The endpoint, with placeholders (``{conversation.thread_key}``, ``{contact.handle}``,
    ``{message.id}``, ``{vars.NAME}``), each URL-encoded."""
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    """The HTTP method."""
    auth: OutboundAuth = OutboundAuth()
    """The vendor API's credentials."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers."""
    body: OptBody = None
    """The JSON body as a template. ``"{parts}"`` is the list of rendered parts, ``"{part}"`` one
    part (with ``per_part``), ``"{text}"`` all the text. Absent: ``{"id", "to", "text", "media"}``."""
    parts: dict[str, OptBody] = Field(default_factory=dict)
    """Templates of each part by type or media kind: ``text``, ``image``, ``audio``, ``video``,
    ``file``, ``sticker``, ``media`` (any kind). A media part without a template is sent as a
    link in a text part."""
    per_part: bool = False
    """One request per part (vendors whose body carries one message)."""
    response_id: JPath = Field(default_factory=lambda: compile_path("id"))
    """The vendor's id of the sent message in its answer."""
    idempotency_header: str | None = "idempotency-key"
    """The header carrying the idempotency key (``X-Line-Retry-Key``); none to leave it out."""
    idempotency_format: Literal["id", "uuid"] = "id"
    """``id``: our message id; ``uuid``: a UUID derived from it (vendors that require UUIDs)."""

    @model_validator(mode="after")
    def _complete(self) -> OutboundSettings:
        if self.url is None:
            raise ValueError("outbound needs a url")
        if self.body is not None:
            uses = {p.expression for p in self.body.paths()}
            if ("parts" in uses or "part" in uses) and "text" not in self.parts:
                raise ValueError("a body with {parts} or {part} needs a parts.text template")
            if "part" in uses and not self.per_part:
                raise ValueError("{part} needs per_part = true ({parts} is the whole list)")
        return self


class MappingSettings(AdapterSettings):
    """Where each normalized field is found in the vendor's JSON, and how to answer it."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    channel: str = "custom"
    """Channel kind written into addresses and messages."""
    body: Literal["auto", "json", "form"] = "auto"
    """How the body is encoded: JSON, a form (one event whose field names are the paths), or
    ``auto`` by the content type."""
    events: OptPath = None
    """The list of events in the body (``events``); none: the body is one event."""
    filter: OptPath = None
    """Only events where this is truthy are read (``type == 'message' || type == 'follow'``);
    the others are skipped, not dead-lettered."""
    external_id: JPath = Field(default_factory=lambda: compile_path("id"))
    """The vendor's id of the event (required: de-duplicates)."""
    sender: JPath = Field(default_factory=lambda: compile_path("from"))
    """The sender's handle (required)."""
    sender_name: OptPath = None
    """The sender's display name."""
    recipient: OptPath = None
    """Our handle (account, number), when the vendor says it."""
    text: OptPath = Field(default_factory=lambda: compile_path("text"))
    """The text."""
    subject: OptPath = None
    """A subject."""
    created_at: OptPath = None
    """The vendor's time (ISO 8601 or epoch seconds/milliseconds)."""
    thread: OptPath = None
    """What threads events into one conversation (the vendor's conversation id); default: the
    sender and our handle."""
    reply_to: OptPath = None
    """The vendor id of the message this one answers."""
    metadata: dict[str, JPath] = Field(default_factory=dict)
    """Vendor extras kept in the message's metadata, by name."""
    media: list[MediaRule] = Field(default_factory=list)
    """Media parts (several per event where a rule has ``each``)."""
    event_parts: list[EventRule] = Field(default_factory=list)
    """Events that are ``event`` parts (follow, sticker, postback…); the first match wins."""
    receipts: list[ReceiptRule] = Field(default_factory=list)
    """Events that are delivery receipts; the first match wins."""
    signature: SignatureSettings | None = None
    """How requests are verified (default: hex HMAC-SHA256 of the body in ``x-signature``)."""
    outbound: OutboundSettings | None = None
    """How replies are sent; none: this channel only receives."""
    vars: dict[str, str] = Field(default_factory=dict)
    """Constants for templates (``{vars.app_id}``), ``${ENV}`` expanded like any setting."""
    media_hosts: list[str] = Field(default_factory=list)
    """Hosts media may be downloaded from (the hosts of ``url_template`` rules are added)."""

    # -- 0.1.0's flat settings, still accepted ----------------------------------------------
    auth: Literal["hmac-sha256", "token", "none"] | None = None
    """0.1.0: ``signature.scheme`` (``hmac-sha256`` = hex HMAC-SHA256)."""
    secret: SecretStr | None = None
    """0.1.0: ``signature.secret``."""
    signature_header: str | None = None
    """0.1.0: ``signature.header``."""
    signature_prefix: str | None = None
    """0.1.0: ``signature.prefix``."""
    items: OptPath = None
    """0.1.0: ``events``."""
    media_url: OptPath = None
    """0.1.0: one ``media`` rule's ``url``."""
    media_type: OptPath = None
    """0.1.0: that rule's ``content_type``."""
    send_url: str | None = None
    """0.1.0: ``outbound.url`` with the fixed body ``{"id", "to", "text", "media"}``."""
    send_token: SecretStr | None = None
    """0.1.0: ``outbound.auth`` bearer token."""
    response_id: OptPath = None
    """0.1.0: ``outbound.response_id``."""

    @model_validator(mode="before")
    @classmethod
    def _template_hosts(cls, data: Any) -> Any:
        """Hosts of absolute ``url_template`` rules may serve media."""
        if not isinstance(data, dict) or not isinstance(data.get("media"), list):
            return data
        hosts = list(data.get("media_hosts") or [])
        for rule in data["media"]:
            template = rule.get("url_template") if isinstance(rule, dict) else None
            if isinstance(template, str):
                host = urlsplit(template.split("{", 1)[0]).hostname
                if host and host not in hosts:
                    hosts.append(host)
        return {**data, "media_hosts": hosts}

    @model_validator(mode="after")
    def _no_mixing(self) -> MappingSettings:
        if self.signature is not None and any(
                v is not None for v in (self.auth, self.secret, self.signature_header,
                                        self.signature_prefix)):
            raise ValueError("use either the signature table or auth/secret/signature_*")
        if self.outbound is not None and any(
                v is not None for v in (self.send_url, self.send_token, self.response_id)):
            raise ValueError("use either the outbound table or send_url/send_token/response_id")
        if self.events is not None and self.items is not None:
            raise ValueError("use events (items is its 0.1.0 name), not both")
        if any(rule.auth == "outbound" for rule in self.media) and (
                self.effective_outbound() is None or self.effective_outbound().auth.type == "none"):  # type: ignore[union-attr]
            raise ValueError("a media rule with auth = 'outbound' needs outbound credentials")
        return self

    def effective_signature(self) -> SignatureSettings:
        """The signature check, from the table or from 0.1.0's flat settings."""
        if self.signature is not None:
            return self.signature
        schemes: dict[str | None, Literal["hmac", "token", "none"]] = {
            "hmac-sha256": "hmac", "token": "token", "none": "none", None: "hmac"}
        scheme = schemes[self.auth]
        return SignatureSettings.model_construct(
            scheme=scheme, algorithm="sha256", encoding="hex",
            header=self.signature_header or "x-signature", prefix=self.signature_prefix or "",
            secret=self.secret, username=None, password=None, timestamp_header=None,
            signed="{body}", tolerance=300.0)

    def effective_outbound(self) -> OutboundSettings | None:
        """The outbound request, from the table or from 0.1.0's flat settings."""
        if self.outbound is not None:
            return self.outbound
        if not self.send_url:
            return None
        auth = (OutboundAuth(type="bearer", token=self.send_token) if self.send_token is not None
                else OutboundAuth())
        return OutboundSettings(url=Template(self.send_url.replace("{", "{{").replace("}", "}}")),
                                auth=auth, response_id=self.response_id or compile_path("id"))

    def effective_media(self) -> list[MediaRule]:
        """The media rules, with 0.1.0's ``media_url`` as one more."""
        if self.media_url is None:
            return list(self.media)
        return [*self.media, MediaRule(url=self.media_url, content_type=self.media_type)]

    def event_list(self) -> Path | None:
        """Where the events are (``events``, or 0.1.0's ``items``)."""
        return self.events if self.events is not None else self.items
