"""The shape of the package: no import circles, no module too long to read in one sitting.

Imports are read from the source (every ``import`` statement, including those inside functions:
a lazy import hides a circle from Python, not from the reader), so the check needs nothing
installed and sees the package as it is written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "calibench"
MAX_LINES = 450
"""A module longer than this is doing two jobs (issue 11: 'no module over ~450 lines')."""


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _name(path): path
        for path in PACKAGE.rglob("*.py")
        if not path.name.endswith("_test.py") and "migrations" not in path.parts
    }


def _imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The package's own modules that ``path`` imports (``from a import b`` may name module b)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here[: len(here) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                yield target


def _graph(grouped: bool = False) -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        source = _group(name) if grouped else name
        for target in _imported(name, path, known):
            sink = _group(target) if grouped else target
            if sink != source:
                graph.setdefault(source, set()).add(sink)
    return graph


def _group(module: str) -> str:
    """A module's subpackage: ``calibench.passes`` for ``calibench.passes.insert_qdq``.
    Inside the server one level deeper (``calibench.server.jobs``, ``calibench.server.db``): it
    holds packages of its own beside its composition root (``app``) and its leaves (``db``)."""
    parts = module.split(".")
    depth = 3 if parts[:2] == ["calibench", "server"] else 2
    return ".".join(parts[:depth])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _shown(cycles: list[list[str]]) -> str:
    return "import circles: " + "; ".join(" <-> ".join(cycle) for cycle in cycles)


def test_no_import_circle_between_modules() -> None:
    cycles = _cycles(_graph())
    assert not cycles, _shown(cycles)


def test_no_import_circle_between_subpackages() -> None:
    cycles = _cycles(_graph(grouped=True))
    assert not cycles, _shown(cycles)


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_short_enough(name: str) -> None:
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by what its parts do"


def test_the_checks_see_a_circle() -> None:
    """The walker is not vacuous: a two-module circle and a three-module one are found."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"e"}, "e": {"c"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
