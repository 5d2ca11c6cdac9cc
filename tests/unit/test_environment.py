"""The environment is declared once and consistently: pyproject, lockfile, flake."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: not an exact pin: {line!r}"
            pins[_norm(name)] = version
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in reqs]


def test_lockfile_satisfies_pyproject():
    pins = locked()
    problems = []
    for req in declared():
        version = pins.get(_norm(req.name))
        if version is None:
            problems.append(f"{req.name}: not in requirements.lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: locked {version} does not satisfy {req.specifier}")
    assert problems == [], "run `make lock`:\n" + "\n".join(problems)


def test_torch_is_pinned_exactly():
    torch = next(r for r in declared() if r.name == "torch")
    assert str(torch.specifier) == "==2.13.0"
    assert locked()["torch"].startswith("2.13.0")


FLAKE = ROOT / "flake.nix"


def _make_variable(name: str) -> str:
    """``name`` as GNU make evaluates it in this Makefile (its database, not its text)."""
    out = subprocess.run(
        ["make", "-pn", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    values = [line.split("=", 1)[1].strip() for line in out.splitlines()
              if re.match(rf"^{name} :?\??= ", line)]  # fmt: skip
    assert values, f"make does not define {name}"
    return values[-1]


def test_one_python_version_everywhere():
    """pyproject's requires-python, the interpreter make builds .venv with, and the Nix
    dev shell's Python (package and PYTHON_BIN) are one version."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    make_python = re.fullmatch(r"python(\d)\.(\d+)", _make_variable("PYTHON_BIN"))
    assert make_python, _make_variable("PYTHON_BIN")
    version = ".".join(make_python.groups())
    assert f"{version}.0" in requires
    text = FLAKE.read_text()
    nix_pythons = set(re.findall(r"pkgs\.python(\d)(\d+)\b", text))
    assert nix_pythons == {tuple(version.split("."))}
    assert re.findall(r"PYTHON_BIN=.*/bin/(python[\d.]+)", text) == [f"python{version}"]


def test_flake_dev_shell_provides_the_tools():
    text = FLAKE.read_text()
    packages = set(re.findall(r"pkgs\.([\w-]+)", text.split("packages = [", 1)[1].split("]", 1)[0]))
    assert {
        "python311",
        "uv",
        "gnumake",
        "git",
        "ruff",
        "pre-commit",
        "statix",
        "deadnix",
        "nixfmt-rfc-style",
    } <= packages


def test_flake_parses():
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate not installed (Debian: apt-get install nix-bin)")
    out = subprocess.run(["nix-instantiate", "--parse", str(FLAKE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
