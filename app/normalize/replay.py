"""Operator commands over the log: re-inject dead letters, rebuild canonical topics from staging, tail.

* ``carryover dlq replay``: dead letters of the normalize stage go back to ``legacy.staging.v1`` with their
  original key, bytes and headers (the ``dlq_*`` reason headers dropped), e.g. after a key was added or a
  mapping fixed.  A consumer group remembers how far replay got, so running it twice does not re-inject.
* ``carryover replay --from-staging``: re-normalizes the whole staging log into the canonical topics (or
  into ``--target-prefix``-ed copies).  ce_id and encryption nonces are deterministic, so records that
  were already there come out byte-identical and consumers drop them by ce_id.
* ``carryover tail TOPIC``: prints records with headers; canonical values decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app import topics as topic_names
from app.local_broker import producer_options
from app.settings import Settings

Progress = Callable[[str], None]


def _name(settings: Settings, topic: str) -> str:
    return settings.topic_prefix + topic


async def _drain(
    settings: Settings,
    topic: str,
    group: str | None,
    handle: Callable[[Any], Awaitable[None]],
    idle_seconds: float = 3.0,
) -> int:
    """Feed every record of ``topic`` (from the group's position, or the beginning) to ``handle``
    until nothing arrived for ``idle_seconds``; commit the group's offsets at the end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    count = 0
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return 0
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if group is None:
            await consumer.seek_to_beginning(*tps)
        else:
            committed = {tp: await consumer.committed(tp) for tp in tps}
            for tp, offset in committed.items():
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_seconds:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    await handle(record)
                    count += 1
                    idle_since = time.monotonic()
        if group is not None:
            await consumer.commit()
        return count
    finally:
        await consumer.stop()


async def replay_dead_letters(settings: Settings, *, reason: str | None, say: Progress = print) -> int:
    """Re-inject normalize-stage dead letters into staging; returns how many were re-injected."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **producer_options(settings.local_broker)
    )
    await producer.start()
    replayed = 0
    skipped = 0
    try:
        staging = _name(settings, topic_names.STAGING)

        async def handle(record: Any) -> None:
            nonlocal replayed, skipped
            headers = {k: v for k, v in record.headers}
            if headers.get("dlq_stage") != b"normalize" or (
                reason and headers.get("dlq_reason") != reason.encode()
            ):
                skipped += 1
                return
            original = [(k, v) for k, v in record.headers if not k.startswith("dlq_")]
            await producer.send_and_wait(staging, record.value, key=record.key, headers=original)
            replayed += 1
            if replayed % 1000 == 0:
                say(f"replayed {replayed} dead letters")

        await _drain(
            settings, _name(settings, topic_names.DEAD_LETTERS), f"{settings.app_id}-dlq-replay", handle
        )
    finally:
        await producer.stop()
    say(
        f"replayed {replayed} dead letters into {topic_names.STAGING}; left {skipped} (other stage or reason)"
    )
    return replayed


async def replay_from_staging(settings: Settings, *, target_prefix: str | None, say: Progress = print) -> int:
    """Re-normalize the whole staging log into the canonical topics; returns records produced."""
    from app.normalize.runtime import build_normalizer  # noqa: PLC0415 - loads keys and the registry

    normalizer = await build_normalizer(settings)
    prefix = settings.topic_prefix if target_prefix is None else target_prefix
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, **producer_options(settings.local_broker)
    )
    await producer.start()
    produced = 0
    started = time.monotonic()
    try:

        async def handle(record: Any) -> None:
            nonlocal produced
            origin = f"{record.topic}/{record.partition}/{record.offset}"
            for out in normalizer.process(record.key, record.value, list(record.headers), origin):
                await producer.send(prefix + out.topic, out.value, key=out.key, headers=out.headers)
                produced += 1
            if normalizer.stats.records % 5000 == 0:
                rate = normalizer.stats.records / max(time.monotonic() - started, 1e-6)
                say(f"{normalizer.stats.records} staging records re-normalized ({rate:.0f}/s)")

        await _drain(settings, _name(settings, topic_names.STAGING), None, handle)
        await producer.flush()
    finally:
        await producer.stop()
    s = normalizer.stats
    say(f"replayed {s.records} staging records -> {s.canonical} canonical, {s.dead_lettered} dead-lettered")
    return produced


async def tail(settings: Settings, topic: str, *, limit: int, say: Progress = print) -> int:
    """Print up to ``limit`` records of ``topic`` from the beginning."""
    from google.protobuf import text_format  # noqa: PLC0415

    from app.catalog.model import load_catalog  # noqa: PLC0415
    from app.catalog.wire import unframe  # noqa: PLC0415

    catalog = load_catalog()
    spec = catalog.topics.get(topic)
    shown = 0

    async def handle(record: Any) -> None:
        nonlocal shown
        if shown >= limit:
            return
        shown += 1
        headers = " ".join(f"{k}={v.decode(errors='replace')}" for k, v in record.headers)
        say(f"--- {record.topic}/{record.partition}/{record.offset} key={record.key!r}\n    {headers}")
        if spec is not None and spec.envelope:
            framed = unframe(record.value)
            envelope = catalog.envelope_class(topic)()
            envelope.ParseFromString(framed.payload)
            say(
                "    schema id "
                + str(framed.schema_id)
                + "\n    "
                + text_format.MessageToString(envelope, as_one_line=True)
            )
        else:
            say(f"    {record.value[:300]!r}")

    await _drain(settings, _name(settings, topic), None, handle, idle_seconds=2.0)
    return shown


def add_replay_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlq replay`, `replay --from-staging` and `tail` to the carryover command."""
    dlq = sub.add_parser("dlq", help="dead letters")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    replay = dlq_sub.add_parser("replay", help="re-inject normalize-stage dead letters into staging")
    replay.add_argument("--reason", help="only dead letters with this dlq_reason")
    replay.set_defaults(
        handler=lambda a, s: 0 if asyncio.run(replay_dead_letters(s, reason=a.reason)) >= 0 else 1
    )

    rebuild = sub.add_parser("replay", help="rebuild the canonical topics from the staging log")
    rebuild.add_argument("--from-staging", action="store_true", required=True)
    rebuild.add_argument(
        "--target-prefix", help="write into topics with this prefix instead of the live ones"
    )
    rebuild.set_defaults(
        handler=lambda a, s: (
            0 if asyncio.run(replay_from_staging(s, target_prefix=a.target_prefix)) >= 0 else 1
        )
    )

    tail_cmd = sub.add_parser("tail", help="print a topic's records (canonical values decoded)")
    tail_cmd.add_argument("topic")
    tail_cmd.add_argument("--limit", type=int, default=20)
    tail_cmd.set_defaults(handler=lambda a, s: 0 if asyncio.run(tail(s, a.topic, limit=a.limit)) >= 0 else 1)
