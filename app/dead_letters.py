"""Dead letters, shared by every stage (pure): the original record plus bounded reason headers.

A dead letter keeps the original key, bytes and headers and adds ``dlq_reason``, ``dlq_stage``,
``dlq_error`` and ``dlq_origin``, and where the stage knows its record's identity ``dlq_id``
(:func:`dead_letter_id`): the same record failing the same way always gets the same id, so a consumer can
drop the copies a stage re-sends after a crash. Their size is bounded (:data:`DEAD_LETTER_OVERHEAD`), so a
record that fits in staging always fits as a dead letter; an original that does not fit is cut only with a
marker and the whole original's size and SHA-256 (:func:`fit_dead_letter`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

Headers = list[tuple[str, bytes]]
DEAD_LETTER_OVERHEAD = 8192
"""Most bytes the dead-letter reason headers (and a truncation marker) add to a record (their bound is
~3.3 KiB: reason 128, stage 64, error 2000, origin 1024, id 32, the marker ~200, plus names)."""
DEAD_LETTER_ID_HEX_DIGITS = 32
_DEAD_LETTER_ID_LABEL = "carryover.dlq-id.v1"


def dead_letter_id(stage: str, *identity: str) -> str:
    """A dead letter's deterministic id: the first 32 hex digits of SHA-256 over a version label, the stage
    and the parts that identify the failed record and its failure (each length-prefixed, so no two lists
    of parts give the same bytes).

    The normalize stage uses the staging record's ``topic/partition/offset`` and the reason; ingest the
    tenant, source and source message id and the reason.
    """
    sha = hashlib.sha256()
    for part in (_DEAD_LETTER_ID_LABEL, stage, *identity):
        data = part.encode("utf-8", "backslashreplace")
        sha.update(len(data).to_bytes(4, "big") + data)
    return sha.hexdigest()[:DEAD_LETTER_ID_HEX_DIGITS]


def dead_letter_headers(
    original: Mapping[str, bytes] | Headers,
    *,
    reason: str,
    stage: str,
    error: str,
    origin: str,
    letter_id: str | None = None,
) -> Headers:
    """The original headers (any earlier dlq_* ones dropped) plus this failure's reason headers, and
    ``dlq_id`` when ``letter_id`` is given (:func:`dead_letter_id`).

    The reason headers are bounded (together at most :data:`DEAD_LETTER_OVERHEAD` bytes), so a record that
    fits in staging always fits as a dead letter.
    """
    items = original.items() if isinstance(original, Mapping) else original
    kept = [(k, v) for k, v in items if not k.startswith("dlq_")]
    reasons = [
        ("dlq_reason", _bounded(reason, 128)),
        ("dlq_stage", _bounded(stage, 64)),
        ("dlq_error", _bounded(error, 2000)),
        ("dlq_origin", _bounded(origin, 1024)),
    ]
    if letter_id is not None:
        reasons.append(("dlq_id", _bounded(letter_id, 64)))
    return kept + reasons


def _bounded(text: str, limit: int) -> bytes:
    return text.encode("utf-8", "backslashreplace")[:limit]


def record_bytes(value: bytes, headers: Headers) -> int:
    """What a record weighs against the size limits: value plus every header name and value."""
    names = "".join([name for name, _ in headers])
    if names.isascii():  # one byte a character: the common case, counted without encoding
        name_bytes = len(names)
    else:
        name_bytes = sum(len(name.encode("utf-8", "backslashreplace")) for name, _ in headers)
    return len(value) + name_bytes + sum([len(header_value) for _, header_value in headers])


def fit_dead_letter(original: bytes, headers: Headers, max_bytes: int) -> tuple[bytes, Headers]:
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
    kept: Headers = []
    used = 0
    for name, value in headers:
        if name in _REASON_HEADERS:
            continue
        used += len(name.encode("utf-8", "backslashreplace")) + len(value)
        if used > max_bytes // 2:
            break
        kept.append((name, value))
    marker: Headers = []
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


_REASON_HEADERS = frozenset({"dlq_reason", "dlq_stage", "dlq_error", "dlq_origin", "dlq_id"})
