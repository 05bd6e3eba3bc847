"""Connecting to Temporal by configuration alone: envconfig profiles and TEMPORAL_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from cofounder.settings import Settings
from cofounder.temporal import connect, connect_config

PROFILES = """
[profile.default]
address = "127.0.0.1:1"

[profile.team]
address = "{address}"
namespace = "default"
[profile.team.grpc_meta]
x-team = "builders"

[profile.cloud]
address = "acme.a1b2c.tmprl.cloud:7233"
namespace = "acme.a1b2c"
api_key = "{api_key}"
"""


@pytest.fixture
def profiles(tmp_path: Path, env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    address = env.client.service_client.config.target_host
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES.format(address=address, api_key="cloud-key-" + "x" * 20))
    return path


def configured(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


async def test_a_profile_alone_reaches_the_server(profiles: Path) -> None:
    settings = configured(temporal_profile="team", temporal_config_file=profiles)
    client = await connect(settings, patience=5)
    assert client.namespace == "default"
    assert [wf async for wf in client.list_workflows("WorkflowId = 'none'")] == []
    assert connect_config(settings)["rpc_metadata"] == {"x-team": "builders"}


def test_an_explicit_address_wins_over_the_profile(profiles: Path) -> None:
    settings = configured(
        temporal_profile="cloud", temporal_config_file=profiles, temporal_address="10.0.0.1:7233"
    )
    config = connect_config(settings)
    assert config["target_host"] == "10.0.0.1:7233"
    assert config["namespace"] == "acme.a1b2c"  # not given explicitly: the profile's


def test_temporal_cloud_by_api_key_is_tls(profiles: Path) -> None:
    config = connect_config(configured(temporal_profile="cloud", temporal_config_file=profiles))
    assert config["api_key"] == "cloud-key-" + "x" * 20
    assert config["tls"] is True or isinstance(config["tls"], TLSConfig)

    keyed = configured(temporal_api_key="from-the-secret-" + "y" * 20)
    config = connect_config(keyed)
    assert config["api_key"] == "from-the-secret-" + "y" * 20 and config["tls"] is True


def test_mtls_from_the_environment(profiles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", "-----BEGIN CERTIFICATE-----\nc\n")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_DATA", "-----BEGIN PRIVATE KEY-----\nk\n")
    config = connect_config(configured(temporal_address="acme.a1b2c.tmprl.cloud:7233"))
    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"-----BEGIN CERTIFICATE-----\nc\n"
    assert tls.client_private_key == b"-----BEGIN PRIVATE KEY-----\nk\n"


def test_profiles_are_read_only_when_asked_for(
    profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = profiles.parent / "home"
    (home / ".config" / "temporalio").mkdir(parents=True)
    (home / ".config" / "temporalio" / "temporal.toml").write_text(profiles.read_text())
    monkeypatch.setenv("HOME", str(home))
    assert connect_config(configured())["target_host"] == "127.0.0.1:7233"
    asked = configured(temporal_config_file=profiles)  # its default profile
    assert connect_config(asked)["target_host"] == "127.0.0.1:1"


def test_an_unknown_profile_is_refused_by_name(profiles: Path) -> None:
    with pytest.raises(Exception, match="'nope' not found"):
        connect_config(configured(temporal_profile="nope", temporal_config_file=profiles))
