"""The import rule: layers only import downwards.

    cli, app -> pipelines -> steps -> infra -> cryptocast

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


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement of a file (absolute imports only)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return sorted(out)


def violations(package: str, files: list[Path], root: Path = ROOT) -> list[str]:
    rank = LAYERS[package]
    found = []
    for path in files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {module}"
            if top in LAYERS and (LAYERS[top] > rank or (LAYERS[top] == rank and top != package)):
                found.append(f"{where} (upwards: {package} -> {top})")
            if package == "cryptocast" and top in FORBIDDEN_IN_CORE:
                found.append(f"{where} (the core knows no ZenML)")
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
        "probe.py:2 imports infra (upwards: cryptocast -> infra)",
        "probe.py:4 imports zenml (the core knows no ZenML)",
    ]
    down = tmp_path / "down.py"
    down.write_text("from cryptocast import registry\nimport infra.deployer\n")
    assert violations("steps", [down], root=tmp_path) == []


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
