"""The normalize stage as a batch service inside the Faust worker (``CARRYOVER_NORMALIZE_PATH=batch``).

Faust's agent hands records over one event at a time, and that per-event path (consumer hand-over, stream,
``wait_first``, per-record producer call) cost about a third of the worker's CPU (bench/README.md). This
service does the same work a batch at a time, with the same guarantees:

* **Who reads what is still Faust's.** The staging topic stays subscribed by the app's consumer group, so
  Faust's assignor decides which worker owns which staging partition, and offsets are committed in the
  app's group (the lag page and ``carryover lag`` read them as before). Faust's own fetcher never fetches
  staging (:class:`app.faust_app.CarryoverConsumerThread` pauses it): this service reads the partitions
  Faust assigned to this worker with its own aiokafka consumer (no group of its own), from the group's
  committed offsets.
* **fetch many -> transform -> send -> await every ack -> commit.** Each ``getmany`` batch is deduped and
  normalized (:func:`app.normalize.step.normalize_staging_record`, shared with the agent), every output
  and the dedupe window's changelog batches are sent by the service's own producer (acks=all), and the
  offsets after the batch are committed through Faust's consumer only when every send was acknowledged.
  That wait and the commit run while the next batch is normalized (one batch settling at a time, commits in
  order). A send the producer refuses outright turns the record into its dead letter (``send_failed``); a
  delivery that fails later is sent again until Kafka takes it, before the commit. A crash re-processes
  what was not committed.
* **Rebalance and shutdown.** Faust awaits :meth:`NormalizeBatchStage.on_revoked` before it gives
  partitions up (the batch under way finishes and is committed) and :meth:`on_assigned` after it gets
  them; :meth:`drain` (SIGTERM) finishes the batch under way, commits it, and stops reading.
* **Dedupe.** :class:`app.normalize.dedupe.SeenMarks` as in the agent; its changelog is the agent's
  (``<app id>-normalize-seen-batches-changelog``, same keys and values), read back for each assigned
  partition before the first record of it is processed, so the two paths can replace each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from app import local_broker
from app.normalize.dedupe import SeenMarks
from app.normalize.normalizer import Normalizer, Outgoing
from app.normalize.step import normalize_staging_record, send_failed_letter

log = logging.getLogger(__name__)

NAME = "normalize.batch"
"""The stage's name on the lag page, in ``carryover lag`` and in log lines."""
SEEN_BATCHES_TABLE = "normalize-seen-batches"
"""The agent's dedupe table; the batch stage writes and reads its changelog topic directly."""
MAX_RECORDS = 2000
"""Staging records per batch at most."""
LINGER_MS = 5
"""The service sends a whole batch and then awaits it, so a longer linger would only delay it."""
PARTITION_CACHE_SIZE = 100_000
"""(topic, key) -> partition entries kept (keys are tenant ids: a few per tenant and topic)."""
START_FIRST_DELAY = 1.0
START_MAX_DELAY = 30.0
RESEND_FIRST_DELAY = 0.5
RESEND_MAX_DELAY = 30.0

Sent = tuple["asyncio.Future[Any]", Outgoing, int | None, str]
"""A record handed to the producer: its delivery, the record, the partition it was sent to when chosen here
(dedupe changelog batches), and what it came from (for the log)."""
Commit = Callable[[Mapping[TopicPartition, int]], Awaitable[bool]]
"""Commits staging offsets in the app's group (Faust's consumer); False when the group took them away."""


def seen_changelog_topic(app_id: str) -> str:
    """The dedupe window's changelog topic, as Faust names the agent's table changelog."""
    return f"{app_id}-{SEEN_BATCHES_TABLE}-changelog"


def latest_batches(records: Iterable[tuple[bytes | None, bytes | None]]) -> list[tuple[str, bytes]]:
    """The live batches of one changelog partition, in log order: the last value per key, tombstones and
    unreadable keys dropped (what compaction leaves)."""
    latest: dict[str, bytes | None] = {}
    for raw_key, value in records:
        try:
            key = orjson.loads(raw_key) if raw_key else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(key, str):
            latest.pop(key, None)
            latest[key] = value
    return [(key, value) for key, value in latest.items() if value is not None]


