"""The staging record contract: what a consumer of legacy.staging.v1 sees for each kind of source message."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sources.landing import (
    REASON_BAD_ENVELOPE,
    REASON_TOO_LARGE,
    DeadLetter,
    LandingConfig,
    StagingRecord,
    is_ingested_queue,
    land_pubsub,
    land_sqs,
)

QUEUE_URL = "http://127.0.0.1:4566/123456789012/carryover-legacy-acme-bank"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:carryover-legacy-acme-bank"
SUB_PATH = "projects/carryover-local/subscriptions/carryover-legacy-globex"
CONFIG = LandingConfig("carryover-legacy-")


def sns_body(message: str, attributes: dict[str, dict[str, str]] | None = None, **extra: object) -> str:
    """An SQS body as SNS delivers it without raw delivery."""
    envelope: dict[str, object] = {
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": TOPIC_ARN,
        "Message": message,
        "Timestamp": "2026-11-22T08:08:59.050Z",
        **extra,
    }
    if attributes is not None:
        envelope["MessageAttributes"] = attributes
    return json.dumps(envelope, indent=2)


def sqs_message(
    body: str, *, message_id: str = "sqs-1", attributes: dict[str, object] | None = None
) -> dict[str, object]:
    """A message as ReceiveMessage returns it."""
    message: dict[str, object] = {
        "MessageId": message_id,
        "ReceiptHandle": "rh",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    if attributes is not None:
        message["MessageAttributes"] = attributes
    return message


def land(message: dict[str, object], config: LandingConfig = CONFIG) -> StagingRecord | DeadLetter:
    return land_sqs(message, queue_url=QUEUE_URL, config=config, received_at_ms=1795334939052)


def test_sns_envelope_is_unwrapped_with_attributes_and_provenance() -> None:
    body = sns_body(
        '{"type":"message.sent","v":3}',
        {
            "legacyType": {"Type": "String", "Value": "message.sent"},
            "version": {"Type": "Number", "Value": "3"},
            "keyId": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01k").decode()},
        },
    )
    record = land(sqs_message(body))
    assert isinstance(record, StagingRecord)
    assert record.key == b"acme-bank"
    assert record.value == b'{"type":"message.sent","v":3}'
    assert record.headers == [
        ("source", b"sqs"),
        ("source_id", QUEUE_URL.encode()),
        ("source_message_id", b"sqs-1"),
        ("received_at", b"1795334939052"),
        ("tenant", b"acme-bank"),
        ("sns_message_id", b"sns-1"),
        ("sns_topic_arn", TOPIC_ARN.encode()),
        ("keyId", b"\x00\x01k"),
        ("legacyType", b"message.sent"),
        ("version", b"3"),
    ]


def test_raw_delivery_keeps_body_and_sqs_attributes() -> None:
    message = sqs_message(
        '{"type":"user.created"}',
        attributes={
            "legacyType": {"DataType": "String", "StringValue": "user.created"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\xff\x00"},
            "n": {"DataType": "Number", "StringValue": "7"},
        },
    )
    record = land(message)
    assert isinstance(record, StagingRecord)
    assert record.value == b'{"type":"user.created"}'
    headers = dict(record.headers)
    assert headers["legacyType"] == b"user.created"
    assert headers["blob"] == b"\xff\x00"
    assert headers["n"] == b"7"
    assert "sns_message_id" not in headers


def test_non_utf8_safe_payload_text_survives_byte_for_byte() -> None:
    payload = "Ünïcödé ✓ \u2028 base64:" + base64.b64encode(bytes(range(256))).decode()
    record = land(sqs_message(sns_body(payload)))
    assert isinstance(record, StagingRecord)
    assert record.value == payload.encode("utf-8")


@given(st.text(max_size=300))
def test_any_sns_message_text_round_trips(text: str) -> None:
    record = land(sqs_message(sns_body(text)))
    assert isinstance(record, StagingRecord)
    assert record.value == text.encode("utf-8")


@given(st.text(max_size=300).filter(lambda t: '"TopicArn"' not in t))
def test_any_raw_body_is_landed_unchanged(text: str) -> None:
    record = land(sqs_message(text))
    assert isinstance(record, StagingRecord)
    assert record.value == text.encode("utf-8")


@pytest.mark.parametrize(
    "body",
    [
        '{"Type": "Notification", "TopicArn": "arn:x", "Message": ',  # truncated JSON
        '{"Type": "SubscriptionConfirmation", "TopicArn": "arn:x", "Message": "m"}',
        '{"Type": "Notification", "TopicArn": "arn:x", "Message": {"not": "a string"}}',
        '{"Type": "Notification", "TopicArn": "arn:x", "Message": "m", "MessageAttributes": {"a": 5}}',
        '{"Type": "Notification", "TopicArn": "arn:x", "Message": "m", '
        '"MessageAttributes": {"a": {"Type": "Binary", "Value": "***"}}}',
    ],
)
def test_unreadable_sns_envelope_is_dead_lettered_with_original_bytes(body: str) -> None:
    letter = land(sqs_message(body, message_id="m-9"))
    assert isinstance(letter, DeadLetter)
    assert letter.value == body.encode()
    assert letter.key == b"acme-bank"
    headers = dict(letter.headers)
    assert headers["dlq_reason"] == REASON_BAD_ENVELOPE.encode()
    assert headers["dlq_stage"] == b"ingest"
    assert headers["dlq_error"]
    assert headers["dlq_origin"] == f"{QUEUE_URL}#m-9".encode()
    assert headers["source_message_id"] == b"m-9"
    assert headers["tenant"] == b"acme-bank"


def test_oversized_payload_is_dead_lettered_not_landed() -> None:
    config = LandingConfig("carryover-legacy-", max_message_bytes=100)
    record = land(sqs_message(sns_body("x" * 100)), config)
    assert isinstance(record, StagingRecord)
    letter = land(sqs_message(sns_body("x" * 101)), config)
    assert isinstance(letter, DeadLetter)
    headers = dict(letter.headers)
    assert headers["dlq_reason"] == REASON_TOO_LARGE.encode()
    assert b"101 bytes" in headers["dlq_error"]
    # the DLQ copy is cut to the limit, and says so
    assert letter.value == b"x" * 100
    assert headers["dlq_truncated"] == b"true"
    assert headers["dlq_original_bytes"] == b"101"


def test_tenant_from_topic_arn() -> None:
    config = LandingConfig("carryover-legacy-", tenant_source="topic_arn")
    record = land_sqs(
        sqs_message(sns_body("m")),
        queue_url="http://h/1/some-other-queue-name",
        config=config,
        received_at_ms=1,
    )
    assert isinstance(record, StagingRecord)
    assert record.tenant == "acme-bank"
    assert record.key == b"acme-bank"


def test_tenant_from_attribute_and_fallback_key_when_unknown() -> None:
    config = LandingConfig("carryover-legacy-", tenant_source="attribute", tenant_attribute="tenantId")
    with_attr = land(sqs_message(sns_body("m", {"tenantId": {"Type": "String", "Value": "initech"}})), config)
    assert isinstance(with_attr, StagingRecord)
    assert (with_attr.tenant, with_attr.key, dict(with_attr.headers)["tenant"]) == (
        "initech",
        b"initech",
        b"initech",
    )
    without = land(sqs_message(sns_body("m"), message_id="sqs-77"), config)
    assert isinstance(without, StagingRecord)
    assert without.tenant is None
    assert without.key == b"sqs-77"
    assert dict(without.headers)["tenant"] == b""


def test_attribute_named_like_a_provenance_header_is_kept_under_legacy_prefix() -> None:
    record = land(sqs_message(sns_body("m", {"source": {"Type": "String", "Value": "backend-7"}})))
    assert isinstance(record, StagingRecord)
    headers = dict(record.headers)
    assert headers["source"] == b"sqs"
    assert headers["legacy.source"] == b"backend-7"


def test_pubsub_message_lands_decoded_data_and_attributes() -> None:
    record = land_pubsub(
        subscription_path=SUB_PATH,
        message_id="42",
        data=b"\x00\xffbinary",
        attributes={"legacyType": "message.sent", "tenant": "spoof"},
        config=CONFIG,
        received_at_ms=5,
    )
    assert isinstance(record, StagingRecord)
    assert record.key == b"globex"
    assert record.value == b"\x00\xffbinary"
    assert record.headers == [
        ("source", b"pubsub"),
        ("source_id", SUB_PATH.encode()),
        ("source_message_id", b"42"),
        ("received_at", b"5"),
        ("tenant", b"globex"),
        ("legacyType", b"message.sent"),
        ("legacy.tenant", b"spoof"),
    ]


def test_pubsub_without_data_lands_empty_value_and_oversized_goes_to_dlq() -> None:
    empty = land_pubsub(
        subscription_path=SUB_PATH,
        message_id="1",
        data=None,
        attributes=None,
        config=CONFIG,
        received_at_ms=1,
    )
    assert isinstance(empty, StagingRecord) and empty.value == b""
    big = land_pubsub(
        subscription_path=SUB_PATH,
        message_id="2",
        data=b"y" * 11,
        attributes={},
        config=LandingConfig("carryover-legacy-", max_message_bytes=10),
        received_at_ms=1,
    )
    assert isinstance(big, DeadLetter)
    assert dict(big.headers)["dlq_origin"] == f"{SUB_PATH}#2".encode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("carryover-legacy-acme", True),
        ("carryover-legacy-acme-dlq", False),
        ("carryover-legacy-", False),
        ("other-acme", False),
    ],
)
def test_queue_discovery_filter(name: str, expected: bool) -> None:
    assert is_ingested_queue(name, "carryover-legacy-") is expected


def test_unknown_tenant_source_is_refused() -> None:
    with pytest.raises(ValueError, match="tenant source"):
        LandingConfig("p-", tenant_source="header")  # type: ignore[arg-type]


def test_large_envelope_with_topic_arn_after_the_message_is_still_unwrapped() -> None:
    body = json.dumps(
        {"Message": "Z" * 50_000, "MessageId": "s", "TopicArn": TOPIC_ARN, "Type": "Notification"}
    )
    record = land(sqs_message(body))
    assert isinstance(record, StagingRecord)
    assert record.value == b"Z" * 50_000


def test_raw_json_legacy_event_is_not_mistaken_for_an_envelope() -> None:
    body = '{"Type": "conversation.created", "id": 7}'
    record = land(sqs_message(body))
    assert isinstance(record, StagingRecord)
    assert record.value == body.encode()
