"""One staging record in, canonical records or one dead letter out — what the normalize agent and the
replay commands share. No Kafka here: callers send the returned :class:`Outgoing` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.catalog.wire import EnvelopeCodec
from app.crypto.keyring import KeyLookup
from app.dead_letters import (
    DEAD_LETTER_OVERHEAD,
    dead_letter_headers,
    dead_letter_id,
    fit_dead_letter,
    record_bytes,
)
from app.normalize.cloudevents import canonical_headers
from app.normalize.mapping.pipeline import Rejected, normalize

STAGE = "normalize"
DEFAULT_MAX_RECORD_BYTES = 1_047_552
"""Largest record (value plus headers) sent, 1 MiB less Kafka's framing (``Settings.max_canonical_bytes``)."""
REASON_TOO_LARGE = "too_large"
REASON_SEND_FAILED = "send_failed"
"""Reason of a dead letter for a staging record one of whose canonical records the producer refused."""
REASON_AGENT_ERROR = "agent_error"
"""Reason of a dead letter written by an agent's guard for an exception that escaped the pure core."""


@dataclass(frozen=True)
class Outgoing:
    """A record to produce: topic name without the environment's prefix, key, value, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    dead_letter: bool = False  # a dead-letter record (original bytes + ``dlq_*`` reason headers)


@dataclass
class NormalizeStats:
    """Counters of what the normalizer did (read by the worker's log line and the lag page)."""

    records: int = 0
    canonical: int = 0
    dead_lettered: int = 0
    duplicates: int = 0


def is_redelivery(previous_marker: int, marker: int) -> bool:
    """True when a source message already went through at another staging position.

    Markers are ``staging offset + 1`` (0 = not seen). The same position seen again is a re-read after a
    crash, whose output may not have reached Kafka: it must be processed again, not dropped.
    """
    return previous_marker != 0 and previous_marker != marker


def header_map(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, bytes]:
    """Kafka headers as a dict (last value wins), whatever shape the client handed them in."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        k if type(k) is str else str(k): v if type(v) is bytes else bytes(v) if v is not None else b""
        for k, v in items
    }


class Normalizer:
    """Decrypt, decode, map and frame one staging record.

    ``codec`` frames envelopes in Confluent's wire format; ``keys`` gives the tenant keys. A canonical
    record over ``max_record_bytes`` turns its staging record into a ``too_large`` dead letter, and every
    dead letter fits in ``max_record_bytes`` (:func:`app.dead_letters.fit_dead_letter`).
    """

    def __init__(
        self,
        codec: EnvelopeCodec,
        keys: KeyLookup,
        dead_letter_topic: str,
        *,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self.codec = codec
        self.keys = keys
        self.dead_letter_topic = dead_letter_topic
        self.max_record_bytes = max_record_bytes
        self.stats = NormalizeStats()

    def process(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], origin: str
    ) -> list[Outgoing]:
        """The records one staging record turns into; ``origin`` is ``topic/partition/offset``."""
        self.stats.records += 1
        by_name = header_map(headers)
        outcome = normalize(value, by_name, self.keys)
        if isinstance(outcome, Rejected):
            return [self.dead_letter(key, value, headers, outcome.reason, outcome.error, origin)]
        source = by_name.get("source", b"unknown").decode(errors="replace")
        upstream_trace = by_name.get("traceparent")
        out: list[Outgoing] = []
        for record in outcome:
            try:
                framed = self.codec.encode(record.topic, record.envelope)
            except Exception as exc:  # noqa: BLE001 - any framing failure is a dead letter, never a crash
                return [self.dead_letter(key, value, headers, "serialize_failed", str(exc), origin)]
            record_headers = canonical_headers(
                ce_id=record.ce_id,
                ce_type=record.ce_type,
                ce_time_ms=record.ce_time_ms,
                tenant_id=record.tenant_id,
                source=source,
                encryption_key_id=record.encryption_key_id,
                upstream_traceparent=upstream_trace,
            )
            size = record_bytes(framed, record_headers) + len(record.key)
            if size > self.max_record_bytes:
                error = (
                    f"{record.ce_type} would be a {size} byte record, over the {self.max_record_bytes} byte "
                    "Kafka record limit (CARRYOVER_KAFKA_MAX_RECORD_BYTES); nothing was cut"
                )
                return [self.dead_letter(key, value, headers, REASON_TOO_LARGE, error, origin)]
            out.append(Outgoing(record.topic, record.key, framed, record_headers))
        self.stats.canonical += len(out)
        return out

    def dead_letter(
        self,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        reason: str,
        error: str,
        origin: str,
    ) -> Outgoing:
        """The one dead letter of a staging record: its original bytes and headers plus the reason headers,
        within the record limit (an original too large keeps its first bytes, its size and its SHA-256).

        ``dlq_id`` is derived from ``origin`` (the staging record's topic/partition/offset) and the reason:
        a staging record re-read after a crash gives a dead letter with the same id.
        """
        self.stats.dead_lettered += 1
        letter_headers = dead_letter_headers(
            headers,
            reason=reason,
            stage=STAGE,
            error=error,
            origin=origin,
            letter_id=dead_letter_id(STAGE, origin, reason),
        )
        room = self.max_record_bytes - len(key or b"") - DEAD_LETTER_OVERHEAD
        letter_value, letter_headers = fit_dead_letter(value, letter_headers, room)
        return Outgoing(self.dead_letter_topic, key, letter_value, letter_headers, dead_letter=True)
