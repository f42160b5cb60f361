"""kill -9 of a normalize worker in the middle of a backlog, then a new worker: no canonical event is lost.

What a consumer of the canonical topics sees is compared with what the normalizer makes of the staging
records (computed here): every expected ce_id is there at least once. Duplicates are allowed (records
processed after the last commit are processed again) and counted; each carries the same ce_id, so a
consumer drops it. Dead letters are counted by source message id.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator
from app.normalize.runtime import build_normalizer
from app.settings import load
from tests.e2e.test_normalize_end_to_end import CANONICAL, staging_record
from tests.support.kafka import committed_total, produce_records, read_topic, wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

RECORDS = 6000  # the batch stage reads up to 2 000 a batch: the kill must land with batches uncommitted
STREAM_RECORDS = 30_000  # written over ~20 s: B's start (~8 s) and A's stop land while records still arrive
PACE_PER_SECOND = 1500  # below one worker's ~3 500/s, so the stage keeps up and commits as it goes
KILL_AFTER = 600  # canonical records seen before the kill


@dataclass
class Backlog:
    """A staging backlog of simulated traffic and what the normalizer makes of it."""

    env: dict[str, str]
    prefix: str
    group: str
    staging: str
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
    expected: set[bytes]  # ce_ids
    expected_dead: set[bytes]  # source message ids

    def read_outputs(self, bootstrap: str) -> tuple[collections.Counter[bytes], collections.Counter[bytes]]:
        """ce_id and dead-letter source id counts of everything on the canonical and dead-letter topics."""
        canonical = []
        for topic in CANONICAL:
            canonical += asyncio.run(read_topic(bootstrap, self.prefix + topic, 1, wait=20, settle=2.0))
        dead = asyncio.run(read_topic(bootstrap, f"{self.prefix}carryover.dlq.v1", 1, wait=20, settle=2.0))
        return (
            collections.Counter(r.headers["ce_id"] for r in canonical),
            collections.Counter(r.headers["source_message_id"] for r in dead),
        )


def staging_backlog(
    stack: RunningStack,
    tmp_path: Path,
    label: str,
    size: int = RECORDS,
    *,
    write: bool = True,
    **env_extra: str,
) -> Backlog:
    """``size`` staging records of 8 tenants (5 % bad), written before any worker runs (unless not ``write``:
    the topics are created, the records left to the caller)."""
    tag = uuid.uuid4().hex[:6]
    tenants = [f"{label}{tag}-{i}" for i in range(8)]
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    traffic = TrafficGenerator(TrafficConfig(tenants=tenants, bad_fraction=0.05, seed=9), keys)
    publications = traffic.take(size)
    records = [staging_record(p, f"{tag}-{i}") for i, p in enumerate(publications)]
    env = worker_env(
        stack, tmp_path, CARRYOVER_ROLES="normalize", CARRYOVER_KEY_FILE=str(key_file), **env_extra
    )
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]

    normalizer = asyncio.run(build_normalizer(load(env)))
    expected: set[bytes] = set()
    expected_dead: set[bytes] = set()
    for key, value, headers in records:
        for out in normalizer.process(key, value, headers, "staging"):
            named = dict(out.headers)
            if out.dead_letter:
                expected_dead.add(named["source_message_id"])
            else:
                expected.add(named["ce_id"])
    staging = f"{prefix}legacy.staging.v1"
    # topics first, as a deploy does (`carryover topics apply`): the staging backlog exists before a worker
    assert asyncio.run(apply_topics(stack.bootstrap, default_catalog(), dry_run=False, prefix=prefix)).ok
    if write:
        asyncio.run(produce_records(stack.bootstrap, staging, records))
    return Backlog(env, prefix, group, staging, records, expected, expected_dead)


@pytest.mark.parametrize("path", ["batch", "agent"])
def test_kill_9_mid_backlog_then_restart_loses_no_canonical_event(
    stack: RunningStack, tmp_path: Path, path: str
) -> None:
    backlog = staging_backlog(stack, tmp_path, "kn", CARRYOVER_NORMALIZE_PATH=path)
    env, prefix, group, staging = backlog.env, backlog.prefix, backlog.group, backlog.staging
    records, expected, expected_dead = backlog.records, backlog.expected, backlog.expected_dead

    worker_a = Worker(env=dict(env), log_path=tmp_path / "worker-a.log").start()
    try:
        seen_before_kill = asyncio.run(
            read_topic(stack.bootstrap, f"{prefix}collaboration.messages.v1", KILL_AFTER, wait=90, settle=0)
        )
    finally:
        worker_a.kill()
    assert len(seen_before_kill) >= KILL_AFTER, worker_a.log_tail()
    partitions = default_catalog().topics["legacy.staging.v1"].partitions
    at_kill = asyncio.run(committed_total(stack.bootstrap, group, staging, partitions))
    assert at_kill < len(records), "the backlog was done before the kill: raise RECORDS"

    worker_b = Worker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b")}, log_path=tmp_path / "b.log"
    )
    worker_b.start()
    try:
        asyncio.run(wait_until_committed(stack.bootstrap, group, staging, partitions, len(records), 180))
        time.sleep(1.0)
        ce_ids, dead_ids = backlog.read_outputs(stack.bootstrap)
    finally:
        worker_b.stop()

    lost = expected - set(ce_ids)
    duplicates = sum(n - 1 for n in ce_ids.values())
    print(
        f"\nnormalize ({path}) kill -9 after {len(seen_before_kill)} messages, {at_kill} committed: "
        f"{len(records)} staging records -> "
        f"{len(expected)} canonical expected, {len(set(ce_ids))} distinct seen, lost {len(lost)}, "
        f"duplicated {duplicates}; dead letters {len(set(dead_ids))} of {len(expected_dead)}"
    )
    assert not lost, (len(lost), worker_b.log_tail())
    assert set(ce_ids) == expected
    assert set(dead_ids) == expected_dead


def test_a_second_worker_joining_and_the_first_leaving_mid_stream_loses_and_repeats_nothing(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The batch stage across two rebalances while staging records keep arriving (written at ~1 500/s, below
    what one worker does): worker B joins (A settles and commits its batch before it gives partitions up,
    then both share them), then A stops with SIGTERM (it drains; B takes everything), both while records
    are still being written. Every event arrives, and none twice: each revoke and the drain committed
    exactly where the stage stood."""
    backlog = staging_backlog(stack, tmp_path, "rb", STREAM_RECORDS, write=False)
    env, group, staging = backlog.env, backlog.group, backlog.staging
    partitions = default_catalog().topics["legacy.staging.v1"].partitions
    worker_a = Worker(env=dict(env), log_path=tmp_path / "worker-a.log").start()
    worker_b = Worker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b")}, log_path=tmp_path / "worker-b.log"
    )
    writing = threading.Thread(
        target=lambda: asyncio.run(write_paced(stack.bootstrap, staging, backlog.records)), daemon=True
    )
    try:
        writing.start()
        time.sleep(3.0)
        worker_b.start()
        time.sleep(2.0)  # both share the partitions a while
        worker_a.stop()
        at_leave = asyncio.run(committed_total(stack.bootstrap, group, staging, partitions))
        still_writing = writing.is_alive()
        writing.join(120)
        asyncio.run(
            wait_until_committed(stack.bootstrap, group, staging, partitions, len(backlog.records), 180)
        )
        time.sleep(1.0)
        ce_ids, dead_ids = backlog.read_outputs(stack.bootstrap)
    finally:
        worker_a.stop()
        worker_b.stop()
    a_log, b_log = worker_a.log_tail(200_000), worker_b.log_tail(200_000)
    duplicates = sum(n - 1 for n in ce_ids.values())
    print(
        f"\nnormalize batch stage, records written at ~{PACE_PER_SECOND}/s; B joined, A left at {at_leave} "
        f"of {len(backlog.records)} committed (still writing: {still_writing}): "
        f"{len(backlog.expected)} canonical expected, {len(set(ce_ids))} distinct seen, "
        f"duplicated {duplicates}"
    )
    assert still_writing, "the records were all written before A left: raise STREAM_RECORDS"
    assert "normalize.batch: gave up" in a_log and "normalize.batch: reading" in b_log  # both rebalances ran
    assert set(ce_ids) == backlog.expected, (len(backlog.expected - set(ce_ids)), b_log[-3000:])
    assert set(dead_ids) == backlog.expected_dead
    assert duplicates == 0, (duplicates, a_log[-3000:])


async def write_paced(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    """Write ``records`` in order, ``PACE_PER_SECOND`` a second in tenths (acks=all, each tenth awaited)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        chunk = PACE_PER_SECOND // 10
        for start in range(0, len(records), chunk):
            began = time.monotonic()
            acks = [
                await producer.send(topic, value, key=key, headers=headers)
                for key, value, headers in records[start : start + chunk]
            ]
            await asyncio.gather(*acks)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
    finally:
        await producer.stop()
