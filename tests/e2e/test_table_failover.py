"""A Faust table survives kill -9 of its worker on the local broker (and loses updates without the fix).

Scenario (tests/e2e/table_app/counting.py counts records per key into a changelog-backed memory table):
worker A counts N1 records; once the group's committed offsets reach the end of the source topic, A is
killed with SIGKILL.  Worker B (same app id, fresh data dir) recovers the table from its changelog,
counts N2 more, and ``GET /counts/`` must answer N1 + N2 per key exactly.

Why exactly and not "at least": Faust flushes the producer (changelog writes included) before it
commits source offsets, so once the committed offsets equal the end offsets every count is in the
acknowledged changelog and nothing will be re-read.  Killing only then removes the at-least-once
window (records processed but not committed would legitimately be counted twice); what remains under
test is recovery: B must read the changelog up to its true end.  On Tansu, ListOffsets under-reports
that end; with the end-offset correction removed, B stops short and the final counts come out low.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app import local_broker
from tests.e2e.table_app.worker import TableWorker
from tests.support.kafka import wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import worker_env

pytestmark = pytest.mark.e2e

PARTITIONS = 4
KEYS = [f"key-{i}" for i in range(8)]
FIRST_ROUND = 60  # records per key before the kill
SECOND_ROUND = 25  # records per key after it


async def produce(bootstrap: str, topic: str, per_key: int) -> None:
    """``per_key`` records for every key, sent in large batches."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, **local_broker.producer_options(True)
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, b"x", key=key.encode()) for _ in range(per_key) for key in KEYS]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def kill_and_recover(stack: RunningStack, tmp_path: Path, correction: bool) -> dict[str, object]:
    """Run the scenario; the ``/counts/`` answer of worker B at the end."""
    env = worker_env(
        stack,
        tmp_path,
        TABLE_APP_PARTITIONS=str(PARTITIONS),
        TABLE_APP_END_OFFSET_CORRECTION="true" if correction else "false",
    )
    topic, group = env["CARRYOVER_TOPIC_PREFIX"] + "counts.in", env["CARRYOVER_APP_ID"]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()

    worker_a = TableWorker(env=dict(env), log_path=tmp_path / "worker-a.log")
    worker_b = TableWorker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / f"worker-b-{uuid.uuid4().hex[:6]}")},
        log_path=tmp_path / "worker-b.log",
    )
    try:
        await asyncio.to_thread(worker_a.start)
        await produce(stack.bootstrap, topic, FIRST_ROUND)
        await wait_until_committed(stack.bootstrap, group, topic, PARTITIONS, FIRST_ROUND * len(KEYS))
        worker_a.kill()

        await asyncio.to_thread(worker_b.start)
        await produce(stack.bootstrap, topic, SECOND_ROUND)
        await wait_until_committed(
            stack.bootstrap, group, topic, PARTITIONS, (FIRST_ROUND + SECOND_ROUND) * len(KEYS)
        )
        return await asyncio.to_thread(worker_b.counts)
    finally:
        worker_a.kill()
        worker_b.kill()


async def test_table_survives_kill_9_with_end_offset_correction(stack: RunningStack, tmp_path: Path) -> None:
    answer = await kill_and_recover(stack, tmp_path, correction=True)
    assert answer["end_offset_correction"] is True
    assert answer["counts"] == {key: FIRST_ROUND + SECOND_ROUND for key in KEYS}


async def test_without_end_offset_correction_recovery_loses_updates(
    stack: RunningStack, tmp_path: Path
) -> None:
    answer = await kill_and_recover(stack, tmp_path, correction=False)
    assert answer["end_offset_correction"] is False
    counts = answer["counts"]
    assert isinstance(counts, dict) and set(counts) == set(KEYS)
    assert sum(counts.values()) < (FIRST_ROUND + SECOND_ROUND) * len(KEYS)
    assert all(n <= FIRST_ROUND + SECOND_ROUND for n in counts.values())
