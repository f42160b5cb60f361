"""The ingestion driver's pure parts (back-off decisions, chunking, seen ids) and its flow against an
in-memory source port: acknowledge only after Kafka acknowledged, release on a failed write, discovery,
a deleted source, shutdown (batches land within the grace, the rest is released at once, never acknowledged
without Kafka's ack)."""

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
from app.ingest.pubsub import PubSubAdapter, PubSubConfig, SeenIds
from app.ingest.runner import IngestRunner
from app.ingest.sqs import SqsAdapter, SqsConfig, long_poll_seconds
from app.ingest.stats import IngestStats
from app.settings import load

POLL = Schedule(max_messages=10, idle_backoff_max=0.0, error_backoff_max=30.0)
POOL = Schedule(max_messages=50, pullers=4, idle_backoff_max=1.0, error_backoff_max=30.0)
ACTIVE = Schedule(
    max_messages=50, pullers=4, idle_backoff_max=1.0, active_backoff_max=0.2, active_seconds=60.0
)
BURST = Schedule(max_messages=50, pullers=4, idle_backoff_max=1.0, max_messages_backlogged=500)
NOW = 1000.0


@pytest.mark.parametrize(
    ("schedule", "pace", "outcome", "delay", "after"),
    [
        # messages: at once, both back-offs reset
        (POOL, Pace(0.4, 8.0), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0, NOW)),
        (POLL, Pace(0.0, 2.0), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0, NOW)),
        (ACTIVE, Pace(1.0, 0.0, NOW - 500), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0, NOW)),
        # a full receive (a backlog): the next asks for twice as many, up to max_messages_backlogged
        (BURST, Pace(), Outcome.FULL, 0.0, Pace(0.0, 0.0, NOW, 100)),
        (BURST, Pace(0.0, 0.0, NOW - 1, 100), Outcome.FULL, 0.0, Pace(0.0, 0.0, NOW, 200)),
        (BURST, Pace(0.0, 0.0, NOW - 1, 400), Outcome.FULL, 0.0, Pace(0.0, 0.0, NOW, 500)),
        (BURST, Pace(0.0, 0.0, NOW - 1, 500), Outcome.FULL, 0.0, Pace(0.0, 0.0, NOW, 500)),
        # ... and back to max_messages once a receive brings fewer, none, or fails
        (BURST, Pace(0.0, 0.0, NOW - 1, 400), Outcome.RECEIVED, 0.0, Pace(0.0, 0.0, NOW)),
        (BURST, Pace(0.0, 0.0, NOW - 1, 400), Outcome.EMPTY, 0.05, Pace(0.05, 0.0, NOW - 1)),
        (BURST, Pace(0.0, 0.0, NOW - 1, 400), Outcome.FAILED, 1.0, Pace(0.0, 1.0, NOW - 1)),
        # held by staging admission: kept (the backlog is still there when it is let in)
        (BURST, Pace(0.0, 0.0, NOW - 1, 400), Outcome.HELD, 0.05, Pace(0.0, 0.0, NOW - 1, 400)),
        # without max_messages_backlogged (SQS: 10 is the API's limit), full is like any receive
        (POLL, Pace(), Outcome.FULL, 0.0, Pace(0.0, 0.0, NOW)),
        # empty: 50 ms doubling up to the idle cap; a long poll (cap 0) receives again at once
        (POOL, Pace(), Outcome.EMPTY, 0.05, Pace(0.05, 0.0)),
        (POOL, Pace(0.05, 0.0), Outcome.EMPTY, 0.1, Pace(0.1, 0.0)),
        (POOL, Pace(0.8, 0.0), Outcome.EMPTY, 1.0, Pace(1.0, 0.0)),
        (POOL, Pace(0.1, 4.0), Outcome.EMPTY, 0.2, Pace(0.2, 0.0)),
        (POLL, Pace(), Outcome.EMPTY, 0.0, Pace(0.0, 0.0)),
        (POLL, Pace(0.0, 16.0), Outcome.EMPTY, 0.0, Pace(0.0, 0.0)),
        (POOL, Pace(0.8, 0.0, NOW - 1), Outcome.EMPTY, 1.0, Pace(1.0, 0.0, NOW - 1)),  # no active cap set
        # a source that brought messages within active_seconds is looked at again within the active cap
        (ACTIVE, Pace(0.0, 0.0, NOW), Outcome.EMPTY, 0.05, Pace(0.05, 0.0, NOW)),
        (ACTIVE, Pace(0.1, 0.0, NOW - 5), Outcome.EMPTY, 0.2, Pace(0.2, 0.0, NOW - 5)),
        (ACTIVE, Pace(0.2, 0.0, NOW - 59.9), Outcome.EMPTY, 0.2, Pace(0.2, 0.0, NOW - 59.9)),
        # ... and after active_seconds without messages it backs off to the idle cap
        (ACTIVE, Pace(0.2, 0.0, NOW - 60), Outcome.EMPTY, 0.4, Pace(0.4, 0.0, NOW - 60)),
        (ACTIVE, Pace(0.8, 0.0, NOW - 600), Outcome.EMPTY, 1.0, Pace(1.0, 0.0, NOW - 600)),
        (ACTIVE, Pace(0.4, 0.0), Outcome.EMPTY, 0.8, Pace(0.8, 0.0)),  # never brought any
        # a source that turns active drops from the idle back-off to the active cap at once
        (
            ACTIVE,
            Pace(1.0, 0.0, NOW - 1),
            Outcome.EMPTY,
            0.2,
            Pace(0.2, 0.0, NOW - 1),
        ),  # failed: 1 s doubling up to the error cap, idle kept
        (POOL, Pace(0.2, 0.0), Outcome.FAILED, 1.0, Pace(0.2, 1.0)),
        (ACTIVE, Pace(0.2, 0.0, NOW - 1), Outcome.FAILED, 1.0, Pace(0.2, 1.0, NOW - 1)),
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
    assert next_turn(pace, outcome, schedule, NOW) == (delay, after)


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


