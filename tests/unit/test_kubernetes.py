"""The Kubernetes path, checked offline: the image (Dockerfile) is built with the same
commands as `make install`, the stack file (configs/stacks/kubernetes.yaml) validates
against ZenML's flavor classes, and the per-step run overlay
(configs/stacks/kubernetes-run.yaml) against ZenML's run-config schema. No cluster, no
Docker: nothing here builds an image or starts a pod."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from zenml.enums import StackComponentType

from cryptocast.runconfig import ConfigError, apply_overrides, read_run_config
from infra import k8s
from infra.stack import COMPONENTS, TRACKER
from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
ENV = {
    "CRYPTOCAST_K8S_CONTEXT": "prod-cluster",
    "CRYPTOCAST_S3_ENDPOINT": "http://seaweedfs.cryptocast.svc:8333",
    "CRYPTOCAST_REGISTRY": "registry.example.com/cryptocast",
    "MLFLOW_TRACKING_URI": "http://mlflow.cryptocast.svc:5000",
    "CRYPTOCAST_IMAGE": "registry.example.com/cryptocast/cryptocast:0123abc",
}
FIT_STEPS = ["fit_btc_usdt_eth_usdt", "fit_sol_usdt", "fit_global"]
STATIC_STEPS = ["load", "validate", "evaluate", "deploy"]
HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None


# ---------------------------------------------------------------- image = make install


def makefile_install_commands(text: str) -> list[list[str]]:
    """The pip commands of the Makefile's `$(VENV)/.installed` recipe, interpreter as PY."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(VENV)/.installed:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@"))
    return _pip_commands(recipe, interpreter="$(PY)")


def dockerfile_instructions(text: str, keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction of a Dockerfile, continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    prefix = f"{keyword} "
    return [
        line.strip()[len(prefix) :]
        for line in joined.splitlines()
        if line.strip().startswith(prefix)
    ]


def dockerfile_run_lines(text: str) -> list[str]:
    return dockerfile_instructions(text, "RUN")


def dockerfile_install_commands(text: str) -> list[list[str]]:
    return _pip_commands(dockerfile_run_lines(text), interpreter="$PY")


def _pip_commands(lines: list[str], interpreter: str) -> list[list[str]]:
    out = []
    for line in lines:
        for command in re.split(r"&&|\|\|", line):
            words = shlex.split(command)
            if "-m" in words and words[words.index("-m") + 1 : words.index("-m") + 2] == ["pip"]:
                out.append(["PY" if w == interpreter else w for w in words])
    return out


def test_image_installs_with_the_same_pip_commands_as_make_install():
    make = makefile_install_commands((ROOT / "Makefile").read_text())
    docker = dockerfile_install_commands(DOCKERFILE.read_text())
    assert len(make) == 3  # pip/setuptools, the lockfile, the project without its deps
    assert docker == make
    assert ["PY", "-m", "pip", "install", "--quiet", "-r", "requirements.lock"] in docker
    assert "--no-deps" in docker[-1]


def test_a_drifted_install_command_is_caught():
    """The comparison fails when one side changes: here the Makefile installs the project
    with its dependencies."""
    text = (ROOT / "Makefile").read_text().replace("--no-deps --no-build-isolation", "")
    assert makefile_install_commands(text) != dockerfile_install_commands(DOCKERFILE.read_text())


def test_image_venv_uses_make_install_python():
    """Same interpreter as make's PYTHON_BIN and base image of that Python version."""
    text = DOCKERFILE.read_text()
    makefile = (ROOT / "Makefile").read_text()
    python_bin = re.search(r"^PYTHON_BIN \?= (python[\d.]+)$", makefile, re.M).group(1)
    assert f"{python_bin} -m venv /opt/venv" in text
    base = re.findall(r"^FROM (\S+)", text, re.M)
    assert base == [f"python:{python_bin.removeprefix('python')}-slim"]


def test_image_installs_libgomp():
    apt = [
        line for line in dockerfile_run_lines(DOCKERFILE.read_text()) if "apt-get install" in line
    ]
    assert apt, "no apt-get install in the Dockerfile"
    assert "libgomp1" in shlex.split(apt[0])


def test_image_environment_user_and_layers():
    text = DOCKERFILE.read_text()
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", " ".join(dockerfile_instructions(text, "ENV"))))
    assert env["ZENML_ANALYTICS_OPT_IN"] == "false"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users, "the image sets no USER"
    # numeric and not 0: Kubernetes verifies runAsNonRoot only for a numeric user
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), (
        "the image must end as a numeric non-root user"
    )
    declared = re.findall(r"^(?:ENV|ARG)\s+([A-Za-z_]+)", text, re.M) + list(env)
    assert not [n for n in declared if re.search(r"KEY|SECRET|TOKEN|PASSWORD", n, re.I)]
    # caching: the lockfile is installed before the project's code is copied
    lock = text.index("-r requirements.lock")
    assert text.index("COPY requirements.lock") < lock < text.index("COPY --chown=10001:10001 . .")


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".zenml-home", "/data", "/models", ".env"} <= ignored
    assert not {"requirements.lock", "pyproject.toml", "README.md"} & ignored


