"""CloudEvents binary-mode Kafka headers for canonical records (pure).

The header contract is DESIGN.md §4: ``ce_specversion``, ``ce_id`` (deterministic), ``ce_source``,
``ce_type`` (protobuf full name of the inner event), ``ce_time`` (RFC 3339), ``ce_tenantid``,
``content-type``, ``ce_encryptionkeyid`` when a field is encrypted, and a W3C ``traceparent``.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from functools import lru_cache

CONTENT_TYPE = b"application/x-protobuf"
SPEC_VERSION = b"1.0"
SOURCE_PREFIX = "//carryover/normalize/"


_GMTIME_RANGE_MS = range(0, 253_402_300_800_000)
"""Epoch milliseconds from 1970 to the end of year 9999, where ``time.gmtime`` and ``datetime`` agree."""


@lru_cache(maxsize=1024)
def _utc_date(days: int) -> str:
    """``YYYY-MM-DD`` of a day counted from 1970-01-01 (UTC days have 86 400 seconds: no leap seconds)."""
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def rfc3339_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with millisecond precision, e.g. 2026-11-22T07:55:22.123Z.

    The date from ``time.gmtime`` (cached per day), the time of day by arithmetic; outside 1970..9999
    through ``datetime``, which raises for a year it cannot represent (so such a time fails as it always
    did).
    """
    if epoch_ms in _GMTIME_RANGE_MS:
        seconds, millis = divmod(epoch_ms, 1000)
        days, second = divmod(seconds, 86_400)
        return "%sT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - the fastest of the formatting forms here
            _utc_date(days),
            second // 3600,
            second // 60 % 60,
            second % 60,
            millis,
        )
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
    upstream_valid = bool(upstream_traceparent) and valid_traceparent(upstream_traceparent or b"")
    headers.append(("traceparent", traceparent(ce_id, upstream_traceparent if upstream_valid else None)))
    if upstream_traceparent and not upstream_valid:
        headers.append((INVALID_TRACEPARENT_HEADER, upstream_traceparent[:MAX_FORENSIC_BYTES]))
    return headers