class NormalizeBatchStage:
    """Reads the staging partitions Faust assigned to this worker in batches and normalizes them."""

    def __init__(
        self,
        *,
        normalizer: Callable[[], Awaitable[Normalizer]],
        client_options: Mapping[str, Any],
        staging_topic: str,
        dead_letter_topic: str,
        canonical_topics: Mapping[str, str],
        seen_changelog: str,
        group_id: str,
        dedupe_window: float,
        partitions: int,
        replicas: int,
        local: bool,
        max_request_size: int,
        fetch_max_wait_ms: int,
        commit: Commit,
    ) -> None:
        self._ready_normalizer = normalizer
        self.normalizer: Normalizer | None = None
        self.client_options = dict(client_options)
        self.staging_topic = staging_topic
        self.dead_letter_topic = dead_letter_topic
        self.canonical_topics = dict(canonical_topics)
        self.seen_changelog = seen_changelog
        self.group_id = group_id
        self.marks = SeenMarks(dedupe_window) if dedupe_window > 0 else None
        self.partitions = partitions
        self.replicas = replicas
        self.local = local
        self.max_request_size = max_request_size
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.commit = commit
        self.owned: set[TopicPartition] = set()
        self.error: str | None = None
        self.batches = 0
        self.resent = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()  # held by a batch from fetch to commit; rebalance and drain take it
        self._assigned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[None] | None = None  # the last batch's acks and commit
        self._topic_partitions: dict[str, list[int]] = {}
        self._partition_of_key: dict[tuple[str, bytes], int] = {}
        self._stopping = False
        self._expire_every = max(1.0, min(60.0, dedupe_window / 10)) if dedupe_window > 0 else 0.0
        self._expired_at = time.monotonic()

    # ---- life cycle ----

    async def start(self) -> None:
        """Build the normalizer, create the dedupe changelog topic if missing, connect, start reading; on
        failure (tenant keys, schema registry, Kafka unreachable) try again with back-off, the worker not
        ready (``/readyz`` says why) meanwhile."""
        delay = START_FIRST_DELAY
        while not self._stopping:
            try:
                await self._start()
            except Exception as exc:  # noqa: BLE001 - reported by readiness and the log, tried again
                self.error = repr(exc)
                log.error("%s: could not start (%r); trying again in %.0fs", NAME, exc, delay)
                await self._close_clients()
                await asyncio.sleep(delay)
                delay = min(delay * 2, START_MAX_DELAY)
            else:
                self.error = None
                return

    async def _close_clients(self) -> None:
        consumer, producer, self._consumer, self._producer = self._consumer, self._producer, None, None
        for client in (consumer, producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def _start(self) -> None:
        self.normalizer = await self._ready_normalizer()
        if self.marks is not None:
            await self._ensure_changelog()
        self._producer = AIOKafkaProducer(
            linger_ms=LINGER_MS,
            max_batch_size=512 * 1024,
            max_request_size=self.max_request_size,
            **{**self.client_options, "client_id": "carryover-normalize"},
            **local_broker.producer_options(self.local),
        )
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_partition_fetch_bytes=max(1_048_576, self.max_request_size),
            **{**self.client_options, "client_id": "carryover-normalize"},
        )
        await self._producer.start()
        await self._consumer.start()
        for topic in (*self.canonical_topics.values(), self.dead_letter_topic):
            self._topic_partitions[topic] = sorted(await self._producer.partitions_for(topic))
        async with self._lock:  # what Faust assigned before the stage was connected
            if self.owned:
                await self._assign()
                if self.marks is not None:
                    await self._load_marks({tp.partition for tp in self.owned})
                log.info("%s: reading %s", NAME, _names(self.owned))
        self._task = asyncio.create_task(self._run(), name=NAME)

    async def drain(self) -> None:
        """Finish the batch under way (sent, acknowledged, committed), then stop reading and close."""
        self._stopping = True
        self._assigned.set()
        async with self._lock:
            await self._settle_pending()
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self.owned.clear()
        await self._close_clients()
        log.info("%s: stopped after %d batches", NAME, self.batches)

    def readiness(self) -> str | None:
        """Why the stage is not ready (not connected yet, its loop ended, a batch failed), or None."""
        if self._stopping:
            return None
        if self._task is None:
            if self.error is not None:
                return f"{NAME} could not start, trying again: {self.error}"
            return f"{NAME} not started yet (tenant keys, schema ids, Kafka clients)"
        if self._task.done():
            error = None if self._task.cancelled() else self._task.exception()
            return f"{NAME} stopped: {error!r}"
        if self.error is not None:
            return f"{NAME} failed a batch and reads it again: {self.error}"
        return None

    def counters(self) -> dict[str, int]:
        """The normalizer's counters plus the batches and re-sent deliveries."""
        stats = asdict(self.normalizer.stats) if self.normalizer is not None else {}
        return {**stats, "batches": self.batches, "resent": self.resent}

    # ---- rebalance ----

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Faust is giving partitions up: finish and commit the batch under way, stop reading them."""
        gone = {TopicPartition(tp.topic, tp.partition) for tp in revoked} & self.owned
        if not gone:
            return
        async with self._lock:
            await self._settle_pending()
            self.owned -= gone
            await self._assign()
            for tp in gone:
                if self.marks is not None:
                    self.marks.forget(tp.partition)
        log.info("%s: gave up %s", NAME, _names(gone))

    async def on_assigned(self, assigned: Iterable[Any]) -> None:
        """Faust assigned partitions: read the new staging ones from the group's committed offsets (their
        dedupe marks first)."""
        mine = {TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic == self.staging_topic}
        async with self._lock:
            await self._settle_pending()
            new = mine - self.owned
            for tp in self.owned - mine:
                if self.marks is not None:
                    self.marks.forget(tp.partition)
            self.owned = mine
            if self._consumer is None or self._stopping:
                return
            await self._assign()
            if new:
                if self.marks is not None:
                    await self._load_marks({tp.partition for tp in new})
                log.info("%s: reading %s", NAME, _names(new))
            if self.owned:
                self._assigned.set()

    async def _assign(self) -> None:
        """Read exactly the owned partitions, each from the group's committed offset (a new assignment
        resets every position, kept partitions included; after each batch the committed offset is where
        the stage stands)."""
        assert self._consumer is not None
        self._consumer.assign(sorted(self.owned))
        if self.owned:
            await self._seek_committed(set(self.owned))

    async def _seek_committed(self, tps: set[TopicPartition]) -> None:
        admin = AIOKafkaAdminClient(**self.client_options)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=sorted(tps))
        finally:
            await admin.close()
        assert self._consumer is not None
        for tp in tps:
            meta = committed.get(tp)
            if meta is not None and meta.offset >= 0:
                self._consumer.seek(tp, meta.offset)
            else:
                await self._consumer.seek_to_beginning(tp)

    # ---- dedupe changelog ----

    async def _ensure_changelog(self) -> None:
        admin = AIOKafkaAdminClient(**self.client_options)
        await admin.start()
        try:
            if self.seen_changelog in await admin.list_topics():
                return
            topic = NewTopic(
                self.seen_changelog,
                self.partitions,
                self.replicas,
                topic_configs={"cleanup.policy": "compact"},
            )
            await admin.create_topics([topic])
            log.info("%s: created %s", NAME, self.seen_changelog)
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    async def _load_marks(self, partitions: set[int]) -> None:
        """Rebuild each partition's marks from its changelog partition (read to its end)."""
        assert self.marks is not None
        reader = AIOKafkaConsumer(enable_auto_commit=False, **self.client_options)
        await reader.start()
        try:
            tps = [TopicPartition(self.seen_changelog, p) for p in sorted(partitions)]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            records: dict[int, list[tuple[bytes | None, bytes | None]]] = {p: [] for p in partitions}
            pending = set(tps)
            while pending:
                for tp, batch in (await reader.getmany(*pending, timeout_ms=500)).items():
                    records[tp.partition].extend((r.key, r.value) for r in batch)
                for tp in list(pending):  # by position: compaction may have left no record at end - 1
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
            for partition, items in records.items():
                self.marks.load(partition, latest_batches(items))
            log.info(
                "%s: dedupe window of partition(s) %s read back (%d ids)",
                NAME,
                sorted(partitions),
                len(self.marks),
            )
        finally:
            await reader.stop()

    # ---- the loop ----

    async def _run(self) -> None:
        while not self._stopping:
            if not self.owned:
                self._assigned.clear()
                await self._assigned.wait()
                continue
            try:
                async with self._lock:
                    await self._one_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - nothing was committed: the batch is read again
                self.error = repr(exc)
                log.exception("%s: a batch failed; reading it again from the committed offsets in 1 s", NAME)
                await asyncio.sleep(1.0)
                async with self._lock:
                    with contextlib.suppress(Exception):
                        await self._settle_pending()
                    if self.owned:
                        await self._seek_committed(set(self.owned))
                self.error = None

    async def _one_batch(self) -> None:
        assert self._consumer is not None and self.normalizer is not None
        if not self.owned:
            return
        fetched = await self._consumer.getmany(*self.owned, timeout_ms=200, max_records=MAX_RECORDS)
        if not fetched:
            await self._settle_pending()
            await self._expire_marks()
            return
        normalizer, marks = self.normalizer, self.marks
        sends: list[Sent] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, records in fetched.items():
            if tp not in self.owned:
                continue
            for r in records:
                origin = f"{r.topic}/{r.partition}/{r.offset}"
                headers = list(r.headers)
                at = r.timestamp / 1000
                step = normalize_staging_record(
                    normalizer,
                    marks,
                    r.key,
                    r.value,
                    headers,
                    partition=r.partition,
                    offset=r.offset,
                    at=at,
                    origin=origin,
                )
                dead_lettered = False
                for out in step.outgoing:
                    dead_lettered = dead_lettered or out.dead_letter
                    try:
                        sends.append((await self._send(out), out, None, origin))
                    except Exception as exc:  # noqa: BLE001 - refused as such: the record becomes its dead letter
                        log.error(
                            "the producer refused a record from %s (%r); dead-lettering it", origin, exc
                        )
                        letter = send_failed_letter(normalizer, r.key, r.value, headers, out, exc, origin)
                        await self._deliver(letter, None, origin)
                        dead_lettered = True
                        break
                if marks is not None and step.source_id and not step.duplicate and not dead_lettered:
                    marks.remember(r.partition, step.source_id, r.offset + 1, at)
            offsets[tp] = records[-1].offset + 1
        if marks is not None:
            for partition, key, value in marks.take_batches():
                changelog = Outgoing(self.seen_changelog, orjson.dumps(key), value, [])
                sends.append(
                    (await self._send(changelog, partition), changelog, partition, self.seen_changelog)
                )
            await self._expire_marks()
        # the previous batch's acks came in while this one was normalized: settle it (in order), then let
        # this one's acks come in while the next is normalized
        await self._settle_pending()
        self._pending = asyncio.create_task(self._settle(sends, offsets))
        self.batches += 1

    async def _settle(self, sends: list[Sent], offsets: dict[TopicPartition, int]) -> None:
        """Wait for every ack of one batch (sending a failed delivery again until it is taken), then commit
        the offsets after it."""
        results = await asyncio.gather(*(sent[0] for sent in sends), return_exceptions=True)
        for (_, out, partition, origin), result in zip(sends, results, strict=True):
            if isinstance(result, BaseException):
                log.error("delivery of a record from %s failed (%r); sending it again", origin, result)
                await self._deliver(out, partition, origin)
                self.resent += 1
        if offsets and not await self.commit(offsets):
            log.warning(
                "%s: commit of %s refused (a rebalance took them); they are read again", NAME, offsets
            )

    async def _settle_pending(self) -> None:
        """Until the batch sent last is acknowledged and committed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _send(self, out: Outgoing, partition: int | None = None) -> asyncio.Future[Any]:
        assert self._producer is not None
        if out.topic == self.seen_changelog:
            topic = out.topic
        elif out.dead_letter:
            topic = self.dead_letter_topic
        else:
            topic = self.canonical_topics[out.topic]
        if partition is None and out.key is not None:
            partition = self._key_partition(topic, out.key)
        future: asyncio.Future[Any] = await self._producer.send(
            topic, out.value, key=out.key, headers=out.headers, partition=partition
        )
        return future

    def _key_partition(self, topic: str, key: bytes) -> int | None:
        """The partition aiokafka's default partitioner gives ``key`` (murmur2, as the Java client), looked
        up once per (topic, key): in pure Python it was a tenth of the stage's CPU, for a few keys."""
        found = self._partition_of_key.get((topic, key))
        if found is None:
            partitions = self._topic_partitions.get(topic)
            if not partitions:
                return None  # not known yet: aiokafka partitions it (the same way)
            if len(self._partition_of_key) >= PARTITION_CACHE_SIZE:
                self._partition_of_key.clear()
            found = self._partition_of_key[(topic, key)] = DefaultPartitioner()(key, partitions, partitions)
        return found

    async def _deliver(self, out: Outgoing, partition: int | None, what: str) -> None:
        """Send one record until Kafka acknowledges it; never gives up (the commit waits for it)."""
        delay = RESEND_FIRST_DELAY
        while True:
            try:
                await (await self._send(out, partition))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the offset must not move past it
                log.error("delivery of a record from %s failed (%r); again in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESEND_MAX_DELAY)

    async def _expire_marks(self) -> None:
        if self.marks is None or time.monotonic() - self._expired_at < self._expire_every:
            return
        self._expired_at = time.monotonic()
        assert self._producer is not None
        for partition, key in self.marks.expire():  # a lost tombstone only keeps an old batch a while longer
            await self._producer.send(self.seen_changelog, None, key=orjson.dumps(key), partition=partition)


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))
