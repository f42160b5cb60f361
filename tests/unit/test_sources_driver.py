"""The ingestion driver's pure parts (back-off decisions, chunking, seen ids) and its flow against an
in-memory source port: acknowledge only after Kafka acknowledged, release on a failed write, discovery,
a deleted source, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from app.ingest.driver import IngestDriver, Outcome, Pace, chunks, next_turn
from app.ingest.flow import InFlightLimiter
from app.ingest.landing import DeadLetter, Landing, LandingConfig, land_pubsub
from app.ingest.port import Received, Report, Schedule, Source, SourceGone
from app.ingest.pubsub import SeenIds
from app.ingest.stats import IngestStats

POLL = Schedule(max_messages=10, idle_backoff_max=0.0, error_backoff_max=30.0)
POOL = Schedule(max_messages=50, pullers=4, idle_backoff_max=1.0, error_backoff_max=30.0)


@pytest.mark.parametrize(
    ("schedule", "pace", "outcome", "delay", "after"),
    [
        # messages: at once, both back-offs reset
        (POOL, Pace(0.4, 8.0), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0)),
        (POLL, Pace(0.0, 2.0), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0)),
        # empty: 50 ms doubling up to the idle cap; a long poll (cap 0) receives again at once
        (POOL, Pace(), Outcome.EMPTY, 0.05, Pace(0.05, 0.0)),
        (POOL, Pace(0.05, 0.0), Outcome.EMPTY, 0.1, Pace(0.1, 0.0)),
        (POOL, Pace(0.8, 0.0), Outcome.EMPTY, 1.0, Pace(1.0, 0.0)),
        (POOL, Pace(0.1, 4.0), Outcome.EMPTY, 0.2, Pace(0.2, 0.0)),
        (POLL, Pace(), Outcome.EMPTY, 0.0, Pace(0.0, 0.0)),
        (POLL, Pace(0.0, 16.0), Outcome.EMPTY, 0.0, Pace(0.0, 0.0)),
        # failed: 1 s doubling up to the error cap, idle kept
        (POOL, Pace(0.2, 0.0), Outcome.FAILED, 1.0, Pace(0.2, 1.0)),
        (POOL, Pace(0.0, 1.0), Outcome.FAILED, 2.0, Pace(0.0, 2.0)),
        (POLL, Pace(0.0, 16.0), Outcome.FAILED, 30.0, Pace(0.0, 30.0)),
        (POLL, Pace(0.0, 30.0), Outcome.FAILED, 30.0, Pace(0.0, 30.0)),
        # a bug in the turn: 1 s, back-offs kept
        (POOL, Pace(0.4, 8.0), Outcome.CRASHED, 1.0, Pace(0.4, 8.0)),
        # gone: no next turn
        (POLL, Pace(), Outcome.GONE, None, Pace()),
    ],
)
def test_next_turn(
    schedule: Schedule, pace: Pace, outcome: Outcome, delay: float | None, after: Pace
) -> None:
    assert next_turn(pace, outcome, schedule) == (delay, after)


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        ([], 10, []),
        (["a"], 10, [["a"]]),
        (list("abcdefghij"), 10, [list("abcdefghij")]),
        (list("abcdefghijk"), 10, [list("abcdefghij"), ["k"]]),
        (list("abcde"), 2, [["a", "b"], ["c", "d"], ["e"]]),
        (("x", "y"), 1, [["x"], ["y"]]),
    ],
)
def test_chunks(items: Sequence[str], size: int, expected: list[list[str]]) -> None:
    assert chunks(items, size) == expected


def test_chunks_rejects_size_zero() -> None:
    with pytest.raises(ValueError):
        chunks(["a"], 0)


def test_seen_ids_remember_the_most_recent() -> None:
    seen = SeenIds(capacity=2)
    assert [seen.seen_before("s", i) for i in ("a", "b", "a", "c", "b", "a")] == [
        False,
        False,
        True,
        False,  # "b" (least recently seen) forgotten
        False,
        False,  # "a" forgotten when "b" came back
    ]
    assert seen.seen_before("other", "c") is False


# --- the driver against an in-memory port ---------------------------------------------------------------
CONFIG = LandingConfig("carryover-legacy-")


class MemoryPort:
    """Sources as in-memory lists; records every settle call."""

    kind = "memory"
    label = "Memory"

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.queues: dict[str, list[bytes]] = {}
        self.gone: set[str] = set()
        self.acked: list[str] = []
        self.released: list[tuple[str, int]] = []
        self.extended: list[str] = []
        self.settle_calls: list[int] = []
        self.connected = False
        self.ack_deadline = 30
        self._next = 0

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        self.connected = True
        try:
            yield
        finally:
            self.connected = False

    async def discover(self) -> list[Source]:
        return [
            Source(f"mem/{n}", n, n.removeprefix(CONFIG.name_prefix), self.ack_deadline)
            for n in sorted(self.queues)
        ]

    async def depth(self, source: Source) -> int | None:
        return len(self.queues[source.name])

    async def receive(self, source: Source, max_messages: int) -> list[Received[bytes]]:
        await asyncio.sleep(0)
        if source.name in self.gone:
            raise SourceGone(source.name)
        queue = self.queues[source.name]
        taken, queue[:] = queue[:max_messages], queue[max_messages:]
        out = []
        for data in taken:
            self._next += 1
            out.append(Received(f"h{self._next}", f"m{self._next}", 1, data))
        return out

    async def acknowledge(self, source: Source, handles: list[str]) -> Report:
        await asyncio.sleep(0.001 * (len(self.acked) % 3))  # batches of one source settle interleaved
        self.settle_calls.append(len(handles))
        self.acked.extend(handles)
        return Report(done=len(handles))

    async def release(self, source: Source, handles: list[str], seconds: int) -> Report:
        self.released.extend((h, seconds) for h in handles)
        return Report(done=len(handles))

    async def extend(self, source: Source, handles: list[str], seconds: int) -> Report:
        self.extended.extend(handles)
        return Report(errors=1, last_error="extend: nope")

    def land(self, source: Source, message: Received[bytes], received_at_ms: int) -> Landing:
        return land_pubsub(
            subscription_path=source.source_id,
            message_id=message.message_id,
            data=message.message,
            attributes=None,
            config=CONFIG,
            received_at_ms=received_at_ms,
        )


class FlakySink:
    """Fails the write of payloads starting with ``fail``; holds writes while ``hold`` is clear."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        await self.hold.wait()
        results: list[BaseException | None] = []
        for landing in landings:
            if isinstance(landing, DeadLetter) or not landing.value.startswith(b"fail"):
                self.written.append(landing.value)
                results.append(None)
            else:
                results.append(RuntimeError("kafka said no"))
        return results


