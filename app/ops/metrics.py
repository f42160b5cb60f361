"""``/metrics``: the lag monitor's snapshot and the stages' counters as Prometheus metric families.

:func:`metric_families` is a pure function of what the worker knows (no Kafka call at scrape time); the view
renders it with ``prometheus_client``'s exposition. Names follow Prometheus conventions: base units
(``_seconds``), ``_total`` for counters, one family per meaning with labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.ops.lag_monitor import LagSnapshot
from app.ops.lag_status import SEVERITY, Status
from app.ops.tenants import TenantLoad

INGEST_COUNTERS = (
    "received",
    "landed",
    "acknowledged",
    "redelivered",
    "dead_lettered",
    "failed",
    "errors",
    "held",
)


def metric_families(
    snapshot: LagSnapshot | None,
    ingest: Mapping[str, Mapping[str, int]],
    stage_counters: Mapping[str, Mapping[str, int]],
    recovering: bool,
    tenants: Sequence[TenantLoad] = (),
) -> list[Metric]:
    """Every metric family of the worker.

    ``ingest``: totals per source kind (``IngestStats.totals``); ``stage_counters``: per stage (normalize,
    state), its counters by name; ``tenants``: the busiest tenants and "other"
    (:func:`app.ops.tenants.top_tenants`).
    """
    families: list[Metric] = []
    if snapshot is not None:
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily(
            "carryover_consumer_lag_records", "Records the group still has to read.", labels=labels
        )
        age = GaugeMetricFamily(
            "carryover_consumer_time_lag_seconds",
            "Age of the oldest record the group has not processed (0 without lag).",
            labels=labels,
        )
        committed = GaugeMetricFamily(
            "carryover_consumer_committed_offset", "Offset the group committed (-1: none yet).", labels=labels
        )
        end = GaugeMetricFamily(
            "carryover_topic_end_offset", "High watermark of the partition.", labels=["topic", "partition"]
        )
        status = GaugeMetricFamily(
            "carryover_partition_status",
            "1 for the partition's current status (OK, WARN, STALL, STOP, ERR), 0 for the others.",
            labels=[*labels, "status"],
        )
        for p in snapshot.partitions:
            values = [p.group, p.topic, str(p.partition)]
            lag.add_metric(values, p.lag)
            if p.time_lag_seconds is not None:
                age.add_metric(values, p.time_lag_seconds)
            committed.add_metric(values, -1 if p.committed is None else p.committed)
            end.add_metric([p.topic, str(p.partition)], p.end)
            for s in Status:
                status.add_metric([*values, s.value], 1.0 if p.status == s else 0.0)
        agent_lag = GaugeMetricFamily(
            "carryover_agent_lag_records", "Records an agent still has to read.", labels=["agent"]
        )
        agent_status = GaugeMetricFamily(
            "carryover_agent_status_severity",
            "Worst partition status of the agent: 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 ERR.",
            labels=["agent"],
        )
        for a in snapshot.agents:
            agent_lag.add_metric([a.agent], a.lag)
            agent_status.add_metric([a.agent], SEVERITY[a.status])
        families += [lag, age, committed, end, status, agent_lag, agent_status]
    for name in INGEST_COUNTERS:
        counter = CounterMetricFamily(
            f"carryover_ingest_messages_{name}",
            f"Source messages {name.replace('_', ' ')}.",
            labels=["source"],
        )
        for kind, totals in sorted(ingest.items()):
            counter.add_metric([kind], totals.get(name, 0))
        families.append(counter)
    in_flight = GaugeMetricFamily(
        "carryover_ingest_messages_in_flight",
        "Source messages received, not yet acknowledged or released.",
        labels=["source"],
    )
    depth = GaugeMetricFamily(
        "carryover_ingest_queue_depth_messages",
        "Approximate messages waiting in the sources (SQS).",
        labels=["source"],
    )
    for kind, totals in sorted(ingest.items()):
        in_flight.add_metric([kind], totals.get("in_flight", 0))
        depth.add_metric([kind], totals.get("queue_depth", 0))
    families += [in_flight, depth]
    if tenants:
        labels = ["tenant"]
        backlog = GaugeMetricFamily(
            "carryover_ingest_tenant_backlog_messages",
            "Messages waiting in the tenant's queues (top tenants).",
            labels=labels,
        )
        held = GaugeMetricFamily(
            "carryover_ingest_tenant_in_flight_messages",
            "The tenant's messages in flight (top tenants).",
            labels=labels,
        )
        landed = GaugeMetricFamily(
            "carryover_ingest_tenant_landed_messages",
            "Messages of the tenant landed since the worker started (top tenants; a gauge: the set changes).",
            labels=labels,
        )
        for load in tenants:
            backlog.add_metric([load.tenant], load.backlog)
            held.add_metric([load.tenant], load.in_flight)
            landed.add_metric([load.tenant], load.landed)
        families += [backlog, held, landed]
    for stage, counters in sorted(stage_counters.items()):
        family = CounterMetricFamily(
            f"carryover_{stage}_records",
            f"Records the {stage} stage handled, by outcome.",
            labels=["outcome"],
        )
        for outcome, value in sorted(counters.items()):
            family.add_metric([outcome], value)
        families.append(family)
    families.append(
        GaugeMetricFamily(
            "carryover_tables_recovering",
            "1 while the worker recovers its tables from changelogs.",
            value=1.0 if recovering else 0.0,
        )
    )
    return families


class WorkerCollector(Collector):
    """A prometheus_client collector asking the worker for its families at scrape time."""

    def __init__(self, families: Callable[[], list[Metric]]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        """The worker's families (see :func:`metric_families`)."""
        yield from self.families()
