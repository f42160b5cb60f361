"""A commit stuck behind records Faust read past is read again (``app/commit_watch.py``), on the real broker.

The state a rebalance's race leaves behind cannot be produced on demand, so
``tests/e2e/table_app/counting.py`` sets it up inside a real worker when it reads a ``lose-acks`` record: the
acknowledgements since the last commit are gone and the fetcher is sought back to the committed offset while
Faust's read offset stays at that record. Faust then fetches those records again, drops them as already read
and can never commit past them; the consumer's watch must notice the hole and read it again, so that the
group's committed offset reaches the end of the topic and every record is counted (at least once).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app import local_broker
from tests.e2e.table_app.counting import LOSE_ACKS
from tests.e2e.table_app.worker import TableWorker
from tests.support.kafka import wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import worker_env

pytestmark = pytest.mark.e2e

BEFORE, STRETCH, AFTER = 100, 50, 100


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """``values`` in order, all under the key ``k`` (one partition)."""
    options = local_broker.producer_options(True)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **options)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=b"k") for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_a_commit_stuck_behind_records_read_past_is_read_again(
    stack: RunningStack, tmp_path: Path
) -> None:
    # commits every 3 s: the stretch after the last commit is certain to hold the STRETCH records
    env = worker_env(stack, tmp_path, TABLE_APP_PARTITIONS="1", TABLE_APP_COMMIT_INTERVAL="3")
    topic, group = env["CARRYOVER_TOPIC_PREFIX"] + "counts.in", env["CARRYOVER_APP_ID"]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    worker = TableWorker(env=env, log_path=tmp_path / "worker.log")
    try:
        await asyncio.to_thread(worker.start)
        await produce(stack.bootstrap, topic, [b"x"] * BEFORE)
        await wait_until_committed(stack.bootstrap, group, topic, 1, BEFORE)
        await produce(stack.bootstrap, topic, [b"x"] * STRETCH + [LOSE_ACKS] + [b"x"] * AFTER)
        total = BEFORE + STRETCH + 1 + AFTER
        await wait_until_committed(stack.bootstrap, group, topic, 1, total, wait_seconds=90)
        log = worker.log_tail(500_000)
        counted = (await asyncio.to_thread(worker.counts))["counts"]
    finally:
        worker.kill()
    assert f"lose-acks at {topic}[0] offset {BEFORE + STRETCH}" in log, "the fault was set up"
    assert "cannot commit past offset" in log, "the watch read the hole again (and said so)"
    assert isinstance(counted, dict) and int(counted["k"]) >= total, f"every record counted: {counted}"
