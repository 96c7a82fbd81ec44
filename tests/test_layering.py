"""The house rules on imports, checked on the source: layers point inward.

web -> engine.services -> engine.workflow / engine.persistence -> engine.domain;
no cycle between modules nor between the service areas, no import hidden
inside a function to dodge one, and engine/ never imports Flask.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
SERVICES = ENGINE / "services"
# The service areas, innermost first: an area may import only areas listed before it.
AREA_ORDER = (
    "telemetry",
    "audit",
    "sla",
    "process",
    "people",
    "incidents",
    "tasks",
    "revision",
    "notify",
    "intake",
    "ops",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(), str(path))
        for top in ("engine", "web")
        for path in sorted((ROOT / top).rglob("*.py"))
    }


def _imports(tree: ast.Module, *, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


SOURCES = _sources()


def _internal_imports(module: str) -> set[str]:
    return {name for name in _imports(SOURCES[module], top_level_only=False) if name in SOURCES}


def test_no_import_inside_a_function_in_engine() -> None:
    hidden = []
    for module, tree in SOURCES.items():
        if not module.startswith("engine"):
            continue
        allowed = {id(node) for node in tree.body}
        for node in tree.body:  # `if TYPE_CHECKING:` imports run at no time
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
                allowed.update(id(child) for child in node.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in allowed:
                hidden.append(f"{module}:{node.lineno}")
    assert hidden == []


def test_engine_never_imports_flask_or_web() -> None:
    offenders = {
        module: sorted(
            n
            for n in _imports(tree, top_level_only=False)
            if n.split(".")[0] in {"flask", "flask_login", "flask_wtf", "flask_babel", "web"}
        )
        for module, tree in SOURCES.items()
        if module.startswith("engine")
    }
    assert {m: names for m, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    ("inner", "outer"),
    [
        ("engine.domain", ("engine.persistence", "engine.workflow", "engine.services")),
        ("engine.persistence", ("engine.workflow", "engine.services")),
        ("engine.workflow", ("engine.persistence", "engine.services")),
    ],
)
def test_inner_layers_do_not_import_outer_ones(inner: str, outer: tuple[str, ...]) -> None:
    bad = {
        module: sorted(n for n in _internal_imports(module) if n.startswith(outer))
        for module in SOURCES
        if module.startswith(inner)
    }
    assert {m: names for m, names in bad.items() if names} == {}


def test_no_module_import_cycle() -> None:
    graph = {module: _internal_imports(module) - {module} for module in SOURCES}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            # `import a.b` also imports the package `a`; a package's own
            # __init__ importing its children is not a cycle.
            if module.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else path)
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_service_areas_point_inward() -> None:
    areas = sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists())
    assert set(areas) == set(AREA_ORDER), "list a new area in AREA_ORDER"
    outward = []
    for module in SOURCES:
        parts = module.split(".")
        if len(parts) < 3 or parts[:2] != ["engine", "services"] or parts[2] not in AREA_ORDER:
            continue
        own = AREA_ORDER.index(parts[2])
        for target in _internal_imports(module):
            tparts = target.split(".")
            inner = len(tparts) >= 3 and tparts[:2] == ["engine", "services"]
            if inner and tparts[2] in AREA_ORDER and AREA_ORDER.index(tparts[2]) > own:
                outward.append(f"{module} -> {target}")
    assert outward == []


def test_every_area_says_what_it_owns() -> None:
    for area in AREA_ORDER:
        doc = ast.get_docstring(SOURCES[f"engine.services.{area}"])
        assert doc, f"engine/services/{area}/__init__.py needs a docstring"
