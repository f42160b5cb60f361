"""The one ingestion driver: runs every source of one :class:`~app.ingest.port.SourcePort` adapter.

* Discovery: ``port.discover()`` every ``discovery_interval``; a new source is scheduled, a vanished one
  (or one whose receive raised :class:`~app.ingest.port.SourceGone`) is dropped; queue depths refreshed.
* Scheduling (``Schedule.pullers``): 0 = one task per source (SQS long polls); N = a bounded pool of N
  tasks taking sources in turn from a ready queue (Pub/Sub immediate pulls, an idle source holds no
  task). Either way a receive first takes slots from the shared :class:`~app.ingest.flow.InFlightLimiter`
  and the next receive of a source waits as :func:`next_turn` says (idle / error back-off). With a staging
  :class:`~app.ingest.admission.AdmissionGate`, a source above its fair share of normalize's consumption
  receives only what keeps staging's backlog near the target, and is held (next turn later) at it.
* Each received batch is landed in its own task: ``port.land`` per message, one :class:`Sink` write,
  then ``acknowledge`` for what Kafka acknowledged and ``release`` (after ``retry_delay``) for the rest.
  A batch task never raises; the messages of a batch that failed come back from the source.
* Messages in flight are extended at half of their current deadline (the source's own first).
* Shutdown (:meth:`IngestDriver.run` cancelled, e.g. on SIGTERM): no new receive starts; within
  ``shutdown_grace`` the receives already under way return (their messages are released at once) and the
  batches in flight keep landing (and being extended), a write that fails meanwhile being released at once
  (not after ``retry_delay``); then the batches still waiting for Kafka are cancelled and every message not
  acknowledged is released at once (SQS visibility 0, Pub/Sub ack deadline 0). A receive is not abandoned
  before the releases: the server would go on with an abandoned long poll and could take the released
  messages for a client that is gone (invisible until their timeout), which is why the SQS adapter keeps
  its long polls under half the grace. A message is acknowledged only after Kafka acknowledged its record,
  shutdown or not; one released while its record was still being written may reach staging twice, with the
  same source message id. The figures are in :attr:`IngestDriver.shutdown_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.ingest.admission import HOLD_SECONDS, AdmissionGate
from app.ingest.flow import InFlightLimiter
from app.ingest.landing import DeadLetter, Landing
from app.ingest.port import M, Received, Report, Schedule, Source, SourceGone, SourcePort
from app.ingest.sink import Sink
from app.ingest.stats import IngestStats, SourceStats, registry

log = logging.getLogger(__name__)

T = TypeVar("T")
IDLE_BACKOFF_FIRST = 0.05
ERROR_BACKOFF_FIRST = 1.0
CRASH_DELAY = 1.0
DEPTH_CALLS_AT_ONCE = 32
RELEASE_BOUND_SECONDS = 10.0
"""On shutdown, how long the release calls may take in all; a message not released comes back after its
visibility timeout / ack deadline, as after a crash."""


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


async def _wait(futures: Sequence[asyncio.Future[T]], seconds: float) -> None:
    """Until every future is done or ``seconds`` passed."""
    if futures:
        await asyncio.wait(futures, timeout=seconds)


def _retrieve(future: asyncio.Future[T]) -> None:
    """Mark an abandoned future's outcome as seen (no "exception was never retrieved" at exit)."""
    if not future.cancelled():
        future.exception()


class Outcome(enum.Enum):
    """How one receive turn of a source ended."""

    RECEIVED = "received"  # messages came
    FULL = "full"  # as many messages came as were asked for: more are likely waiting
    EMPTY = "empty"  # nothing waiting
    FAILED = "failed"  # the source answered with an error
    CRASHED = "crashed"  # a bug in the turn itself
    GONE = "gone"  # the source no longer exists
    HELD = "held"  # staging admission deferred the receive (the source is above its fair share)


@dataclass(frozen=True)
class Pace:
    """A source's back-off state (seconds): after empty receives, after failed ones; the monotonic time of
    its last receive that brought messages (``-inf``: none yet); how many messages its next receive asks
    for (0: ``Schedule.max_messages``)."""

    idle: float = 0.0
    error: float = 0.0
    received: float = float("-inf")
    batch: int = 0


