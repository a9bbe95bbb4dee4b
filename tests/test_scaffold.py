"""``omnichannel new-plugin``: the distribution it writes passes the contract kit, is found
through its entry point, and is what examples/plugin_template holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnichannel_sdk import ConfigurationError
from omnichannel_sdk._cli import app
from omnichannel_sdk._scaffold import plugin_files, write_plugin
from omnichannel_sdk.testing import ChannelContract

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], env_path: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in env_path)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_the_scaffold_passes_the_contract_kit_and_is_listed(tmp_path: Path) -> None:
    dist = tmp_path / "omnichannel-acme-chat"
    result = CliRunner().invoke(app, ["new-plugin", "acme-chat", "--directory", str(dist)])
    assert result.exit_code == 0, result.output
    assert (dist / "src" / "omnichannel_acme_chat" / "py.typed").exists()

    kit = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(dist),
                "-c", os.devnull, "tests"], [dist / "src"], dist)
    assert kit.returncode == 0, kit.stdout + kit.stderr
    # every contract test of the kit ran and passed, but the one its capability opt-out skips
    kit_tests = sum(1 for name in dir(ChannelContract) if name.startswith("test_"))
    assert f"{kit_tests - 1} passed, 1 skipped" in kit.stdout, kit.stdout

    lint = _run(["-m", "ruff", "check", "--no-cache", "."], [], dist)  # its own pyproject config
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # what `pip install -e .` would leave behind: the entry point from the generated pyproject
    project = tomllib.loads((dist / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["omnichannel"]
    assert entry == {"acme-chat": "omnichannel_acme_chat._plugin"}
    site = tmp_path / "site"
    info = site / "omnichannel_acme_chat-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: omnichannel-acme-chat\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[omnichannel]\nacme-chat = omnichannel_acme_chat._plugin\n")
    listed = _run(["-c", "import sys; from omnichannel_sdk._cli import main; sys.argv[1:] = ['plugins', '--json'];"
                   " main()"], [dist / "src", site], tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["acme-chat"]["module"] == "omnichannel_acme_chat"
    assert rows["acme-chat"]["settings"] == ["api_base", "api_token", "media_max_bytes", "rate_limit",
                                             "thread_with", "webhook_secret"]


def test_the_plugin_template_is_the_scaffold_of_example() -> None:
    template = ROOT / "examples" / "plugin_template"
    expected = plugin_files("example")
    found = {str(p.relative_to(template)): p.read_text() for p in template.rglob("*")
             if p.is_file() and not any(part.startswith((".", "__pycache__"))
                                        for part in p.relative_to(template).parts)}
    assert found == expected, "regenerate: omnichannel new-plugin example -d examples/plugin_template"


@pytest.mark.parametrize("name", ["", "Line", "acme_chat", "-x", "x-", "1line", "a--b", "x" * 41])
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="lower-case letters"):
        write_plugin(name, tmp_path / "out")


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["new-plugin", "line", "--directory", str(tmp_path)])
    assert result.exit_code != 0 and "not empty" in str(result.exception)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
