"""CloudEvents binary-mode Kafka headers for canonical records and reason headers for dead letters (pure).

The header contract is DESIGN.md §4: ``ce_specversion``, ``ce_id`` (deterministic), ``ce_source``,
``ce_type`` (protobuf full name of the inner event), ``ce_time`` (RFC 3339), ``ce_tenantid``,
``content-type``, ``ce_encryptionkeyid`` when a field is encrypted, and a W3C ``traceparent``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

CONTENT_TYPE = b"application/x-protobuf"
SPEC_VERSION = b"1.0"
SOURCE_PREFIX = "//carryover/normalize/"
DEAD_LETTER_OVERHEAD = 8192
"""Most bytes the dead-letter reason headers (and a truncation marker) add to a record (their bound is
~3.3 KiB: reason 128, stage 64, error 2000, origin 1024, the marker ~200, plus names)."""


def rfc3339_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with millisecond precision, e.g. 2026-11-22T07:55:22.123Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
INVALID_TRACEPARENT_HEADER = "traceparent_invalid"
MAX_FORENSIC_BYTES = 2048


def valid_traceparent(value: bytes) -> bool:
    """True for a W3C Trace Context ``traceparent`` a consumer can continue.

    Lower-case hex fields; version ``ff`` is invalid; version ``00`` is exactly 55 characters; a later
    version may append ``-`` fields; trace id and parent id are not all zeros.
    """
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return False
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == b"ff" or (version == b"00" and rest is not None):
        return False
    return trace_id != b"0" * 32 and parent_id != b"0" * 16


def traceparent(ce_id: str, upstream: bytes | None = None) -> bytes:
    """W3C traceparent: the upstream one when the legacy message carried a valid one, else derived from
    ce_id (an invalid upstream one starts a new trace; see :func:`canonical_headers`).

    Deriving it from ce_id keeps replays byte-identical and lets a consumer find every record of one
    legacy message (they share the trace id).
    """
    if upstream and valid_traceparent(upstream):
        return upstream[:55]
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
    if upstream_traceparent and not valid_traceparent(upstream_traceparent):
        headers.append((INVALID_TRACEPARENT_HEADER, upstream_traceparent[:MAX_FORENSIC_BYTES]))
    return headers


def dead_letter_headers(
    original: Mapping[str, bytes] | list[tuple[str, bytes]],
    *,
    reason: str,
    stage: str,
    error: str,
    origin: str,
) -> list[tuple[str, bytes]]:
    """The original headers (any earlier dlq_* ones dropped) plus this failure's reason headers.

    The reason headers are bounded (together at most :data:`DEAD_LETTER_OVERHEAD` bytes), so a record that
    fits in staging always fits as a dead letter.
    """
    items = original.items() if isinstance(original, Mapping) else original
    kept = [(k, v) for k, v in items if not k.startswith("dlq_")]
    return [
        *kept,
        ("dlq_reason", _bounded(reason, 128)),
        ("dlq_stage", _bounded(stage, 64)),
        ("dlq_error", _bounded(error, 2000)),
        ("dlq_origin", _bounded(origin, 1024)),
    ]


def _bounded(text: str, limit: int) -> bytes:
    return text.encode("utf-8", "backslashreplace")[:limit]


def record_bytes(value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """What a record weighs against the size limits: value plus every header name and value."""
    return len(value) + sum(len(name.encode("utf-8", "backslashreplace")) + len(v) for name, v in headers)


def fit_dead_letter(
    original: bytes, headers: list[tuple[str, bytes]], max_bytes: int
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A dead letter's value and headers, within ``max_bytes`` plus :data:`DEAD_LETTER_OVERHEAD`.

    ``headers`` are the original headers followed by the ``dlq_*`` reason headers. Normally both are kept
    as they are. When they do not fit (Kafka would refuse the record), the original headers are kept up to
    half of ``max_bytes`` (``dlq_headers_dropped`` counts the rest) and the value keeps the original's first
    bytes, never silently: ``dlq_truncated: true``, ``dlq_original_bytes`` and ``dlq_original_sha256`` of the
    whole original.
    """
    if record_bytes(original, headers) <= max_bytes:
        return original, headers
    reasons = [(k, v) for k, v in headers if k in _REASON_HEADERS]
    kept: list[tuple[str, bytes]] = []
    used = 0
    for name, value in headers:
        if name in _REASON_HEADERS:
            continue
        used += len(name.encode("utf-8", "backslashreplace")) + len(value)
        if used > max_bytes // 2:
            break
        kept.append((name, value))
    marker: list[tuple[str, bytes]] = []
    dropped = len(headers) - len(reasons) - len(kept)
    if dropped:
        marker.append(("dlq_headers_dropped", str(dropped).encode()))
    room = max_bytes - record_bytes(b"", kept) - record_bytes(b"", reasons)
    value = original[: max(0, room)]
    if len(value) < len(original):
        marker += [
            ("dlq_truncated", b"true"),
            ("dlq_original_bytes", str(len(original)).encode()),
            ("dlq_original_sha256", hashlib.sha256(original).hexdigest().encode()),
        ]
    return value, kept + reasons + marker


_REASON_HEADERS = frozenset({"dlq_reason", "dlq_stage", "dlq_error", "dlq_origin"})
