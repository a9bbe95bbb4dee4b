"""The settings of a ``twilio-sms`` channel (shared by the adapter and its reconciliation)."""

from __future__ import annotations

from pydantic import SecretStr, model_validator

from ._settings import SmsSettings

__all__ = ["TwilioSmsSettings"]


class TwilioSmsSettings(SmsSettings):
    """Configuration of a Twilio SMS channel."""

    account_sid: str
    """The account SID (``AC…``); also the user name of the API's Basic auth."""
    auth_token: SecretStr
    """The account's auth token: signs webhooks, and is the API's Basic auth password."""
    from_number: str | None = None
    """Our number (E.164, or local with ``default_region``), short code or sender id."""
    messaging_service_sid: str | None = None
    """Send through a Messaging Service (``MG…``) instead of ``from_number``."""
    api_key_sid: str | None = None
    """Authenticate API calls with an API key (``SK…``) instead of the account SID."""
    api_key_secret: SecretStr | None = None
    """The API key's secret (with ``api_key_sid``)."""
    mms: bool = True
    """Send media as MMS (US and Canada numbers); off, media become links."""

    @model_validator(mode="after")
    def _sender(self) -> TwilioSmsSettings:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("give from_number or messaging_service_sid")
        if bool(self.api_key_sid) != bool(self.api_key_secret):
            raise ValueError("api_key_sid and api_key_secret go together")
        return self
