"""Bad email channel tables fail at Hub.from_config with the channel key and the field."""

from __future__ import annotations

from typing import Any

import pytest
from omnichannel_email import _plugin

from omnichannel_sdk import ConfigurationError, Hub


@pytest.mark.parametrize(("table", "field"), [
    ({"adapter": "mailgun", "from_address": "s@shop.example", "api_key": "k"}, "signing_key"),
    ({"adapter": "postmark", "from_address": "s@shop.example", "server_token": "t"},
     "basic_auth_username"),
    ({"adapter": "sendgrid", "from_address": "s@shop.example", "api_key": "k"}, "authenticated"),
    ({"adapter": "email-smtp", "from_address": "not-an-address"}, "from_address"),
    ({"adapter": "email-smtp", "from_address": "s@shop.example", "listen": "nope"}, "host:port"),
    ({"adapter": "email-smtp", "from_address": "s@shop.example", "imap_host": "imap.x"},
     "imap_username"),
    ({"adapter": "sendgrid", "from_address": "s@shop.example", "api_key": "k",
      "verification_key": "bm90IGEga2V5"}, "verification_key"),
])
def test_bad_tables(table: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Hub.from_config({"omnichannel": {"store": "sqlite:///:memory:"}, "channels": {"mail": table}},
                        plugins=[_plugin])
    assert "channels.mail" in str(info.value) and field in str(info.value)
