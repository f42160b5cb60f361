"""Redelivery at the source: messages whose visibility timeout / ack deadline expired, and a "lossy" Kafka
write path that fails every 10th staging write. Everything arrives in the end; duplicates share ids."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.dev.stack.resources import aws_clients, gcp_clients
from tests.e2e.test_ingest_support import (
    PROJECT,
    Tenants,
    create_tenants,
    delete_tenants,
    new_tag,
    publish_all,
    queue_counts,
    read_staging,
    sources_view,
    staging_topic,
    start_worker,
    tally,
)
from tests.support.stack import RunningStack
from tests.support.worker import Worker

pytestmark = pytest.mark.e2e

TENANTS_PER_CLOUD = 5
PER_AWS_TENANT = 20
PER_GCP_TENANT = 100
STOLEN_PER_SOURCE = 10


async def steal(tenants: Tenants) -> tuple[int, int]:
    """Receive / pull messages like a consumer that then dies: never deleted, never acked."""
    stolen_sqs = stolen_pubsub = 0
    async with aws_clients() as aws, gcp_clients() as (_publisher, subscriber):
        for url in tenants.queue_urls.values():
            reply = await aws.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=STOLEN_PER_SOURCE, VisibilityTimeout=3, WaitTimeSeconds=2
            )
            stolen_sqs += len(reply.get("Messages", []))
        for slug in tenants.gcp:
            path = subscriber.subscription_path(PROJECT, f"carryover-legacy-{slug}")
            stolen_pubsub += len(await subscriber.pull(path, STOLEN_PER_SOURCE, timeout=10))
    return stolen_sqs, stolen_pubsub


async def test_expired_and_failed_messages_come_back_and_all_arrive(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tenants = Tenants(new_tag())
    tmp = tmp_path_factory.mktemp("ingest-redelivery")
    await create_tenants(
        tenants,
        [f"{tenants.tag}-a{i}" for i in range(TENANTS_PER_CLOUD)],
        [f"{tenants.tag}-g{i}" for i in range(TENANTS_PER_CLOUD)],
        ack_deadline=10,
    )
    worker: Worker | None = None
    try:
        sent = await publish_all(tenants, PER_AWS_TENANT, per_gcp_tenant=PER_GCP_TENANT)
        stolen_sqs, stolen_pubsub = await steal(tenants)
        assert stolen_sqs > 0 and stolen_pubsub > 0
        started = time.monotonic()
        worker = await asyncio.to_thread(
            start_worker,
            stack,
            tmp,
            tenants,
            CARRYOVER_TEST_FAIL_EVERY_NTH_SEND="10",
            CARRYOVER_SQS_VISIBILITY_TIMEOUT="6",
            CARRYOVER_PUBSUB_ACK_DEADLINE="10",
        )
        records = await read_staging(stack, staging_topic(worker), len(sent), wait=60)
        result = tally(sent, records)
        totals = sources_view(worker)["totals"]
        print(
            f"\nstolen {stolen_sqs} (sqs) + {stolen_pubsub} (pubsub), every 10th write failed: "
            f"{result.line()} "
            f"in {time.monotonic() - started:.1f}s; failed writes {totals['sqs']['failed']} (sqs) "
            f"{totals['pubsub']['failed']} (pubsub); redelivered {totals['sqs']['redelivered']} (sqs) "
            f"{totals['pubsub']['redelivered']} (pubsub)"
        )
        assert result.lost == [], worker.log_tail()
        assert result.unexpected == []
        assert result.dup_ids_consistent
        # the lossy path really failed writes, and the failed / expired messages really came back
        assert totals["sqs"]["failed"] > 0 and totals["pubsub"]["failed"] > 0
        assert totals["sqs"]["redelivered"] >= stolen_sqs + totals["sqs"]["failed"]
        assert totals["pubsub"]["redelivered"] >= totals["pubsub"]["failed"]
        # and in the end every queue is drained: nothing visible, nothing in flight
        deadline = time.monotonic() + 20
        counts = await queue_counts(tenants)
        while (
            any(visible or in_flight for visible, in_flight in counts.values())
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.5)
            counts = await queue_counts(tenants)
        assert all(c == (0, 0) for c in counts.values()), counts
    finally:
        if worker is not None:
            worker.kill()
        await delete_tenants(tenants)
