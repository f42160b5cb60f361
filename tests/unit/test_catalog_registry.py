"""Deploying the catalog to a Schema Registry (confluent's in-process mock, with compatibility checks)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2

from app.catalog.model import load_catalog
from app.catalog.registry import (
    COMPATIBILITY,
    DeployError,
    deploy,
    registry_client,
    schema_ids,
)
from app.catalog.wire import EnvelopeCodec
from app.dev.registry import CheckedMockRegistry
from models.canonical.carryover.collaboration.v1 import message_sent_pb2
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent

MESSAGE_SENT_FILE = "carryover/collaboration/v1/message_sent.proto"


@pytest.fixture
def registry() -> CheckedMockRegistry:
    """A fresh in-process registry."""
    client = registry_client(f"mock://{uuid.uuid4().hex}")
    assert isinstance(client, CheckedMockRegistry)
    return client


def test_deploy_registers_every_file_dependencies_first(registry: CheckedMockRegistry) -> None:
    catalog = load_catalog()
    report = deploy(registry, catalog)
    subjects = [s.subject for s in report.subjects]
    assert len(subjects) == 26  # 5 common files, 17 events, 4 envelopes; google's timestamp is built in
    assert set(registry.get_subjects()) == set(subjects)
    for topic in (
        "collaboration.conversations.v1",
        "collaboration.messages.v1",
        "identity.users.v1",
        "compliance.actions.v1",
    ):
        assert f"{topic}-value" in subjects
    assert subjects.index("carryover/common/v1/provenance.proto") < subjects.index(MESSAGE_SENT_FILE)
    assert subjects.index(MESSAGE_SENT_FILE) < subjects.index("collaboration.messages.v1-value")
    envelope = registry.get_latest_version("collaboration.messages.v1-value")
    refs = {r.name: (r.subject, r.version) for r in envelope.schema.references or []}
    assert refs[MESSAGE_SENT_FILE] == (MESSAGE_SENT_FILE, 1)
    assert envelope.schema_id == report.schema_ids["collaboration.messages.v1"]
    assert all(registry.get_compatibility(s) == COMPATIBILITY for s in subjects)
    assert report.registered == subjects


def test_second_deploy_registers_nothing(registry: CheckedMockRegistry) -> None:
    catalog = load_catalog()
    first = deploy(registry, catalog)
    second = deploy(registry, catalog)
    assert second.registered == [] and not second.changed
    assert second.schema_ids == first.schema_ids
    assert "nothing new" in second.summary()
    assert all(len(registry.get_versions(s)) == 1 for s in registry.get_subjects())


def test_confluent_serializer_finds_the_deployed_schema(registry: CheckedMockRegistry) -> None:
    report = deploy(registry, load_catalog())
    serializer = ProtobufSerializer(
        MessageEvent, registry, {"auto.register.schemas": False, "subject.name.strategy.type": "TOPIC"}
    )
    envelope = MessageEvent(message_sent=MessageSent(tenant_id="acme", message_id="m-1"))
    theirs = serializer(envelope, SerializationContext("collaboration.messages.v1", MessageField.VALUE))
    ours = EnvelopeCodec(report.schema_ids).encode("collaboration.messages.v1", envelope)
    assert theirs == ours
    assert len(registry.get_subjects()) == 26  # the serializer registered nothing of its own


def _previous_release(registry: CheckedMockRegistry, edit: str) -> None:
    """Registers an older MessageSent file, as a previous release would have, under its subject."""
    catalog = load_catalog()
    deploy(registry, catalog)  # dependencies (and, harmlessly, everything else) at v1
    registry.delete_subject(MESSAGE_SENT_FILE)
    proto = descriptor_pb2.FileDescriptorProto.FromString(message_sent_pb2.DESCRIPTOR.serialized_pb)
    fields = proto.message_type[0].field
    if edit == "conversation_id was int64":
        fields[4].type = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
    elif edit == "no parent_message_id yet":
        del fields[-1]
    import base64

    refs = [SchemaReference(dep, dep, 1) for dep in proto.dependency if not dep.startswith("google/")]
    text = base64.standard_b64encode(proto.SerializeToString()).decode()
    registry.register_schema(MESSAGE_SENT_FILE, Schema(text, "PROTOBUF", refs))


def test_incompatible_change_stops_deploy_naming_subject_and_reason(registry: CheckedMockRegistry) -> None:
    _previous_release(registry, "conversation_id was int64")
    with pytest.raises(DeployError) as caught:
        deploy(registry, load_catalog())
    message = str(caught.value)
    assert MESSAGE_SENT_FILE in message
    assert 'changed type from "int64" to "string"' in message
    assert len(registry.get_versions(MESSAGE_SENT_FILE)) == 1


def test_compatible_addition_registers_a_new_version(registry: CheckedMockRegistry) -> None:
    _previous_release(registry, "no parent_message_id yet")
    report = deploy(registry, load_catalog())
    assert MESSAGE_SENT_FILE in report.registered
    assert registry.get_versions(MESSAGE_SENT_FILE) == [1, 2]
    # the envelope now references version 2 of the event file, so it gets a version of its own
    envelope = registry.get_latest_version("collaboration.messages.v1-value")
    assert {r.name: r.version for r in envelope.schema.references or []}[MESSAGE_SENT_FILE] == 2


def test_schema_ids_look_up_or_deploy(registry: CheckedMockRegistry) -> None:
    catalog = load_catalog()
    with pytest.raises(DeployError, match="carryover catalog deploy"):
        schema_ids(registry, catalog)
    ids = schema_ids(registry, catalog, auto_register=True)
    assert set(ids) == {t.name for t in catalog.canonical_topics()}
    assert schema_ids(registry, catalog) == ids
