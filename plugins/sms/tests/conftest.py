"""Fixtures of the SMS plugin tests: sample files, signed requests, a hub with both channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from omnichannel_sms import _plugin, parse_form, signed_params
from omnichannel_sms._twilio import signed_request

from omnichannel_sdk import WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL, require_package

SAMPLES = Path(__file__).parent / "samples"
TWILIO_SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
VONAGE_SECRET = "vonage-signature-secret-abc"
VONAGE_API_SECRET = "vonage-api-secret-xyz"


class Samples:
    """Recorded vendor payloads (written from the vendors' documentation) and signing."""

    def form(self, name: str) -> list[tuple[str, str]]:
        return parse_form((SAMPLES / f"{name}.form").read_bytes())

    def json(self, name: str) -> Any:
        return orjson.loads((SAMPLES / f"{name}.json").read_bytes())

    def bytes(self, name: str) -> bytes:
        return (SAMPLES / name).read_bytes()

    def twilio(self, name: str, key: str = "twilio", **changes: str) -> WebhookRequest:
        pairs = [(k, changes.pop(k, v)) for k, v in self.form(name)]
        pairs += list(changes.items())
        return signed_request(TWILIO_TOKEN, f"{PUBLIC_URL}/webhooks/{key}", pairs)

    def vonage(self, params: dict[str, Any], key: str = "vonage", *, kind: str = "json",
               method: str = "md5hash", timestamp: int | None = None) -> WebhookRequest:
        from urllib.parse import urlencode

        signed = signed_params(VONAGE_SECRET, params, method, timestamp)  # type: ignore[arg-type]
        url = f"{PUBLIC_URL}/webhooks/{key}"
        if kind == "json":
            return WebhookRequest("POST", url, {"content-type": "application/json"},
                                  orjson.dumps(signed))
        if kind == "form":
            return WebhookRequest("POST", url, {"content-type": "application/x-www-form-urlencoded"},
                                  urlencode(signed).encode())
        return WebhookRequest("GET", f"{url}?{urlencode(signed)}")


def need_package(name: str) -> Any:
    """Import a test-only package: skip without it on a laptop, fail under CI=true."""
    return require_package(name, hint="the plugin's dev extra")


@pytest.fixture(scope="session")
def gsm0338() -> Any:
    """The ``gsm0338`` codec package (an independent GSM 03.38 implementation)."""
    return need_package("gsm0338")


@pytest.fixture(scope="session")
def twilio_validator() -> Any:
    """The ``twilio`` package's ``RequestValidator`` class (the bench peer)."""
    return need_package("twilio.request_validator").RequestValidator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def samples() -> Samples:
    return Samples()


def twilio_settings(**extra: Any) -> dict[str, Any]:
    return {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": "+15005550006",
            **extra}


def vonage_settings(**extra: Any) -> dict[str, Any]:
    return {"api_key": "abcd1234", "api_secret": VONAGE_API_SECRET,
            "signature_secret": VONAGE_SECRET, "from_number": "447700900000", **extra}


@pytest.fixture
def sms_channels() -> dict[str, dict[str, Any]]:
    """Channel tables the ``hub`` fixture gets (tests may change them first)."""
    return {"twilio": {"adapter": "twilio-sms", **twilio_settings()},
            "vonage": {"adapter": "vonage-sms", **vonage_settings(concat_timeout=0.4)}}


@pytest.fixture
def omni_config(omni_config: dict[str, Any], sms_channels: dict[str, Any]) -> dict[str, Any]:
    omni_config["channels"].update(sms_channels)
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_plugin)
    return register_plugin
