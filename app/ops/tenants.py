"""Which tenants are busy: per-tenant backlog and throughput, top N plus "other" (pure).

Hundreds of tenants would give hundreds of label values; :func:`top_tenants` keeps the ``n`` busiest (by
backlog, then by messages landed) and folds the rest into one ``"other"`` row, so ``/metrics`` and the lag
page stay bounded while an operator still sees which tenant is noisy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.ingest.stats import SourceStats

OTHER = "other"
TOP_TENANTS = 10


@dataclass(frozen=True)
class TenantLoad:
    """One tenant's sources summed: backlog (SQS approximate depth), in flight, received, landed."""

    tenant: str
    backlog: int
    in_flight: int
    received: int
    landed: int


def tenant_loads(sources: Iterable[SourceStats]) -> list[TenantLoad]:
    """Every tenant's load (sources without a tenant count under ``"unknown"``), busiest first."""
    sums: dict[str, list[int]] = {}
    for s in sources:
        if not s.active:
            continue
        row = sums.setdefault(s.tenant or "unknown", [0, 0, 0, 0])
        row[0] += s.queue_depth or 0
        row[1] += s.in_flight
        row[2] += s.received
        row[3] += s.landed
    loads = [TenantLoad(t, *row) for t, row in sums.items()]
    return sorted(loads, key=lambda x: (-x.backlog, -x.landed, x.tenant))


def top_tenants(sources: Iterable[SourceStats], n: int = TOP_TENANTS) -> list[TenantLoad]:
    """The ``n`` busiest tenants, then one ``"other"`` row summing the rest (only when there is a rest)."""
    loads = tenant_loads(sources)
    top, rest = loads[:n], loads[n:]
    if rest:
        top.append(
            TenantLoad(
                OTHER,
                sum(x.backlog for x in rest),
                sum(x.in_flight for x in rest),
                sum(x.received for x in rest),
                sum(x.landed for x in rest),
            )
        )
    return top
