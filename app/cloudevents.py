"""CloudEvents binary-mode Kafka headers for canonical records and reason headers for dead letters (pure).

The header contract is DESIGN.md §4: ``ce_specversion``, ``ce_id`` (deterministic), ``ce_source``,
``ce_type`` (protobuf full name of the inner event), ``ce_time`` (RFC 3339), ``ce_tenantid``,
``content-type``, ``ce_encryptionkeyid`` when a field is encrypted, and a W3C ``traceparent``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

CONTENT_TYPE = b"application/x-protobuf"
SPEC_VERSION = b"1.0"
SOURCE_PREFIX = "//carryover/normalize/"


def rfc3339_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with millisecond precision, e.g. 2026-11-22T07:55:22.123Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def traceparent(ce_id: str, upstream: bytes | None = None) -> bytes:
    """W3C traceparent: the upstream one when the legacy message carried one, else derived from ce_id.

    Deriving it from ce_id keeps replays byte-identical and lets a consumer find every record of one
    legacy message (they share the trace id).
    """
    if upstream and len(upstream) == 55 and upstream[:3] == b"00-":
        return upstream
    digest = hashlib.sha256(ce_id.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01".encode()


def canonical_headers(
    *,
    ce_id: str,
    ce_type: str,
    ce_time_ms: int,
    tenant_id: str,
    source: str,
    encryption_key_id: str | None,
    upstream_traceparent: bytes | None = None,
) -> list[tuple[str, bytes]]:
    """The CloudEvents headers of one canonical record, in a stable order."""
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", ce_id.encode()),
        ("ce_source", (SOURCE_PREFIX + source).encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", rfc3339_ms(ce_time_ms).encode()),
        ("ce_tenantid", tenant_id.encode()),
        ("content-type", CONTENT_TYPE),
    ]
    if encryption_key_id:
        headers.append(("ce_encryptionkeyid", encryption_key_id.encode()))
    headers.append(("traceparent", traceparent(ce_id, upstream_traceparent)))
    return headers


def dead_letter_headers(
    original: Mapping[str, bytes] | list[tuple[str, bytes]],
    *,
    reason: str,
    stage: str,
    error: str,
    origin: str,
) -> list[tuple[str, bytes]]:
    """The original headers (any earlier dlq_* ones dropped) plus this failure's reason headers."""
    items = original.items() if isinstance(original, Mapping) else original
    kept = [(k, v) for k, v in items if not k.startswith("dlq_")]
    return [
        *kept,
        ("dlq_reason", reason.encode()),
        ("dlq_stage", stage.encode()),
        ("dlq_error", error.encode()[:2000]),
        ("dlq_origin", origin.encode()),
    ]
