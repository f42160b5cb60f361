"""app.ops.worker_status: the sources of every ingesting worker, summed; stale workers left out."""

from __future__ import annotations

import pytest

from app.ops.worker_status import WorkerStatus, sum_sources


def status(worker: str, at: float, in_flight: int, depth: int, received: int) -> WorkerStatus:
    totals = {"sources": 4, "in_flight": in_flight, "queue_depth": depth, "received": received}
    return WorkerStatus(worker, at, ("ingest",), {"sqs": totals})


def test_fresh_workers_are_summed_queue_depth_is_the_queues_not_a_sum() -> None:
    statuses = [
        status("a", 100.0, 3, 50, 10),
        status("b", 100.0, 5, 48, 7),
        status("a", 90.0, 1, 60, 2),  # an older status of a: the latest counts
        status("c", 10.0, 9, 99, 99),  # stopped long ago
    ]
    summed = sum_sources(statuses, now=101.0, max_age=15.0)
    assert summed.workers == ("a", "b") and summed.stale == ("c",)
    assert summed.totals == {"sqs": {"sources": 8, "in_flight": 8, "queue_depth": 50, "received": 17}}
    assert summed.as_dict()["stale_workers"] == ["c"]


def test_status_json_round_trip_and_refusal() -> None:
    one = status("w@http://10.0.0.1:6066", 1.5, 1, 2, 3)
    assert WorkerStatus.from_json(one.to_json()) == one
    with pytest.raises(ValueError, match="not a worker status"):
        WorkerStatus.from_json(b'{"worker": "x"}')