def next_turn(pace: Pace, outcome: Outcome, schedule: Schedule, now: float) -> tuple[float | None, Pace]:
    """The delay before the source's next receive (None: no next one) and its new back-off state.

    Messages: at once; a receive that came back full (a backlog) asks for twice as many next time, up to
    ``max_messages_backlogged`` (a backlog drains in fewer, larger receives: a pooled source takes one
    puller at a time, so its receives' overhead, not the source, would otherwise set its rate); a receive
    that brought fewer, an empty or a failed one brings it back to ``max_messages``. Empty: 50 ms doubling
    up to a cap (0 = at once, for long polls): the cap is
    ``active_backoff_max`` while the source brought messages within the last ``active_seconds`` (a tenant
    that is publishing is looked at often: its next message waits at most that long), ``idle_backoff_max``
    after (a quiet source costs few empty receives). Failed: 1 s doubling up to ``error_backoff_max``. A
    successful receive resets the error back-off, messages reset the idle one. Held (staging admission):
    ``HOLD_SECONDS``, back-offs kept. Crashed: 1 s, back-offs kept. Gone: never.
    """
    if outcome is Outcome.RECEIVED:
        return 0.0, Pace(received=now)
    if outcome is Outcome.FULL:
        asked = max(pace.batch, schedule.max_messages)
        grown = min(asked * 2, schedule.max_messages_backlogged)
        return 0.0, Pace(received=now, batch=grown if grown > schedule.max_messages else 0)
    if outcome is Outcome.HELD:
        return HOLD_SECONDS, pace
    if outcome is Outcome.EMPTY:
        active = now - pace.received < schedule.active_seconds
        cap = (
            schedule.idle_backoff_max
            if schedule.active_backoff_max is None or not active
            else min(schedule.active_backoff_max, schedule.idle_backoff_max)
        )
        idle = min(max(IDLE_BACKOFF_FIRST, pace.idle * 2), cap)
        return idle, Pace(idle, 0.0, pace.received)
    if outcome is Outcome.FAILED:
        error = min(max(ERROR_BACKOFF_FIRST, pace.error * 2), schedule.error_backoff_max)
        return error, Pace(pace.idle, error, pace.received)
    if outcome is Outcome.CRASHED:
        return CRASH_DELAY, pace
    return None, pace


@dataclass
class InFlight:
    """A received message not yet acknowledged or released."""

    message_id: str
    deadline: float  # seconds granted at the receive / last extension
    extended: float  # monotonic time of the receive / last extension


@dataclass
class ShutdownReport:
    """What one driver's shutdown did."""

    kind: str
    landed: int = 0  # messages acknowledged at the source after Kafka acknowledged them, during shutdown
    released: int = 0  # messages the source confirmed released at once (visible again / nacked)
    release_errors: int = 0  # messages whose release failed: they come back after their timeout
    cancelled_batches: int = 0  # batches still waiting for Kafka when the grace ran out
    seconds: float = 0.0  # from the start of the shutdown to the end of the releases

    def line(self) -> str:
        """For the shutdown log line."""
        return (
            f"{self.kind}: landed {self.landed}, released {self.released}"
            + (f" ({self.release_errors} release errors)" if self.release_errors else "")
            + f" in {self.seconds:.1f}s"
        )


@dataclass
class SourceState:
    """One source being ingested."""

    source: Source
    stats: SourceStats
    generation: int
    in_flight: dict[str, InFlight] = field(default_factory=dict)  # by handle
    pace: Pace = Pace()
    task: asyncio.Task[None] | None = None  # its receive loop (one task per source only)


