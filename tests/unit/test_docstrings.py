"""Every public function, method and class of the core (``src/cryptocast``) and every
``@step`` function (``steps/``) says what it does in a docstring.

Read from the source (AST), so it holds for code no test imports. Public: a name not
starting with ``_``; dunder methods, pydantic validators (``field_validator``,
``model_validator``), ``@overload`` stubs and property setters/deleters are exempt (the
getter carries the property's docstring)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

EXEMPT_DECORATORS = {"field_validator", "model_validator", "overload"}


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    """The bare names of ``node``'s decorators: ``step`` for ``@step`` and ``@step(...)``,
    ``setter`` for ``@x.setter``."""
    names = set()
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _body(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """``nodes`` with the bodies of ``if``/``try`` blocks flattened in (definitions made
    conditionally are definitions too)."""
    out: list[ast.stmt] = []
    for node in nodes:
        if isinstance(node, ast.If):
            out += _body(node.body) + _body(node.orelse)
        elif isinstance(node, ast.Try):
            out += _body(node.body) + _body(node.orelse) + _body(node.finalbody)
            for handler in node.handlers:
                out += _body(handler.body)
        else:
            out.append(node)
    return out


def _public_missing(nodes: list[ast.stmt], prefix: str, *, in_class: bool) -> list[str]:
    """``name (line N)`` of each public definition among ``nodes`` (recursing into public
    classes) that has no docstring."""
    missing = []
    for node in _body(nodes):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        name = node.name
        if name.startswith("_"):  # private, or a dunder method
            continue
        decorators = _decorator_names(node)
        if decorators & (EXEMPT_DECORATORS | {"setter", "deleter"}):
            continue
        if ast.get_docstring(node) is None:
            kind = "class" if isinstance(node, ast.ClassDef) else "method" if in_class else "def"
            missing.append(f"{kind} {prefix}{name} (line {node.lineno})")
        if isinstance(node, ast.ClassDef):
            missing += _public_missing(node.body, f"{prefix}{name}.", in_class=True)
    return missing


def _steps_missing(tree: ast.Module) -> list[str]:
    """``name (line N)`` of each ``@step`` function of a module without a docstring."""
    return [
        f"step {node.name} (line {node.lineno})"
        for node in _body(tree.body)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and "step" in _decorator_names(node)
        and ast.get_docstring(node) is None
    ]


def missing_docstrings(path: Path, *, steps_only: bool = False) -> list[str]:
    """What in the file at ``path`` lacks a docstring: every public definition, or with
    ``steps_only`` every ``@step`` function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return _steps_missing(tree) if steps_only else _public_missing(tree.body, "", in_class=False)


def missing_in_repo(root: Path) -> list[str]:
    """``path: what`` for every definition of the core and every step of ``root`` without
    a docstring."""
    out = []
    for folder, steps_only in ((root / "src" / "cryptocast", False), (root / "steps", True)):
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(root)
            out += [f"{rel}: {m}" for m in missing_docstrings(path, steps_only=steps_only)]
    return out


def test_every_public_definition_of_the_core_and_every_step_has_a_docstring():
    missing = missing_in_repo(ROOT)
    assert missing == [], f"{len(missing)} without a docstring:\n" + "\n".join(missing)


def test_the_checker_names_what_lacks_a_docstring(tmp_path):
    core = tmp_path / "src" / "cryptocast"
    core.mkdir(parents=True)
    (core / "mod.py").write_text(
        '"""A module."""\n'
        "from pydantic import BaseModel, field_validator\n"
        "def undocumented(): pass\n"
        'def documented():\n    """Says."""\n'
        "def _private(): pass\n"
        "class Thing(BaseModel):\n"
        "    def __init__(self): pass\n"
        "    @property\n    def size(self): return 1\n"
        "    @size.setter\n    def size(self, v): pass\n"
        '    @field_validator("x")\n    def check(cls, v): return v\n'
        "if True:\n    def conditional(): pass\n"
    )
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "s.py").write_text(
        "from zenml import step\n"
        "@step(enable_cache=False)\ndef load(): pass\n"
        '@step\ndef fit():\n    """Fits."""\n'
        "def helper(): pass\n"  # not a step: steps/ is only checked for steps
    )
    assert missing_in_repo(tmp_path) == [
        "src/cryptocast/mod.py: def undocumented (line 3)",
        "src/cryptocast/mod.py: class Thing (line 7)",
        "src/cryptocast/mod.py: method Thing.size (line 10)",
        "src/cryptocast/mod.py: def conditional (line 16)",
        "steps/s.py: step load (line 3)",
    ]
