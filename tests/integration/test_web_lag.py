"""The lag page, its JSON API, /metrics and the probes of a real worker on the local broker.

The worker runs tests/e2e/table_app/counting.py (carryover's web views registered as the carryover app
registers them).  Its agent gets stuck on a ``stall`` record, so its consumer group lags by exactly the
records behind it; /lag.json must report what the group's own consumer sees: committed offsets from
the group, end offsets = records written, and the stuck partitions' status turns STALL within the
evaluation window (shortened here). Only the app's own group is shown: ``?group=`` is refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app import local_broker
from tests.e2e.table_app.worker import TableWorker
from tests.support.cli import carryover
from tests.support.stack import RunningStack
from tests.support.worker import worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 4


async def produce(
    bootstrap: str, topic: str, per_partition: dict[int, int], value: bytes = b"x"
) -> dict[int, int]:
    """Write ``per_partition[p]`` records to each partition; the end offset (last offset + 1) of each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, **local_broker.producer_options(True)
    )
    await producer.start()
    ends: dict[int, int] = {}
    try:
        for partition, n in per_partition.items():
            futures = [
                await producer.send(topic, value, key=b"k%d" % partition, partition=partition)
                for _ in range(n)
            ]
            for meta in await asyncio.gather(*futures):
                ends[partition] = meta.offset + 1
    finally:
        await producer.stop()
    return ends


