"""Calls to the WeChat API with the access token: JSON calls (a refused token is replaced once),
and media downloads (``cgi-bin/media/get``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from omnichannel_sdk import MediaError, MediaPart, ProviderError

from ._answers import TOKEN_ERRCODES, _errcode
from ._token import WeChatTokens

__all__ = ["WeChatApi"]


class WeChatApi(WeChatTokens):
    """The API client: :meth:`call` and the media-download hooks."""

    async def call(self, method: str, path: str, *, payload: Any = None,
                   params: Mapping[str, str] | None = None, files: Any = None) -> dict[str, Any]:
        """Call ``{api_base}{path}`` with the access token; JSON goes out as UTF-8 without
        ``\\u`` escapes. A refused token is replaced once and the call retried; any other
        ``errcode`` raises through :meth:`error_for_errcode`."""
        kwargs: dict[str, Any] = {}
        if payload is not None:
            kwargs["content"] = orjson.dumps(payload)
            kwargs["headers"] = {"content-type": "application/json; charset=utf-8"}
        if files is not None:
            kwargs["files"] = files
        refused: str | None = None
        for attempt in range(2):
            token = await self.access_token(stale=refused)
            response = await self.request(method, f"{self.api_base}{path}",
                                          params={**(params or {}), "access_token": token},
                                          **kwargs)
            data = self._json(response)
            code = _errcode(data)
            if code in TOKEN_ERRCODES and attempt == 0:
                refused = token
                self._cached_token = None
                continue
            if code:
                raise self.error_for_errcode(code, data.get("errmsg"))
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    async def check_media_response(self, response: httpx.Response) -> None:
        """``media/get`` answers HTTP 200 with a JSON ``errcode`` (an expired token, an unknown
        or expired media id) instead of the bytes: never store that as the media. A refused
        token is dropped so that the retry fetches a fresh one."""
        ctype = response.headers.get("content-type", "")
        if "json" not in ctype and "text/plain" not in ctype:
            return
        await response.aread()
        if not response.content.lstrip().startswith(b"{"):
            return
        data = self._json(response)
        code = _errcode(data)
        if not code:
            return
        if code in TOKEN_ERRCODES:
            self._cached_token = None
            await self.context.kv.kv_delete(self._kv_token)
            raise ProviderError(f"{self.name}: media/get refused the access token ({code})",
                                vendor_code=code, retryable=True)
        raise self.error_for_errcode(code, data.get("errmsg"))

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """``cgi-bin/media/get`` with the access token for media WeChat sent us."""
        if not part.url:
            return None
        prefix = f"{self.api_base}/cgi-bin/media/get"
        if not part.url.startswith(prefix + "?"):
            return await super().media_request(part)
        query = dict(parse_qsl(urlsplit(part.url).query))
        media_id = query.get("media_id")
        if not media_id:
            return None
        token = await self.access_token()
        request = self.context.http.build_request(
            "GET", prefix, params={"access_token": token, "media_id": media_id})
        if part.kind != "video":
            return request
        # for videos media/get answers JSON {"video_url": ...} rather than the bytes: ask first
        response = await self.request("GET", prefix, params={"access_token": token,
                                                             "media_id": media_id})
        if "json" not in response.headers.get("content-type", "") and \
                not response.content.startswith(b"{"):
            return request
        data = self._json(response)
        if _errcode(data):
            raise self.error_for_errcode(_errcode(data), data.get("errmsg"))
        url = data.get("video_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise MediaError(f"{self.name}: media/get gave no video_url")
        return self.context.http.build_request("GET", url)
