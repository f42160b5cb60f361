"""CloudEvents and dead-letter headers as a consumer reads them."""

from __future__ import annotations

import hashlib

import pytest

from app.dead_letters import DEAD_LETTER_OVERHEAD, dead_letter_headers, fit_dead_letter, record_bytes
from app.normalize.cloudevents import (
    INVALID_TRACEPARENT_HEADER,
    canonical_headers,
    rfc3339_ms,
    traceparent,
    valid_traceparent,
)


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_795_000_000_123, "2026-11-18T11:06:40.123Z"),
        (999, "1970-01-01T00:00:00.999Z"),
    ],
)
def test_rfc3339_ms(epoch_ms: int, text: str) -> None:
    assert rfc3339_ms(epoch_ms) == text


def test_canonical_headers_carry_the_contract() -> None:
    headers = dict(
        canonical_headers(
            ce_id="abc",
            ce_type="carryover.collaboration.v1.MessageSent",
            ce_time_ms=0,
            tenant_id="acme-bank",
            source="sqs",
            encryption_key_id="acme-bank/k2",
        )
    )
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"abc",
        "ce_source": b"//carryover/normalize/sqs",
        "ce_type": b"carryover.collaboration.v1.MessageSent",
        "ce_time": b"1970-01-01T00:00:00.000Z",
        "ce_tenantid": b"acme-bank",
        "content-type": b"application/x-protobuf",
        "ce_encryptionkeyid": b"acme-bank/k2",
        "traceparent": traceparent("abc"),
    }


def test_no_key_id_header_without_encryption() -> None:
    headers = dict(
        canonical_headers(
            ce_id="a", ce_type="t", ce_time_ms=0, tenant_id="x", source="s", encryption_key_id=None
        )
    )
    assert "ce_encryptionkeyid" not in headers


def test_traceparent_is_deterministic_and_well_formed() -> None:
    first, second, other = traceparent("id-1"), traceparent("id-1"), traceparent("id-2")
    assert first == second != other
    version, trace_id, span_id, flags = first.decode().split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "01")


def test_upstream_traceparent_is_kept() -> None:
    upstream = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert traceparent("x", upstream) == upstream
    assert traceparent("x", b"garbage") != b"garbage"


def test_dead_letter_headers_keep_originals_and_replace_old_reasons() -> None:
    headers = dead_letter_headers(
        [("tenant", b"acme"), ("dlq_reason", b"old")],
        reason="decrypt_failed",
        stage="normalize",
        error="wrong key",
        origin="legacy.staging.v1/3/42",
    )
    assert headers == [
        ("tenant", b"acme"),
        ("dlq_reason", b"decrypt_failed"),
        ("dlq_stage", b"normalize"),
        ("dlq_error", b"wrong key"),
        ("dlq_origin", b"legacy.staging.v1/3/42"),
    ]


VALID = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (VALID, True),
        (b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future", True),  # later versions may add
        (VALID + b"-x", False),  # version 00 is exactly 55 characters
        (VALID.upper(), False),
        (b"ff" + VALID[2:], False),
        (b"00-" + b"0" * 32 + VALID[35:], False),  # all-zero trace id
        (VALID[:36] + b"0" * 16 + b"-01", False),  # all-zero parent id
        (VALID[:-1], False),
        (b"", False),
        (b"\xff" * 55, False),
    ],
)
def test_traceparent_is_validated_per_w3c(value: bytes, valid: bool) -> None:
    assert valid_traceparent(value) is valid


def test_an_invalid_upstream_traceparent_starts_a_new_trace_and_is_kept_for_forensics() -> None:
    bad = b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"
    headers = dict(
        canonical_headers(
            ce_id="a",
            ce_type="t",
            ce_time_ms=0,
            tenant_id="x",
            source="s",
            encryption_key_id=None,
            upstream_traceparent=bad,
        )
    )
    assert headers["traceparent"] == traceparent("a")
    assert headers[INVALID_TRACEPARENT_HEADER] == bad
    good = dict(
        canonical_headers(
            ce_id="a",
            ce_type="t",
            ce_time_ms=0,
            tenant_id="x",
            source="s",
            encryption_key_id=None,
            upstream_traceparent=VALID,
        )
    )
    assert good["traceparent"] == VALID and INVALID_TRACEPARENT_HEADER not in good


def test_reason_headers_are_bounded() -> None:
    headers = dict(
        dead_letter_headers([], reason="r" * 500, stage="s", error="e" * 10_000, origin="o" * 10_000)
    )
    assert sum(len(k) + len(v) for k, v in headers.items()) <= DEAD_LETTER_OVERHEAD


def test_a_dead_letter_that_fits_is_kept_whole_and_one_that_does_not_says_so() -> None:
    reasons = dead_letter_headers([], reason="too_large", stage="normalize", error="e", origin="o")
    original = bytes(range(256)) * 40  # 10 240 bytes
    headers = [("tenant", b"acme"), ("a", b"x" * 100)] + reasons
    assert fit_dead_letter(original, headers, 20_000) == (original, headers)
    value, cut = fit_dead_letter(original, headers, 5_000)
    named = dict(cut)
    assert original.startswith(value) and record_bytes(value, cut) <= 5_000 + 300
    assert named["dlq_truncated"] == b"true"
    assert named["dlq_original_bytes"] == b"10240"
    assert named["dlq_original_sha256"] == hashlib.sha256(original).hexdigest().encode()
    assert named["tenant"] == b"acme" and named["dlq_reason"] == b"too_large"
    value, few = fit_dead_letter(b"v", [(f"h{i}", b"y" * 1000) for i in range(10)] + reasons, 4_000)
    assert dict(few)["dlq_headers_dropped"] == b"9" and value == b"v"
