"""Topic provisioning against the session's real broker: create, dry run, idempotence, drift."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.catalog.model import load_catalog
from app.catalog.provision import apply_topics

pytestmark = pytest.mark.integration


def unique_prefix() -> str:
    """A topic-name prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}."


async def broker_topics(bootstrap: str, prefix: str) -> dict[str, int]:
    """name -> partition count of the broker's topics starting with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        described = await admin.describe_topics(names) if names else []
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


async def test_dry_run_creates_nothing(kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    report = await apply_topics(kafka_bootstrap, load_catalog(), dry_run=True, prefix=prefix)
    assert len(report.with_action("would create")) == len(load_catalog().topics)
    assert await broker_topics(kafka_bootstrap, prefix) == {}


async def test_apply_creates_every_topic_then_is_idempotent(kafka_bootstrap: str) -> None:
    catalog = load_catalog()
    prefix = unique_prefix()
    first = await apply_topics(kafka_bootstrap, catalog, dry_run=False, prefix=prefix)
    assert first.ok and len(first.with_action("created")) == len(load_catalog().topics), first.summary()
    assert await broker_topics(kafka_bootstrap, prefix) == {
        prefix + t.name: t.partitions for t in catalog.topics.values()
    }
    second = await apply_topics(kafka_bootstrap, catalog, dry_run=False, prefix=prefix)
    assert len(second.with_action("exists")) == len(load_catalog().topics)
    assert second.drifted == [], second.summary()


async def test_drift_is_reported_not_fixed(kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(prefix + "carryover.config.archive", 3, 1, topic_configs={"cleanup.policy": "delete"})]
        )
    finally:
        await admin.close()
    report = await apply_topics(kafka_bootstrap, load_catalog(), dry_run=False, prefix=prefix)
    [status] = [t for t in report.topics if t.name == prefix + "carryover.config.archive"]
    assert status.action == "exists"
    assert any(d.startswith("partitions: broker has 3, catalog wants 1") for d in status.drift)
    assert any(d.startswith("cleanup.policy: broker has delete, catalog wants compact") for d in status.drift)
    assert (await broker_topics(kafka_bootstrap, prefix))[prefix + "carryover.config.archive"] == 3
    assert report.ok and len(report.with_action("created")) == len(load_catalog().topics) - 1
