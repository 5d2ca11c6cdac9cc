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


def test_flake_dev_shell_provides_what_the_makefile_uses():
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
    assert "stdenv.cc.cc.lib" in text  # libstdc++ and libgomp for torch / LightGBM wheels
    assert "make install" in text  # the shell builds .venv from the same lockfile
    makefile = (ROOT / "Makefile").read_text()
    assert "PYTHON_BIN ?= python3.11" in makefile


def test_flake_parses():
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate not installed (Debian: apt-get install nix-bin)")
    out = subprocess.run(["nix-instantiate", "--parse", str(FLAKE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