# --- shutdown: land within the grace, release the rest at once, never acknowledge without Kafka's ack -----
class HoldingSink:
    """Writes batches at once, except a batch with a ``hold`` payload: it waits for ``resume`` (forever if
    never set); payloads starting with ``fail`` fail. Records what Kafka "acknowledged"."""

    def __init__(self) -> None:
        self.durable: set[bytes] = set()
        self.resume = asyncio.Event()
        self.holding = 0

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        if any(landing.value.startswith(b"hold") for landing in landings):
            self.holding += 1
            await self.resume.wait()
        results: list[BaseException | None] = []
        for landing in landings:
            if landing.value.startswith(b"fail"):
                results.append(RuntimeError("kafka said no"))
            else:
                self.durable.add(landing.value)
                results.append(None)
        return results


class TracingPort(MemoryPort):
    """A memory port that remembers each handle's payload; ``gate`` (when set) holds receives with
    messages until it opens, ``ack_gate`` holds acknowledgements."""

    def __init__(self, schedule: Schedule) -> None:
        super().__init__(schedule)
        self.payloads: dict[str, bytes] = {}
        self.gate: asyncio.Event | None = None
        self.receiving = 0
        self.ack_gate: asyncio.Event | None = None

    async def receive(self, source: Source, max_messages: int) -> list[Received[bytes]]:
        if self.gate is not None and self.queues[source.name]:
            self.receiving += 1
            await self.gate.wait()
        received = await super().receive(source, max_messages)
        self.payloads.update((r.handle, r.message) for r in received)
        return received

    async def acknowledge(self, source: Source, handles: list[str]) -> Report:
        if self.ack_gate is not None:
            await self.ack_gate.wait()
        return await super().acknowledge(source, handles)

    def acked_payloads(self) -> set[bytes]:
        return {self.payloads[h] for h in self.acked}

    def released_payloads(self, seconds: int = 0) -> list[bytes]:
        return sorted(self.payloads[h] for h, s in self.released if s == seconds)


