"""CloudEvents and dead-letter headers as a consumer reads them."""

from __future__ import annotations

import pytest

from app.cloudevents import canonical_headers, dead_letter_headers, rfc3339_ms, traceparent


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
