"""The staging record contract: what a consumer of legacy.staging.v1 sees for each kind of source message."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dead_letters import DEAD_LETTER_OVERHEAD
from app.ingest.landing import (
    REASON_BAD_ENVELOPE,
    REASON_INVALID_TEXT,
    REASON_TOO_LARGE,
    DeadLetter,
    LandingConfig,
    StagingRecord,
    is_ingested_queue,
    land_pubsub,
    land_sqs,
    record_bytes,
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


def test_oversized_record_is_dead_lettered_with_its_hash_never_silently_cut() -> None:
    config = LandingConfig("carryover-legacy-", max_message_bytes=2_000)
    probe = land(sqs_message(sns_body("")), config)
    assert isinstance(probe, StagingRecord)
    fits = config.max_message_bytes - record_bytes(b"", probe.headers)  # the limit counts the headers too
    record = land(sqs_message(sns_body("x" * fits)), config)
    assert isinstance(record, StagingRecord)
    assert record_bytes(record.value, record.headers) == config.max_message_bytes
    original = ("y" * fits + "z").encode()
    letter = land(sqs_message(sns_body(original.decode())), config)
    assert isinstance(letter, DeadLetter)
    headers = dict(letter.headers)
    assert headers["dlq_reason"] == REASON_TOO_LARGE.encode()
    assert f"{config.max_message_bytes + 1} bytes".encode() in headers["dlq_error"]
    # the DLQ copy is the original's first bytes, and says so with the whole original's size and hash
    assert original.startswith(letter.value) and len(letter.value) < len(original)
    assert headers["dlq_truncated"] == b"true"
    assert headers["dlq_original_bytes"] == str(len(original)).encode()
    assert headers["dlq_original_sha256"] == hashlib.sha256(original).hexdigest().encode()
    assert record_bytes(letter.value, letter.headers) <= config.max_message_bytes + DEAD_LETTER_OVERHEAD


def test_sqs_attributes_are_kept_beside_the_sns_envelopes_and_reserved_names_are_escaped() -> None:
    body = sns_body(
        "m",
        {
            "dlq_reason": {"Type": "String", "Value": "mine"},
            "legacy.source": {"Type": "String", "Value": "lx"},
            "source": {"Type": "String", "Value": "backend-7"},
        },
    )
    record = land(sqs_message(body, attributes={"hop": {"DataType": "String", "StringValue": "edge-1"}}))
    assert isinstance(record, StagingRecord)
    headers = dict(record.headers)
    assert headers["legacy.dlq_reason"] == b"mine"
    assert headers["legacy.legacy.source"] == b"lx"
    assert headers["legacy.source"] == b"backend-7"
    assert headers["sqs.hop"] == b"edge-1"
    assert "dlq_reason" not in headers and headers["source"] == b"sqs"


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"Type":"Notification","TopicArn":"arn","Message":' + "[" * 10_000 + "]" * 10_000 + "}",
    ],
    ids=["raw", "in-envelope"],
)
def test_deeply_nested_json_lands_or_is_dead_lettered_never_raises(body: str) -> None:
    landing = land(sqs_message(body))
    if isinstance(landing, StagingRecord):
        assert landing.value == body.encode()  # a raw body is the normalizer's to judge
    else:
        assert dict(landing.headers)["dlq_reason"] == REASON_BAD_ENVELOPE.encode()
        assert landing.value == body.encode()


LONE = "\ud800"  # a lone surrogate: what a JSON escape \ud800 decodes to


@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        (sns_body("m", MessageId=LONE + "x"), None),  # json.dumps writes the escape into the body text
        (sns_body("m" + LONE), None),
        (sns_body("m", {"a" + LONE: {"Type": "String", "Value": "v"}}), None),
        (sns_body("m", {"a": {"Type": "String", "Value": "v" + LONE}}), None),
        (sns_body("m"), {"bad" + LONE: {"DataType": "String", "StringValue": "v"}}),
        (sns_body("m"), {"bad": {"DataType": "String", "StringValue": "v" + LONE}}),
        ("raw " + LONE + " body", None),
    ],
    ids=[
        "envelope-id",
        "envelope-message",
        "sns-attribute-name",
        "sns-attribute-value",
        "sqs-attribute-name",
        "sqs-attribute-value",
        "raw-body",
    ],
)
def test_lone_surrogates_become_one_dead_letter_with_encodable_headers(
    body: str, attributes: dict[str, object] | None
) -> None:
    letter = land(sqs_message(body, attributes=attributes))
    assert isinstance(letter, DeadLetter), letter
    headers = dict(letter.headers)
    assert headers["dlq_reason"] in {REASON_BAD_ENVELOPE.encode(), REASON_INVALID_TEXT.encode()}
    assert b"surrogate" in headers["dlq_error"]
    assert letter.value == body.encode("utf-8", "surrogatepass")  # the original, lossless
    for name, value in letter.headers:
        name.encode("utf-8")  # every header can be written to Kafka
        assert isinstance(value, bytes)


def test_pubsub_attributes_that_are_not_text_are_dead_lettered_with_the_data() -> None:
    letter = land_pubsub(
        subscription_path=SUB_PATH,
        message_id="7",
        data=b"payload",
        attributes={"k" + LONE: "v"},
        config=CONFIG,
        received_at_ms=1,
    )
    assert isinstance(letter, DeadLetter)
    assert letter.value == b"payload"
    assert dict(letter.headers)["dlq_reason"] == REASON_INVALID_TEXT.encode()
    assert dict(letter.headers)["k\\ud800"] == b"v"  # the name escaped, the value kept


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
