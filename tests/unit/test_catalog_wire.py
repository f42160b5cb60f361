"""Confluent protobuf wire format: golden bytes against confluent_kafka's own serializer and deserializer."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from app.catalog.model import inner_event, load_catalog
from app.catalog.wire import (
    EnvelopeCodec,
    Framed,
    WireFormatError,
    frame,
    message_indexes_for,
    unframe,
)
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.mention_pb2 import Mention
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_event_pb2 import UserEvent

MESSAGES = "collaboration.messages.v1"
USERS = "identity.users.v1"
SERDE_CONF = {"use.deprecated.format": False, "subject.name.strategy.type": "TOPIC"}


def sample_message_event() -> MessageEvent:
    """A MessageEvent with every kind of field set."""
    sent = MessageSent(
        tenant_id="acme",
        event_id="evt-1",
        event_time=Timestamp(seconds=1_763_000_000, nanos=123_000_000),
        provenance=Provenance(
            source="sqs", source_id="q", source_message_id="m-1", legacy_type="chat", legacy_version=3
        ),
        conversation_id="c-9",
        message_id="m-42",
        sender_user_id="1001",
        text=EncryptedText(key_id="acme-k1", ciphertext=bytes(range(40))),
        mentions=[Mention(user_id="1002", display_name="Bo")],
        hashtags=["deal"],
    )
    return MessageEvent(message_sent=sent)


@pytest.fixture
def registry() -> SchemaRegistryClient:
    """A fresh in-process mock registry."""
    return SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})


def test_frame_matches_confluent_serializer_bytes(registry: SchemaRegistryClient) -> None:
    envelope = sample_message_event()
    serializer = ProtobufSerializer(MessageEvent, registry, SERDE_CONF)
    confluent_bytes = serializer(envelope, SerializationContext(MESSAGES, MessageField.VALUE))
    assert confluent_bytes is not None
    schema_id = registry.get_latest_version(f"{MESSAGES}-value").schema_id
    ours = EnvelopeCodec({MESSAGES: schema_id}).encode(MESSAGES, envelope)
    assert ours == confluent_bytes
    assert ours[:6] == b"\x00" + schema_id.to_bytes(4, "big") + b"\x00"


def test_literal_golden_bytes() -> None:
    envelope = MessageEvent(message_sent=MessageSent(tenant_id="acme"))
    data = EnvelopeCodec({MESSAGES: 258}).encode(MESSAGES, envelope)
    # magic, schema id 258, index [0], field 1 (message_sent, len 6) { field 1 (tenant_id, len 4) "acme" }
    assert data.hex(" ") == "00 00 00 01 02 00 0a 06 0a 04 61 63 6d 65"


def test_confluent_deserializer_reads_our_bytes(registry: SchemaRegistryClient) -> None:
    envelope = MessageEvent(message_sent=MessageSent(tenant_id="acme", message_id="m-1"))
    ProtobufSerializer(MessageEvent, registry, SERDE_CONF)(
        envelope, SerializationContext(MESSAGES, MessageField.VALUE)
    )
    schema_id = registry.get_latest_version(f"{MESSAGES}-value").schema_id
    data = EnvelopeCodec({MESSAGES: schema_id}).encode(MESSAGES, envelope)
    deserializer = ProtobufDeserializer(MessageEvent, {"use.deprecated.format": False}, registry)
    decoded = deserializer(data, SerializationContext(MESSAGES, MessageField.VALUE))
    assert decoded == envelope
    assert inner_event(decoded).message_id == "m-1"


def test_we_decode_confluent_serializer_output(registry: SchemaRegistryClient) -> None:
    envelope = UserEvent(user_created=UserCreated(tenant_id="t", user_id="7", email="a@b.c"))
    data = ProtobufSerializer(UserEvent, registry, SERDE_CONF)(
        envelope, SerializationContext(USERS, MessageField.VALUE)
    )
    assert data is not None
    schema_id = registry.get_latest_version(f"{USERS}-value").schema_id
    decoded = EnvelopeCodec({USERS: schema_id}).decode(USERS, data)
    assert decoded == envelope
    assert unframe(data).schema_id == schema_id


# Index arrays as confluent's serializer writes them (count and values zigzag-encoded).
@pytest.mark.parametrize(
    ("indexes", "expected"),
    [
        ([0], b"\x00"),
        ([1], b"\x02\x02"),
        ([0, 1], b"\x04\x00\x02"),
        ([2, 0, 70], b"\x06\x04\x00\x8c\x01"),
    ],
)
def test_message_index_bytes(indexes: list[int], expected: bytes) -> None:
    data = frame(7, indexes, b"PB")
    assert data == b"\x00\x00\x00\x00\x07" + expected + b"PB"
    assert unframe(data) == Framed(7, indexes, b"PB")


def test_index_bytes_agree_with_confluent_encoder() -> None:
    import io

    for indexes in ([0], [1], [0, 0], [3, 1, 200], [64], list(range(70))):
        buf = io.BytesIO()
        ProtobufSerializer._encode_varints(buf, indexes)
        assert frame(1, indexes, b"")[5:] == buf.getvalue(), indexes


@given(
    schema_id=st.integers(0, 2**32 - 1),
    indexes=st.lists(st.integers(0, 2**40), min_size=1, max_size=6),
    payload=st.binary(max_size=64),
)
def test_frame_unframe_round_trip(schema_id: int, indexes: list[int], payload: bytes) -> None:
    assert unframe(frame(schema_id, indexes, payload)) == Framed(schema_id, indexes, payload)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"\x00\x00\x00\x01", "too short"),
        (b"\x01\x00\x00\x00\x01\x00", "magic"),
        (b'{"json": true}', "magic"),
        (b"\x00\x00\x00\x00\x01\x80", "truncated"),
        (b"\x00\x00\x00\x00\x01\x04\x02", "count"),
        (b"\x00\x00\x00\x00\x01\x04\x02\x82", "truncated"),
        (b"\x00\x00\x00\x00\x01\x7f", "count"),
        (b"\x00\x00\x00\x00\x01\x02\x01", "negative"),
        (b"\x00\x00\x00\x00\x01" + b"\xff" * 11, "longer than 10"),
    ],
)
def test_unframe_rejects_bad_input(data: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        unframe(data)


def test_frame_rejects_out_of_range_schema_id_and_negative_index() -> None:
    with pytest.raises(WireFormatError):
        frame(2**32, [0], b"")
    with pytest.raises(WireFormatError):
        frame(1, [1, -1], b"")


def test_message_indexes_of_top_level_and_nested_messages() -> None:
    from google.protobuf import descriptor_pb2

    assert message_indexes_for(MessageEvent.DESCRIPTOR) == [0]
    # descriptor.proto has many top-level and nested messages: compare with confluent's own computation.
    from confluent_kafka.schema_registry.common.protobuf import _create_index_array

    for desc in (
        descriptor_pb2.FieldDescriptorProto.DESCRIPTOR,
        descriptor_pb2.DescriptorProto.ExtensionRange.DESCRIPTOR,
        descriptor_pb2.SourceCodeInfo.Location.DESCRIPTOR,
    ):
        assert message_indexes_for(desc) == _create_index_array(desc)
        assert message_indexes_for(desc) != [0]


def test_codec_refuses_wrong_type_unknown_topic_and_garbage() -> None:
    codec = EnvelopeCodec({MESSAGES: 3, USERS: 4})
    with pytest.raises(WireFormatError, match="carries carryover.collaboration.v1.MessageEvent"):
        codec.encode(MESSAGES, UserEvent())
    with pytest.raises(WireFormatError, match="no schema id"):
        codec.encode("compliance.actions.v1", MessageEvent())
    with pytest.raises(WireFormatError, match="invalid"):
        codec.decode(MESSAGES, frame(3, [0], b"\xff\xff\xff"))
    with pytest.raises(WireFormatError, match="message indexes"):
        codec.decode(MESSAGES, frame(3, [1], b""))


def test_codec_round_trip_every_canonical_topic() -> None:
    catalog = load_catalog()
    codec = EnvelopeCodec({t.name: 100 + i for i, t in enumerate(catalog.canonical_topics())}, catalog)
    for event in catalog.events.values():
        from app.catalog.model import message_class

        inner = message_class(event.type)(tenant_id="t-1", event_id=f"id-{event.name}")
        topic, envelope = catalog.wrap(inner)
        assert topic == event.topic
        data = codec.encode(topic, envelope)
        back = codec.decode(topic, data)
        assert inner_event(back) == inner
        assert inner_event(back).DESCRIPTOR.full_name == event.type
