"""Drift wording of topic provisioning (pure parts)."""

from __future__ import annotations

from app.catalog.model import load_catalog
from app.catalog.provision import ProvisionReport, TopicStatus, config_drift, partition_drift


def test_configs_unknown_when_broker_cannot_describe_them() -> None:
    assert config_drift({"cleanup.policy": "compact"}, None) == [
        "configs unknown (cleanup.policy=compact not verifiable)"
    ]


def test_config_drift_lines() -> None:
    wanted = {"cleanup.policy": "delete", "retention.ms": "-1"}
    assert config_drift(wanted, {"cleanup.policy": "delete", "retention.ms": "-1"}) == []
    assert config_drift(wanted, {"cleanup.policy": "compact"}) == [
        "cleanup.policy: broker has compact, catalog wants delete (change it with your Kafka tooling)",
        "retention.ms: unknown (broker did not report it), catalog wants -1",
    ]


def test_partition_drift_and_summary() -> None:
    spec = load_catalog().topics["legacy.staging.v1"]
    assert partition_drift(spec, 6) == []
    [line] = partition_drift(spec, 12)
    assert line.startswith("partitions: broker has 12, catalog wants 6")
    report = ProvisionReport(
        dry_run=False, topics=[TopicStatus("a", "created"), TopicStatus("b", "exists", (line,))]
    )
    assert report.ok
    assert report.summary().splitlines()[-1] == "created 1, existing 1, drifted 1, failed 0"
