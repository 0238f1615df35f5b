"""Modules of the data layer import in one direction: no cycles, none over ~450 lines.

The graph is read from the source (``ast``): an edge ``a -> b`` for every ``import b`` /
``from b import ...`` of a ``gogooku3`` module, at module level (what runs on import);
imports inside functions are reported separately by ``python tests/unit/test_import_graph.py``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "plugins"
#: packages this layer owns (the rest of gogooku3 is checked by its own owners' tests)
OWNED = ("gogooku3.jquants", "gogooku3.market", "gogooku3.ingest", "gogooku3.quality",
         "gogooku3.jpx", "gogooku3.settings")
MAX_LINES = 450


def module_names() -> list[str]:
    """Every module under ``plugins/gogooku3`` as a dotted name."""
    out = []
    for path in sorted((ROOT / "gogooku3").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


def _path(name: str) -> Path:
    base = ROOT.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports(name: str, known: set[str], nested: bool = False) -> set[str]:
    """``gogooku3`` modules that module ``name`` imports (module level; all with ``nested``)."""
    tree = ast.parse(_path(name).read_text())
    nodes = ast.walk(tree) if nested else tree.body
    out = set()
    for node in nodes:
        if isinstance(node, ast.If | ast.Try) and not nested:
            continue  # TYPE_CHECKING blocks and optional imports: not an import-time edge
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for t in targets:
            if t in known and t != name:
                out.add(t)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def _owned(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in OWNED)


def graph(nested: bool = False) -> dict[str, set[str]]:
    """The import graph of every ``gogooku3`` module."""
    names = module_names()
    known = set(names)
    return {n: imports(n, known, nested) for n in names}


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_owned_module_is_in_an_import_cycle():
    bad = [c for c in cycles(graph()) if any(_owned(n) for n in c)]
    assert bad == []


@pytest.mark.parametrize("name", [n for n in module_names() if _owned(n)])
def test_each_owned_module_imports_and_stays_small(name):
    importlib.import_module(name)
    assert len(_path(name).read_text().splitlines()) <= MAX_LINES


if __name__ == "__main__":
    for label, nested in (("module-level", False), ("including imports in functions", True)):
        found = cycles(graph(nested))
        print(f"{label}: {len(found)} cycle(s)")
        for comp in found:
            print("  " + " <-> ".join(comp))
