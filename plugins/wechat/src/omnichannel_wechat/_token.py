"""The app's one ``access_token``: cached in the process, shared by every process through the
hub's key-value store, refreshed by whichever process holds the ``kv_add`` lock (fetching a
new token invalidates the old one).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import NamedTuple

import orjson

from omnichannel_sdk import AuthenticationError, ProviderError, TransportError

from ._answers import TOKEN_ERRCODES, WeChatAnswers, _errcode

__all__ = ["WeChatTokens"]


class WeChatTokens(WeChatAnswers):
    """``access_token`` caching and refresh."""

    _cached_token: _Token | None
    _kv_token: str
    _kv_lock: str

    async def access_token(self, *, stale: str | None = None) -> str:
        """The app's ``access_token``, shared by every process through ``context.kv``.

        A token due for renewal (``token_refresh_margin`` before it expires) is replaced by
        whichever process takes the ``kv_add`` lock; the others keep using the old one (still
        valid) or wait up to ``token_wait`` for the new one. ``stale`` is a token WeChat just
        refused: it is never returned again.
        """
        cached = self._cached_token
        if cached and cached.token != stale and cached.refresh_at > time.time():
            return cached.token
        kv = self.context.kv
        deadline = time.monotonic() + self.settings.token_wait
        while True:
            current = _Token.load(await kv.kv_get(self._kv_token))
            now = time.time()
            usable = current is not None and current.token != stale and current.expires_at > now
            if usable and current is not None and current.refresh_at > now:
                self._cached_token = current
                return current.token
            if await kv.kv_add(self._kv_lock, os.urandom(8).hex(), ttl=30):
                try:
                    current = _Token.load(await kv.kv_get(self._kv_token))
                    if current is not None and current.token != stale and \
                            current.refresh_at > time.time():
                        self._cached_token = current
                        return current.token
                    fresh = await self._fetch_token(stale)
                    await kv.kv_set(self._kv_token, fresh.dump(),
                                    ttl=max(1.0, fresh.expires_at - time.time()))
                    self._cached_token = fresh
                    return fresh.token
                finally:
                    await kv.kv_delete(self._kv_lock)
            if usable and current is not None:
                return current.token  # another process is refreshing; the old token still works
            if time.monotonic() > deadline:
                raise TransportError(f"{self.name}: timed out waiting for another process to "
                                     "fetch the access_token")
            await asyncio.sleep(0.05)

    async def _fetch_token(self, stale: str | None) -> _Token:
        token = await self._request_token(force=False)
        if stale is not None and token.token == stale and \
                self.settings.token_endpoint == "stable_token":
            # WeChat refused a token that stable_token still hands out: force a new one
            token = await self._request_token(force=True)
        return token

    async def _request_token(self, *, force: bool) -> _Token:
        secret = self.settings.app_secret.get_secret_value()
        if self.settings.token_endpoint == "stable_token":
            # the secret travels in the body, never in a URL that proxies and loggers record
            response = await self.request(
                "POST", f"{self.api_base}/cgi-bin/stable_token",
                content=orjson.dumps({"grant_type": "client_credential",
                                      "appid": self.settings.app_id, "secret": secret,
                                      "force_refresh": force}),
                headers={"content-type": "application/json; charset=utf-8"})
        else:
            response = await self.request("GET", f"{self.api_base}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.settings.app_id,
                "secret": secret})
        data = self._json(response)
        code = _errcode(data)
        if code:
            error = self.error_for_errcode(code, data.get("errmsg"))
            if code in TOKEN_ERRCODES:  # for the token endpoint these mean bad credentials
                error = AuthenticationError(str(error), vendor_code=code)
            raise error
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProviderError(f"{self.name}: no access_token in the answer", retryable=True)
        try:
            expires_in = float(data.get("expires_in") or 7200)
        except (TypeError, ValueError):
            expires_in = 7200.0
        now = time.time()
        expires_at = now + max(1.0, expires_in)
        refresh_at = expires_at - self.settings.token_refresh_margin
        if refresh_at < now + 60:
            # a token already inside the margin (stable_token repeats the current one until
            # WeChat renews it): use it for a minute rather than asking on every call
            refresh_at = min(now + 60, expires_at - 5)
        return _Token(token, expires_at, refresh_at)


class _Token(NamedTuple):
    """An access token as shared through the key-value store."""

    token: str
    expires_at: float
    refresh_at: float

    def dump(self) -> str:
        return orjson.dumps(self._asdict()).decode()

    @classmethod
    def load(cls, raw: str | None) -> _Token | None:
        if not raw:
            return None
        try:
            data = orjson.loads(raw)
            return cls(str(data["token"]), float(data["expires_at"]), float(data["refresh_at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
