"""kill -9 of the ingest worker in the middle of its batches, then a restart: nothing is lost, and any
duplicate on staging carries the same source message id as its original."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tests.e2e.test_ingest_support import (
    Tenants,
    create_tenants,
    delete_tenants,
    new_tag,
    publish_all,
    read_staging,
    sources_view,
    staging_topic,
    start_worker,
    tally,
)
from tests.support.stack import RunningStack
from tests.support.worker import Worker

pytestmark = pytest.mark.e2e

TENANTS_PER_CLOUD = 6
PER_AWS_TENANT = 30  # moto's SQS handles ~100 messages/s end to end: keep the SNS side small
PER_GCP_TENANT = 150
WAVES = 10
PER_AWS_WAVE = 3


async def test_kill_9_mid_batches_then_restart_loses_nothing(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tenants = Tenants(new_tag())
    tmp = tmp_path_factory.mktemp("ingest-kill")
    await create_tenants(
        tenants,
        [f"{tenants.tag}-a{i}" for i in range(TENANTS_PER_CLOUD)],
        [f"{tenants.tag}-g{i}" for i in range(TENANTS_PER_CLOUD)],
        ack_deadline=10,
    )
    first: Worker | None = None
    second: Worker | None = None
    try:
        sqs_only = Tenants(tenants.tag, aws=tenants.aws, queue_urls=tenants.queue_urls)
        sent = await publish_all(sqs_only, PER_AWS_TENANT)  # moto is slow: these stay mid-flight for seconds
        env = {
            "CARRYOVER_SQS_VISIBILITY_TIMEOUT": "6",
            "CARRYOVER_PUBSUB_ACK_DEADLINE": "10",
            "CARRYOVER_MAX_IN_FLIGHT": "400",
        }
        first = await asyncio.to_thread(start_worker, stack, tmp, tenants, **env)

        async def waves() -> None:
            # both clouds keep publishing while the worker runs, so that the kill finds both mid-flight
            # (an SQS backlog published only up front can drain before the first Pub/Sub wave lands)
            for wave in range(WAVES):
                sent.update(
                    await publish_all(
                        tenants,
                        PER_AWS_WAVE,
                        start=(wave + 1) * 1000,
                        per_gcp_tenant=PER_GCP_TENANT // WAVES,
                    )
                )
                await asyncio.sleep(0.2)

        publishing = asyncio.create_task(waves())
        totals: dict[str, dict[str, int]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            totals = sources_view(first)["totals"]
            if all(
                totals[kind]["in_flight"] > 0 and totals[kind]["landed"] > 0 for kind in ("sqs", "pubsub")
            ):
                break
            await asyncio.sleep(0.02)
        first.kill()
        landed_at_kill = totals["sqs"]["landed"] + totals["pubsub"]["landed"]
        in_flight_at_kill = {kind: totals[kind]["in_flight"] for kind in ("sqs", "pubsub")}
        assert all(in_flight_at_kill.values()), f"the kill must hit both sources mid-flight: {totals}"
        await publishing  # the last waves are published while no worker runs

        second = Worker(env=first.env, log_path=tmp / "worker-restarted.log")
        await asyncio.to_thread(second.start)
        records = await read_staging(stack, staging_topic(second), len(sent), wait=60)
        result = tally(sent, records)
        totals = sources_view(second)["totals"]
        print(
            f"\nkill -9 at {landed_at_kill} landed / {in_flight_at_kill} in flight: {result.line()}; "
            f"after restart: redelivered {totals['sqs']['redelivered']} (sqs) "
            f"{totals['pubsub']['redelivered']} (pubsub), "
            f"source errors {totals['sqs']['errors']} (sqs) {totals['pubsub']['errors']} (pubsub)"
        )
        lost_by_tenant = Counter(sent[p] for p in result.lost)
        assert result.lost == [], f"lost per tenant {dict(lost_by_tenant)}; after restart {totals}"
        assert result.unexpected == []
        assert result.dup_ids_consistent, "a duplicate must carry its original's source message id"
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.kill()
        await delete_tenants(tenants)
