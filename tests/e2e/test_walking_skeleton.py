"""The walking skeleton: a legacy "message sent" published to a tenant's SNS topic reaches that tenant's
SQS queue, is landed in legacy.staging.v1 with provenance headers, deleted from SQS only after Kafka
acknowledged it, and normalized into one canonical event in collaboration.messages.v1 — read here as a
downstream consumer would, with Confluent's own ProtobufDeserializer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path

import boto3
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.catalog.model import inner_event
from app.catalog.wire import unframe
from app.crypto.aead import decrypt
from app.crypto.keyfile import generate_key_file, read_key_file
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.legacy.codec import encode_json
from tests.support.kafka import read_topic
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

TENANT = "acme-bank"
CE_HEADERS = {
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_tenantid",
    "content-type",
    "ce_encryptionkeyid",
    "traceparent",
}


def _aws(stack: RunningStack, service: str) -> object:
    return boto3.client(service, endpoint_url=stack.aws_endpoint, region_name="us-east-1")


def test_message_sent_flows_from_sns_to_the_canonical_topic(stack: RunningStack, tmp_path: Path) -> None:
    prefix = f"sk{uuid.uuid4().hex[:6]}-"
    sns, sqs = _aws(stack, "sns"), _aws(stack, "sqs")
    topic_arn = sns.create_topic(Name=f"{prefix}{TENANT}")["TopicArn"]  # type: ignore[attr-defined]
    queue_url = sqs.create_queue(QueueName=f"{prefix}{TENANT}")["QueueUrl"]  # type: ignore[attr-defined]
    queue_arn = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)  # type: ignore[attr-defined]

    key_file = generate_key_file(tmp_path / "keys.json", [TENANT])
    occurred_ms = 1_795_000_000_000
    stream_id = base64.urlsafe_b64encode(b"room-0001-acme").decode().rstrip("=")
    message_id = base64.urlsafe_b64encode(b"msg-0001").decode().rstrip("=")
    payload = encode_json(
        "MESSAGE_SENT",
        2,
        {
            "conversation_id": stream_id,
            "message_id": message_id,
            "sender_user_id": "71811853189",
            "markup": '<messageML>Hello <mention uid="42"/> see #deal</messageML>',
        },
        tenant_id=TENANT,
        occurred_ms=occurred_ms,
    )
    published = sns.publish(  # type: ignore[attr-defined]
        TopicArn=topic_arn,
        Message=payload.decode(),
        MessageAttributes={"eventType": {"DataType": "String", "StringValue": "MESSAGE_SENT"}},
    )

    env = worker_env(
        stack,
        tmp_path,
        CARRYOVER_ROLES="ingest,normalize",
        CARRYOVER_SQS_QUEUE_PREFIX=prefix,
        CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX=f"{prefix}none-",
        CARRYOVER_KEY_FILE=str(key_file),
    )
    topic_prefix = env["CARRYOVER_TOPIC_PREFIX"]
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    try:
        staged = asyncio.run(read_topic(stack.bootstrap, f"{topic_prefix}legacy.staging.v1", expect=1))
        messages_topic = f"{topic_prefix}collaboration.messages.v1"
        canonical = asyncio.run(read_topic(stack.bootstrap, messages_topic, expect=1))
        deadline = time.monotonic() + 30
        depth = {}
        while time.monotonic() < deadline:
            depth = sqs.get_queue_attributes(  # type: ignore[attr-defined]
                QueueUrl=queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
                break
            time.sleep(0.5)
    finally:
        worker.stop()
    log = worker.log_tail(20000)

    # staging: the raw payload, SNS envelope unwrapped, with provenance headers
    assert len(staged) == 1, log
    record = staged[0]
    assert record.key == TENANT.encode()
    assert record.value == payload
    assert record.headers["source"] == b"sqs"
    assert record.headers["source_id"].decode().endswith(f"{prefix}{TENANT}")
    assert record.headers["sns_message_id"] == published["MessageId"].encode()
    assert record.headers["source_message_id"]  # the SQS message id
    assert record.headers["tenant"] == TENANT.encode()
    assert record.headers["eventType"] == b"MESSAGE_SENT"
    assert abs(int(record.headers["received_at"]) - time.time() * 1000) < 120_000
    # the source message was deleted once Kafka had it
    assert depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    # canonical: one MessageSent keyed by tenant, CloudEvents headers, Confluent wire format
    assert len(canonical) == 1, log
    event_record = canonical[0]
    assert event_record.key == TENANT.encode()
    assert CE_HEADERS <= set(event_record.headers)
    assert event_record.headers["ce_type"] == b"carryover.collaboration.v1.MessageSent"
    assert event_record.headers["ce_tenantid"] == TENANT.encode()
    assert event_record.headers["ce_specversion"] == b"1.0"
    assert event_record.headers["content-type"] == b"application/x-protobuf"
    assert unframe(event_record.value).schema_id > 0
    deserializer = ProtobufDeserializer(MessageEvent, {"use.deprecated.format": False})
    envelope = deserializer(event_record.value, SerializationContext(event_record.topic, MessageField.VALUE))
    sent = inner_event(envelope)
    assert sent.tenant_id == TENANT
    assert sent.conversation_id == stream_id
    assert sent.message_id == message_id
    assert sent.sender_user_id == "71811853189"
    assert sent.event_time.ToMilliseconds() == occurred_ms
    assert sent.event_id == event_record.headers["ce_id"].decode()
    assert sent.provenance.source_message_id == record.headers["source_message_id"].decode()
    assert [m.user_id for m in sent.mentions] == ["42"]
    assert list(sent.hashtags) == ["deal"]
    # the text is encrypted with the tenant's current key, named in the header
    keys = read_key_file(key_file)[TENANT]
    key_id = event_record.headers["ce_encryptionkeyid"].decode()
    assert key_id == sent.text.key_id == keys["current"]
    key = base64.b64decode(keys["keys"][key_id])
    plaintext = decrypt(key, sent.text.ciphertext, tenant_id=TENANT, key_id=key_id)
    assert "Hello" in plaintext.decode() and "#deal" in plaintext.decode()
    assert json.loads(payload)["tenantId"] == TENANT
