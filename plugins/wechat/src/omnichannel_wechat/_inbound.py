"""Normalizing one decoded WeChat message or event (XML fields) into the model: messages by
``MsgType``, events, and template receipts (``TEMPLATESENDJOBFINISH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from omnichannel_sdk import (
    Address,
    ChannelAdapter,
    EventPart,
    InboundMessage,
    LocationPart,
    MediaPart,
    MessageError,
    Part,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
)

from ._settings import WeChatSettings

__all__ = ["WeChatInbound"]

_VOICE_TYPES = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg",
                "silk": "audio/silk"}


class WeChatInbound(ChannelAdapter[WeChatSettings]):
    """WeChat XML fields to :class:`~omnichannel_sdk.InboundMessage` /
    :class:`~omnichannel_sdk.StatusUpdate`."""

    _app_id: str
    _ours: Address | None

    def _our_address(self, handle: str) -> Address:
        # every message names the same account: build its Address once
        cached = self._ours
        if cached is None or cached.handle != handle:
            cached = self._ours = Address(channel=self.channel, handle=handle)
        return cached

    def _media_url(self, media_id: str) -> str:
        return f"{self.api_base}/cgi-bin/media/get?media_id={quote(media_id, safe='')}"

    def item(self, fields: Mapping[str, Any]) -> InboundMessage | StatusUpdate:
        """Normalize one decoded WeChat message or event."""
        msg_type = _text(fields, "MsgType").strip().lower()
        sender = _text(fields, "FromUserName").strip()
        ours = _text(fields, "ToUserName").strip()
        if not msg_type or not sender:
            raise UnparseablePayloadError("no MsgType or FromUserName", adapter=self.name)
        created = _text(fields, "CreateTime").strip()
        created_at = datetime.fromtimestamp(int(created), UTC) if created else None
        metadata: dict[str, Any] = {"msg_type": msg_type}
        parts: list[Part] = []
        if msg_type == "event":
            event = _text(fields, "Event").strip()
            if event.upper() == "TEMPLATESENDJOBFINISH":
                return self._template_receipt(fields, created_at)
            parts = self._event_parts(event, fields)
            metadata["event"] = event
            external_id = f"event:{sender}:{created}:{event}"
        else:
            msg_id = _text(fields, "MsgId").strip() or _text(fields, "MsgID").strip()
            if not msg_id:
                raise UnparseablePayloadError("no MsgId", adapter=self.name)
            external_id = msg_id
            parts = self._message_parts(msg_type, fields, metadata)
        for extra in ("MsgDataId", "Idx", "bizmsgmenuid"):
            if _text(fields, extra):
                metadata[extra.lower()] = _text(fields, extra)
        return InboundMessage(
            external_id=external_id,
            sender=Address(channel=self.channel, handle=sender),
            recipients=[self._our_address(ours or self._app_id)],
            parts=parts,
            created_at=created_at,
            thread_key=f"{sender}|{self._app_id}",
            metadata=metadata,
        )

    def _message_parts(self, msg_type: str, fields: Mapping[str, Any],
                       metadata: dict[str, Any]) -> list[Part]:
        media_id = _text(fields, "MediaId").strip()
        if msg_type == "text":
            return [TextPart(text=_text(fields, "Content"))]
        if msg_type == "image":
            metadata.update(media_id=media_id, pic_url=_text(fields, "PicUrl"))
            return [MediaPart(kind="image", url=self._media_url(media_id) if media_id else
                              _text(fields, "PicUrl") or None)]
        if msg_type == "voice":
            fmt = _text(fields, "Format").strip().lower()
            metadata.update(media_id=media_id, format=fmt)
            parts: list[Part] = [MediaPart(kind="audio", url=self._media_url(media_id) if media_id
                                           else None, content_type=_VOICE_TYPES.get(fmt))]
            recognition = _text(fields, "Recognition").strip()
            if recognition:
                metadata["recognition"] = recognition
                parts.append(TextPart(text=recognition))
            return parts
        if msg_type in ("video", "shortvideo"):
            metadata.update(media_id=media_id, thumb_media_id=_text(fields, "ThumbMediaId"))
            return [MediaPart(kind="video", url=self._media_url(media_id) if media_id else None)]
        if msg_type == "location":
            metadata["scale"] = _text(fields, "Scale")
            label = _text(fields, "Label").strip() or None
            return [LocationPart(latitude=float(_text(fields, "Location_X")),
                                 longitude=float(_text(fields, "Location_Y")), label=label)]
        if msg_type == "link":
            title, url = _text(fields, "Title").strip(), _text(fields, "Url").strip()
            description = _text(fields, "Description").strip()
            metadata["link"] = {"title": title, "description": description, "url": url}
            return [TextPart(text="\n".join(x for x in (title, description, url) if x) or url)]
        if msg_type == "file":
            size = _text(fields, "FileTotalLen").strip()
            metadata.update(file_key=_text(fields, "FileKey"), file_md5=_text(fields, "FileMd5"))
            return [MediaPart(kind="file", filename=_text(fields, "Title").strip() or None,
                              caption=_text(fields, "Description").strip() or None,
                              size=int(size) if size else None)]
        raise UnparseablePayloadError(f"unknown MsgType {msg_type[:40]!r}", adapter=self.name)

    def _event_parts(self, event: str, fields: Mapping[str, Any]) -> list[Part]:
        key = _text(fields, "EventKey")
        upper = event.upper()
        if upper == "SUBSCRIBE":
            data: dict[str, Any] = {}
            if key.startswith("qrscene_"):
                data["scene"] = key[len("qrscene_"):]
            if _text(fields, "Ticket"):
                data["ticket"] = _text(fields, "Ticket")
            return [EventPart(name="subscribe", data=data), EventPart(name="opt_in")]
        if upper == "UNSUBSCRIBE":
            return [EventPart(name="unsubscribe"), EventPart(name="opt_out")]
        if upper == "SCAN":
            return [EventPart(name="scan", data={"scene": key, "ticket": _text(fields, "Ticket")})]
        if upper == "CLICK":
            return [EventPart(name="postback", data={"payload": key, "source": "menu"})]
        if upper == "VIEW":
            data = {"url": key}
            if _text(fields, "MenuId"):
                data["menu_id"] = _text(fields, "MenuId")
            return [EventPart(name="menu_view", data=data)]
        if upper == "LOCATION":
            return [EventPart(name="location", data={
                "latitude": float(_text(fields, "Latitude")),
                "longitude": float(_text(fields, "Longitude")),
                "precision": float(_text(fields, "Precision") or 0)})]
        ignored = {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"}
        return [EventPart(name=event.lower() or "event",
                          data={k: v for k, v in fields.items() if k not in ignored})]

    def _template_receipt(self, fields: Mapping[str, Any], created_at: datetime | None) -> StatusUpdate:
        msg_id = (_text(fields, "MsgID") or _text(fields, "MsgId")).strip()
        if not msg_id:
            raise UnparseablePayloadError("TEMPLATESENDJOBFINISH without MsgID", adapter=self.name)
        status = _text(fields, "Status").strip()
        ok = status.lower() == "success"
        return StatusUpdate(
            external_id=msg_id, status="delivered" if ok else "failed",
            timestamp=created_at or datetime.now(UTC),
            error=None if ok else MessageError(code="undelivered", message=status or "failed",
                                               vendor_code=status or None),
            recipient=Address(channel=self.channel, handle=_text(fields, "FromUserName").strip()),
            metadata={"event": "TEMPLATESENDJOBFINISH", "wechat_status": status})


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnparseablePayloadError(f"{name} is not a text field")
    return value
