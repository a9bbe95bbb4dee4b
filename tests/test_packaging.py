"""What a new user installs: a light core whose pytest plugin never breaks a test run, PyPI
metadata on every distribution, a core sdist without the plugins."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
CORE_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def project(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def test_the_core_installs_light() -> None:
    deps = " ".join(project(ROOT)["dependencies"]).lower()
    for heavy in ("asyncpg", "nats-py", "aiohttp", "respx", "uvicorn[standard]"):
        assert heavy not in deps, heavy
    assert "sniffio" in deps  # httpcore's per-request import of it must succeed
    extras = project(ROOT)["optional-dependencies"]
    for extra in ("postgres", "nats", "aiohttp", "serve", "testing"):
        assert extra in extras
    # development installs everything: dev.sh installs ".[test]"
    assert any("all" in dep for dep in extras["test"] if dep.startswith("omnichannel-sdk["))
    assert "postgres,nats,aiohttp,serve,testing" in extras["all"][0]


@pytest.mark.parametrize("root", DISTRIBUTIONS, ids=lambda p: p.name)
def test_pypi_metadata(root: Path) -> None:
    meta = project(root)
    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"] and (root / "LICENSE").is_file()
    assert "Apache License" in (root / "LICENSE").read_text()[:200]
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(meta["urls"])
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in meta["classifiers"])
    readme = (root / meta["readme"]).read_text()
    assert "pip install" in readme
    assert not re.search(r"\]\((?!https?://)[^)]*\)", readme), "relative links break on PyPI"
    if root != ROOT:
        assert "dev.sh" not in readme
        core = [d for d in meta["dependencies"] if d.startswith("omnichannel-sdk")]
        assert core and re.fullmatch(r"omnichannel-sdk>=[\d.]+,<[\d.]+", core[0]), core
        low, high = re.findall(r"[\d.]+", core[0])
        assert tuple(map(int, low.split("."))) <= tuple(map(int, CORE_VERSION.split(".")))
        assert tuple(map(int, CORE_VERSION.split("."))) < tuple(map(int, high.split(".")))


@pytest.mark.slow
def test_the_core_sdist_holds_the_core_only(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (sdist,) = tmp_path.glob("omnichannel_sdk-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    assert "src/omnichannel_sdk/__init__.py" in names and "src/omnichannel_sdk/py.typed" in names
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= set(names)
    assert not [n for n in names if n.startswith(("plugins/", "examples/", "bench/", ".venv"))]


def _light_venv(base: Path) -> Path:
    """A venv with only ``pip install <core> pytest``; kept across runs (keyed by the core's
    pyproject.toml), the core itself reinstalled each time from the worktree."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    env = base / f"omnichannel-light-{key}"
    python = env / "bin" / "python"
    if not (env / ".ready").exists():
        venv.create(env, with_pip=True, clear=True)
        subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT), "pytest"], check=True,
                       capture_output=True, timeout=900)
        (env / ".ready").touch()
    else:
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
                       check=True, capture_output=True, timeout=600)
    return python


@pytest.mark.slow
def test_an_application_with_only_the_core_and_pytest_passes_a_trivial_test(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # the parent of pytest's numbered base dirs survives between runs: cache the venv there
    python = _light_venv(tmp_path_factory.getbasetemp().parent)
    app = tmp_path / "app"
    (app / "tests").mkdir(parents=True)
    (app / "tests" / "test_trivial.py").write_text(
        "def test_trivial(omni_config):\n"
        "    assert omni_config['omnichannel']['bus'] == 'memory'\n")
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                            cwd=app, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout

    # nothing optional is there, and each missing extra is named when it is needed
    check = (
        "import importlib.util, pytest\n"
        "for m in ('respx', 'asyncpg', 'nats', 'aiohttp', 'httpx_aiohttp'):\n"
        "    assert importlib.util.find_spec(m) is None, m\n"
        "from omnichannel_sdk import Hub, ConfigurationError\n"
        "from omnichannel_sdk.testing import ChannelContract\n"
        "for table, extra in (({'store': 'postgresql://h/db'}, 'postgres'),\n"
        "                     ({'bus': 'nats://127.0.0.1:4222'}, 'nats')):\n"
        "    with pytest.raises(ConfigurationError, match=rf\"omnichannel-sdk\\[{extra}\\]\"):\n"
        "        Hub.from_config({'omnichannel': {'store': 'sqlite:///:memory:', **table}})\n"
        "from omnichannel_sdk._http import make_http_client\n"
        "with pytest.raises(ConfigurationError, match=r'omnichannel-sdk\\[aiohttp\\]'):\n"
        "    make_http_client('aiohttp')\n"
        "print('light ok')\n")
    result = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "light ok" in result.stdout, result.stdout + result.stderr
