"""The `omnichannel` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnichannel_sdk._cli import app

runner = CliRunner()


def test_schema_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema", "--model", "Message"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["title"] == "Message" and "parts" in schema["properties"]
    everything = json.loads(runner.invoke(app, ["schema"]).output)
    assert {"Message", "Conversation", "Contact", "StatusUpdate"} <= set(everything)


def test_plugins_lists_adapters() -> None:
    result = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "json-mapping" in result.output


def test_normalize_prints_messages(tmp_path: Path) -> None:
    payload = tmp_path / "hook.json"
    payload.write_text(json.dumps({"data": [{"msg_id": "1", "user": "u-9", "body": "hello"},
                                            {"user": "no id"}]}))
    result = runner.invoke(app, ["normalize", "--adapter", "json-mapping", str(payload), "--set", "items=data",
                                 "--set", "external_id=msg_id", "--set", "sender=user",
                                 "--set", "text=body"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["items"][0]["external_id"] == "1"
    assert out["items"][0]["parts"] == [{"type": "text", "text": "hello", "format": "plain"}]
    assert out["failures"][0]["fragment"] == {"user": "no id"}
    # the first path that matched nothing is named, on stderr
    assert "data[1]: path 'msg_id' (external_id) matched nothing" in result.stderr


def test_normalize_reads_a_mapping_from_a_config_file() -> None:
    root = Path(__file__).resolve().parents[1]
    result = runner.invoke(app, ["normalize", "--config", str(root / "examples/mapping/line.toml"),
                                 str(root / "examples/mapping/line/events.json")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [i["parts"][0]["name"] for i in out["items"]] == ["sticker", "subscribe", "unsubscribe"]
    assert "left out by filter" in result.stderr


def test_normalize_names_a_broken_mapping(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('[channels.x]\nadapter = "json-mapping"\nsender = "a.[b"\n')
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    result = subprocess.run([sys.executable, "-m", "omnichannel_sdk._cli", "normalize", "--config",
                             str(config), str(payload)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "channels.x.sender" in result.stderr and "a.[b" in result.stderr


def test_unknown_adapter_is_a_clean_error(tmp_path: Path) -> None:
    payload = tmp_path / "x.json"
    payload.write_text("{}")
    result = subprocess.run([sys.executable, "-m", "omnichannel_sdk._cli", "normalize", "--adapter",
                             "nope", str(payload)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown adapter" in result.stderr and "Traceback" not in result.stderr


def test_demo_check_runs_the_main_job(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "omnichannel_sdk._cli", "demo", "--check",
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "demo-json: POST /webhooks/demo-json -> 200" in result.stdout
    assert "sent" in result.stdout and "inbox page: 200" in result.stdout


def test_replay_reprocesses_dead_letters(tmp_path: Path) -> None:
    import asyncio
    import hashlib
    import hmac

    from omnichannel_sdk import Hub, WebhookRequest

    config = tmp_path / "omnichannel.toml"
    config.write_text(f'''
[omnichannel]
store = "sqlite:///{tmp_path}/r.db"
blobs = "memory://"
http_transport = "httpx"

[channels.partner]
adapter = "json-mapping"
secret = "k"
''')

    async def dead_letter() -> None:
        async with Hub.from_config(config) as hub:
            body = b'{"id": "1", "from": "x", "text": "hi"'  # truncated JSON
            sig = hmac.new(b"k", body, hashlib.sha256).hexdigest()
            await hub.handle_webhook("partner", WebhookRequest(
                "POST", hub.request_url("partner"), {"x-signature": sig}, body))
            assert len(await hub.store.list_dead_letters()) == 1

    asyncio.run(dead_letter())
    result = runner.invoke(app, ["replay", "--config", str(config)])
    assert result.exit_code == 1 and "still failing 1" in result.output


@pytest.mark.parametrize("command", ["demo", "serve", "plugins", "normalize", "schema", "replay", "simulate"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_every_uvicorn_start_has_the_access_log_off_unless_asked(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: calls.append(kw))
    monkeypatch.setenv("OMNICHANNEL_CONFIG", "")  # serve sets it; restored after the test
    from omnichannel_sdk.testing import free_port

    port = str(free_port())
    config = tmp_path / "omnichannel.toml"
    config.write_text(f'[omnichannel]\nstore = "sqlite:///{tmp_path}/s.db"\nlog_format = "json"\n')
    for args in (["serve", "--config", str(config), "--port", port],
                 ["serve", "--config", str(config), "--port", port, "--workers", "2"],
                 ["demo", "--port", port, "--data-dir", str(tmp_path / "d")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert [c["access_log"] for c in calls] == [False, False, False]
    assert runner.invoke(app, ["serve", "--config", str(config), "--port", port,
                               "--access-log"]).exit_code == 0
    assert calls[-1]["access_log"] is True


def test_serve_names_the_missing_fast_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from omnichannel_sdk._cli import server_note

    assert server_note() is None  # the test environment has the [serve] extra
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "httptools" else real(name, *a))
    note = server_note()
    assert note is not None and "httptools" in note and "omnichannel-sdk[serve]" in note