async def stop(task: asyncio.Task[None]) -> float:
    """Cancel the driver as the service does on SIGTERM; seconds until it finished."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return loop.time() - started


@pytest.mark.parametrize("schedule", [POLL, POOL], ids=["task-per-source", "puller-pool"])
async def test_shutdown_releases_at_once_what_kafka_did_not_acknowledge(schedule: Schedule) -> None:
    port = TracingPort(
        replace(schedule, max_messages=2, shutdown_grace=0.3, retry_delay=7, extend_every=0.05)
    )
    port.queues["carryover-legacy-a"] = [b"ok-1", b"ok-2", b"hold-1", b"hold-2"]
    port.queues["carryover-legacy-b"] = [b"ok-3", b"hold-3"]
    sink, stats, limiter = HoldingSink(), IngestStats(), InFlightLimiter(100)
    driver = IngestDriver(port, sink, limiter, stats)
    task = asyncio.create_task(driver.run())
    await until(lambda: sink.holding == 2 and len(port.acked) == 2)
    assert stats.totals()["in_flight"] == 4
    seconds = await stop(task)
    # the held batches (never acknowledged by Kafka) are released with visibility / deadline 0, once each
    assert port.released_payloads(0) == [b"hold-1", b"hold-2", b"hold-3", b"ok-3"]
    assert len(port.released) == 4
    assert port.acked_payloads() == {b"ok-1", b"ok-2"}
    assert port.acked_payloads() <= sink.durable, "acknowledged only after Kafka acknowledged"
    assert not port.acked_payloads() & set(port.released_payloads(0))
    report = driver.shutdown_report
    assert report is not None
    assert (report.landed, report.released, report.release_errors, report.cancelled_batches) == (0, 4, 0, 2)
    assert seconds >= 0.3, "the held batches had the whole grace"
    assert stats.totals()["in_flight"] == 0 and limiter.in_flight == 0
    assert not port.connected


async def test_shutdown_lets_batches_land_within_the_grace_and_releases_failed_writes_at_once() -> None:
    port = TracingPort(replace(POLL, max_messages=3, shutdown_grace=5, retry_delay=7))
    port.queues["carryover-legacy-a"] = [b"hold-1", b"fail-1", b"ok-1"]
    sink, stats = HoldingSink(), IngestStats()
    driver = IngestDriver(port, sink, InFlightLimiter(100), stats)
    task = asyncio.create_task(driver.run())
    await until(lambda: sink.holding == 1)
    task.cancel()
    await asyncio.sleep(0.1)
    assert not task.done(), "the batch in flight may land within the grace"
    port.queues["carryover-legacy-a"].append(b"ok-late")
    sink.resume.set()  # Kafka answers within the grace
    await asyncio.gather(task, return_exceptions=True)
    assert port.acked_payloads() == {b"hold-1", b"ok-1"}
    assert port.released == [(next(h for h, p in port.payloads.items() if p == b"fail-1"), 0)], (
        "a write failed during the shutdown: released at once, not after retry_delay"
    )
    assert b"ok-late" not in port.payloads.values(), "nothing is received after the stop"
    report = driver.shutdown_report
    assert report is not None
    assert (report.landed, report.released, report.cancelled_batches) == (2, 0, 0)


async def test_shutdown_releases_what_a_receive_under_way_brought() -> None:
    port = TracingPort(replace(POLL, max_messages=10, shutdown_grace=5))
    port.queues["carryover-legacy-a"] = [b"ok-1", b"ok-2"]
    port.gate = asyncio.Event()
    sink = HoldingSink()
    driver = IngestDriver(port, sink, InFlightLimiter(100), IngestStats())
    task = asyncio.create_task(driver.run())
    await until(lambda: port.receiving == 1)
    task.cancel()
    await asyncio.sleep(0.05)
    port.gate.set()  # the receive started before the stop returns its messages
    await asyncio.gather(task, return_exceptions=True)
    assert port.released_payloads(0) == [b"ok-1", b"ok-2"]
    assert port.acked == [] and sink.durable == set()
    report = driver.shutdown_report
    assert report is not None and report.released == 2


async def test_shutdown_with_nothing_in_flight_releases_nothing() -> None:
    port = TracingPort(replace(POLL, shutdown_grace=5))
    port.queues["carryover-legacy-a"] = [b"ok-1"]
    driver = IngestDriver(port, HoldingSink(), InFlightLimiter(100), IngestStats())
    task = asyncio.create_task(driver.run())
    await until(lambda: len(port.acked) == 1)
    seconds = await stop(task)
    assert port.released == []
    assert seconds < 2, "no batch, no receive under way: nothing to wait for"
    report = driver.shutdown_report
    assert report is not None and (report.landed, report.released) == (0, 0)


async def test_shutdown_cut_during_an_acknowledgement_releases_only_what_is_not_acknowledged() -> None:
    port = TracingPort(replace(POLL, max_messages=30, shutdown_grace=0.2, batch_limit=10))
    port.queues["carryover-legacy-a"] = [b"ok-%02d" % i for i in range(25)]
    port.ack_gate = asyncio.Event()
    sink = HoldingSink()
    driver = IngestDriver(port, sink, InFlightLimiter(100), IngestStats())
    task = asyncio.create_task(driver.run())
    await until(lambda: len(sink.durable) == 25)
    await stop(task)  # the first acknowledge call (10 handles) never returned
    assert port.acked == []
    assert len(port.released_payloads(0)) == 25, "all 25 were unsettled: released (a duplicate at worst)"


def test_the_shutdown_grace_setting_reaches_both_adapters() -> None:
    settings = load({"CARRYOVER_SHUTDOWN_GRACE_SECONDS": "7.5"})
    assert SqsAdapter(SqsConfig.from_settings(settings)).schedule.shutdown_grace == 7.5
    assert PubSubAdapter(PubSubConfig.from_settings(settings)).schedule.shutdown_grace == 7.5
    # SQS long polls end within half the grace: on shutdown they return before the releases
    assert SqsConfig.from_settings(settings).wait_time_seconds == 3
    assert [long_poll_seconds(g) for g in (0, 1, 2.9, 20, 40, 300)] == [1, 1, 1, 10, 20, 20]


async def test_the_runner_shuts_its_drivers_down_fully_even_when_cancelled_twice() -> None:
    port = TracingPort(replace(POOL, max_messages=2, shutdown_grace=0.3))
    port.queues["carryover-legacy-a"] = [b"ok-1", b"ok-2", b"hold-1", b"hold-2"]
    sink, stats = HoldingSink(), IngestStats()
    runner = IngestRunner(None, None, sink, max_in_flight=100, stats=stats, adapters=[port])
    task = asyncio.create_task(runner.run())
    await until(lambda: sink.holding == 1 and len(port.acked) == 2)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()  # e.g. a second signal: the releases still happen
    await asyncio.gather(task, return_exceptions=True)
    assert port.released_payloads(0) == [b"hold-1", b"hold-2"]
    assert port.acked_payloads() == {b"ok-1", b"ok-2"}
    line = runner.shutdown_line(0.3)
    assert "landed 0, released 2 at once, release errors 0, batches cut at the grace 1" in line, line
