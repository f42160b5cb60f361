"""A real cluster of state workers: partitions shared, kill -9 moves partitions and table state, nothing lost.

Three ``faust worker`` processes of one app (RocksDB store, one standby replica) share the state stage. The
canonical traffic is written in three slices. During slice 2 one worker is killed with SIGKILL and later
restarted on its own data directory (it rejoins); during slice 3 another is killed for good. After each
phase every conversation is asked for, round robin over the live workers (the read path forwards to the
owner), and must equal the reference state of the records written so far: the counts of facts expected,
applied and lost are printed (run with ``-s``) and lost must be 0.

A second test measures what a standby replica saves: two workers, kill -9 of one, and the changelog records
the survivor reads to recover the partitions it takes over, with one standby and with none.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app import topics as topic_names
from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from tests.e2e.test_state import TOKEN, WINDOW, source_topics, state_env
from tests.support.stack import RunningStack
from tests.support.state import (
    canonical_traffic,
    compare_answers,
    get_json,
    produce_canonical,
    reference,
    split_records,
    up_to,
    wait_ready,
    wait_until_caught_up,
)
from tests.support.worker import Worker

pytestmark = pytest.mark.e2e

PUBLICATIONS = 2400
PARTITIONS = default_catalog().topics[topic_names.CONVERSATION_EVENTS].partitions


def check_phase(name: str, ports: list[int], expected: dict[Any, Any]) -> dict[str, Any]:
    """Once every worker is ready, compare every conversation with the reference; print and return counts."""
    wait_ready(ports)
    report = compare_answers(ports, TOKEN, expected)
    print(  # noqa: T201 - the counts the closing note reports (pytest -s)
        f"\n[{name}] conversations {report['conversations']}: facts expected {report['expected']}, "
        f"applied {report['applied']}, lost {report['lost']}; served by {report['served_by']}"
    )
    assert report["mismatched"] == [], report["mismatched"][:5]
    assert report["lost"] == 0
    return report


def test_three_workers_kill_9_lose_no_update(stack: RunningStack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    key_file, traffic = canonical_traffic(
        tmp_path, [f"sc{tag}-{i}" for i in range(4)], PUBLICATIONS, 5, WINDOW
    )
    env = state_env(stack, tmp_path, key_file, CARRYOVER_STORE="rocksdb://", CARRYOVER_STANDBY_REPLICAS="1")
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    assert asyncio.run(apply_topics(stack.bootstrap, default_catalog(), dry_run=False, prefix=prefix)).ok
    slices = split_records(traffic, 3)
    workers = [
        Worker(env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / f"data-{n}")}, log_path=tmp_path / f"{n}.log")
        for n in "abc"
    ]
    a, b, c = workers
    try:
        for worker in workers:
            worker.start()
        asyncio.run(produce_canonical(stack.bootstrap, prefix, slices[0]))
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        report = check_phase(
            "3 workers, slice 1", [w.web_port for w in workers], reference(up_to(slices, 1), WINDOW).answers()
        )
        assert len(report["served_by"]) == 3, "every worker owns some conversations"

        asyncio.run(produce_canonical(stack.bootstrap, prefix, slices[1]))
        time.sleep(0.5)  # mid-slice: records in flight, offsets not committed yet
        b.kill()
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        expected = reference(up_to(slices, 2), WINDOW).answers()
        check_phase("kill -9 of b during slice 2; a and c", [a.web_port, c.web_port], expected)

        b.start()  # rejoins on its own RocksDB data directory
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        check_phase("b restarted and rejoined", [w.web_port for w in workers], expected)

        asyncio.run(produce_canonical(stack.bootstrap, prefix, slices[2]))
        time.sleep(0.5)
        c.kill()
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        check_phase("kill -9 of c during slice 3; a and b", [a.web_port, b.web_port], traffic.answers())
    finally:
        for worker in workers:
            worker.kill()


def failover_reads(stack: RunningStack, tmp_path: Path, standby_replicas: int) -> dict[str, int]:
    """Two workers, kill -9 of one: changelog records the survivor read to take over, and the final counts."""
    tag = uuid.uuid4().hex[:6]
    key_file, traffic = canonical_traffic(tmp_path, [f"sb{tag}-{i}" for i in range(4)], 1600, 7, WINDOW)
    env = state_env(
        stack,
        tmp_path,
        key_file,
        CARRYOVER_STORE="rocksdb://",
        CARRYOVER_STANDBY_REPLICAS=str(standby_replicas),
    )
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    assert asyncio.run(apply_topics(stack.bootstrap, default_catalog(), dry_run=False, prefix=prefix)).ok
    a, b = (
        Worker(env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / f"data-{n}")}, log_path=tmp_path / f"{n}.log")
        for n in "ab"
    )
    try:
        a.start()
        b.start()
        asyncio.run(produce_canonical(stack.bootstrap, prefix, traffic.records))
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        before = settled_stats(b)
        assert 0 < len(before["active_partitions"]) < PARTITIONS, "a and b share the partitions"
        a.kill()
        after = settled_stats(b, owns=PARTITIONS)  # b took over every partition and recovered them
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        report = compare_answers([b.web_port], TOKEN, traffic.answers())
        assert report["mismatched"] == [] and report["lost"] == 0, report["mismatched"][:5]
        return {
            "standby_replicas": standby_replicas,
            "failover_changelog_reads": after["changelog_read_active"] - before["changelog_read_active"],
            "standby_reads_before_kill": before["changelog_read_standby"],
            "facts": report["applied"],
        }
    finally:
        a.kill()
        b.kill()


def settled_stats(
    worker: Worker, owns: int = 0, quiet_for: float = 3.0, wait: float = 90.0
) -> dict[str, Any]:
    """The worker's /state/stats once it actively owns at least ``owns`` partitions and its changelog
    counters stopped moving for ``quiet_for`` s."""
    deadline = time.monotonic() + wait
    last: dict[str, Any] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        status, stats = get_json(worker.web_port, "/state/stats", TOKEN)
        assert status == 200, stats
        moving = ("changelog_read_active", "changelog_read_standby", "applied")
        if (
            last is None
            or any(stats[k] != last[k] for k in moving)
            or stats["in_recovery"]
            or len(stats["active_partitions"]) < owns
        ):
            last, since = stats, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return stats
        time.sleep(0.5)
    raise TimeoutError(f"state counters of {worker.web_port} still moving: {last}")


def test_a_standby_replica_spares_the_changelog_read_at_failover(stack: RunningStack, tmp_path: Path) -> None:
    with_standby = failover_reads(stack, tmp_path / "standby", 1)
    without = failover_reads(stack, tmp_path / "none", 0)
    print(f"\n[failover] with a standby: {with_standby}\n[failover] without: {without}")  # noqa: T201
    assert with_standby["standby_reads_before_kill"] > 0
    assert without["standby_reads_before_kill"] == 0
    assert without["failover_changelog_reads"] > 100
    assert with_standby["failover_changelog_reads"] < without["failover_changelog_reads"] / 4
