"""The public surface: a sorted __all__, documented hooks, py.typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import omnichannel_sdk
from omnichannel_sdk import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_complete() -> None:
    names = omnichannel_sdk.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(omnichannel_sdk, name), name
    public = {n for n in dir(omnichannel_sdk)
              if not n.startswith("_") and not inspect.ismodule(getattr(omnichannel_sdk, n))}
    assert public - {"annotations"} <= set(names)


def _hooks() -> list[str]:
    return [n for n in dir(hookspecs) if n.startswith("omni_")]


def test_every_hook_is_named_and_documented() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in _hooks():
        function = getattr(hookspecs, name)
        doc = inspect.getdoc(function) or ""
        assert doc, f"{name} has no docstring"
        for param in inspect.signature(function).parameters:
            assert f":param {param}:" in doc, f"{name} does not document {param}"
        assert f"`{name}" in docs, f"docs/plugins.md does not describe {name}"


def test_every_documented_hook_exists() -> None:
    import re

    docs = (ROOT / "docs" / "plugins.md").read_text()
    mentioned = set(re.findall(r"`(omni_[a-z_]+)", docs)) - {"omni_config"}  # a fixture
    assert mentioned <= set(_hooks()), mentioned - set(_hooks())


def test_public_names_have_docstrings() -> None:
    for name in omnichannel_sdk.__all__:
        obj = getattr(omnichannel_sdk, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_typed_marker_ships() -> None:
    assert (Path(omnichannel_sdk.__file__).parent / "py.typed").exists()


def test_every_public_hub_method_is_in_the_api_page() -> None:
    from omnichannel_sdk import Hub

    page = (ROOT / "docs" / "api.md").read_text()
    public = [n for n, v in vars(Hub).items() if not n.startswith("_") and callable(v)]
    missing = [n for n in public if f"hub.{n}(" not in page and f"Hub.{n}(" not in page]
    assert not missing, missing
