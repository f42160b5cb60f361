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
from pathlib import Path

from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator
from app.normalize.runtime import build_normalizer
from app.settings import load
from tests.e2e.test_normalize_end_to_end import CANONICAL, staging_record
from tests.support.kafka import produce_records, read_topic, wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

RECORDS = 2400
KILL_AFTER = 600  # canonical records seen before the kill


def test_kill_9_mid_backlog_then_restart_loses_no_canonical_event(
    stack: RunningStack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    tenants = [f"kn{tag}-{i}" for i in range(8)]
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    publications = TrafficGenerator(TrafficConfig(tenants=tenants, bad_fraction=0.05, seed=9), keys).take(
        RECORDS
    )
    records = [staging_record(p, f"{tag}-{i}") for i, p in enumerate(publications)]
    env = worker_env(stack, tmp_path, CARRYOVER_ROLES="normalize", CARRYOVER_KEY_FILE=str(key_file))
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

    worker_a = Worker(env=dict(env), log_path=tmp_path / "worker-a.log").start()
    try:
        seen_before_kill = asyncio.run(
            read_topic(stack.bootstrap, f"{prefix}collaboration.messages.v1", KILL_AFTER, wait=90, settle=0)
        )
    finally:
        worker_a.kill()
    assert len(seen_before_kill) >= KILL_AFTER, worker_a.log_tail()

    worker_b = Worker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b")}, log_path=tmp_path / "b.log"
    )
    worker_b.start()
    try:
        partitions = default_catalog().topics["legacy.staging.v1"].partitions
        asyncio.run(wait_until_committed(stack.bootstrap, group, staging, partitions, len(records), 180))
        time.sleep(1.0)
        canonical = []
        for topic in CANONICAL:
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, 1, wait=20, settle=2.0))
        dead = asyncio.run(read_topic(stack.bootstrap, f"{prefix}carryover.dlq.v1", 1, wait=20, settle=2.0))
    finally:
        worker_b.stop()

    ce_ids = collections.Counter(r.headers["ce_id"] for r in canonical)
    lost = expected - set(ce_ids)
    dead_ids = collections.Counter(r.headers["source_message_id"] for r in dead)
    duplicates = sum(n - 1 for n in ce_ids.values())
    print(
        f"\nnormalize kill -9 after {len(seen_before_kill)} messages: {len(records)} staging records -> "
        f"{len(expected)} canonical expected, {len(set(ce_ids))} distinct seen, lost {len(lost)}, "
        f"duplicated {duplicates}; dead letters {len(set(dead_ids))} of {len(expected_dead)}"
    )
    assert not lost, (len(lost), worker_b.log_tail())
    assert set(ce_ids) == expected
    assert set(dead_ids) == expected_dead
