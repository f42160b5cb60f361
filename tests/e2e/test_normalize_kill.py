"""kill -9 of a normalize worker in the middle of a backlog, then a new worker: no canonical event is lost.

What a consumer of the canonical topics sees is compared with what the normalizer makes of the staging
records (computed here): every expected ce_id is there at least once. Duplicates are allowed (records
processed after the last commit are processed again) and counted; each carries the same ce_id, so a
consumer drops it. Dead letters are counted by source message id.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

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
REBALANCE_RECORDS = 30_000  # the batch stage does ~2 000/s here: B's start (~8 s) must land mid-backlog
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
    stack: RunningStack, tmp_path: Path, label: str, size: int = RECORDS, **env_extra: str
) -> Backlog:
    """``size`` staging records of 8 tenants (5 % bad), written before any worker runs."""
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


def test_a_second_worker_joining_and_the_first_leaving_mid_backlog_loses_and_repeats_nothing(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The batch stage across two rebalances: worker B joins while A works through the backlog (A finishes
    and commits its batch before giving partitions up, then both share them), then A stops with SIGTERM
    (it drains, B takes everything). Every event arrives, and none twice: each revoke committed exactly
    where the stage stood."""
    backlog = staging_backlog(stack, tmp_path, "rb", REBALANCE_RECORDS)
    env, prefix, group, staging = backlog.env, backlog.prefix, backlog.group, backlog.staging
    partitions = default_catalog().topics["legacy.staging.v1"].partitions
    worker_a = Worker(env=dict(env), log_path=tmp_path / "worker-a.log").start()
    worker_b = Worker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b")}, log_path=tmp_path / "worker-b.log"
    )
    try:
        seen = asyncio.run(
            read_topic(stack.bootstrap, f"{prefix}collaboration.messages.v1", KILL_AFTER, wait=90, settle=0)
        )
        assert len(seen) >= KILL_AFTER, worker_a.log_tail()
        worker_b.start()
        time.sleep(2.0)  # both share the partitions a while
        at_leave = asyncio.run(committed_total(stack.bootstrap, group, staging, partitions))
        assert at_leave < len(backlog.records), "the backlog was done before A left: raise REBALANCE_RECORDS"
        worker_a.stop()
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
        f"\nnormalize batch stage, B joined after {len(seen)} messages, A left at {at_leave} of "
        f"{len(backlog.records)} committed: "
        f"{len(backlog.expected)} canonical expected, {len(set(ce_ids))} distinct seen, "
        f"duplicated {duplicates}"
    )
    assert "normalize.batch: gave up" in a_log and "normalize.batch: reading" in b_log  # both rebalances ran
    assert set(ce_ids) == backlog.expected, (len(backlog.expected - set(ce_ids)), b_log[-3000:])
    assert set(dead_ids) == backlog.expected_dead
    assert duplicates == 0, (duplicates, a_log[-3000:])
