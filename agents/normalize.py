"""Normalize agent: legacy.staging.v1 -> decrypt, decode, map -> canonical topics keyed by tenant.

Thin: the work is :class:`app.normalize.normalizer.Normalizer`. concurrency=1 keeps offsets and the dedupe
window in order (faust #606). A source message id seen within the dedupe window at another staging offset is
dropped (a redelivery at the source landed twice, or a `dlq replay` of a record that went through). The
window (:class:`app.normalize.dedupe.SeenMarks`, in memory per staging partition) remembers the staging
offset that carried it, so the same staging record read again after a crash (processed, not yet committed)
is processed again, never dropped. Its changelog is a Faust table of *batches*: the marks made since the
last flush, one record per staging partition, written by a hook at the start of the producer's flush —
which Faust awaits before it commits staging offsets and when partitions are revoked — so a committed
offset never runs ahead of its marks, at one changelog record per flush instead of one per staging record.
After an assignment Faust recovers the table and the partition's marks are rebuilt from it on first use.
Faust flushes the producer before it commits the staging offset, so a crash re-processes rather than loses.

Records go straight to Faust's producer rather than through ``Topic.send``, whose attachment and sensor
path cost ~20 % of the agent's throughput (bench/README.md); the flush-before-commit covers them too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

import orjson
from faust import StreamT
from faust.types import TP

from app.agent_guard import send_until_accepted
from app.normalize.batch_stage import NAME as BATCH_STAGE_NAME
from app.normalize.batch_stage import NormalizeBatchStage, seen_changelog_topic
from app.normalize.dedupe import SeenMarks, key_partition
from app.normalize.runtime import NormalizeRuntime
from app.normalize.step import normalize_staging_record, send_failed_letter
from app.ops.lag_monitor import client_options

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp, CarryoverConsumer, CarryoverProducer

log = logging.getLogger(__name__)


def register(app: CarryoverApp) -> None:
    """Add the normalize stage (the batch service or the agent, ``CARRYOVER_NORMALIZE_PATH``) and its
    timers to ``app``."""
    runtime = NormalizeRuntime(app.carryover)
    if app.carryover.normalize_path == "batch":
        register_batch_stage(app, runtime)
    else:
        register_agent(app, runtime)

    @app.every(max(1.0, min(10.0, app.carryover.key_cache_ttl / 4)))
    async def refresh_tenant_keys() -> None:
        """Reload tenant keys when half their TTL passed or a lookup missed (a new tenant or key)."""
        if runtime.keyring is not None and await runtime.keyring.ensure_fresh():
            log.info("tenant keys reloaded")

    @app.every(30.0)
    async def log_normalize_progress() -> None:
        """One line every 30 s: what normalize did so far."""
        if runtime.normalizer is not None:
            s = runtime.normalizer.stats
            log.info(
                "normalize: %d staging records -> %d canonical, %d dead-lettered, %d duplicates dropped",
                s.records,
                s.canonical,
                s.dead_lettered,
                s.duplicates,
            )


def register_batch_stage(app: CarryoverApp, runtime: NormalizeRuntime) -> None:
    """The batch service (:mod:`app.normalize.batch_stage`): staging stays subscribed in the app's group
    (Faust assigns it and the offsets are the group's), but the service, not Faust's fetcher, reads it."""
    settings, topics = app.carryover, app.streams
    staging = topics.staging.get_topic_name()
    app.topics.add(topics.staging)  # subscribed: Faust's assignor assigns it; never fetched by Faust
    app.externally_read_topics.add(staging)
    stage = NormalizeBatchStage(
        normalizer=runtime.ready,
        client_options=client_options(app),
        staging_topic=staging,
        dead_letter_topic=topics.dead_letters.get_topic_name(),
        canonical_topics={name: topic.get_topic_name() for name, topic in topics.canonical.items()},
        seen_changelog=seen_changelog_topic(app.conf.id),
        group_id=app.conf.id,
        dedupe_window=float(settings.dedupe_window_seconds),
        partitions=topics.staging.partitions or 1,
        replicas=settings.topic_replicas,
        local=settings.local_broker,
        max_request_size=settings.kafka_max_record_bytes,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        commit=cast("CarryoverConsumer", app.consumer).commit_offsets,
    )
    app.partition_listeners.append(stage)
    app.stage_readers[BATCH_STAGE_NAME] = (staging,)
    app.readiness_checks.append(stage.readiness)
    app.counters["normalize"] = stage.counters

    app.task(stage.start)  # once the app has started: connect, then read what Faust assigned meanwhile


def register_agent(app: CarryoverApp, runtime: NormalizeRuntime) -> None:
    """The normalize agent, its dedupe window and its timers."""
    settings, topics = app.carryover, app.streams
    window = float(settings.dedupe_window_seconds)
    marks = SeenMarks(window) if window > 0 else None
    # The dedupe window's changelog: one record per staging partition and flush (``SeenMarks`` batches),
    # written by the producer's flush hook below, read back by Faust's table recovery on (re)assignment.
    batches = (
        app.Table(
            "normalize-seen-batches",
            key_type=str,
            # [[source id, staging offset + 1, time], ...] as JSON; None, not list: Faust would take a
            # value type other than a scalar for a Model and fail to read the changelog back (list.from_data)
            value_type=None,
            partitions=topics.staging.partitions,
            help="source message ids normalized within the dedupe window, in batches per staging partition",
        )
        if marks is not None
        else None
    )

    if marks is not None and batches is not None:
        staging_name = topics.staging.get_topic_name()

        async def write_batches() -> None:
            """Send the pending marks (Faust awaits this flush before it commits staging offsets)."""
            changelog = batches.changelog_topic.get_topic_name()
            for partition, key, value in marks.take_batches():
                await app.producer.send(changelog, orjson.dumps(key), value, partition, None, None)

        cast("CarryoverProducer", app.producer).before_flush(write_batches)

        def load(partition: int) -> None:
            """Rebuild a partition's marks from the recovered table (after an assignment)."""
            marks.load(partition, ((k, v) for k, v in batches.data.items() if key_partition(k) == partition))

        held: set[int] = set()

        def on_assigned(_sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
            """Keep the marks of partitions this worker keeps (complete in memory: nothing to read back);
            forget the ones it lost, and the ones it gains, which are rebuilt on first use from the table
            Faust recovers for them (another worker may have added to them meanwhile)."""
            tps: Iterable[TP] = args[0] if args else ()
            now = {tp.partition for tp in tps if tp.topic == staging_name}
            for partition in (held - now) | (now - held):
                marks.forget(partition)
            held.clear()
            held.update(now)

        # (Faust's eager rebalance revokes everything first; pending marks of a partition that moves away
        # were written by the flush Faust runs on revoke, before its last commit.)
        app.on_partitions_assigned.connect(on_assigned)

        @app.every(max(1.0, min(60.0, window / 10)))
        async def expire_dedupe_marks() -> None:
            """Forget marks older than the window; delete the batches wholly older than it."""
            changelog = batches.changelog_topic.get_topic_name()
            for partition, key in marks.expire():
                await app.producer.send(changelog, orjson.dumps(key), None, partition, None, None)

    app.counters["normalize"] = lambda: asdict(runtime.normalizer.stats) if runtime.normalizer else {}

    @app.agent(topics.staging, concurrency=1, name="agents.normalize.normalize")
    async def normalize(stream: StreamT[bytes]) -> None:
        """Turn each staging record into canonical records (or one dead letter) and send them.

        Every event is handled inside the guard of :mod:`app.agent_guard`: it ends as its records or its
        one dead letter, and the agent never raises past it.
        """
        normalizer = await runtime.ready()
        producer_send = app.producer.send  # Faust flushes its producer before it commits staging offsets

        async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            await producer_send(topic, key, value, None, None, headers)

        dead_letter_topic = topics.dead_letters.get_topic_name()
        canonical = {name: topic.get_topic_name() for name, topic in topics.canonical.items()}
        async for event in stream.events():
            message = event.message
            headers = [(k, bytes(v)) for k, v in (message.headers or [])]
            partition = message.partition
            origin = f"{message.topic}/{partition}/{message.offset}"
            if marks is not None and not marks.loaded(partition):
                load(partition)
            step = normalize_staging_record(
                normalizer,
                marks,
                message.key,
                message.value,
                headers,
                partition=partition,
                offset=message.offset,
                at=message.timestamp,
                origin=origin,
            )
            if step.duplicate:
                continue
            source_id, outgoing = step.source_id, step.outgoing
            dead_lettered = False
            for out in outgoing:
                dead_lettered = dead_lettered or out.dead_letter
                topic = dead_letter_topic if out.dead_letter else canonical[out.topic]
                try:
                    await send(topic, out.key, out.value, out.headers)
                except Exception as exc:  # noqa: BLE001 - refused as such: the event becomes its dead letter
                    log.error("the producer refused a record from %s (%r); dead-lettering it", origin, exc)
                    letter = send_failed_letter(
                        normalizer, message.key, message.value, headers, out, exc, origin
                    )
                    await send_until_accepted(
                        send, dead_letter_topic, letter.key, letter.value, letter.headers, what=origin
                    )
                    dead_lettered = True
                    break
            if marks is not None and source_id and not dead_lettered:
                # a dead letter may be replayed after a fix: not remembered
                if marks.remember(partition, source_id, message.offset + 1, message.timestamp):
                    await write_batches()  # a full batch: written now, flushed before the next commit
