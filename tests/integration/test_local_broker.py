"""The local-broker compatibility layer (app/local_broker.py) against the session's real Tansu.

What a consumer sees on Tansu 0.6.0: ListOffsets(LATEST) stops at the newest batch's base offset + 1,
the corrected end offsets equal the real high watermark (= records a consumer reads), the idempotent
producer cannot start, and the correction is only installed when CARRYOVER_LOCAL_BROKER is true.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownError

from app import local_broker
from tests.support.kafka import read_topic
from tests.support.worker import REPO

pytestmark = pytest.mark.integration


async def create_topic(bootstrap: str, partitions: int) -> str:
    """A fresh topic with ``partitions`` partitions."""
    name = f"local-broker-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def produce_batches(bootstrap: str, topic: str, partition: int, batch_sizes: list[int]) -> list[int]:
    """Produce each batch as one linger window (so each lands as one multi-record batch); offsets written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=200,
        max_batch_size=1 << 20,
        **local_broker.producer_options(True),
    )
    await producer.start()
    offsets: list[int] = []
    try:
        for size in batch_sizes:
            futures = [await producer.send(topic, b"record-%d" % i, partition=partition) for i in range(size)]
            offsets.extend(meta.offset for meta in await asyncio.gather(*futures))
    finally:
        await producer.stop()
    return offsets


async def end_offsets_both_ways(
    bootstrap: str, partitions: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(plain ListOffsets answer, corrected answer) for ``partitions``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        plain = await local_broker._original_end_offsets(consumer, partitions)  # noqa: SLF001
        corrected = await local_broker.corrected_end_offsets(consumer, partitions)
    finally:
        await consumer.stop()
    return plain, corrected


async def test_plain_list_offsets_under_reports_and_correction_gives_true_high_watermark(
    kafka_bootstrap: str,
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=3)
    batches = {0: [50, 30], 1: [7, 7, 7, 20], 2: []}  # partition 2 stays empty
    written = {p: await produce_batches(kafka_bootstrap, topic, p, sizes) for p, sizes in batches.items()}
    assert {p: len(o) for p, o in written.items()} == {0: 80, 1: 41, 2: 0}

    records = await read_topic(kafka_bootstrap, topic, expect=121, wait=30, settle=0.5)
    read_per_partition = {p: sum(1 for r in records if r.partition == p) for p in batches}
    assert read_per_partition == {0: 80, 1: 41, 2: 0}

    tps = [TopicPartition(topic, p) for p in batches]
    plain, corrected = await end_offsets_both_ways(kafka_bootstrap, tps)
    # The true high watermark is what a consumer reads: 80, 41, 0.
    assert {tp.partition: n for tp, n in corrected.items()} == read_per_partition
    # Plain ListOffsets stops short: base offset of the newest batch + 1 (not the high watermark).
    last_batch_base = {0: 50, 1: 21}
    assert plain[tps[0]] == last_batch_base[0] + 1 < 80
    assert plain[tps[1]] == last_batch_base[1] + 1 < 41
    assert plain[tps[2]] == 0


async def test_correction_is_exact_after_each_batch(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    tp = TopicPartition(topic, 0)
    produced = 0
    for size in (1, 25, 1, 60):
        await produce_batches(kafka_bootstrap, topic, 0, [size])
        produced += size
        _plain, corrected = await end_offsets_both_ways(kafka_bootstrap, [tp])
        assert corrected[tp] == produced


async def test_non_idempotent_producer_works_and_idempotent_producer_fails(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    local = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **local_broker.producer_options(True))
    await local.start()
    try:
        for i in range(5):
            await local.send_and_wait(topic, b"local-%d" % i, partition=0)
    finally:
        await local.stop()

    real_kafka = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, **local_broker.producer_options(False)
    )
    assert local_broker.producer_options(False) == {"acks": "all", "enable_idempotence": True}
    with pytest.raises(UnknownError):
        try:
            await asyncio.wait_for(real_kafka.start(), 30)
            await asyncio.wait_for(real_kafka.send_and_wait(topic, b"idempotent", partition=0), 30)
        finally:
            await real_kafka.stop()
    assert "InitProducerIdRequest" in caplog.text

    records = await read_topic(kafka_bootstrap, topic, expect=5, wait=20, settle=1.0)
    assert [r.value for r in records] == [b"local-%d" % i for i in range(5)]


PROBE = """
import json
from app import app
from app import local_broker
print(json.dumps({
    "correction": local_broker.end_offset_correction_installed(),
    "producer": dict(app.producer._settings_extra()),
}))
"""


@pytest.mark.parametrize(
    ("local", "correction", "idempotence"),
    [("true", True, False), ("false", False, True), (None, False, True)],
)
def test_compat_layer_is_switched_by_the_local_broker_setting(
    local: str | None, correction: bool, idempotence: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARRYOVER_LOCAL_BROKER"}
    if local is not None:
        env["CARRYOVER_LOCAL_BROKER"] = local
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {"correction": correction, "producer": {"acks": "all", "enable_idempotence": idempotence}}
