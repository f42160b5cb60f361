"""Catalog metadata: what app/topics.py and the normalize agent get from load_catalog()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.catalog.model import CatalogError, envelope_class, inner_event, load_catalog, message_class
from app.catalog.paths import CATALOG_DIR
from models.canonical.carryover.collaboration.v1.conversation_event_pb2 import ConversationEvent
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.compliance.v1.compliance_event_pb2 import ComplianceEvent
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet

CANONICAL = {
    "collaboration.conversations.v1": "carryover.collaboration.v1.ConversationEvent",
    "collaboration.messages.v1": "carryover.collaboration.v1.MessageEvent",
    "identity.users.v1": "carryover.identity.v1.UserEvent",
    "compliance.actions.v1": "carryover.compliance.v1.ComplianceEvent",
}


def test_every_topic_of_the_design_is_declared_with_its_shape() -> None:
    catalog = load_catalog()
    assert set(catalog.topics) == {
        *CANONICAL,
        "legacy.staging.v1",
        "webhooks.deliveries.v1",
        "carryover.dlq.v1",
        "carryover.config.webhooks",
        "carryover.config.archive",
        "carryover.state.conversation-events.v1",
        "carryover.ops.worker-status",
    }
    for name, envelope in CANONICAL.items():
        spec = catalog.topics[name]
        assert (spec.envelope, spec.partitions, spec.compacted, spec.key) == (envelope, 6, False, "tenant id")
    assert catalog.topics["legacy.staging.v1"].partitions == 6
    # the state stage's repartition topic: as many partitions as webhook deliveries (co-partitioned fan-in)
    events = catalog.topics["carryover.state.conversation-events.v1"]
    assert events.partitions == catalog.topics["webhooks.deliveries.v1"].partitions and not events.compacted
    for name in ("carryover.config.webhooks", "carryover.config.archive"):
        spec = catalog.topics[name]
        assert (spec.partitions, spec.compacted, spec.retention_ms) == (1, True, None)
        assert spec.configs() == {"cleanup.policy": "compact"}
    assert catalog.topics["carryover.dlq.v1"].configs()["cleanup.policy"] == "delete"
    assert all(spec.owners for spec in catalog.topics.values())


def test_every_event_is_declared_once_on_a_canonical_topic() -> None:
    catalog = load_catalog()
    assert len(catalog.events) == 17
    for event in catalog.events.values():
        assert catalog.topics[event.topic].canonical
        assert message_class(event.type).DESCRIPTOR.full_name == event.type
        assert event.producers and event.consumers
    assert "text" in catalog.events["carryover.collaboration.v1.MessageSent"].sensitive_fields
    assert [e.name for e in catalog.events_of("compliance.actions.v1")] == [
        "MessageSuppressed",
        "LegalHoldSet",
        "LegalHoldReleased",
    ]


def test_headers_list_the_cloudevents_contract() -> None:
    headers = {h.name: h.required for h in load_catalog().headers}
    assert headers == {
        "ce_specversion": True,
        "ce_id": True,
        "ce_source": True,
        "ce_type": True,
        "ce_time": True,
        "ce_tenantid": True,
        "content-type": True,
        "ce_encryptionkeyid": False,
        "traceparent": True,
    }


def test_envelope_class_and_inner_event() -> None:
    assert envelope_class("collaboration.conversations.v1") is ConversationEvent
    joined = MemberJoined(tenant_id="t", conversation_id="c", user_id="5")
    topic, envelope = load_catalog().wrap(joined)
    assert topic == "collaboration.conversations.v1"
    assert isinstance(envelope, ConversationEvent)
    assert envelope.WhichOneof("event") == "member_joined"
    assert inner_event(envelope) == joined
    hold = ComplianceEvent(legal_hold_set=LegalHoldSet(hold_id="h"))
    assert inner_event(hold).DESCRIPTOR.full_name == "carryover.compliance.v1.LegalHoldSet"


def test_errors_name_the_problem() -> None:
    catalog = load_catalog()
    with pytest.raises(CatalogError, match="not canonical"):
        catalog.envelope_class("legacy.staging.v1")
    with pytest.raises(CatalogError, match="unknown topic 'nope'"):
        catalog.envelope_class("nope")
    with pytest.raises(CatalogError, match="no event set"):
        inner_event(ConversationEvent())
    with pytest.raises(CatalogError, match="no generated module"):
        message_class("carryover.collaboration.v1.Nope")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    partitions: 1\n    cleanup_policy: compact\n    owners: [compliance]",
            "    partitions: 0\n    cleanup_policy: compact\n    owners: [compliance]",
            "positive integer",
        ),
        ("    partitions: 6\n    retention_ms: 2592000000\n", "    partitions: 6\n", "retention_ms"),
    ],
)
def test_malformed_topics_yaml_is_rejected(tmp_path: Path, old: str, new: str, message: str) -> None:
    shutil.copy(CATALOG_DIR / "events.yaml", tmp_path / "events.yaml")
    text = (CATALOG_DIR / "topics.yaml").read_text()
    assert old in text
    (tmp_path / "topics.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError, match=message):
        load_catalog(tmp_path)


def test_event_on_unknown_topic_is_rejected(tmp_path: Path) -> None:
    shutil.copy(CATALOG_DIR / "topics.yaml", tmp_path / "topics.yaml")
    text = (CATALOG_DIR / "events.yaml").read_text()
    text = text.replace("topic: identity.users.v1", "topic: identity.people.v1")
    (tmp_path / "events.yaml").write_text(text)
    with pytest.raises(CatalogError, match="unknown topic identity.people.v1"):
        load_catalog(tmp_path)
