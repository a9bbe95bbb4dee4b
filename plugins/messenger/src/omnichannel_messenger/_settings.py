"""Settings of a Meta messaging channel, and the message tags and windows they allow."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from typing_extensions import TypeVar

from omnichannel_sdk import AdapterSettings

from ._inbound import PAGE_INBOX_APP_IDS

__all__ = [
    "HUMAN_AGENT_WINDOW", "MESSAGE_TAGS", "TAG_METADATA", "InstagramSettings", "MessageTag",
    "MessengerSettings", "MetaSettings", "MetaSettingsT"]

HUMAN_AGENT_WINDOW = timedelta(days=7)
"""How long after the customer's last message a human agent may answer with the HUMAN_AGENT tag."""

MessageTag = Literal["CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"]
"""Message tags for non-promotional updates outside the 24-hour window (any author)."""
MESSAGE_TAGS: frozenset[str] = frozenset({"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"})
"""Every value of :data:`MessageTag`."""
TAG_METADATA = "messenger_tag"
"""``hub.send(..., metadata={"messenger_tag": "POST_PURCHASE_UPDATE"})`` asks for a message tag."""


class MetaSettings(AdapterSettings):
    """Settings of a Meta messaging channel (``[channels.<key>]``)."""

    app_secret: SecretStr
    """The Meta app's secret: verifies ``X-Hub-Signature-256`` and signs ``appsecret_proof``."""
    verify_token: SecretStr
    """The token you typed into the app dashboard; the GET handshake must present it."""
    page_access_token: SecretStr
    """Page access token used by the Send API."""
    api_version: str = Field(default="v21.0", pattern=r"^v\d{1,2}\.\d$")
    """Graph API version, e.g. ``v21.0``."""
    page_id: str | None = None
    """Our Page id (Instagram: the professional account id). Optional; set it so that
    conversations you start thread with the customer's own messages."""
    human_agent_tag: bool = False
    """Allow human agents to answer up to 7 days after the customer's last message with the
    ``HUMAN_AGENT`` tag (the page needs Meta's Human Agent permission). Never used for bots."""
    human_app_ids: list[str] = Field(default_factory=lambda: sorted(PAGE_INBOX_APP_IDS))
    """Echoes sent by these app ids were written by people (Meta's own inboxes by default)."""
    appsecret_proof: bool = True
    """Send ``appsecret_proof`` with every Graph call (required when the app enforces it)."""
    message_tags: list[MessageTag] = Field(default_factory=list)
    """Message tags the page may use outside the 24-hour window for non-promotional updates,
    asked per message with ``metadata["messenger_tag"]``. Empty (the default): none."""
    fetch_profiles: bool = True
    """Fetch the customer's name (and, on Messenger, locale and timezone) from the profile API
    when a conversation opens, and store it into the contact."""


MetaSettingsT = TypeVar("MetaSettingsT", bound=MetaSettings, default=MetaSettings, covariant=True)
"""The settings model of a ``MetaAdapter`` (``MetaAdapter[MessengerSettings]``)."""


class MessengerSettings(MetaSettings):
    """Settings of a Messenger channel: ``app_secret``, ``verify_token``,
    ``page_access_token``, ``api_version``, optional ``page_id`` and ``human_agent_tag``."""


class InstagramSettings(MetaSettings):
    """Settings of an Instagram channel (as Messenger's; ``page_id`` is the Instagram
    professional account id). Instagram offers no message tag but ``HUMAN_AGENT``."""

    @field_validator("message_tags")
    @classmethod
    def _no_tags(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError("the Instagram Messaging API offers no message tag but HUMAN_AGENT")
        return value
