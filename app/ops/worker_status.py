"""Worker statuses: what each ingesting worker says about its sources, and their sum (pure).

Every worker that ingests writes, every ``CARRYOVER_LAG_SAMPLE_SECONDS``, a :class:`WorkerStatus` to
``carryover.ops.worker-status`` (keyed by worker id). Every worker's lag monitor reads that topic and the lag
page shows :func:`sum_sources` of the statuses that are fresh: the sources of the whole cluster, not only of
the worker that answers. A status older than ``max_age`` (a stopped or dead worker) is left out and listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkerStatus:
    """One worker's status: its id, when (epoch seconds), its roles and its totals per source kind."""

    worker: str
    at: float
    roles: tuple[str, ...]
    sources: Mapping[str, Mapping[str, int]]

    def to_json(self) -> bytes:
        """Compact JSON."""
        doc = {"worker": self.worker, "at": self.at, "roles": list(self.roles), "sources": self.sources}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WorkerStatus:
        """The status :meth:`to_json` wrote; ValueError when it is not one."""
        try:
            raw = json.loads(data)
            sources = {
                str(kind): {str(k): int(v) for k, v in totals.items()}
                for kind, totals in raw["sources"].items()
            }
            return cls(str(raw["worker"]), float(raw["at"]), tuple(map(str, raw["roles"])), sources)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a worker status: {data[:200]!r}") from exc


@dataclass(frozen=True)
class SourcesSum:
    """The sources of every fresh worker status, summed per kind and counter."""

    workers: tuple[str, ...]
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    stale: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"workers": list(self.workers), "totals": self.totals, "stale_workers": list(self.stale)}


def sum_sources(statuses: Iterable[WorkerStatus], now: float, max_age: float) -> SourcesSum:
    """Sum the fresh statuses (at most ``max_age`` seconds old); the latest status per worker counts.

    ``queue_depth`` is a property of a queue, not of a worker (every ingesting worker polls every queue and
    sees the same approximate depth), so it is the maximum over workers, not their sum.
    """
    latest: dict[str, WorkerStatus] = {}
    for status in statuses:
        if status.worker not in latest or status.at > latest[status.worker].at:
            latest[status.worker] = status
    fresh = sorted(w for w, s in latest.items() if now - s.at <= max_age)
    stale = tuple(sorted(set(latest) - set(fresh)))
    totals: dict[str, dict[str, int]] = {}
    for worker in fresh:
        for kind, counters in latest[worker].sources.items():
            into = totals.setdefault(kind, {})
            for name, value in counters.items():
                into[name] = (
                    max(into.get(name, 0), value) if name == "queue_depth" else into.get(name, 0) + value
                )
    return SourcesSum(tuple(fresh), totals, stale)
