"""The package's imports point one way: no module imports one that imports it back (directly or through
others, type-only imports included), and each package imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

from wealtharena.config import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"

# what each package may import (besides itself); the modules at the top (config, errors, cli) are leaves
ALLOWED = {
    "config": {"errors"},
    "errors": set(),
    "arrays": set(),
    "cli": {"errors"},
    "data": {"arrays", "config", "errors"},
    "portfolio": {"arrays", "config", "data", "errors"},
    "envs": {"arrays", "config", "data", "portfolio", "errors"},
    "training": {"arrays", "config", "data", "envs", "portfolio", "errors"},
    "evaluation": {"arrays", "config", "data", "envs", "portfolio", "errors", "cli"},
    "ensemble": {"arrays", "config", "data", "envs", "portfolio", "evaluation", "errors"},
    "app": {"arrays", "config", "data", "envs", "portfolio", "evaluation", "ensemble", "training", "errors", "cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "wealtharena").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wealtharena"):
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in mods else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("wealtharena")]
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles(_graph()) == []


def test_each_package_imports_only_the_layers_below_it():
    wrong = sorted(
        f"{m} -> {d}"
        for m, deps in _graph().items()
        for d in deps
        if _package(d) != _package(m) and _package(d) not in ALLOWED.get(_package(m), set())
    )
    assert wrong == []
