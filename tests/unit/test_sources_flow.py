"""The in-flight cap (back-pressure) and the per-source counters the JSON view serves."""

from __future__ import annotations

import asyncio

import pytest

from app.ingest.flow import InFlightLimiter
from app.ingest.stats import IngestStats


async def test_limiter_grants_up_to_what_is_free_and_blocks_at_the_cap() -> None:
    limiter = InFlightLimiter(15)
    assert await limiter.acquire(10) == 10
    assert await limiter.acquire(10) == 5
    assert limiter.free == 0
    blocked = asyncio.create_task(limiter.acquire(10))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert limiter.waiting == 1
    limiter.release(3)
    assert await asyncio.wait_for(blocked, 1) == 3
    assert limiter.in_flight == 15


async def test_limiter_wakes_waiters_in_order_and_survives_cancellation() -> None:
    limiter = InFlightLimiter(1)
    await limiter.acquire(1)
    first = asyncio.create_task(limiter.acquire(1))
    cancelled = asyncio.create_task(limiter.acquire(1))
    last = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.sleep(0.01)
    limiter.release(1)
    assert await asyncio.wait_for(first, 1) == 1
    assert not last.done()
    limiter.release(1)
    assert await asyncio.wait_for(last, 1) == 1


async def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        InFlightLimiter(0)
    with pytest.raises(ValueError):
        await InFlightLimiter(1).acquire(0)


def test_stats_totals_summary_and_json() -> None:
    stats = IngestStats()
    a = stats.source("sqs", "http://q/a", "carryover-legacy-a", "a")
    a.received, a.landed, a.acknowledged, a.in_flight, a.queue_depth = 12, 10, 9, 2, 40
    b = stats.source("pubsub", "projects/p/subscriptions/b", "carryover-legacy-b", "b")
    b.received, b.redelivered, b.dead_lettered = 5, 1, 1
    stats.retire("pubsub", "projects/p/subscriptions/b")
    assert stats.totals("sqs")["landed"] == 10
    assert stats.totals("sqs")["queue_depth"] == 40
    assert stats.totals("pubsub")["sources"] == 0
    assert stats.totals()["received"] == 17
    line = stats.summary_line()
    assert "sqs: 1 sources, received 12, landed 10, acked 9" in line
    assert "depth 40" in line
    view = stats.as_dict()
    assert [s["name"] for s in view["sources"]] == ["carryover-legacy-b", "carryover-legacy-a"]
    assert view["sources"][0]["active"] is False
    # a source that comes back is active again, counters kept
    assert stats.source("pubsub", "projects/p/subscriptions/b", "carryover-legacy-b", "b").received == 5
    assert stats.totals("pubsub")["sources"] == 1
