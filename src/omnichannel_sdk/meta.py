"""Meta platform toolkit, shared by the WhatsApp, Messenger and Instagram adapters.

Meta signs every webhook body the same way (``X-Hub-Signature-256``), checks a subscription
with the same ``hub.challenge`` handshake, proves the app secret with ``appsecret_proof`` and
answers failed Graph API calls with the same ``{"error": {...}}`` document. Those live here, once;
what differs per product (which Graph code means what) stays in each plugin's own table.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ._adapter import constant_time_equals, parse_retry_after
from ._errors import SignatureError
from ._signing import hmac_digest, hmac_matches
from ._webhook import WebhookRequest, WebhookResponse

__all__ = [
    "SIGNATURE_HEADER",
    "GraphError",
    "answer_handshake",
    "appsecret_proof",
    "read_graph_error",
    "sign_body",
    "signature_matches",
    "usage_retry_after",
    "verify_signature",
]

SIGNATURE_HEADER = "x-hub-signature-256"
"""The header Meta signs webhook bodies in: ``sha256=`` + hex HMAC-SHA256 of the raw body with the
app secret (lower case, as :class:`~omnichannel_sdk.WebhookRequest` keeps it)."""

_PREFIX = "sha256="
_MAX_CHALLENGE = 512


def sign_body(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body`` (for tests, demos, relays)."""
    return _PREFIX + hmac_digest(app_secret, body)


def signature_matches(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs exactly these ``body`` bytes, compared in constant time.

    A missing header, an empty secret, another algorithm or a malformed value never matches. The
    raw bytes are signed: a body re-encoded by a proxy (escaped unicode) does not match, which is
    why the gateway hands adapters the body exactly as received.
    """
    if not header or not app_secret:
        return False
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return False
    given = value[len(_PREFIX):].strip()
    return len(given) == 64 and hmac_matches(given, app_secret, body)


def verify_signature(request: WebhookRequest, app_secret: str, *, adapter: str) -> None:
    """Raise :class:`~omnichannel_sdk.SignatureError` unless ``X-Hub-Signature-256`` signs the
    request's exact body with ``app_secret``."""
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise SignatureError("missing X-Hub-Signature-256", adapter=adapter)
    if not signature_matches(app_secret, request.body, header):
        raise SignatureError("bad X-Hub-Signature-256", adapter=adapter)


def answer_handshake(request: WebhookRequest, verify_token: str, *, adapter: str) -> WebhookResponse:
    """Meta's subscription check: ``hub.mode=subscribe`` with our ``hub.verify_token`` gets
    ``hub.challenge`` back (400 without one); anything else raises
    :class:`~omnichannel_sdk.SignatureError` (answered 403)."""
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token")
    if mode != "subscribe" or token is None or not constant_time_equals(token, verify_token):
        raise SignatureError("webhook verification refused", adapter=adapter)
    challenge = request.query.get("hub.challenge", "")
    if not challenge or len(challenge) > _MAX_CHALLENGE:
        return WebhookResponse(400, b"missing hub.challenge")
    return WebhookResponse(200, challenge)


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """The Graph API ``appsecret_proof``: hex HMAC-SHA256 of the access token with the app secret.
    It proves the caller holds the secret without sending it."""
    return hmac_digest(app_secret, access_token)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class GraphError:
    """What a failed Graph API answer says: ``{"error": {"code", "error_subcode", "message",
    "error_data": {"details"}, "fbtrace_id"}}`` (every field may be missing)."""

    status: int
    """The HTTP status."""
    code: int | None = None
    """Meta's error code."""
    subcode: int | None = None
    """Meta's ``error_subcode``."""
    message: str = ""
    """Meta's message."""
    details: str = ""
    """``error_data.details`` (WhatsApp's explanation)."""

    @classmethod
    def from_payload(cls, error: Any, status: int = 0) -> GraphError:
        """Read one error object (a Graph answer's ``error``, a WhatsApp ``statuses[].errors[]``
        item); anything that is not an object reads as an empty error."""
        if not isinstance(error, dict):
            return cls(status)
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        message = error.get("message")
        return cls(status, _int(error.get("code")), _int(error.get("error_subcode")),
                   message if isinstance(message, str) else "",
                   details if isinstance(details, str) else "")

    def describe(self, *, secrets: tuple[str, ...] = (), limit: int = 300) -> str:
        """Message and details in one line, every value of ``secrets`` replaced by ``***``, at
        most ``limit`` characters."""
        text = self.message
        if self.details and self.details not in text:
            text = f"{text} ({self.details})" if text else self.details
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text[:limit]


def read_graph_error(response: httpx.Response) -> GraphError:
    """The :class:`GraphError` of a failed Graph API answer (empty fields when the body is not
    Meta's error document)."""
    error: Any = None
    with contextlib.suppress(ValueError, TypeError):
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            error = body.get("error")
    return GraphError.from_payload(error, response.status_code)


def usage_retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: ``Retry-After``, else the longest ``estimated_time_to_regain_access``
    (minutes) Meta put in its usage headers (``X-Business-Use-Case-Usage``, ``X-App-Usage``,
    ``X-Page-Usage``)."""
    header = parse_retry_after(response.headers.get("retry-after"))
    if header is not None:
        return header
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = response.headers.get(name)
        if not raw:
            continue
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError):
            data = orjson.loads(raw)
            entries: list[Any] = []
            if isinstance(data, dict):
                for value in data.values():
                    entries.extend(value if isinstance(value, list) else [value])
                entries.append(data)
            for entry in entries:
                if isinstance(entry, dict):
                    value = entry.get("estimated_time_to_regain_access")
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                        minutes.append(float(value))
    return max(minutes) * 60 if minutes else None
