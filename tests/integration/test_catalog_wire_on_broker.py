"""Canonical records on the real broker: our framing, read by confluent-kafka and its ProtobufDeserializer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.catalog.model import inner_event, load_catalog
from app.catalog.provision import apply_topics
from app.catalog.registry import deploy, registry_client
from app.catalog.wire import EnvelopeCodec
from app.normalize.cloudevents import canonical_headers
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText

pytestmark = pytest.mark.integration
MESSAGES = "collaboration.messages.v1"


def consume_all(bootstrap: str, topic: str, partitions: int, expect: int) -> list[Message]:
    """Every record of ``topic`` read with confluent-kafka from the start (no group commits)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records: list[Message] = []
    try:
        for _ in range(200):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                records.append(msg)
            if len(records) >= expect:
                break
    finally:
        consumer.close()
    return records


async def test_confluent_consumer_reads_our_records(kafka_bootstrap: str) -> None:
    catalog = load_catalog()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    assert (await apply_topics(kafka_bootstrap, catalog, dry_run=False, prefix=prefix)).ok
    registry = registry_client(f"mock://{uuid.uuid4().hex}")
    codec = EnvelopeCodec(deploy(registry, catalog).schema_ids, catalog)
    sent = [
        MessageSent(
            tenant_id=f"tenant-{i % 3}",
            event_id=f"evt-{i}",
            message_id=f"m-{i}",
            text=EncryptedText(key_id=f"tenant-{i % 3}-k1", ciphertext=bytes([i]) * 29),
        )
        for i in range(12)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in sent:
            topic, envelope = catalog.wrap(event)
            headers = canonical_headers(
                ce_id=event.event_id,
                ce_type=event.DESCRIPTOR.full_name,
                ce_time_ms=1_763_000_000_000,
                tenant_id=event.tenant_id,
                source="sqs",
                encryption_key_id=event.text.key_id,
            )
            await producer.send_and_wait(
                prefix + topic, codec.encode(topic, envelope), key=event.tenant_id.encode(), headers=headers
            )
    finally:
        await producer.stop()

    records = await asyncio.to_thread(consume_all, kafka_bootstrap, prefix + MESSAGES, 6, len(sent))
    deserializer = ProtobufDeserializer(MessageEvent, {"use.deprecated.format": False}, registry)
    got = {}
    for record in records:
        envelope = deserializer(record.value(), SerializationContext(prefix + MESSAGES, MessageField.VALUE))
        event = inner_event(envelope)
        headers = dict(record.headers())
        assert headers["ce_type"] == b"carryover.collaboration.v1.MessageSent"
        assert record.key() == event.tenant_id.encode() == headers["ce_tenantid"]
        assert headers["ce_encryptionkeyid"] == event.text.key_id.encode()
        got[event.event_id] = event
    assert got == {e.event_id: e for e in sent}
