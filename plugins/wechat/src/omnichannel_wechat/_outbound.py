"""Sending: ``cgi-bin/message/custom/send`` inside the 48-hour window (text, image, voice, a
card), ``template/send`` for template parts at any time, temporary media uploads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from omnichannel_sdk import (
    MediaError,
    MediaPart,
    Message,
    Part,
    ProviderError,
    RejectedError,
    SendResult,
    TemplatePart,
    TextPart,
    UnsupportedFeatureError,
)

from ._api import WeChatApi

__all__ = ["WeChatOutbound"]

_UPLOAD_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024}
_MEDIA_ID_TTL = 2 * 86400  # temporary media live three days at WeChat; keep a margin
_CARDS = ("news", "link", "miniprogrampage")


class WeChatOutbound(WeChatApi):
    """Customer-service and template messages out."""

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Customer-service messages (text, image, voice; a news / link / mini-program card
        from ``metadata["wechat"]``) and template messages (``TemplatePart``)."""
        if not message.recipients:
            raise RejectedError(f"{self.name}: no recipient")
        openid = message.recipients[0].handle
        options = message.metadata.get("wechat")
        options = options if isinstance(options, dict) else {}
        external_ids: list[str] = []
        metadata: dict[str, Any] = {}
        for card in _CARDS:
            if isinstance(options.get(card), dict):
                msgtype, body = _card(card, options[card])
                await self._custom(openid, msgtype, body, options)
                external_ids.append(f"{message.id}:{card}")
        for index, part in enumerate(parts):
            if isinstance(part, TemplatePart):
                msgid = await self._template(openid, part, message, options)
                external_ids.append(msgid)
                metadata.setdefault("template_msgids", []).append(msgid)
                continue
            if isinstance(part, TextPart):
                await self._custom(openid, "text", {"content": part.text}, options)
            elif isinstance(part, MediaPart) and part.kind in ("image", "sticker", "audio"):
                kind = "voice" if part.kind == "audio" else "image"
                media_id = await self.upload(part, kind)
                await self._custom(openid, kind, {"media_id": media_id}, options)
            else:
                raise UnsupportedFeatureError(f"{self.name} cannot send a {part.type} part")
            external_ids.append(f"{message.id}:{index}")
        if not external_ids:
            raise UnsupportedFeatureError(f"{self.name}: nothing to send")
        return SendResult(external_ids=external_ids, status="sent", metadata=metadata)

    async def _custom(self, openid: str, msgtype: str, body: dict[str, Any],
                      options: Mapping[str, Any]) -> None:
        payload: dict[str, Any] = {"touser": openid, "msgtype": msgtype, msgtype: body}
        if isinstance(options.get("kf_account"), str):
            payload["customservice"] = {"kf_account": options["kf_account"]}
        await self.call("POST", "/cgi-bin/message/custom/send", payload=payload)

    async def _template(self, openid: str, part: TemplatePart, message: Message,
                        options: Mapping[str, Any]) -> str:
        data = {k: v if isinstance(v, dict) else {"value": str(v)} for k, v in part.params.items()}
        payload: dict[str, Any] = {"touser": openid, "template_id": part.name, "data": data,
                                   "client_msg_id": message.id}
        if isinstance(options.get("url"), str):
            payload["url"] = options["url"]
        if isinstance(options.get("miniprogram"), dict):
            payload["miniprogram"] = options["miniprogram"]
        answer = await self.call("POST", "/cgi-bin/message/template/send", payload=payload)
        msgid = answer.get("msgid")
        if msgid is None:
            raise ProviderError(f"{self.name}: template/send gave no msgid", retryable=True)
        return str(msgid)

    async def upload(self, part: MediaPart, kind: str) -> str:
        """Upload ``part`` as temporary media (``image`` / ``voice``) and return its
        ``media_id``; ids are remembered for two days (WeChat keeps them three)."""
        source = part.blob_key or part.url or ""
        if not source:
            raise UnsupportedFeatureError(f"{self.name}: {part.kind} media without bytes or URL")
        cache_key = f"wechat:{self.settings.app_id}:media:{kind}:" + \
            hashlib.sha256(source.encode()).hexdigest()
        cached = await self.context.kv.kv_get(cache_key)
        if cached:
            return cached
        data = await self._media_bytes(part, _UPLOAD_LIMITS[kind])
        filename = part.filename or ("image.jpg" if kind == "image" else "voice.amr")
        content_type = part.content_type or ("image/jpeg" if kind == "image" else "audio/amr")
        answer = await self.call("POST", "/cgi-bin/media/upload", params={"type": kind},
                                 files={"media": (filename, data, content_type)})
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise ProviderError(f"{self.name}: media/upload gave no media_id", retryable=True)
        await self.context.kv.kv_set(cache_key, media_id, ttl=_MEDIA_ID_TTL)
        return media_id

    async def _media_bytes(self, part: MediaPart, limit: int) -> bytes:
        if part.blob_key and self.context.blobs is not None:
            data = await self.context.blobs.get(part.blob_key)
        elif part.url and part.url.startswith(("http://", "https://")):
            response = await self.request("GET", part.url)
            if response.status_code >= 400:
                raise MediaError(f"{self.name}: fetching outbound media gave HTTP "
                                 f"{response.status_code}")
            data = response.content
        else:
            raise UnsupportedFeatureError(f"{self.name}: {part.kind} media without bytes or URL")
        if len(data) > limit:
            raise MediaError(f"{self.name}: {part.kind} of {len(data)} bytes exceeds WeChat's "
                             f"{limit}")
        return data


def _card(kind: str, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A customer-service card from ``metadata["wechat"][kind]``."""
    if kind == "miniprogrampage":
        return "miniprogrampage", dict(spec)
    if kind == "link":  # a link card is a news message with one article
        spec = {"articles": [dict(spec)]}
    articles = spec.get("articles")
    if not isinstance(articles, list) or not articles:
        raise UnsupportedFeatureError("a news card needs a list of articles")
    return "news", {"articles": [dict(a) for a in articles[:1]]}
