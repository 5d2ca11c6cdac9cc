"""The import rules: layers only import downwards, the core's groups only import floors
below them, and no module imports itself round a circle.

    cli, app -> pipelines -> steps -> infra -> cryptocast
    cryptocast: delivery -> serving -> observability -> modeling -> data -> kernel

``cryptocast`` (the pure core) imports no ZenML and no other layer; ``steps`` hold only
``@step`` functions; ``pipelines`` compose steps. Read from the source (every ``import``,
also those inside functions), so it holds for code that a test run never executes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = {  # package -> rank; an import may only go to a lower rank (or its own package)
    "cryptocast": 0,
    "infra": 1,
    "steps": 2,
    "pipelines": 3,
    "cli": 4,
    "app": 4,
}
SOURCES = {"cryptocast": ROOT / "src" / "cryptocast", **{p: ROOT / p for p in list(LAYERS)[1:]}}
FORBIDDEN_IN_CORE = ("zenml",)
# the core's groups, bottom up; a module directly in cryptocast/ is the shared kernel
FLOORS = {"kernel": 0, "data": 1, "modeling": 2, "observability": 3, "serving": 4, "delivery": 5}
FIRST_PARTY = (*SOURCES, "scripts", "tests")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement of a file (absolute imports only); for
    ``from package import name``, ``package.name`` where that is a module of the repo."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            subs = [s for s in subs if module_file(s) is not None]
            out += [(node.lineno, s) for s in subs] or [(node.lineno, node.module)]
    return sorted(set(out))


def module_file(module: str) -> Path | None:
    """The first-party file of a dotted module name (package: its ``__init__``)."""
    parts = module.split(".")
    if parts[0] not in FIRST_PARTY:
        return None
    base = ROOT / "src" if parts[0] == "cryptocast" else ROOT
    path = base.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root / "src" if path.is_relative_to(root / "src") else root)
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> str:
    """The core group of a ``cryptocast`` module (``kernel`` for a top-level one)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else "kernel"


def violations(package: str, files: list[Path], root: Path = ROOT) -> list[str]:
    rank = LAYERS[package]
    found = []
    for path in files:
        here = floor(module_name(path, root)) if package == "cryptocast" else None
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {module}"
            if top in LAYERS and (LAYERS[top] > rank or (LAYERS[top] == rank and top != package)):
                found.append(f"{where} (upwards: {package} -> {top})")
            if package == "cryptocast" and top in FORBIDDEN_IN_CORE:
                found.append(f"{where} (the core knows no ZenML)")
            if here is not None and top == "cryptocast" and module != "cryptocast":
                there = floor(module)
                if FLOORS.get(there, 0) > FLOORS.get(here, 0):
                    found.append(f"{where} (upwards in the core: {here} -> {there})")
    return found


@pytest.mark.parametrize("package", list(LAYERS))
def test_imports_point_down(package):
    files = sorted(SOURCES[package].rglob("*.py"))
    assert files, f"no sources found for {package}"
    assert violations(package, files) == []


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an upward import and ZenML in the core are reported."""
    core = tmp_path / "probe.py"
    core.write_text("def f():\n    from infra import deployer\n\nimport zenml\n")
    assert violations("cryptocast", [core], root=tmp_path) == [
        "probe.py:2 imports infra.deployer (upwards: cryptocast -> infra)",
        "probe.py:4 imports zenml (the core knows no ZenML)",
    ]
    down = tmp_path / "down.py"
    down.write_text("from cryptocast.delivery import registry\nimport infra.deployer\n")
    assert violations("steps", [down], root=tmp_path) == []


def test_the_rule_catches_an_upward_import_between_core_groups(tmp_path):
    """A data module that reaches up into modeling is reported; down is allowed."""
    (tmp_path / "src" / "cryptocast" / "data").mkdir(parents=True)
    probe = tmp_path / "src" / "cryptocast" / "data" / "probe.py"
    probe.write_text(
        "from cryptocast.modeling import forecasting\n"
        "from cryptocast.contracts import OHLCV_COLUMNS\n"
    )
    assert violations("cryptocast", [probe], root=tmp_path) == [
        "src/cryptocast/data/probe.py:1 imports cryptocast.modeling.forecasting "
        "(upwards in the core: data -> modeling)"
    ]


def test_every_core_group_says_what_it_owns_and_may_import():
    for group in [g for g in FLOORS if g != "kernel"]:
        doc = ast.get_docstring(
            ast.parse((SOURCES["cryptocast"] / group / "__init__.py").read_text())
        )
        assert doc, f"cryptocast/{group}/__init__.py has no docstring"
        assert "May import" in doc, f"cryptocast/{group}/__init__.py: say what it may import"


def import_graph() -> dict[str, set[str]]:
    """First-party module -> the first-party modules it imports (anywhere in the file)."""
    files = [p for d in (ROOT / "src" / "cryptocast", *(ROOT / p for p in FIRST_PARTY[1:]))
             for p in d.rglob("*.py")]  # fmt: skip
    graph: dict[str, set[str]] = {}
    for path in files:
        name = module_name(path)
        graph[name] = {m for _, m in imported_modules(path) if module_file(m) and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one
    module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_steps_hold_only_step_functions():
    """Every module of steps/ but the packages' __init__ defines at least one @step, and
    every top-level function there is a step."""
    for path in sorted((ROOT / "steps").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        steps = [
            f
            for f in functions
            if any(
                (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "step")
                or getattr(d, "id", "") == "step"
                for d in f.decorator_list
            )
        ]
        assert steps, f"{path.relative_to(ROOT)} defines no @step"
        assert [f.name for f in functions if not f.name.startswith("_")] == [
            f.name for f in steps
        ], f"{path.relative_to(ROOT)}: a public function that is not a @step"
