"""Settings of a ``wechat-mp`` channel (``[channels.<key>]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from omnichannel_sdk import AdapterSettings

from ._crypto import decode_aes_key

__all__ = ["WeChatSettings"]


class WeChatSettings(AdapterSettings):
    """``[channels.<key>]`` of a ``wechat-mp`` channel (WeChat console → Basic settings)."""

    # a mistyped secret must not be echoed back in a validation error
    model_config = ConfigDict(**AdapterSettings.model_config, hide_input_in_errors=True)

    app_id: str = Field(min_length=1)
    """The AppID (``wx…``); safe-mode payloads must name it."""
    app_secret: SecretStr
    """The AppSecret, for ``access_token``."""
    token: SecretStr
    """The server-configuration Token that signs webhooks."""
    encoding_aes_key: SecretStr | None = None
    """The 43-character EncodingAESKey (compatible / safe mode); absent: plaintext mode."""
    max_clock_skew: float | None = Field(default=300.0, gt=0)
    """Refuse webhooks whose signed ``timestamp`` is further than this many seconds from
    our clock (replay protection); ``None`` turns the check off."""
    token_refresh_margin: float = Field(default=300.0, ge=0)
    """Fetch a new ``access_token`` this many seconds before the old one expires."""
    token_wait: float = Field(default=10.0, gt=0)
    """How long to wait for another process that is fetching the ``access_token``."""
    token_endpoint: Literal["stable_token", "token"] = "stable_token"
    """``stable_token`` (POST, the secret in the body; WeChat's recommendation) or the
    classic ``token`` (GET, the secret in the query string)."""

    @field_validator("encoding_aes_key")
    @classmethod
    def _valid_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            decode_aes_key(value.get_secret_value())  # ValueError names no key material
            return value
        return None
