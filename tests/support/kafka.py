"""Read Kafka as a consumer would (no consumer group, from the beginning)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Record:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def read_topic(
    bootstrap: str, topic: str, expect: int, wait: float = 60.0, settle: float = 1.0
) -> list[Record]:
    """Every record of ``topic`` once ``expect`` arrived (then ``settle`` s more), or after ``wait`` s."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + wait
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()  # noqa: SLF001
                partitions = consumer.partitions_for_topic(topic)
                if partitions is None:
                    await asyncio.sleep(0.2)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Record] = []
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                for r in tp_records:
                    out.append(Record(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers)))
            if len(out) >= expect:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        await consumer.stop()


async def produce_records(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
    *,
    max_request_size: int = 1_048_576,
) -> None:
    """Write (key, value, headers) records in order (acks=all) and wait until the broker has them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        acks = [
            await producer.send(topic, value, key=key, headers=headers) for key, value, headers in records
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """How many records of ``topic`` ``group`` committed, over its ``partitions``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(max(meta.offset, 0) for meta in offsets.values())
    finally:
        await admin.close()


async def wait_until_committed(
    bootstrap: str, group: str, topic: str, partitions: int, total: int, wait_seconds: float = 60.0
) -> None:
    """Wait until ``group`` committed every one of the ``total`` records of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    per_partition: dict[int, int] = {}
    try:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            per_partition = {tp.partition: max(meta.offset, 0) for tp, meta in offsets.items()}
            if sum(per_partition.values()) >= total:
                return
            await asyncio.sleep(0.3)
    finally:
        await admin.close()
    committed = sum(per_partition.values())
    raise TimeoutError(
        f"group {group} committed {committed} of {total} records of {topic}: {sorted(per_partition.items())}"
    )
