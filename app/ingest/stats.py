"""Per-source ingestion counters: one :class:`SourceStats` per SQS queue or Pub/Sub subscription.

Plain dataclasses, updated by the adapters on the event loop, read by the ``/sources/`` JSON view, the
lag page and the worker's periodic summary line. ``registry`` is this process's instance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

COUNTERS = ("received", "landed", "acknowledged", "redelivered", "dead_lettered", "failed", "errors", "held")


@dataclass
class SourceStats:
    """Counters of one queue or subscription since this worker started."""

    source: str  # "sqs" | "pubsub"
    source_id: str  # queue URL / subscription path
    name: str  # queue / subscription name
    tenant: str | None
    received: int = 0  # messages received (redeliveries included)
    landed: int = 0  # staging records Kafka acknowledged
    acknowledged: int = 0  # messages deleted (SQS) / acked (Pub/Sub) at the source
    redelivered: int = (
        0  # received again (SQS ApproximateReceiveCount > 1, Pub/Sub attempt > 1 or seen before)
    )
    in_flight: int = 0  # received, not yet acknowledged or released
    dead_lettered: int = 0  # poison messages Kafka acknowledged on the dead-letter topic
    failed: int = 0  # Kafka writes that failed (the message stays at the source and comes back)
    errors: int = 0  # source API errors (receive, delete, ack, extend)
    held: int = 0  # receive turns deferred by staging admission (the source was above its fair share)
    queue_depth: int | None = None  # SQS ApproximateNumberOfMessages at the last discovery
    active: bool = True  # False once discovery no longer finds it
    last_error: str = ""
    last_received_at: float | None = None  # epoch seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)

    def record_writes(
        self, handles: Sequence[str], dead_letter: Sequence[bool], errors: Sequence[BaseException | None]
    ) -> tuple[list[str], list[str]]:
        """Count one batch's Kafka outcomes; (handles now durable in Kafka, handles whose write failed)."""
        durable: list[str] = []
        failed: list[str] = []
        for handle, is_dead_letter, error in zip(handles, dead_letter, errors, strict=True):
            if error is None:
                durable.append(handle)
                if is_dead_letter:
                    self.dead_lettered += 1
                else:
                    self.landed += 1
            else:
                failed.append(handle)
                self.failed += 1
                self.last_error = f"kafka: {error!r}"
        return durable, failed


@dataclass
class IngestStats:
    """Every source this worker ingests (or did), keyed by (source, source_id)."""

    sources: dict[tuple[str, str], SourceStats] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def source(self, source: str, source_id: str, name: str, tenant: str | None) -> SourceStats:
        """The stats of one source, created on first use and re-activated when it comes back."""
        stats = self.sources.get((source, source_id))
        if stats is None:
            stats = self.sources[(source, source_id)] = SourceStats(source, source_id, name, tenant)
        stats.active = True
        return stats

    def retire(self, source: str, source_id: str) -> None:
        """Mark a source that discovery no longer finds (its counters stay visible)."""
        stats = self.sources.get((source, source_id))
        if stats is not None:
            stats.active = False
            stats.in_flight = 0

    def totals(self, source: str | None = None) -> dict[str, int]:
        """Sum of every counter (and in-flight, active sources), over one source kind or all."""
        chosen = [s for s in self.sources.values() if source is None or s.source == source]
        totals = {name: sum(getattr(s, name) for s in chosen) for name in COUNTERS}
        totals["in_flight"] = sum(s.in_flight for s in chosen)
        totals["sources"] = sum(1 for s in chosen if s.active)
        totals["queue_depth"] = sum(s.queue_depth or 0 for s in chosen if s.active)
        return totals

    def summary_line(self) -> str:
        """One log line: per source kind, active sources and the main counters."""
        parts = []
        for kind in ("sqs", "pubsub"):
            t = self.totals(kind)
            parts.append(
                f"{kind}: {t['sources']} sources, received {t['received']}, landed {t['landed']}, "
                f"acked {t['acknowledged']}, redelivered {t['redelivered']}, in flight {t['in_flight']}, "
                f"dead-lettered {t['dead_lettered']}, failed {t['failed']}, errors {t['errors']}"
                + (f", depth {t['queue_depth']}" if kind == "sqs" else "")
            )
        return "ingest " + " | ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view: totals per kind and every source, sorted by kind and name."""
        return {
            "started_at": self.started_at,
            "totals": {kind: self.totals(kind) for kind in ("sqs", "pubsub")},
            "sources": [s.as_dict() for s in sorted(self.sources.values(), key=lambda s: (s.source, s.name))],
        }


registry = IngestStats()
