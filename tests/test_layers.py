"""Imports point one way: core <- store, executors, kinds, scheduling <- server, kernel.

Every module of ``bgtasks_ext`` is parsed (not imported), and every ``import`` in it,
at the top or inside a function, is resolved to the module of this package it names.
An import that points up a layer, sideways into another package of the same layer, or
that closes a cycle between modules fails this test, with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bgtasks_ext"
PACKAGE = "bgtasks_ext"

LAYERS: dict[str, int] = {
    "_version": 0,
    "core": 0,
    "store": 1,
    "executors": 1,
    "kinds": 1,
    "scheduling": 1,
    "server": 2,
    "kernel": 2,
}
TOP = 3
"""``bgtasks_ext/__init__.py``: the public API and Jupyter's hooks, above everything."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _area(module: str) -> str | None:
    """The subpackage (``core``, ``server``...) a module belongs to; ``None`` for the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _layer(module: str) -> int:
    area = _area(module)
    return TOP if area is None else LAYERS[area]


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The modules of this package that ``node`` imports (for ``from X import name``:
    ``X.name`` when that is a module, else ``X``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def _imports() -> dict[str, list[tuple[str, int]]]:
    graph: dict[str, list[tuple[str, int]]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(module, [])
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(module, is_package, node):
                    if target != module and target in MODULES:
                        edges.append((target, node.lineno))
    return graph


GRAPH = _imports()


def test_the_walk_sees_the_whole_package() -> None:
    # Given the package's modules, Then every area is known and the walk found imports
    assert {_area(m) for m in MODULES} - {None} <= set(LAYERS)
    assert sum(len(e) for e in GRAPH.values()) > 100


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    # Given one module's imports
    bad = []
    for target, line in GRAPH[module]:
        # Then each goes to a lower layer, or stays inside the module's own package
        same_area = _area(target) == _area(module)
        if same_area or _layer(target) < _layer(module) or _area(target) == "_version":
            continue
        bad.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {target}")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles() -> None:
    # Given the graph of modules (edges: imports)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    # Then no two modules import each other, directly or around a circle
    assert not cycles, f"import cycles: {cycles}"


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    # Given a core module that imports the store (the kind of import this test exists for)
    node = ast.parse("from ..store import sqlite").body[0]
    assert isinstance(node, ast.ImportFrom)
    # When it is resolved as core.engine would
    targets = _resolve("bgtasks_ext.core.engine", False, node)
    # Then it is seen as pointing up
    assert targets == ["bgtasks_ext.store.sqlite"]
    assert _layer(targets[0]) > _layer("bgtasks_ext.core.engine")
