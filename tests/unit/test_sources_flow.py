"""The in-flight cap (back-pressure) and the per-source counters the JSON view serves."""

from __future__ import annotations

import asyncio

import pytest

from app.ingest.flow import InFlightLimiter, fair_share
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


@pytest.mark.parametrize(
    ("capacity", "busy", "floor", "share"),
    [
        (1000, 1, 10, 1000),  # alone: the whole budget, a backlog drains at full speed
        (1000, 2, 10, 500),
        (1000, 300, 10, 10),  # many busy sources: never less than one full receive
        (1000, 0, 10, 1000),
        (5, 3, 10, 5),  # never more than the capacity
        (100, 3, 1, 33),
    ],
)
def test_fair_share(capacity: int, busy: int, floor: int, share: int) -> None:
    assert fair_share(capacity, busy, floor) == share


async def test_a_backlogged_source_cannot_keep_a_newcomer_waiting() -> None:
    limiter = InFlightLimiter(100, floor=10)
    assert await limiter.acquire(100, "hot") == 100  # alone: everything
    hot_again = asyncio.create_task(limiter.acquire(10, "hot"))  # its next receive waits at the cap
    await asyncio.sleep(0.01)
    newcomer = asyncio.create_task(limiter.acquire(10, "trickle"))
    await asyncio.sleep(0.01)
    assert limiter.busy == 2 and limiter.share("hot") == 50
    limiter.release(10, "hot")  # a batch of the backlog landed
    assert await asyncio.wait_for(newcomer, 1) == 10  # served first, though the backlog asked first
    await asyncio.sleep(0.01)
    assert not hot_again.done()  # the backlog holds 90, over its share of 50: it waits
    limiter.release(10, "trickle")  # the newcomer's batch landed: it is idle again
    assert await asyncio.wait_for(hot_again, 1) == 10  # alone again: the backlog takes the free slots
    assert limiter.held("hot") == 100 and limiter.busy == 1


async def test_shares_follow_who_is_busy() -> None:
    limiter = InFlightLimiter(60, floor=5)
    assert await limiter.acquire(60, "a") == 60
    limiter.release(30, "a")  # a holds 30
    assert await limiter.acquire(30, "b") == 30  # b's share while a is busy: 30
    assert limiter.grantable("c", 10) == 0  # the cap is reached
    limiter.release(30, "b")
    assert limiter.grantable("a", 30) == 30  # b idle again: a alone may take the whole budget
    assert limiter.grantable("c", 30) == 30  # c counts with a: share 30, 30 free
    assert limiter.held("a") == 30 and limiter.in_flight == 30
