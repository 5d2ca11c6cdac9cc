"""The production stack's pure parts (infra.remotestack): credentials and their file
mode, URL masking, ports, and the configurations built for ZenML, MLflow and SeaweedFS."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from infra import remotestack as rs


def test_generated_credentials_are_random_and_complete():
    one, two = rs.generate_credentials(), rs.generate_credentials()
    assert set(one) == set(rs.CREDENTIAL_KEYS)
    assert all(len(v) >= 20 for v in one.values())
    assert not set(one.values()) & set(two.values())


def test_credentials_file_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        creds, new = rs.ensure_credentials(tmp_path / "s" / "credentials.env")
    finally:
        os.umask(old)
    path = tmp_path / "s" / "credentials.env"
    assert new
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, new_again = rs.ensure_credentials(path)
    assert again == creds
    assert not new_again
    assert not list(path.parent.glob(".*tmp*"))  # no temporary file left


def test_credentials_readable_by_others_are_refused(tmp_path):
    path = tmp_path / "credentials.env"
    rs.write_credentials(path, rs.generate_credentials())
    path.chmod(0o644)
    with pytest.raises(rs.StackError, match="chmod 600"):
        rs.read_credentials(path)


def test_a_key_added_later_is_generated_and_the_others_kept(tmp_path):
    path = tmp_path / "credentials.env"
    old = rs.generate_credentials()
    del old["MLFLOW_FLASK_SECRET_KEY"]
    rs.write_credentials(path, old)
    creds, new = rs.ensure_credentials(path)
    assert new
    assert creds["MLFLOW_FLASK_SECRET_KEY"]
    assert {k: creds[k] for k in old} == old
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_credentials_say_what_to_run(tmp_path):
    with pytest.raises(rs.StackError, match="make stack-up"):
        rs.read_credentials(tmp_path / "nope.env")


def test_env_file_parsing():
    assert rs.parse_env_file("# c\n\nA=1\nB_2=x=y\n") == {"A": "1", "B_2": "x=y"}
    with pytest.raises(rs.StackError, match="line 1"):
        rs.parse_env_file("not a line")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("mysql://zenml:s3cret@127.0.0.1:3307/zenml", "mysql://zenml:***@127.0.0.1:3307/zenml"),
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("http://127.0.0.1:5050", "http://127.0.0.1:5050"),
        ("https://user@host/x", "https://user@host/x"),
        ("http://a:b@[::1]:8238/api", "http://a:***@[::1]:8238/api"),
    ],
)
def test_mask_url(url, masked):
    assert rs.mask_url(url) == masked


def test_mask_secrets_in_text():
    creds = {"A": "abcdefgh1234", "B": "short"}
    assert rs.mask_secrets("x abcdefgh1234 y short", creds) == "x *** y short"


def test_ports_from_env_saved_and_defaults():
    ports = rs.Ports.from_env({"STACK_ZENML_PORT": "9999"}, {"mlflow": 6000})
    assert (ports.zenml, ports.mlflow, ports.s3) == (9999, 6000, 8333)
    project = {8080, 8081, 8237, 9464}  # front doors, dashboard, exporter
    assert not project & set(rs.Ports().__dict__.values())
    with pytest.raises(rs.StackError, match="STACK_S3_PORT"):
        rs.Ports.from_env({"STACK_S3_PORT": "http"})
    with pytest.raises(rs.StackError, match="share a port"):
        rs.Ports.from_env({"STACK_S3_PORT": "5050"})


def test_layout_from_env(tmp_path):
    assert rs.Layout.from_env({}, tmp_path).root == tmp_path / ".stack"
    assert rs.Layout.from_env({"STACK_DIR": "x"}, tmp_path).credentials == (
        tmp_path / "x" / "credentials.env"
    )
    assert rs.Layout.from_env({"STACK_DIR": str(tmp_path / "abs")}, Path("/")).root == (
        tmp_path / "abs"
    )


def test_urls_carry_no_password():
    ports = rs.Ports()
    assert rs.zenml_store_url(ports) == "mysql://zenml@127.0.0.1:3307/zenml"
    assert rs.mlflow_backend_uri(ports) == "postgresql+psycopg://postgres@127.0.0.1:5433/mlflow"


def test_component_configs_reference_secrets_only():
    e = rs.Endpoints.local(rs.Ports())
    store = rs.artifact_store_config(e)
    assert store["path"] == "s3://cryptocast-zenml/artifacts"
    assert store["key"] == "{{cryptocast_s3.aws_access_key_id}}"
    assert store["secret"] == "{{cryptocast_s3.aws_secret_access_key}}"
    assert store["client_kwargs"]["endpoint_url"] == "http://127.0.0.1:8333"
    tracker = rs.tracker_config(e)
    assert tracker == {
        "tracking_uri": "http://127.0.0.1:5050",
        "tracking_username": "{{cryptocast_mlflow_auth.username}}",
        "tracking_password": "{{cryptocast_mlflow_auth.password}}",
    }


def test_seaweed_config_and_s3_env():
    creds = rs.generate_credentials()
    identity = rs.seaweed_s3_config(creds)["identities"][0]
    assert identity["credentials"] == [
        {"accessKey": creds["S3_ACCESS_KEY_ID"], "secretKey": creds["S3_SECRET_ACCESS_KEY"]}
    ]
    assert "Write" in identity["actions"]
    env = rs.s3_env(rs.Endpoints.local(rs.Ports()), creds)
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert env["AWS_ACCESS_KEY_ID"] == creds["S3_ACCESS_KEY_ID"]


def test_mlflow_auth_ini_holds_no_password(tmp_path):
    text = rs.mlflow_auth_ini(tmp_path / "auth.db")
    assert f"sqlite:///{tmp_path}/auth.db" in text
    assert "password" not in text


def test_remote_settings_from_env_needs_every_variable():
    assert rs.remote_settings_from_env({}) is None
    with pytest.raises(rs.StackError, match="MLFLOW_TRACKING_URI"):
        rs.remote_settings_from_env({"ZENML_STORE_URL": "https://z", "ZENML_STORE_API_KEY": "k"})
    with pytest.raises(rs.StackError, match="ZENML_STORE_URL"):
        rs.remote_settings_from_env({"ZENML_STORE_API_KEY": "k"})
    env = {
        "ZENML_STORE_URL": "https://zenml.example/",
        "ZENML_STORE_API_KEY": "k",
        "MLFLOW_TRACKING_URI": "https://mlflow.example",
        "MLFLOW_TRACKING_USERNAME": "u",
        "MLFLOW_TRACKING_PASSWORD": "p",
        "S3_ENDPOINT_URL": "https://s3.example",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
        "ZENML_BUCKET": "mine",
    }
    remote = rs.remote_settings_from_env(env)
    assert remote.endpoints.zenml_url == "https://zenml.example"
    assert remote.endpoints.zenml_bucket == "mine"
    assert (remote.mlflow_username, remote.source) == ("u", "environment")


def test_a_steps_environment_is_not_your_own_servers():
    """ZenML mirrors its store into every step's environment; a training run that the
    monitoring pipeline starts inherits it (this failed with "ZENML_STORE_URL is set but
    ... is not" in CI)."""
    from zenml.orchestrators.utils import get_config_environment_vars

    from infra.stack import ensure_stack

    ensure_stack()
    step_env, secrets = get_config_environment_vars()
    assert step_env.get("ZENML_STORE_URL")
    assert rs.remote_settings_from_env(step_env | secrets) is None
    served = {"ZENML_STORE_URL": "https://z", "ZENML_STORE_API_TOKEN": "workload-token"}
    assert rs.remote_settings_from_env(served) is None


def test_remote_settings_from_stack(tmp_path):
    layout = rs.Layout(tmp_path)
    creds = rs.generate_credentials()
    rs.write_credentials(layout.credentials, creds)
    with pytest.raises(rs.StackError, match="ZENML_STORE_API_KEY"):
        rs.remote_settings_from_stack(layout, {})
    rs.write_credentials(layout.credentials, creds | {rs.API_KEY: "key"})
    rs.save_state(layout, rs.Ports(zenml=9000))
    remote = rs.remote_settings_from_stack(layout, {})
    assert remote.endpoints.zenml_url == "http://127.0.0.1:9000"
    assert remote.mlflow_password == creds["MLFLOW_ADMIN_PASSWORD"]