async def until(predicate, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


@pytest.mark.parametrize("schedule", [POLL, POOL], ids=["task-per-source", "puller-pool"])
async def test_driver_acks_after_the_write_and_releases_failed_writes(schedule: Schedule) -> None:
    port = MemoryPort(replace(schedule, max_messages=4, discovery_interval=0.05, retry_delay=7))
    port.queues["carryover-legacy-a"] = [b"ok-%d" % i for i in range(25)] + [b"fail-1"]
    port.queues["carryover-legacy-b"] = [b"ok-b"]
    sink, stats, limiter = FlakySink(), IngestStats(), InFlightLimiter(100)
    driver = IngestDriver(port, sink, limiter, stats)
    task = asyncio.create_task(driver.run())
    try:
        await until(lambda: stats.totals("memory")["acknowledged"] == 26 and len(port.released) == 1)
        assert port.connected
        assert len(port.acked) == 26
        assert [seconds for _handle, seconds in port.released] == [7]
        assert max(port.settle_calls) <= schedule.batch_limit
        a = stats.sources[("memory", "mem/carryover-legacy-a")]
        assert (a.received, a.landed, a.acknowledged, a.failed, a.in_flight) == (26, 25, 25, 1, 0)
        assert a.tenant == "a"
        # a vanished source is dropped; a deleted one at its next receive, before discovery sees it
        del port.queues["carryover-legacy-b"]
        await until(lambda: not stats.sources[("memory", "mem/carryover-legacy-b")].active)
        driver.schedule = replace(driver.schedule, discovery_interval=60)
        await asyncio.sleep(0.1)  # no discovery from here on
        port.gone.add("carryover-legacy-a")
        await until(lambda: "mem/carryover-legacy-a" not in driver.sources)
        assert stats.sources[("memory", "mem/carryover-legacy-a")].errors == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not port.connected
    assert limiter.in_flight == 0, "every slot granted for a receive is given back"


async def test_driver_extends_held_messages_and_finishes_batches_on_shutdown() -> None:
    schedule = Schedule(max_messages=10, extend_every=0.05, deadline=30, shutdown_grace=5)
    port = MemoryPort(schedule)
    port.queues["carryover-legacy-a"] = [b"ok-1", b"ok-2"]
    sink, stats = FlakySink(), IngestStats()
    sink.hold.clear()
    port.ack_deadline = 0  # the first extension is due at once, the next after 15 s
    driver = IngestDriver(port, sink, InFlightLimiter(10), stats)
    task = asyncio.create_task(driver.run())
    await until(lambda: stats.totals()["in_flight"] == 2)
    await until(lambda: len(port.extended) >= 2)
    await asyncio.sleep(0.2)
    assert len(port.extended) == 2, "extended once, then not before half of the new deadline"
    assert stats.totals()["errors"] >= 1  # the port's extension report counted
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done(), "shutdown waits for the batch in flight"
    sink.hold.set()
    await asyncio.gather(task, return_exceptions=True)
    assert stats.totals()["acknowledged"] == 2 and stats.totals()["in_flight"] == 0