def test_lockfile_has_what_the_kubernetes_stack_needs():
    from packaging.requirements import Requirement
    from zenml.integrations.kubernetes import KubernetesIntegration
    from zenml.integrations.s3 import S3Integration

    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            locked[name.lower().replace("_", "-")] = version.split("+")[0]
    missing = []
    for integration in (KubernetesIntegration, S3Integration):
        for spec in integration.get_requirements():
            req = Requirement(spec)
            version = locked.get(req.name.lower().replace("_", "-"))
            if version is None or version not in req.specifier:
                missing.append(spec)
    assert missing == []


# ---------------------------------------------------------------- the stack file


@pytest.fixture
def env(monkeypatch) -> dict[str, str]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return ENV


def test_stack_file_validates_against_zenml_flavors(env):
    stack = k8s.load_stack()
    kinds = dict(k8s.components(stack))
    assert set(kinds) == {
        "orchestrator",
        "artifact_store",
        "container_registry",
        "image_builder",
        "experiment_tracker",
        "model_registry",
    }
    assert (kinds["orchestrator"]["flavor"], kinds["artifact_store"]["flavor"]) == (
        "kubernetes",
        "s3",
    )
    # the steps name their tracker; the CLI and release code use the registry's name
    assert kinds["experiment_tracker"]["name"] == TRACKER
    assert kinds["model_registry"]["name"] == COMPONENTS[StackComponentType.MODEL_REGISTRY]
    config = kinds["orchestrator"]["configuration"]
    assert config["kubernetes_context"] == env["CRYPTOCAST_K8S_CONTEXT"]
    assert config["kubernetes_namespace"] == "cryptocast"  # the default of its placeholder


def test_every_unset_variable_is_named_at_once(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as err:
        k8s.load_stack()
    for name in ("CRYPTOCAST_K8S_CONTEXT", "CRYPTOCAST_S3_ENDPOINT", "CRYPTOCAST_REGISTRY"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("flavor: kubernetes", "flavor: kubernetess", "no ZenML flavor 'kubernetess'"),
        ("max_parallelism: 4 ", "max_parallelism: -4 ", "max_parallelism"),
        ("synchronous: true", "synchronous: sometimes", "synchronous"),
        ("cpu: 100m, memory: 256Mi", "cpu: 100m, memory: 1Gi", "memory request"),
        ("cpu: 100m, memory: 256Mi", "cpu: lots, memory: 256Mi", "not a Kubernetes quantity"),
        ('"{{cryptocast_s3.aws_access_key_id}}"', "AKIAPLAINTEXT", "secret reference"),
        ("path: ${CRYPTOCAST_S3_PATH:-s3://cryptocast-artifacts}", "path: /tmp/x", "s3://"),
        ("uri: ${CRYPTOCAST_REGISTRY}", "uri: localhost:5000", "local component"),
        ("zenml_version: 0.98.0", "zenml_version: 0.97.0", "written for ZenML 0.97.0"),
    ],
)
def test_a_bad_stack_file_is_reported(env, tmp_path, old, new, message):
    text = k8s.STACK_FILE.read_text()
    assert old in text
    bad = tmp_path / "stack.yaml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        k8s.load_stack(bad)


