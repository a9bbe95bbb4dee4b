"""The command line as a person meets it: one-line errors, full tables, JSON, helpful help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from omnichannel_sdk.testing import free_port

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, columns: int = 80, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "omnichannel_sdk._cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_plugins_json_is_machine_readable() -> None:
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_name = {row["name"]: row for row in rows}
    assert {"json-mapping", "twilio-sms", "webchat"} <= set(by_name)
    assert by_name["twilio-sms"]["channel"] == "sms"
    assert "auth_token" in by_name["twilio-sms"]["settings"]
    assert by_name["twilio-sms"]["capabilities"]["max_text_length"] > 0


def test_plugins_table_is_not_cut_at_80_columns() -> None:
    result = cli("plugins", columns=80)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    for name in ("amazon-transcribe", "json-mapping", "omnichannel_messenger"):
        assert name in result.stdout


def test_a_missing_file_is_one_line() -> None:
    line = one_line_error(cli("normalize", "--adapter", "json-mapping", "/nonexistent/payload.json"))
    assert "/nonexistent/payload.json" in line
    line = one_line_error(cli("serve", "--config", "/nonexistent/omnichannel.toml"))
    assert "/nonexistent/omnichannel.toml" in line
    one_line_error(cli("replay", "--config", "/nonexistent/omnichannel.toml"))


def test_simulate_without_a_running_demo_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    line = one_line_error(cli("simulate", "json-mapping", "--url", f"http://127.0.0.1:{port}",
                              "--data-dir", str(tmp_path), cwd=tmp_path))
    assert f"http://127.0.0.1:{port}" in line and "omnichannel demo" in line


def test_a_port_in_use_is_refused_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("demo", "--port", str(port), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
        line = one_line_error(result)
        assert str(port) in line and "--port" in line
        assert "omnichannel demo" not in result.stdout  # no banner promising URLs
        config = tmp_path / "omnichannel.toml"
        config.write_text(f'[omnichannel]\nstore = "sqlite:///{tmp_path}/s.db"\n')
        line = one_line_error(cli("serve", "--config", str(config), "--port", str(port)))
        assert str(port) in line


def test_set_without_equals_is_one_line(tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    line = one_line_error(cli("normalize", "--adapter", "json-mapping", str(payload), "--set", "foo"))
    assert "--set foo" in line and "NAME=VALUE" in line


def test_normalize_names_the_missing_setting(tmp_path: Path) -> None:
    payload = tmp_path / "p.form"
    payload.write_text("From=%2B14155550100&Body=hi&MessageSid=SM1")
    line = one_line_error(cli("normalize", "--adapter", "twilio-sms", str(payload)))
    assert "--set account_sid=" in line  # the secret (auth_token) is not needed to parse
    result = cli("normalize", "--adapter", "twilio-sms", str(payload), "--set", "account_sid=AC1",
                 "--set", "from_number=+15005550006")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"][0]["external_id"] == "SM1"
    line = one_line_error(cli("normalize", "--adapter", "twilio-sms", str(payload), "--set",
                              "account_sid=AC1", "--set", "from_number=+15005550006", "--set",
                              "media_max_bytes=lots"))
    assert line.startswith("error: ")


@pytest.mark.parametrize("command", ["demo", "serve", "plugins", "normalize", "schema", "replay", "simulate"])
def test_help_has_no_python_type_names(command: str) -> None:
    result = cli(command, "--help", columns=120)
    assert result.returncode == 0, result.stderr
    for word in ("list[str]", "Optional", "NoneType", "<class", "pathlib", "Annotated", "| None"):
        assert word not in result.stdout, (command, word)


def test_simulate_help_lists_its_targets() -> None:
    result = cli("simulate", "--help", columns=120)
    assert result.returncode == 0, result.stderr
    assert "Targets:" in result.stdout
    for target in ("twilio-sms", "webchat", "messenger"):
        assert target in result.stdout


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_demo_banner_prints_the_visitor_page(tmp_path: Path, host: str) -> None:
    """A wildcard interface is shown (and used for the demo vendors' media) as loopback."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "omnichannel_sdk._cli", "demo", "--port", str(port),
                                "--host", host,
                                "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl+C" in line:
                break
        banner = "".join(lines)
        assert f"visitor page: http://127.0.0.1:{port}/demo/chat" in banner, banner
        assert f"agent inbox:  http://127.0.0.1:{port}/demo/" in banner
    finally:
        process.terminate()
        process.communicate(timeout=20)  # reads and closes both pipes
