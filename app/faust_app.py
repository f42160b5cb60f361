"""The Faust app: :func:`create_app` builds it from a :class:`Settings` value, with the agents, services and
web views of the roles the settings name. Importing this module builds nothing.

``faust -A app worker`` reaches :func:`create_app` through ``app.app`` (see ``app/__init__.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP, FutureMessage, RecordMetadata, TopicT, TransportT

from app import local_broker, ops
from app import topics as topic_names
from app.catalog.model import default_catalog
from app.commit_watch import Hole, StuckCommitWatch, hole
from app.delivery import Redelivery
from app.ops.lag_monitor import LagMonitor
from app.settings import Settings

log = logging.getLogger(__name__)

TimerFn = TypeVar("TimerFn", bound=Callable[[], Awaitable[None]])


class CompleteFlushBuffer(ProducerBuffer):
    """Faust's buffer of ``send_soon`` records (every table's changelog writes) with a flush that is complete.

    Faust's ``ProducerBuffer.flush`` returns as soon as one 0.1 s wait passes without a record handed on, even
    with records still buffered, and it does not wait for the record being handed to the Kafka client. The
    consumer flushes the producer right before it commits offsets, so a busy buffer let offsets be committed
    past changelog records never sent: after a kill -9, a table could be restored older than the committed
    offsets, losing updates (any stage). This flush returns only when the buffer is empty and nothing is
    being handed on.
    """

    _handing = 0

    async def _send_pending(self, fut: FutureMessage) -> None:
        self._handing += 1
        try:
            await super()._send_pending(fut)
        finally:
            self._handing -= 1

    async def flush(self) -> None:
        """Wait until every buffered record was handed to the Kafka client (whose flush follows)."""
        while self.size or self._handing:
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)


class CarryoverProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with acks=all and idempotence (off on the local broker only), whose
    failed deliveries are sent again before any flush returns (:mod:`app.delivery`): Faust flushes before
    it commits offsets, so no agent's offset moves past a record that did not reach Kafka."""

    _redelivery: Redelivery | None = None
    _before_flush: list[Callable[[], Awaitable[None]]] | None = None

    def before_flush(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` at the start of every flush, so what it sends is flushed with the rest. Faust
        flushes before it commits source offsets (and on partition revoke): the normalize agent writes
        its pending dedupe batches here, so no committed offset is ahead of its marks."""
        if self._before_flush is None:
            self._before_flush = []
        self._before_flush.append(hook)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        buffer = CompleteFlushBuffer(loop=self.loop, beacon=self.beacon)
        if hasattr(self.buffer, "threaded_producer"):  # set only with producer_threaded (not used here)
            buffer.threaded_producer = self.buffer.threaded_producer
        buffer.app = self.app
        self.buffer = buffer

    @property
    def redelivery(self) -> Redelivery:
        """The redelivery of this producer's failed sends."""
        if self._redelivery is None:
            self._redelivery = Redelivery()
        return self._redelivery

    def _settings_extra(self) -> Mapping[str, Any]:
        settings: Settings = self.app.carryover  # type: ignore[attr-defined]
        return {**super()._settings_extra(), **local_broker.producer_options(settings.local_broker)}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        """Send as Faust does; a delivery that fails later is sent again (:class:`Redelivery`)."""
        future = await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

        def resend() -> Awaitable[Awaitable[RecordMetadata]]:
            return super(CarryoverProducer, self).send(topic, key, value, partition, timestamp, headers)

        self.redelivery.watch(future, resend, f"a record for {topic}")
        return future

    async def flush(self) -> None:
        """Run the :meth:`before_flush` hooks, flush, then wait until every failed delivery was sent again
        and acknowledged."""
        for hook in self._before_flush or ():
            await hook()
        await super().flush()
        await self.redelivery.drain(super().flush)


class CarryoverConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread whose worker consumer waits at most
    ``CARRYOVER_CONSUMER_FETCH_MAX_WAIT_MS`` for a fetch to fill (Faust hard-codes 1 500 ms: on a quiet
    partition a record then waits for the previous long fetch to return, see bench/README.md, latency)."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        settings: Settings = self.app.carryover  # type: ignore[attr-defined]
        consumer._fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms  # read by start()'s Fetcher
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: set[TP],
        timeout: float | None = None,  # noqa: ASYNC109 - Faust's signature
        max_records: int | None = None,
    ) -> Any:
        """Faust's fetch, without the topics a service of the app reads itself
        (:attr:`CarryoverApp.externally_read_topics`): they stay subscribed, so Faust's assignor still
        assigns them and offsets are committed in the app's group, but their records are never fetched
        here (paused in the client, so not even prefetched). Runs in the consumer's thread."""
        external: set[str] = self.app.externally_read_topics  # type: ignore[attr-defined]
        if external:
            held = {tp for tp in consumer.assignment() if tp.topic in external}
            if held - consumer.paused():
                consumer.pause(*held)
            active_partitions = {tp for tp in active_partitions if tp.topic not in external}
        return await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's check that every assigned partition is fetched and processed, except the ones a service
        reads itself (never fetched here: Faust would log "no fetch request sent" for them every few
        minutes; the service's progress shows on the lag page)."""
        if tp.topic not in self.app.externally_read_topics:  # type: ignore[attr-defined]
            super().verify_event_path(now, tp)


class CarryoverConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`CarryoverConsumerThread`, whose seek back to the committed
    offsets also seeks the partitions that have none, and which reads again a stretch of offsets its commit
    is stuck behind (:mod:`app.commit_watch`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._commit_watch = StuckCommitWatch()
        self._clock: Callable[[], float] = time.monotonic
        self._rereads: set[asyncio.Task[None]] = set()

    def _new_consumer_thread(self) -> Any:
        return CarryoverConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit for ``tp``; when there is none because of a hole no record of which
        is being processed, and it has stood for a while, the hole is read again."""
        offset: int | None = super()._new_offset(tp)
        found = None
        if offset is None and self._acked.get(tp):  # nothing acknowledged (an idle partition): no hole
            in_processing = [m.offset for m in list(self._unacked_messages) if m.tp == tp]
            found = hole(self._committed_offset.get(tp), self._acked.get(tp, ()), in_processing)
        if self._commit_watch.check(tp, found, self._clock()) and found is not None:
            task = asyncio.ensure_future(self._read_again(tp, found))
            self._rereads.add(task)
            task.add_done_callback(self._rereads.discard)
        return offset

    async def _read_again(self, tp: TP, stuck: Hole) -> None:
        log.warning(
            "consumer: %s[%d] cannot commit past offset %d: offsets %d..%d were read past and never "
            "acknowledged (a record fetched before a rebalance's seek); reading them again from %d",
            tp.topic,
            tp.partition,
            stuck.first,
            stuck.first,
            stuck.last,
            stuck.first,
        )
        await self.seek(tp, stuck.first)  # also sets Faust's read offset back: the records are processed

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust's, and the holes of ``revoked`` are forgotten."""
        self._commit_watch.forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Seek every stream partition to its committed offset, and one with none to its beginning.

        Faust drops records it fetched while its flow was stopped or the generation changed (a rebalance,
        recovery), then relies on this seek to read them again. aiokafka's ``seek_to_committed`` leaves a
        partition without a committed offset (or at 0) where the fetcher is: past the dropped records, which
        no agent then ever sees. That lost records after a worker died before its first commit (seen as the
        archive's "resumed after a gap" and a stalled archive). ``consumer_auto_offset_reset`` is
        ``earliest``, so the beginning is where such a partition starts anyway. Changelog partitions are left
        to Faust's recovery, which seeks them itself."""
        committed = await super().seek_to_committed()
        changelogs = set(self.app.tables.changelog_topics)
        unset = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if unset:
            log.info(
                "consumer: %d partition(s) without a committed offset read from their beginning: %s",
                len(unset),
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(unset)[:10]),
            )
            await self._thread.seek_to_beginning(*unset)  # noqa: SLF001 - Faust has no public delegate
        return committed

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit ``offsets`` of partitions a service of the app reads itself (after flushing the producer,
        as Faust does); False when they are no longer assigned to this worker or the group rebalanced."""
        return bool(await self._commit_offsets({TP(tp.topic, tp.partition): o for tp, o in offsets.items()}))


class PartitionListener(Protocol):
    """A service that reads partitions Faust assigns (:attr:`CarryoverApp.partition_listeners`)."""

    async def on_revoked(self, revoked: set[TP]) -> None:
        """Faust is about to give ``revoked`` up: finish and commit what was read of them."""

    async def on_assigned(self, assigned: set[TP]) -> None:
        """Faust assigned ``assigned`` (the whole new assignment)."""

    async def drain(self) -> None:
        """The worker stops: finish and commit what was read, stop reading."""


class CarryoverTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport using :class:`CarryoverProducer` and :class:`CarryoverConsumer`."""

    Producer = CarryoverProducer
    Consumer = CarryoverConsumer


class CarryoverWorker(faust.Worker):
    """faust.Worker without the terminal spinner.

    At ``-l warn`` and above Faust's spinner installs a log handler and sets the root logger to DEBUG, so
    every debug call in Faust and aiokafka builds and formats a record that is then dropped: about 6 % of
    the normalize agent's CPU in ``bench/normalize_bench.py`` (py-spy). Without it, the level given is
    the level used.
    """

    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


class CarryoverApp(faust.App):
    """faust.App configured from :class:`Settings`; ``app.carryover`` holds them."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.carryover = settings
        if settings.local_broker:
            local_broker.install_end_offset_correction()
        options: dict[str, Any] = {
            "broker": settings.broker,
            "store": settings.store,
            "table_standby_replicas": settings.standby_replicas,
            "stream_recovery_delay": settings.recovery_delay_seconds,
            "datadir": str(settings.data_dir),
            "web_host": settings.web_host,
            "web_port": settings.web_port,
            "web_bind": settings.web_bind or settings.web_host,
            "topic_partitions": default_catalog().topics[topic_names.STAGING].partitions,
            "topic_replication_factor": settings.topic_replicas,
            "producer_acks": -1,
            "producer_max_request_size": settings.kafka_max_record_bytes,
            "producer_linger": settings.producer_linger_ms / 1000,
            "consumer_auto_offset_reset": "earliest",
            "autodiscover": False,
            "origin": "app",
            "web_tables_enabled": False,  # /table/ would answer table contents to anyone
            "web_router_enabled": False,
            "Worker": CarryoverWorker,
            "version": 1,
            **local_broker.consumer_timeouts(settings.local_broker),
        }
        options.update(overrides)
        super().__init__(settings.app_id, **options)
        self.streams = StreamTopics(self, settings)
        self.readiness_checks: list[Callable[[], str | None]] = []
        """Extra readiness checks of the roles: each returns why the worker is not ready, or None."""
        self.counters: dict[str, Callable[[], Mapping[str, int]]] = {}
        """Each stage's counters by name (exported as ``carryover_<stage>_records_total``)."""
        self.lag_monitor: LagMonitor | None = None
        """The worker's lag monitor (``app.ops.register``)."""
        self.externally_read_topics: set[str] = set()
        """Topics subscribed in the app's group whose records a service reads itself, not Faust's fetcher."""
        self.partition_listeners: list[PartitionListener] = []
        """Services told of revocations (awaited before Faust gives partitions up), assignments and stop."""
        self.stage_readers: dict[str, tuple[str, ...]] = {}
        """Services reading topics in the app's group, by name: the lag page shows them as it shows agents."""

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        for listener in self.partition_listeners:
            try:
                await listener.on_revoked(revoked)
            except Exception:  # noqa: BLE001 - what was not committed is read again by the next owner
                log.exception("a partition listener failed on revoke")
        await super()._on_partitions_revoked(revoked)

    async def _on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        await super()._on_partitions_assigned(assigned, generation_id)
        if self.should_stop:
            return
        for listener in self.partition_listeners:
            await listener.on_assigned(assigned)

    async def on_stop(self) -> None:
        """Drain the partition listeners (they commit through the consumer), then Faust's own stop."""
        for listener in self.partition_listeners:
            try:
                await listener.drain()
            except Exception:  # noqa: BLE001 - what was not committed is read again after the restart
                log.exception("a partition listener failed to drain")
        await super().on_stop()

    async def on_first_start(self) -> None:
        """Create the catalog's topics (catalog partitions and configs) before any agent or source writes.

        Brokers that auto-create topics would otherwise create the staging topic with their default
        partition count the first time ingestion writes to it, and the tables keyed on it would not
        match (Faust's PartitionsMismatch).
        """
        await super().on_first_start()
        await provision_catalog_topics(self.carryover)

    def every(self, seconds: float, *, on_leader: bool = False) -> Callable[[TimerFn], TimerFn]:
        """Typed :meth:`faust.App.timer`: run the decorated coroutine every ``seconds``."""
        return cast(Callable[[TimerFn], TimerFn], self.timer(interval=seconds, on_leader=on_leader))

    def _new_transport(self) -> TransportT:
        return CarryoverTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return CarryoverTransport(self.conf.broker_producer, self)


class StreamTopics:
    """The Faust topics the agents and services of one app read and write: the catalog's names (with
    ``CARRYOVER_TOPIC_PREFIX``), partitions and replicas; keys and values passed as raw bytes."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        catalog = default_catalog()

        def declare(name: str) -> TopicT:
            return app.topic(
                settings.topic_prefix + name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=catalog.topics[name].partitions,
                replicas=settings.topic_replicas,
            )

        self.staging = declare(topic_names.STAGING)
        self.dead_letters = declare(topic_names.DEAD_LETTERS)
        self.canonical = {name: declare(name) for name in topic_names.CANONICAL}
        self.conversation_events = declare(topic_names.CONVERSATION_EVENTS)
        self.webhook_deliveries = declare(topic_names.WEBHOOK_DELIVERIES)
        self.webhook_config = declare(topic_names.WEBHOOK_CONFIG)
        self.archive_policies = declare(topic_names.ARCHIVE_POLICIES)
        sources = [catalog.topics[name] for name in topic_names.CONVERSATION_SOURCES]
        self.conversation_sources = app.topic(
            *(settings.topic_prefix + spec.name for spec in sources),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=sources[0].partitions,
            replicas=settings.topic_replicas,
        )
        """The canonical topics of conversations as one stream (the state stage's route agent reads it)."""


def create_app(settings: Settings) -> CarryoverApp:
    """The Faust app for ``settings``: web views, then each role's agents, tables, timers and services."""
    from agents import ROLES  # noqa: PLC0415 - agents import this module

    app = CarryoverApp(settings)
    ops.register(app)
    for role in ROLES:  # in ROLES' order: archive registers after the state stage it hooks into
        if role in settings.roles:
            ROLES[role](app)
    return app


async def provision_catalog_topics(settings: Settings) -> None:
    """Create missing catalog topics; log drift. A broker that cannot be reached is logged, not fatal."""
    from app.catalog.provision import apply_topics  # noqa: PLC0415 - admin client only at start

    try:
        report = await apply_topics(
            settings.bootstrap_servers,
            default_catalog(),
            dry_run=False,
            prefix=settings.topic_prefix,
            replication_factor=settings.topic_replicas,
        )
    except Exception as exc:  # noqa: BLE001 - the worker still starts; Faust retries the broker itself
        log.warning("could not create the catalog's topics on %s: %r", settings.broker, exc)
        return
    created = report.with_action("created")
    if created:
        log.info("created topics: %s", ", ".join(created))
    for topic in report.drifted:
        log.warning("topic %s differs from the catalog: %s", topic.name, "; ".join(topic.drift))
    for topic in report.topics:
        if topic.action == "failed":
            log.error("could not create topic %s: %s (run `carryover topics apply`)", topic.name, topic.error)
