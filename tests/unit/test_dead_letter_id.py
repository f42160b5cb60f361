"""``dlq_id``: a dead letter's deterministic id, so that a consumer can drop the copies a stage re-sends after
a crash. The same staging record (or source message) failing the same way always gets the same id; another
record, another position, another source or another reason gets another one."""

from __future__ import annotations

import re

from app.dead_letters import dead_letter_headers, dead_letter_id, fit_dead_letter
from app.ingest.landing import (
    REASON_BAD_ENVELOPE,
    REASON_TOO_LARGE,
    DeadLetter,
    LandingConfig,
    land_pubsub,
    land_sqs,
)
from app.normalize.normalizer import Outgoing
from tests.unit.test_normalizer_limits import normalizer, staging

QUEUE_URL = "http://127.0.0.1:4566/123456789012/carryover-legacy-acme-bank"
OTHER_QUEUE_URL = "http://127.0.0.1:4566/123456789012/carryover-legacy-globex"
SUB_PATH = "projects/carryover-local/subscriptions/carryover-legacy-globex"
CONFIG = LandingConfig("carryover-legacy-")
BAD_ENVELOPE = '{"Type": "Notification", "TopicArn": "arn:x", "Message": "m", "MessageAttributes": {"a": 5}}'
HEX_ID = re.compile(rb"[0-9a-f]{32}")


def letter_id(out: list[Outgoing] | DeadLetter) -> bytes:
    """The ``dlq_id`` of the one dead letter a normalizer returned, or of an ingest dead letter."""
    if isinstance(out, DeadLetter):
        return dict(out.headers)["dlq_id"]
    assert len(out) == 1 and out[0].dead_letter
    return dict(out[0].headers)["dlq_id"]


def normalize_bad(value: bytes = b"not a legacy event", origin: str = "legacy.staging.v1/3/42") -> bytes:
    _, headers = staging("hi")
    return letter_id(normalizer(1_047_552).process(b"acme-bank", value, headers, origin))


def test_the_id_is_32_hex_digits_over_stage_and_identity_each_part_delimited() -> None:
    assert HEX_ID.fullmatch(dead_letter_id("normalize", "t/0/1", "malformed").encode())
    assert dead_letter_id("normalize", "t/0/1", "malformed") == dead_letter_id(
        "normalize", "t/0/1", "malformed"
    )
    assert dead_letter_id("normalize", "ab", "c") != dead_letter_id("normalize", "a", "bc")
    assert dead_letter_id("ingest", "t/0/1", "malformed") != dead_letter_id("normalize", "t/0/1", "malformed")
    assert dead_letter_id("normalize", "\udc80") == dead_letter_id("normalize", "\udc80")  # never raises


def test_the_same_staging_record_dead_lettered_again_has_the_same_id() -> None:
    first = normalize_bad()
    assert HEX_ID.fullmatch(first)
    assert normalize_bad() == first  # re-read after a crash, by a fresh normalizer
    assert normalize_bad(b"another bad payload") == first  # same position, same reason: the same failure


def test_another_staging_record_or_reason_has_another_id() -> None:
    first = normalize_bad()
    assert normalize_bad(origin="legacy.staging.v1/3/43") != first
    assert normalize_bad(origin="legacy.staging.v1/4/42") != first
    assert normalize_bad(origin="other.staging/3/42") != first
    assert (
        normalize_bad(b'{"eventType":"VOICE_CALL_STARTED","tenantId":"acme-bank"}') != first
    )  # unknown_type


def test_a_too_large_dead_letter_keeps_its_id_when_cut() -> None:
    payload, headers = staging("x" * 400_000)
    out = normalizer(200_000).process(b"acme-bank", payload, headers, "legacy.staging.v1/0/7")
    named = dict(out[0].headers)
    assert named["dlq_reason"] == b"too_large" and named["dlq_truncated"] == b"true"
    assert named["dlq_id"] == dead_letter_id("normalize", "legacy.staging.v1/0/7", "too_large").encode()


def test_the_id_is_a_reason_header_kept_when_originals_are_dropped_and_an_old_one_is_replaced() -> None:
    headers = dead_letter_headers(
        [("dlq_id", b"old"), ("tenant", b"acme")], reason="r", stage="s", error="e", origin="o", letter_id="n"
    )
    assert [v for k, v in headers if k == "dlq_id"] == [b"n"]
    _, cut = fit_dead_letter(b"v" * 100, [(f"h{i}", b"y" * 1000) for i in range(10)] + headers, 3_000)
    assert dict(cut)["dlq_id"] == b"n"
    assert "dlq_id" not in dict(dead_letter_headers([], reason="r", stage="s", error="e", origin="o"))


def sqs_letter(message_id: str = "m-9", queue_url: str = QUEUE_URL, body: str = BAD_ENVELOPE) -> bytes:
    message = {"MessageId": message_id, "ReceiptHandle": "rh", "Body": body}
    letter = land_sqs(message, queue_url=queue_url, config=CONFIG, received_at_ms=1795334939052)
    assert isinstance(letter, DeadLetter) and letter.reason == REASON_BAD_ENVELOPE
    return letter_id(letter)


def test_the_same_source_message_dead_lettered_again_at_ingest_has_the_same_id() -> None:
    first = sqs_letter()
    assert HEX_ID.fullmatch(first)
    assert first == dead_letter_id("ingest", "acme-bank", QUEUE_URL, "m-9", REASON_BAD_ENVELOPE).encode()
    message = {"MessageId": "m-9", "ReceiptHandle": "other", "Body": BAD_ENVELOPE}
    again = land_sqs(message, queue_url=QUEUE_URL, config=CONFIG, received_at_ms=1795334999999)  # redelivered
    assert isinstance(again, DeadLetter) and letter_id(again) == first


def test_another_source_message_tenant_or_reason_at_ingest_has_another_id() -> None:
    first = sqs_letter()
    assert sqs_letter(message_id="m-10") != first
    assert sqs_letter(queue_url=OTHER_QUEUE_URL) != first  # another source (and tenant)
    small = LandingConfig("carryover-legacy-", max_message_bytes=100)
    big = land_pubsub(
        subscription_path=SUB_PATH, message_id="m-9", data=b"x" * 500, attributes={}, config=small,
        received_at_ms=1,
    )  # fmt: skip
    assert isinstance(big, DeadLetter) and big.reason == REASON_TOO_LARGE
    assert letter_id(big) == dead_letter_id("ingest", "globex", SUB_PATH, "m-9", REASON_TOO_LARGE).encode()
    assert letter_id(big) != first
