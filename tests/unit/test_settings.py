"""Settings: declared once, read from the environment, documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, declared, load, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_without_environment() -> None:
    settings = load({})
    assert settings.broker == "kafka://127.0.0.1:19092"
    assert settings.local_broker is False
    assert settings.roles == ("ingest", "normalize", "state", "webhooks", "archive")
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.store == "rocksdb://" and settings.standby_replicas == 1


def test_the_admin_token_stays_out_of_the_settings_repr() -> None:
    settings = load({"CARRYOVER_ADMIN_TOKEN": "s3cr3t-token"})
    assert settings.admin_token == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(settings) and "admin_token" not in repr(settings)


def test_state_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="CARRYOVER_STANDBY_REPLICAS=-1: use 0 or more"):
        load({"CARRYOVER_STANDBY_REPLICAS": "-1"})
    with pytest.raises(SettingsError, match="CARRYOVER_STATE_DEDUPE_WINDOW=0: use 1 or more"):
        load({"CARRYOVER_STATE_DEDUPE_WINDOW": "0"})


def test_environment_overrides_and_parses() -> None:
    settings = load(
        {
            "CARRYOVER_LOCAL_BROKER": "true",
            "CARRYOVER_ROLES": "ingest, normalize",
            "CARRYOVER_BROKER": "kafka://a:1,kafka://b:2",
            "CARRYOVER_MAX_IN_FLIGHT": "10",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert settings.local_broker is True
    assert settings.roles == ("ingest", "normalize")
    assert settings.has_role("ingest") and not settings.has_role("webhooks")
    assert settings.bootstrap_servers == "a:1,b:2"
    assert settings.max_in_flight == 10
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CARRYOVER_ROLES": "ingest,archiver"},
            "CARRYOVER_ROLES='ingest,archiver' is not valid: unknown role(s) archiver",
        ),
        ({"CARRYOVER_WEB_PORT": "http"}, "CARRYOVER_WEB_PORT='http' is not valid"),
        ({"CARRYOVER_LOCAL_BROKER": "maybe"}, "expected true/false"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(env)


def test_every_setting_has_a_documented_unique_variable() -> None:
    envs = [decl.env for _, decl in declared()]
    assert len(envs) == len(set(envs))
    for _, decl in declared():
        assert decl.env.startswith(("CARRYOVER_", "AWS_", "PUBSUB_")) and len(decl.doc) > 10


def test_readme_configuration_table_is_current() -> None:
    assert markdown_table() in README.read_text(), (
        "README's configuration table is stale: run `carryover settings`"
    )