def test_register_commands_cover_every_component(env):
    stack = k8s.load_stack()
    lines = k8s.register_commands(stack)
    registered = [shlex.split(line) for line in lines if " register " in line]
    *components, stack_line = registered
    assert [c[3] for c in components] == [c["name"] for _, c in k8s.components(stack)]
    for words in components:  # JSON values come back as the configuration
        args = dict(w[2:].split("=", 1) for w in words[4:])
        name = words[3]
        config = next(c for _, c in k8s.components(stack) if c["name"] == name)["configuration"]
        for key, value in (config or {}).items():
            if isinstance(value, dict | list):
                assert json.loads(args[key]) == value
            else:
                assert args[key] == (str(value).lower() if isinstance(value, bool) else str(value))
    assert stack_line[:4] == ["zenml", "stack", "register", "cryptocast-k8s"]
    assert stack_line[-1] == "--set"
    assert len(stack_line) == 4 + 2 * len(components) + 1
    assert any("zenml secret create cryptocast_s3" in line for line in lines)


REGISTER_TWICE = """
from zenml.client import Client
from infra import k8s
client = Client()
keys = {"aws_access_key_id": "a", "aws_secret_access_key": "b"}
client.create_secret("cryptocast_s3", values=keys)
client.create_secret("cryptocast_mlflow", values={"username": "u", "password": "p"})
stack = k8s.load_stack()
first = k8s.register(stack)
assert "registered stack cryptocast-k8s" in first, first
assert k8s.register(stack) == [], "a second call changed something"
assert client.active_stack_model.name == "cryptocast-k8s"
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_KUBERNETES, reason="ZenML needs the kubernetes package to register")
def test_register_is_idempotent(env, tmp_path):
    """In a ZenML home of its own (it activates the stack it registers)."""
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", REGISTER_TWICE],
        cwd=ROOT,
        env=os.environ | {"ZENML_CONFIG_PATH": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


# ---------------------------------------------------------------- the run overlay


def test_overlay_is_a_zenml_run_configuration(env):
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    raw = yaml.safe_load(k8s.expand(k8s.RUN_OVERLAY.read_text()))
    PipelineRunConfiguration.model_validate(raw)
    assert k8s.run_config_problems(raw) == []
    assert set(raw["steps"]) == {*STATIC_STEPS, k8s.FIT_TEMPLATE}


@pytest.mark.parametrize("gran", ["hour", "day"])
def test_run_config_gives_every_step_pod_resources(env, gran):
    base = read_run_config(ROOT / "configs" / f"{gran}.yaml")
    merged = k8s.run_config(base, FIT_STEPS, threads=3)
    steps = merged["steps"]
    assert set(steps) == {*STATIC_STEPS, *FIT_STEPS}
    for name in (*STATIC_STEPS, *FIT_STEPS):
        resources = steps[name]["settings"][k8s.K8S_SETTINGS]["pod_settings"]["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), (name, kind)
    for name in FIT_STEPS:
        resources = steps[name]["settings"][k8s.K8S_SETTINGS]["pod_settings"]["resources"]
        assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "3"
        assert steps[name]["environment"] == dict.fromkeys(k8s.THREAD_VARIABLES, "3")
    # the granularity's own settings survive the merge; serving stays off the cluster
    assert steps["deploy"]["enable_cache"] is False
    assert merged["settings"]["docker"] == {
        "parent_image": env["CRYPTOCAST_IMAGE"],
        "skip_build": True,
        "allow_download_from_artifact_store": False,
        "allow_download_from_code_repository": False,
    }
    cfg = apply_overrides(merged["parameters"]["config"])
    assert cfg.deploy.serve is False
    assert cfg.granularity == base["parameters"]["config"]["granularity"]


def test_a_run_gets_its_own_fit_steps_in_a_file_removed_afterwards(env):
    from cryptocast.modeling.backtest import shards

    run = read_run_config(ROOT / "configs" / "hour.yaml")
    cfg = apply_overrides(run["parameters"]["config"], pairs=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    names = [s.step_id for s in shards(cfg)]
    with k8s.run_config_file(run, names, 2) as path:
        written = yaml.safe_load(path.read_text())
    assert not path.exists()
    assert {"fit_btc_usdt_and_2_more", "fit_global"} <= set(written["steps"])
    assert "fit" not in written["steps"]  # the template is not a step


def test_run_config_with_kubernetes_objects(env):
    """With the kubernetes package, pod settings go through ZenML's own conversion."""
    if not HAS_KUBERNETES:
        pytest.skip("kubernetes package not installed: pod settings checked by infra.k8s")
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

    merged = k8s.run_config({"parameters": {"config": {}}}, ["fit_global"], threads=2)
    settings = merged["steps"]["fit_global"]["settings"][k8s.K8S_SETTINGS]
    pod = KubernetesOrchestratorSettings.model_validate(settings).pod_settings
    assert pod.resources["limits"]["cpu"] == "2"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('requests: {cpu: "2", memory: 4Gi}', 'requests: {cpu: "3", memory: 4Gi}', "cpu request"),
        ("requests: {cpu: 250m, memory: 1Gi}", "requests: {cpu: 250m, memory: lots}", "quantity"),
        ("skip_build: true", "skip_build: sometimes", "skip_build"),
        ("  fit:   ", "  fitting:   ", "steps.fit (the fit steps' template) is missing"),
    ],
)
def test_a_bad_overlay_is_reported(env, tmp_path, old, new, message):
    text = k8s.RUN_OVERLAY.read_text()
    assert old in text
    bad = tmp_path / "run.yaml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        k8s.run_config({"parameters": {"config": {}}}, ["fit_global"], 1, overlay_path=bad)


