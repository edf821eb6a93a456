"""The package's shape: imports run one way, down toward the kernel; no import circle; each side of the system
(Lambda handlers, the Glue script) imports only what it ships with.

Read from the source (every ``import``, also inside functions and under ``TYPE_CHECKING``), so a lazy import
cannot hide a circle or an import running back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "pricefeed"

#: Each room and the rooms it may import besides itself. "kernel" is the package's top-level modules.
MAY_IMPORT: dict[str, set[str]] = {
    "kernel": set(),
    "lake": {"kernel"},
    "fyers": {"kernel", "lake"},
    "auth": {"kernel", "fyers"},
    "ingest": {"kernel", "lake", "fyers", "auth"},
    "aggregate": {"kernel", "lake"},
    "simulator": {"kernel"},
    "ops": {"kernel", "lake", "fyers", "auth", "ingest", "aggregate"},
    "local": {"kernel", "lake", "fyers", "auth", "ingest", "aggregate", "ops", "simulator"},
    "cli": {"kernel", "lake", "fyers", "auth", "ingest", "aggregate", "ops", "simulator", "local"},
}
#: What runs on Lambda (the handlers and the layer) and on Glue (the job script and its zip).
LAMBDA_ROOMS = {"kernel", "lake", "fyers", "auth", "ingest", "aggregate"}
GLUE_ROOMS = {"kernel", "lake", "aggregate"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "kernel"


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The pricefeed modules ``path`` imports (``from pricefeed.x import y`` counts ``pricefeed.x.y`` when that
    is a module, else ``pricefeed.x``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = PACKAGE in path.parents
    here = module_name(path) if inside else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pricefeed")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "pricefeed":
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else target)
    return {m for m in found if m in modules and m != here}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imported_modules(path, modules) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_known_room():
    unknown = sorted({room(m) for m in import_graph()} - set(MAY_IMPORT))
    assert unknown == [], f"new room(s) {unknown}: give them a place in MAY_IMPORT"


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_one():
    # Given a graph with a loop, when searched, then the loop is reported (the test above can fail).
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_run_down_toward_the_kernel():
    graph = import_graph()
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if room(target) != room(module) and room(target) not in MAY_IMPORT[room(module)]
    )
    assert upward == []


def test_the_room_order_has_no_loop():
    # The rules themselves must be a one-way order: no two rooms may import each other.
    rules = {r: {t for t in targets if t != r} for r, targets in MAY_IMPORT.items()}
    assert circles(rules) == []


ENTRIES = {
    "lambda": sorted((ROOT / "functions").glob("*/app.py")),
    "glue": sorted((ROOT / "glue").glob("*.py")),
}


def reached_from(entries: list[Path]) -> set[str]:
    """Every pricefeed module the entry scripts import, directly or through other modules."""
    graph = import_graph()
    reached, todo = set(), [m for entry in entries for m in imported_modules(entry, set(graph))]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    return reached


@pytest.mark.parametrize("part, allowed", [("lambda", LAMBDA_ROOMS), ("glue", GLUE_ROOMS)])
def test_handlers_and_the_job_import_only_what_ships_with_them(part, allowed):
    assert sorted(m for m in reached_from(ENTRIES[part]) if room(m) not in allowed) == []


@pytest.mark.parametrize("part", ["lambda", "glue"])
def test_each_bundle_holds_exactly_what_its_entry_points_import(part):
    # The Lambda layer and the Glue zip (pricefeed.local.bundle) against the modules the handlers / the job
    # script reach, with the packages' __init__ files they need to be imported.
    from pricefeed.local.bundle import part_files

    shipped = {".".join(p.with_suffix("").parts).removesuffix(".__init__") for p in part_files(part)}
    reached = reached_from(ENTRIES[part])
    packages = {m.rsplit(".", i)[0] for m in reached for i in range(1, m.count(".") + 1)}
    assert shipped == reached | packages
