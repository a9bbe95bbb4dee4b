"""The documentation: the reference builds from the docstrings, renders offline, and the hooks
table says what the specifications say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
                             str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.slow
def test_the_reference_is_generated_from_the_docstrings(site: Path) -> None:
    hub = (site / "reference" / "hub" / "index.html").read_text()
    assert "list_conversations" in hub and "from_config" in hub
    assert "async" in hub  # mkdocstrings labels coroutines
    hooks = (site / "reference" / "hooks" / "index.html").read_text()
    for name in ("omni_register_adapters", "omni_outbound_render", "omni_status_changed"):
        assert name in hooks
    adapters = (site / "reference" / "adapters" / "index.html").read_text()
    assert "raise_for_status" in adapters and "error_for_status" in adapters


@pytest.mark.slow
def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    external = re.compile(r"""(?:<script[^>]+src|<link[^>]+href|<img[^>]+src)=["']?(?:https?:)?//""", re.I)
    css_import = re.compile(r"""@import\s+url\(["']?(?:https?:)?//|url\(["']?https?://""", re.I)
    found = []
    for page in site.rglob("*"):
        if page.suffix == ".html":
            text = page.read_text(errors="replace")
            for match in external.finditer(text):
                tag = text[match.start():text.find(">", match.start()) + 1]
                if 'rel="canonical"' in tag or "rel=canonical" in tag:
                    continue  # a link for search engines, nothing is fetched
                found.append(f"{page.relative_to(site)}: {tag[:120]}")
        elif page.suffix in (".css", ".js"):
            if css_import.search(page.read_text(errors="replace")):
                found.append(str(page.relative_to(site)))
    assert not found, found
    index = (site / "index.html").read_text()
    assert "fonts.googleapis" not in index and "cdn." not in index
    assert 'class="highlight"' in (site / "quickstart" / "index.html").read_text()  # highlighted at build time


def test_the_hooks_table_matches_the_specifications() -> None:
    from omnichannel_sdk import hookspecs
    from omnichannel_sdk._plugins import build_plugin_manager

    pm, _ = build_plugin_manager(entry_points=False)
    table = {}
    for line in (ROOT / "docs" / "reference" / "hooks.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`omni_"):
            table[cells[0].strip("`")] = cells[3]
    specs = {n for n in dir(hookspecs) if n.startswith("omni_")}
    assert set(table) == specs
    for name in specs:
        first = bool(getattr(pm.hook, name).spec.opts.get("firstresult"))
        assert table[name] == ("yes" if first else "no"), name
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ("first non-None result" in doc) == first, name


def test_the_template_and_the_plugin_guide_agree() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    template = (ROOT / "examples" / "plugin_template" / "src" / "omnichannel_example" / "_adapter.py").read_text()
    from omnichannel_sdk import ChannelAdapter

    for helper in re.findall(r"self\.(\w+_for_status)\(", template + guide):
        assert hasattr(ChannelAdapter, helper), helper
        assert helper in guide
    assert 'extras["hub"]' not in guide
