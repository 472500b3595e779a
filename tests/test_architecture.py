"""The house's layout holds: no import cycle, and no stage imports a later one.

Imports are read with ``ast`` from every module of ``deliverypulse`` and of the first-party
connectors (module-level and inside functions, ``TYPE_CHECKING`` blocks included), so the test
needs no import to succeed and sees imports that run late. A package's ``__init__`` importing
its own submodules (to re-export them) is not a dependency of the package on itself.

Stages, earliest first (docs/architecture.md):

    helpers (errors, names, redaction, rules, timeutil) < store < dataset (+ selection)
        < linking < dora (metrics) < analysis < reporting < cli

The collection side (config, sources, connector, streams, collector, http, progress) sits beside
``dataset``: it may use helpers, the store and the dataset, and no metrics stage uses it. The
connectors may import only the core's collection side. ``demo`` may import every stage but the CLI;
``__main__`` and the package's ``__init__`` (the public API) may import everything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "deliverypulse": ROOT / "src" / "deliverypulse",
    "deliverypulse_git": ROOT / "connectors" / "deliverypulse_git",
    "deliverypulse_github": ROOT / "connectors" / "deliverypulse_github",
    "deliverypulse_gitlab": ROOT / "connectors" / "deliverypulse_gitlab",
    "deliverypulse_servicenow": ROOT / "connectors" / "deliverypulse_servicenow",
    "deliverypulse_pagerduty": ROOT / "connectors" / "deliverypulse_pagerduty",
    "deliverypulse_opsgenie": ROOT / "connectors" / "deliverypulse_opsgenie",
}
CONNECTORS = (
    "deliverypulse_git",
    "deliverypulse_github",
    "deliverypulse_gitlab",
    "deliverypulse_servicenow",
    "deliverypulse_pagerduty",
    "deliverypulse_opsgenie",
)

#: Stage of each core module (by dotted prefix, longest wins); a higher stage may import a lower.
STAGES: dict[str, int] = {
    "deliverypulse._version": 0,
    "deliverypulse.errors": 0,
    "deliverypulse.names": 0,
    "deliverypulse.redaction": 0,
    "deliverypulse.rules": 0,
    "deliverypulse.timeutil": 0,
    "deliverypulse.store": 1,
    "deliverypulse.dataset": 2,
    "deliverypulse.pseudonyms": 2,
    "deliverypulse.selection": 2,
    "deliverypulse.linking": 3,
    "deliverypulse.dora": 4,
    "deliverypulse.analysis": 5,
    "deliverypulse.reporting": 6,
    "deliverypulse.cli": 7,
    "deliverypulse.__main__": 7,
    "deliverypulse.demo": 7,  # the whole pipeline on a sample: everything but the CLI
    "deliverypulse": 8,  # the package's __init__: the public API re-exports every stage
}
#: Where the collection side sits: beside the dataset.
COLLECTION_STAGE = 2

#: Import cycles among collection-side modules that are known and being removed. Empty it when
#: they are gone; the test fails on any cycle not listed here.
KNOWN_COLLECTION_CYCLES: list[tuple[str, ...]] = []


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found[_module_name(package, root, path)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imported(name: str, tree: ast.AST) -> Iterator[str]:
    """Every module ``name`` imports, resolved against the modules we know."""
    base = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                module = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                module = node.module or ""
            # ``from package import submodule`` depends on the submodule (whose import runs the
            # package's ``__init__`` too, but that is Python's doing, not a design dependency).
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def _own(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set(_imported(name, tree))
        if _is_package(name):  # a package re-exporting its own modules is not a cycle
            targets = {target for target in targets if not _own(name, target)}
        graph[name] = targets
    return graph


GRAPH = _graph()


def _stage(module: str) -> int | None:
    """The stage of a core module; None for the collection side and for connectors."""
    if not module.startswith("deliverypulse.") and module != "deliverypulse":
        return None
    best = max((prefix for prefix in STAGES if module == prefix or _own(prefix, module)), key=len)
    return None if best == "deliverypulse" and module != "deliverypulse" else STAGES[best]


def _cycles() -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_walk_sees_every_stage() -> None:
    for prefix in STAGES:
        assert any(name == prefix or _own(prefix, name) for name in MODULES), prefix
    assert GRAPH["deliverypulse.dora.table"] >= {"deliverypulse.dora.prepared"}
    assert "deliverypulse.analysis" in GRAPH["deliverypulse.reporting"]  # TYPE_CHECKING counts


def test_no_import_cycles_beyond_the_known_ones() -> None:
    unknown = [cycle for cycle in _cycles() if cycle not in KNOWN_COLLECTION_CYCLES]
    assert unknown == []


def test_the_metrics_side_has_no_cycle() -> None:
    touching = [
        cycle
        for cycle in _cycles()
        if any(_stage(name) is not None and _stage(name) != COLLECTION_STAGE for name in cycle)
    ]
    assert touching == []


def _later(importer: str, imported: str) -> bool:
    """Whether ``importer`` (a core module with a stage) reaches forward or sideways into
    ``imported``."""
    mine, theirs = _stage(importer), _stage(imported)
    assert mine is not None
    if imported.split(".")[0] in CONNECTORS:
        return mine < 8  # the core finds connectors through entry points, never by import
    if theirs is None:  # the collection side: only the CLI, the demo and the API use it
        return mine < 7
    return theirs > mine


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _stage(name) is not None))
def test_no_stage_imports_a_later_one(module: str) -> None:
    later = sorted(target for target in GRAPH[module] if _later(module, target))
    assert later == [], f"{module} imports {later}"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _stage(name) is None))
def test_the_collection_side_and_connectors_never_import_the_metrics_side(module: str) -> None:
    forbidden = sorted(
        target for target in GRAPH[module] if (_stage(target) or 0) > COLLECTION_STAGE
    )
    assert forbidden == [], f"{module} imports {forbidden}"