async def committed_by_group(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """What the group's own consumer sees as committed, per partition (None: nothing committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def wait_for(condition: Any, what: str, wait_seconds: float = 30.0) -> None:
    """Poll the async ``condition`` until it is true."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(what)


def partition_rows(answer: dict[str, Any], group: str) -> dict[int, tuple[int | None, int, int]]:
    """``{partition: (committed, end, lag)}`` of ``group`` in a /lag.json answer."""
    return {
        p["partition"]: (p["committed"], p["end"], p["lag"])
        for p in answer["partitions"]
        if p["group"] == group
    }


def statuses(answer: dict[str, Any]) -> dict[int, str]:
    """``{partition: status}`` in a /lag.json answer."""
    return {p["partition"]: p["status"] for p in answer["partitions"]}


async def test_lag_page_json_and_metrics_report_a_stuck_group(stack: RunningStack, tmp_path: Path) -> None:
    env = worker_env(
        stack,
        tmp_path,
        TABLE_APP_PARTITIONS=str(PARTITIONS),
        CARRYOVER_LAG_SAMPLE_SECONDS="0.5",
        CARRYOVER_LAG_WINDOW_SECONDS="4",
    )
    topic, group = env["CARRYOVER_TOPIC_PREFIX"] + "counts.in", env["CARRYOVER_APP_ID"]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    worker = TableWorker(env=env, log_path=tmp_path / "worker.log")

    # Probes while the worker is starting: alive at once, not ready until the group assigned it.
    starting = asyncio.create_task(asyncio.to_thread(worker.start))
    readiness: list[tuple[int, str]] = []
    try:
        while not starting.done():
            status, _ctype, body = await asyncio.to_thread(worker.get, "/readyz")
            if status:
                readiness.append((status, body))
            await asyncio.sleep(0.3)
        await starting
        assert readiness and readiness[0][0] == 503 and "consumer not assigned yet" in readiness[0][1]
        assert await asyncio.to_thread(worker.get_json, "/readyz") == {"status": "ready"}
        assert await asyncio.to_thread(worker.get_json, "/healthz") == {"status": "alive"}

        # Processed and committed: 10, 5, 0, 3 records.
        await produce(stack.bootstrap, topic, {0: 10, 1: 5, 3: 3})

        async def all_committed() -> bool:
            return await committed_by_group(stack.bootstrap, group, topic) == {0: 10, 1: 5, 2: None, 3: 3}

        await wait_for(all_committed, "worker did not commit the first records")
        # The agent gets stuck on partition 1; everything written after that stays unread.
        await produce(stack.bootstrap, topic, {1: 1}, value=b"stall")

        async def stalled() -> bool:
            counts = await asyncio.to_thread(worker.counts)
            return bool(counts["counts"].get("stalled") == 1)  # type: ignore[attr-defined]

        await wait_for(stalled, "agent never reached the stall record")
        ends = await produce(stack.bootstrap, topic, {0: 4, 1: 6})
        await asyncio.sleep(1.5)  # three commit intervals: any commit the worker would make is made

        committed = await committed_by_group(stack.bootstrap, group, topic)
        end = {0: ends[0], 1: ends[1], 2: 0, 3: 3}
        consumer_view = {p: (committed[p], end[p], end[p] - (committed[p] or 0)) for p in range(PARTITIONS)}
        assert consumer_view == {0: (10, 14, 4), 1: (5, 12, 7), 2: (None, 0, 0), 3: (3, 3, 0)}

        async def sampled_and_judged() -> bool:
            answer = await asyncio.to_thread(worker.get_json, "/lag.json")
            return bool(
                partition_rows(answer, group) == consumer_view
                and statuses(answer) == {0: "STALL", 1: "STALL", 2: "OK", 3: "OK"}
            )

        await wait_for(sampled_and_judged, "the lag monitor never judged the stuck partition STALL")
        answer = await asyncio.to_thread(worker.get_json, "/lag.json")
        assert partition_rows(answer, group) == consumer_view
        assert answer["total_lag"] == 11
        # the agent is stuck: both partitions with lag STALL (committed unchanged), the others have no lag
        assert statuses(answer) == {0: "STALL", 1: "STALL", 2: "OK", 3: "OK"}
        [agent] = answer["agents"]
        assert (agent["agent"], agent["lag"], agent["status"]) == (
            "tests.e2e.table_app.counting.count",
            11,
            "STALL",
        )
        assert agent["time_lag_seconds"] is not None and agent["time_lag_seconds"] >= 0
        assert answer["worker"] == {"ready": True, "not_ready": []}

        status, ctype, metrics = await asyncio.to_thread(worker.get, "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        lag_samples = dict(
            re.findall(r'carryover_consumer_lag_records\{[^}]*partition="(\d)"[^}]*\} ([\d.]+)', metrics)
        )
        assert lag_samples == {"0": "4.0", "1": "7.0", "2": "0.0", "3": "0.0"}
        stalled_status = r'carryover_partition_status\{[^}]*partition="1",status="STALL"[^}]*\} 1\.0'
        assert re.search(stalled_status, metrics)
        assert "carryover_tables_recovering 0.0" in metrics

        status, ctype, page = await asyncio.to_thread(worker.get, "/lag/")
        assert status == 200 and ctype.startswith("text/html")
        assert "http-equiv='refresh' content='5'" in page and ">STALL</span>" in page
        assert f"<td class='l'>{topic}</td><td>1</td><td>5</td><td>12</td><td>7</td>" in page
        assert f"<td class='l'>{topic}</td><td>2</td><td>—</td><td>0</td><td>0</td>" in page

        # the same view in a terminal: `carryover lag`, worst first
        url = ["--url", f"http://127.0.0.1:{worker.web_port}"]
        shown = await asyncio.to_thread(carryover, ["lag", *url], env)
        print(f"\n$ carryover lag\n{shown.stdout}")  # noqa: T201 - the closing note shows it (pytest -s)
        assert shown.returncode == 0, shown.stderr
        rows = shown.stdout.splitlines()
        assert rows[3].split()[:2] == ["STALL", "tests.e2e.table_app.counting.count"]
        assert any(row.split()[:3] == ["STALL", topic, "1"] for row in rows)
        as_json = await asyncio.to_thread(carryover, ["lag", "--json", *url], env)
        assert json.loads(as_json.stdout)["total_lag"] == 11

        # only the app's own group: another group cannot be looked at through the worker
        status, _ctype, body = await asyncio.to_thread(worker.get, f"/lag.json?group=other&topics={topic}")
        assert status == 400 and "refused" in body
    finally:
        worker.kill()
