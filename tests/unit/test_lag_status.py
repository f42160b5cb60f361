"""app.ops.lag_status: a status per partition from offset histories (tables of examples), and /metrics
families rendered by prometheus_client and parsed back as a scraper would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.ops.lag_monitor import AgentRow, LagSnapshot, PartitionRow
from app.ops.lag_status import Sample, Status, evaluate, sparkline_svg, worst
from app.ops.metrics import WorkerCollector, metric_families

WINDOW = 60.0


def history(*rows: tuple[float, int | None, int]) -> list[Sample]:
    """Samples from (seconds, committed, end) rows."""
    return [Sample(at, committed, end, max(0, end - (committed or 0))) for at, committed, end in rows]


@pytest.mark.parametrize(
    ("rows", "owned", "error", "status", "why"),
    [
        # no lag is OK whatever else happened
        ([(0, 5, 5), (30, 9, 9), (60, 9, 9)], None, "", Status.OK, "no lag"),
        # lag, committed moving, lag shrinking or steady: OK
        ([(0, 5, 20), (30, 10, 22), (60, 18, 24)], None, "", Status.OK, "making progress"),
        ([(0, 5, 10), (30, 10, 15), (60, 15, 20)], None, "", Status.OK, "making progress"),
        # committed offset did not move over the window, with lag: STALL
        ([(0, 5, 10), (30, 5, 10), (60, 5, 12)], None, "", Status.STALL, "unchanged"),
        ([(0, None, 10), (30, None, 10), (60, None, 10)], None, "", Status.STALL, "unchanged"),
        # committed moves but lag grew over the whole window: WARN
        ([(0, 5, 10), (30, 6, 14), (60, 7, 19)], None, "", Status.WARN, "grew from 5 to 12"),
        # it grew, then fell once: not WARN
        ([(0, 5, 10), (20, 6, 14), (40, 12, 14), (60, 13, 19)], None, "", Status.OK, "making progress"),
        # nobody owns it: STOP (before any window is full)
        ([(0, 5, 10)], False, "", Status.STOP, "no member"),
        # owned and lag, but too little history to judge
        ([(0, 5, 10), (10, 5, 10)], True, "", Status.OK, "evaluating"),
        # the committed offset last moved 50 s ago, inside the 60 s window: not (yet) STALL
        ([(0, 1, 10), (10, 5, 10), (40, 5, 10), (60, 5, 10)], None, "", Status.OK, "making progress"),
        # samples older than the window do not count: stalled for the whole last 60 s
        ([(0, 1, 10), (5, 5, 10), (30, 5, 10), (65, 5, 10)], None, "", Status.STALL, "unchanged"),
        # offsets not read: ERR
        ([(0, 5, 10)], None, "cannot read offsets", Status.ERR, "cannot read"),
        ([], None, "", Status.ERR, "no offsets"),
    ],
)
def test_status_from_offset_history(
    rows: list[tuple[float, int | None, int]], owned: bool | None, error: str, status: Status, why: str
) -> None:
    verdict = evaluate(history(*rows), WINDOW, owned=owned, error=error)
    assert verdict.status == status and why in verdict.reason


def test_worst_and_sparkline() -> None:
    assert worst([Status.OK, Status.WARN, Status.STALL]) == Status.STALL
    assert worst([Status.STOP, Status.ERR]) == Status.ERR and worst([]) == Status.OK
    svg = sparkline_svg([0, 5, 10])
    assert svg.startswith("<svg") and "max 10" in svg and "points='0.0,23.0 60.0,12.0 120.0,1.0'" in svg
    assert sparkline_svg([]) == ""


def test_metrics_are_prometheus_families_a_scraper_reads() -> None:
    partition = PartitionRow("g", "t", 0, 3, 10, 7, 12.5, Status.STALL, "stuck", (7,))
    snapshot = LagSnapshot(
        0.0, 60.0, 1, (AgentRow("a", "s", ("t",), 7, 12.5, Status.STALL, "stuck", (7,)),), (partition,)
    )
    families = metric_families(
        snapshot,
        {"sqs": {"received": 4, "landed": 3, "in_flight": 1, "queue_depth": 9}},
        {"normalize": {"records": 5, "dead_lettered": 1}},
        recovering=True,
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(lambda: families))
    parsed = {
        sample.name: sample
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.labels.get("status") in (None, "STALL")
    }
    assert parsed["carryover_consumer_lag_records"].value == 7
    assert parsed["carryover_consumer_time_lag_seconds"].value == 12.5
    assert parsed["carryover_partition_status"].labels == {
        "group": "g",
        "topic": "t",
        "partition": "0",
        "status": "STALL",
    }
    assert parsed["carryover_partition_status"].value == 1
    assert parsed["carryover_agent_status_severity"].value == 2
    assert parsed["carryover_ingest_messages_received_total"].value == 4
    assert parsed["carryover_ingest_queue_depth_messages"].value == 9
    assert parsed["carryover_normalize_records_total"].labels["outcome"] in {"dead_lettered", "records"}
    assert parsed["carryover_tables_recovering"].value == 1