@pytest.mark.parametrize(("steps", "threads"), [(["fit_global"], 0), (["train"], 1), ([], 1)])
def test_bad_fan_out_is_reported(env, steps, threads):
    with pytest.raises(ConfigError):
        k8s.run_config({"parameters": {"config": {}}}, steps, threads)


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("3Gi", str(3 * 1024**3)), ("1G", "1e9")],
)
def test_quantities(text, value):
    assert k8s.quantity(text) == Decimal(value)


def test_not_a_quantity():
    with pytest.raises(ValueError, match="quantity"):
        k8s.quantity("2 cores")


def test_command_line(env, tmp_path):
    """`cryptocast k8s check|commands|run-config`: the Kubernetes helper's subcommands."""
    from click.testing import CliRunner

    from cli import cli

    def k8s_cli(*args: str):
        return CliRunner().invoke(cli, ["k8s", *args])

    out = k8s_cli("check")
    assert out.exit_code == 0, out.output
    assert "valid for ZenML" in out.output
    out = k8s_cli("commands")
    assert out.exit_code == 0, out.output
    assert "zenml stack register cryptocast-k8s" in out.output
    path = tmp_path / "run.yaml"
    out = k8s_cli("run-config", "hour", "fit_global", "--threads", "2", "--out", str(path))
    assert out.exit_code == 0, out.output
    assert (
        yaml.safe_load(path.read_text())["steps"]["fit_global"]["environment"]["OMP_NUM_THREADS"]
        == "2"
    )
    printed = k8s_cli("run-config", "hour", "fit_global")
    assert yaml.safe_load(printed.output)["steps"]["fit_global"]
    out = k8s_cli("run-config", "hour", "train")  # a user's mistake: one error line
    assert out.exit_code == 2
    assert out.output.startswith("error: fit steps must be named fit_<shard>")


def test_the_helper_has_no_command_line_of_its_own():
    assert not hasattr(k8s, "main")
    assert not (Path(k8s.__file__).parent / "__main__.py").exists()


def test_the_stack_file_names_the_stack_setup_keeps_active():
    from infra.stack import K8S_STACK

    assert yaml.safe_load(k8s.STACK_FILE.read_text())["stack_name"] == K8S_STACK
