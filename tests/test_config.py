"""Configuration: TOML or dict, ${ENV}, one error naming the channel key and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnichannel_sdk import ConfigurationError, Hub, JsonMappingAdapter


def test_toml_with_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SECRET", "s3cret")
    config = tmp_path / "omnichannel.toml"
    config.write_text(f'''
[omnichannel]
store = "sqlite:///{tmp_path}/x.db"
public_url = "https://support.example.com/hooks/"

[channels.partner]
adapter = "json-mapping"
secret = "${{DEMO_SECRET}}"
channel = "${{PARTNER_CHANNEL:-partner}}"
''')
    hub = Hub.from_config(config)
    adapter = hub.adapter("partner")
    assert isinstance(adapter, JsonMappingAdapter)
    assert adapter.settings.secret and adapter.settings.secret.get_secret_value() == "s3cret"
    assert adapter.channel == "partner"
    assert hub.public_url == "https://support.example.com/hooks"
    assert "s3cret" not in repr(adapter.settings)


@pytest.mark.parametrize(("config", "channel_key", "field", "words"), [
    ({"channels": {"sms": {"adapter": "nope"}}}, "sms", "adapter", "unknown adapter"),
    ({"channels": {"sms": {}}}, "sms", "adapter", "missing"),
    ({"channels": {"web": {"adapter": "json-mapping", "auth": "maybe"}}}, "web", "auth", "Input should be"),
    ({"channels": {"web": {"adapter": "json-mapping", "colour": "red"}}}, "web", "colour", "Extra inputs"),
    ({"channels": {"web": {"adapter": "json-mapping", "secret": "${NOT_SET_ANYWHERE}"}}}, "web", "secret",
     "NOT_SET_ANYWHERE"),
    ({"omnichannel": {"max_body_bytes": -1}}, None, "omnichannel.max_body_bytes", "greater than"),
    ({"omnichannel": {"store": "mysql://x"}}, None, "store", "unsupported store"),
    ({"omnichannel": {"bus": "kafka://x"}}, None, "bus", "unsupported bus"),
    ({"channel": {}}, None, None, "unknown top-level"),
])
def test_one_clear_error(config: dict, channel_key: str | None, field: str | None, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Hub.from_config(config)
    error = info.value
    assert error.channel_key == channel_key
    assert error.field == field
    assert words in str(error)
    if channel_key:
        assert f"channels.{channel_key}.{field}" in str(error)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Hub.from_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[omnichannel\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        Hub.from_config(bad)


def test_secret_never_in_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as info:
        Hub.from_config({"channels": {"w": {"adapter": "json-mapping", "secret": "hunter2",
                                            "auth": "bogus"}}})
    assert "hunter2" not in str(info.value)
