"""The house stays easy to change: small modules, and an import graph without cycles.

Both checks read the source (no import side effects): module sizes by line count, the import
graph with ``grimp`` (every import: module level, inside functions, and ``TYPE_CHECKING``-only
ones, since a cycle that only type checkers see still ties the modules together).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500

SOURCE_DIRS = [ROOT / "src", *sorted((ROOT / "plugins").glob("*/src"))]
PACKAGES = ["omnichannel_sdk", *sorted(p.name for d in SOURCE_DIRS[1:] for p in d.glob("omnichannel_*"))]

OVERSIZED: dict[str, str] = {
    # path relative to the repository -> why it is still allowed (the lead empties this list)
}

ALLOWED_EDGES: dict[tuple[str, str], str] = {
    # (importer, imported) -> why this edge stays although it closes a cycle
    ("omnichannel_sdk.hookspecs", "omnichannel_sdk._hub"):
        "TYPE_CHECKING only: the hook specifications document their ``hub`` argument as the Hub "
        "itself, which plugin authors call; a Protocol would hide its methods from them",
}

KNOWN_CYCLES: dict[frozenset[str], str] = {
    # modules of one cycle -> why it is still there (the lead empties this list)
}


def _sizes() -> Iterable[tuple[str, int]]:
    for base in SOURCE_DIRS:
        for path in sorted(base.rglob("*.py")):
            with path.open("rb") as handle:
                yield path.relative_to(ROOT).as_posix(), sum(1 for _ in handle)


def test_no_module_is_over_500_lines() -> None:
    sizes = dict(_sizes())
    assert sizes, "no sources found"
    over = {path: n for path, n in sizes.items() if n > MAX_LINES and path not in OVERSIZED}
    assert not over, f"modules over {MAX_LINES} lines (split them along their seams): {over}"


def test_no_module_is_a_grab_bag() -> None:
    """Modules are named by what they do: no ``_common``, ``_helpers``, ``_utils``, ``_misc``."""
    bags = sorted(str(path.relative_to(ROOT)) for d in SOURCE_DIRS for path in d.rglob("*.py")
                  if path.stem.strip("_") in {"common", "helpers", "utils", "util", "misc"})
    assert not bags, f"name these by what they hold: {bags}"


def test_the_oversized_allow_list_names_only_oversized_files() -> None:
    sizes = dict(_sizes())
    stale = [path for path in OVERSIZED if sizes.get(path, 0) <= MAX_LINES]
    assert not stale, f"no longer oversized (remove from OVERSIZED): {stale}"


def _cycles(edges: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False,
                              exclude_type_checking_imports=False)
    return {module: {m for m in graph.find_modules_directly_imported_by(module)
                     if (module, m) not in ALLOWED_EDGES}
            for module in graph.modules}


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [frozenset({"a", "b", "c"})]


def test_every_package_is_in_the_graph(import_graph: dict[str, set[str]]) -> None:
    assert set(PACKAGES) <= set(import_graph)
    assert "omnichannel_sdk._hub" in import_graph


def test_no_import_cycles(import_graph: dict[str, set[str]]) -> None:
    cycles = [c for c in _cycles(import_graph) if c not in KNOWN_CYCLES]
    assert not cycles, "import cycles (break them with a Protocol or by moving code): " + "; ".join(
        " <-> ".join(sorted(c)) for c in cycles)


def test_the_known_cycles_still_exist(import_graph: dict[str, set[str]]) -> None:
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in _cycles(import_graph)]
    assert not gone, f"fixed (remove from KNOWN_CYCLES): {gone}"


def test_allowed_edges_exist(import_graph: dict[str, set[str]]) -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False,
                              exclude_type_checking_imports=False)
    missing = [e for e in ALLOWED_EDGES if not graph.direct_import_exists(importer=e[0], imported=e[1])]
    assert not missing, f"no longer imported (remove from ALLOWED_EDGES): {missing}"