class IngestDriver(Generic[M]):
    """Lands every source of one adapter in staging; ``run`` until cancelled."""

    def __init__(
        self,
        port: SourcePort[M],
        sink: Sink,
        limiter: InFlightLimiter,
        stats: IngestStats = registry,
        gate: AdmissionGate | None = None,
    ) -> None:
        self.port = port
        self.gate = gate
        self.schedule = port.schedule
        self.sink = sink
        self.limiter = limiter
        self.stats = stats
        self.sources: dict[str, SourceState] = {}
        self._generation = 0
        self._ready: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._receive_slots = asyncio.Semaphore(max(1, self.schedule.receive_slots))
        self._batches: dict[asyncio.Task[None], SourceState] = {}
        self._stopping = False
        self._receives_left: list[tuple[SourceState, asyncio.Future[list[Received[M]]]]] = []
        self._acknowledged = 0  # since start, all sources
        self.shutdown_report: ShutdownReport | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Discover and receive until cancelled; on cancellation finish in-flight batches (bounded), stop."""
        kind = self.port.kind
        async with self.port.connect():
            pullers = [
                asyncio.create_task(self._puller(), name=f"{kind}-pull-{i}")
                for i in range(self.schedule.pullers)
            ]
            extender = asyncio.create_task(self._extend_loop(), name=f"{kind}-extend")
            try:
                while True:
                    try:
                        await self.discover()
                    except Exception as exc:  # noqa: BLE001 - keep the current set, try again later
                        log.warning("%s discovery failed: %s", self.port.label, exc)
                    await asyncio.sleep(self.schedule.discovery_interval)
            finally:
                # bounded by itself (grace, release bound): a second cancellation does not cut it short
                shutdown = asyncio.ensure_future(self._shutdown(pullers, extender))
                while not shutdown.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(shutdown)
                shutdown.result()

    async def _shutdown(self, pullers: list[asyncio.Task[None]], extender: asyncio.Task[None]) -> None:
        """Stop receiving, let batches land within the grace, release at once what Kafka did not ack."""
        started = time.monotonic()
        report = ShutdownReport(self.port.kind)
        acknowledged_before = self._acknowledged
        self._stopping = True
        receivers = pullers + [s.task for s in self.sources.values() if s.task is not None]
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        grace = max(0.0, self.schedule.shutdown_grace)
        receives = [future for _state, future in self._receives_left]
        batches = dict(self._batches)
        await asyncio.gather(
            _wait(receives, grace),  # under way at the stop: may bring messages, released below
            _wait(list(batches), grace),  # batches in flight may land within the grace
        )
        for future in receives:
            future.cancel()  # no-op for the finished ones
        pending = [task for task in batches if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*receives, *batches, return_exceptions=True)
        report.cancelled_batches = len(pending)
        extender.cancel()
        await asyncio.gather(extender, return_exceptions=True)
        report.landed = self._acknowledged - acknowledged_before
        try:
            await asyncio.wait_for(self._release_all(batches.values(), report), RELEASE_BOUND_SECONDS)
        except TimeoutError:
            log.warning(
                "%s: releasing in-flight messages took over %.0fs", self.port.label, RELEASE_BOUND_SECONDS
            )
        report.seconds = time.monotonic() - started
        self.shutdown_report = report
        log.debug("%s shutdown: %s", self.port.label, report.line())

    async def _release_all(self, batch_states: Iterable[SourceState], report: ShutdownReport) -> None:
        """Release at once every message received and not acknowledged (in flight, or from a late receive)."""
        unsettled: dict[int, tuple[SourceState, list[str]]] = {}
        for state in [*self.sources.values(), *batch_states]:
            unsettled.setdefault(id(state), (state, []))[1].extend(state.in_flight)
        for state, future in self._receives_left:
            if future.done() and not future.cancelled() and future.exception() is None:
                handles = [m.handle for m in future.result()]
                state.stats.received += len(handles)
                unsettled.setdefault(id(state), (state, []))[1].extend(handles)
        self._receives_left.clear()

        async def release(state: SourceState, handles: list[str]) -> None:
            handles = list(dict.fromkeys(handles))
            source = state.source
            errors_before = state.stats.errors
            released = await self._settle(state, handles, lambda chunk: self.port.release(source, chunk, 0))
            report.released += released
            report.release_errors += len(handles) - released
            if state.stats.errors > errors_before:
                log.warning("%s: releasing from %s: %s", self.port.label, source.name, state.stats.last_error)
            for handle in handles:
                state.in_flight.pop(handle, None)
            state.stats.in_flight = len(state.in_flight)

        await asyncio.gather(*(release(state, handles) for state, handles in unsettled.values() if handles))

    # --- discovery ---------------------------------------------------------------------------------
    async def discover(self) -> set[str]:
        """Schedule new sources, drop vanished ones, refresh what the listing says and queue depths."""
        found = {source.source_id: source for source in await self.port.discover()}
        for source_id in found.keys() - self.sources.keys():
            self._add(found[source_id])
        for source_id in self.sources.keys() - found.keys():
            self._drop(source_id, "no longer listed")
        for source_id, source in found.items():
            self.sources[source_id].source = source
        await self._refresh_depths()
        return set(found)

    def _add(self, source: Source) -> None:
        self._generation += 1
        stats = self.stats.source(self.port.kind, source.source_id, source.name, source.tenant)
        state = SourceState(source, stats, self._generation)
        self.sources[source.source_id] = state
        if self.schedule.pullers:
            self._ready.put_nowait((source.source_id, state.generation))
        else:
            state.task = asyncio.create_task(
                self._receive_loop(state), name=f"{self.port.kind}-receive-{source.name}"
            )
        log.info("%s: ingesting %s", self.port.label, source.name)

    def _drop(self, source_id: str, why: str) -> None:
        state = self.sources.pop(source_id, None)
        if state is None:
            return
        if state.task is not None and state.task is not asyncio.current_task():
            state.task.cancel()
        self.stats.retire(self.port.kind, source_id)
        log.info("%s: stopped ingesting %s (%s)", self.port.label, state.source.name, why)

    async def _refresh_depths(self) -> None:
        slots = asyncio.Semaphore(DEPTH_CALLS_AT_ONCE)

        async def refresh(state: SourceState) -> None:
            async with slots:
                try:
                    depth = await self.port.depth(state.source)
                except Exception as exc:  # noqa: BLE001 - depth is informative only
                    state.stats.last_error = f"depth: {exc}"
                    return
            if depth is not None:
                state.stats.queue_depth = depth

        await asyncio.gather(*(refresh(state) for state in list(self.sources.values())))

    # --- scheduling --------------------------------------------------------------------------------
    async def _receive_loop(self, state: SourceState) -> None:
        """One task per source: receive, wait as :func:`next_turn` says, until dropped or cancelled."""
        while self.sources.get(state.source.source_id) is state:
            delay = await self._take_turn(state)
            if delay is None:
                return
            if delay > 0:
                await asyncio.sleep(delay)

    async def _puller(self) -> None:
        """One of the pool: take the next source whose turn it is, receive once, put it back in turn."""
        while True:
            source_id, generation = await self._ready.get()
            state = self.sources.get(source_id)
            if state is None or state.generation != generation:
                continue  # dropped (or re-added under a new token) meanwhile
            delay = await self._take_turn(state)
            if delay is not None and self.sources.get(source_id) is state:
                token = (source_id, generation)
                if delay <= 0:
                    self._ready.put_nowait(token)
                else:
                    asyncio.get_running_loop().call_later(delay, self._ready.put_nowait, token)

    async def _take_turn(self, state: SourceState) -> float | None:
        """Receive once from one source; the delay before its next turn (None: it is gone)."""
        try:
            outcome = await self._turn(state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.stats.errors += 1
            state.stats.last_error = f"receiver: {exc!r}"
            log.exception("%s: a turn for %s failed; next turn in 1 s", self.port.label, state.source.name)
            outcome = Outcome.CRASHED
        delay, state.pace = next_turn(state.pace, outcome, self.schedule, time.monotonic())
        return delay

    async def _turn(self, state: SourceState) -> Outcome:
        source = state.source
        holder = source.source_id
        wanted = state.pace.batch or self.schedule.max_messages
        if self.gate is not None:
            wanted = self.gate.allowance(holder, wanted, time.monotonic())
            if wanted == 0:
                state.stats.held += 1
                return Outcome.HELD
        granted = await self.limiter.acquire(wanted, holder)
        try:
            async with self._receive_slots:
                receiving = asyncio.ensure_future(self.port.receive(source, granted))
                try:
                    messages = await asyncio.shield(receiving)
                except asyncio.CancelledError:
                    if self._stopping:  # let it return what it took: the shutdown releases it at once
                        self._receives_left.append((state, receiving))
                    else:
                        receiving.cancel()
                        receiving.add_done_callback(_retrieve)
                    raise
        except asyncio.CancelledError:
            self.limiter.release(granted, holder)
            raise
        except Exception as exc:  # noqa: BLE001 - a receiver survives source errors
            self.limiter.release(granted, holder)
            state.stats.errors += 1
            state.stats.last_error = f"receive: {exc.__cause__ or exc!r}"
            if isinstance(exc, SourceGone):
                self._drop(source.source_id, "deleted")
                return Outcome.GONE
            log.warning("%s receive from %s failed (backing off): %r", self.port.label, source.name, exc)
            return Outcome.FAILED
        self.limiter.release(granted - len(messages), holder)
        if not messages:
            return Outcome.EMPTY
        if self.gate is not None:
            self.gate.admitted(holder, len(messages), time.monotonic())
        self._track(state, messages)
        task = asyncio.create_task(self._land(state, messages))
        self._batches[task] = state
        task.add_done_callback(self._forget_batch)
        return Outcome.FULL if len(messages) >= granted else Outcome.RECEIVED

    def _forget_batch(self, task: asyncio.Task[None]) -> None:
        self._batches.pop(task, None)

    # --- in flight ---------------------------------------------------------------------------------
    def _track(self, state: SourceState, messages: list[Received[M]]) -> None:
        now = time.monotonic()
        stats = state.stats
        stats.received += len(messages)
        stats.last_received_at = time.time()
        deadline = float(state.source.ack_deadline)
        for message in messages:
            state.in_flight[message.handle] = InFlight(message.message_id, deadline, now)
            if message.receive_count > 1:
                stats.redelivered += 1
        stats.in_flight = len(state.in_flight)

    async def _land(self, state: SourceState, messages: list[Received[M]]) -> None:
        """Write one received batch to Kafka, then acknowledge what Kafka acknowledged; release the rest.

        Cancelled (shutdown, grace over): the handles not yet settled stay in ``state.in_flight`` for the
        shutdown to release.
        """
        handles = [m.handle for m in messages]
        source = state.source
        cancelled = False
        try:
            received_at_ms = int(time.time() * 1000)
            landings: list[Landing] = [self.port.land(source, m, received_at_ms) for m in messages]
            results = await self.sink.write(landings)
            dead = [isinstance(landing, DeadLetter) for landing in landings]
            durable, failed = state.stats.record_writes(handles, dead, results)
            if durable:
                # not ``acknowledged += await ...``: that would read the counter before the await
                acknowledged = await self._settle(
                    state, durable, lambda chunk: self.port.acknowledge(source, chunk), settles=True
                )
                state.stats.acknowledged += acknowledged
                self._acknowledged += acknowledged
            if failed:
                delay = 0 if self._stopping else self.schedule.retry_delay
                await self._settle(
                    state, failed, lambda chunk: self.port.release(source, chunk, delay), settles=True
                )
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception as exc:  # noqa: BLE001 - never a task dying unseen; the messages come back
            state.stats.errors += 1
            state.stats.last_error = f"land: {exc!r}"
            log.exception(
                "%s: landing a batch from %s failed; its messages will be received again",
                self.port.label,
                source.name,
            )
        finally:
            if not (cancelled or self._stopping):  # on shutdown, what is left is released at once
                for handle in handles:
                    state.in_flight.pop(handle, None)
            state.stats.in_flight = len(state.in_flight)
            self.limiter.release(len(handles), source.source_id)

    async def _settle(
        self,
        state: SourceState,
        handles: list[str],
        call: Callable[[list[str]], Awaitable[Report]],
        *,
        settles: bool = False,
    ) -> int:
        """``call`` per chunk of ``batch_limit`` handles, errors counted; how many the source confirmed.

        ``settles``: each chunk leaves ``state.in_flight`` once its call returned (acknowledge, release).
        """
        done = 0
        for chunk in chunks(handles, self.schedule.batch_limit):
            report = await call(chunk)
            if settles:
                for handle in chunk:
                    state.in_flight.pop(handle, None)
            done += report.done
            if report.errors:
                state.stats.errors += report.errors
                state.stats.last_error = report.last_error
        return done

    async def _extend_loop(self) -> None:
        """Every ``extend_every``, extend the messages in flight for half of their deadline or longer."""
        seconds = self.schedule.deadline
        while True:
            await asyncio.sleep(self.schedule.extend_every)
            now = time.monotonic()
            work = []
            for state in list(self.sources.values()):
                due = [h for h, f in state.in_flight.items() if now - f.extended >= f.deadline / 2]
                if not due:
                    continue
                for handle in due:
                    message = state.in_flight[handle]
                    message.extended, message.deadline = now, float(seconds)
                work.append(self._extend(state, due, seconds))
            if work:
                with contextlib.suppress(Exception):
                    await asyncio.gather(*work)

    async def _extend(self, state: SourceState, handles: list[str], seconds: int) -> None:
        source = state.source
        await self._settle(state, handles, lambda chunk: self.port.extend(source, chunk, seconds))
