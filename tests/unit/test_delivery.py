"""Redelivery: a record whose delivery failed after ``send`` returned is sent again, and ``drain`` (which the
producer's flush, and so Faust's commit, awaits) returns only once it is in. The failure is injected: the
real broker cannot be made to fail one chosen batch."""

from __future__ import annotations

import asyncio
from typing import Any

from app.delivery import Redelivery


class FlakyBroker:
    """Fails the first ``failures`` deliveries of every record, then accepts it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}
        self.accepted: list[str] = []

    async def send(self, record: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.attempts[record] = self.attempts.get(record, 0) + 1
        if self.attempts[record] <= self.failures:
            asyncio.get_running_loop().call_soon(future.set_exception, TimeoutError("no ack in time"))
        else:
            self.accepted.append(record)
            asyncio.get_running_loop().call_soon(future.set_result, "ok")
        return future


def test_failed_deliveries_are_sent_again_before_drain_returns() -> None:
    async def scenario() -> tuple[FlakyBroker, Redelivery, int]:
        broker, redelivery = FlakyBroker(failures=2), Redelivery(first_delay=0.01)
        for record in ("a", "b", "c"):
            future = await broker.send(record)
            redelivery.watch(future, lambda r=record: broker.send(r), record)  # type: ignore[misc]
        await asyncio.sleep(0)  # the first deliveries fail
        flushes = 0

        async def flush() -> None:
            nonlocal flushes
            flushes += 1

        await redelivery.drain(flush)
        return broker, redelivery, flushes

    broker, redelivery, flushes = asyncio.run(scenario())
    assert sorted(broker.accepted) == ["a", "b", "c"]
    assert broker.attempts == {"a": 3, "b": 3, "c": 3}
    assert redelivery.redelivered == 3 and redelivery.pending == 0 and flushes >= 1


def test_successful_and_cancelled_deliveries_are_left_alone() -> None:
    async def scenario() -> FlakyBroker:
        broker, redelivery = FlakyBroker(failures=0), Redelivery(first_delay=0.01)
        future = await broker.send("a")
        redelivery.watch(future, lambda: broker.send("a"), "a")
        cancelled: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        redelivery.watch(cancelled, lambda: broker.send("b"), "b")
        cancelled.cancel()
        await asyncio.sleep(0.05)
        await redelivery.drain(lambda: asyncio.sleep(0))
        return broker

    assert asyncio.run(scenario()).attempts == {"a": 1}
