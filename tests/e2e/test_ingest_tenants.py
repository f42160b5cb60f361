"""55 tenants across SNS->SQS and Pub/Sub, one ingest worker: what a consumer reads from staging."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.dev.simulate.publish import LegacyMessage, Publisher
from app.dev.stack.resources import aws_clients, delete_aws_tenant, delete_gcp_tenant, gcp_clients
from tests.e2e.test_ingest_support import (
    PROJECT,
    Tenants,
    create_tenants,
    delete_tenants,
    dlq_topic,
    new_tag,
    publish_all,
    read_staging,
    sources_view,
    staging_topic,
    start_worker,
    tally,
)
from tests.support.kafka import read_topic
from tests.support.stack import RunningStack
from tests.support.worker import Worker

pytestmark = pytest.mark.e2e

AWS_TENANTS = 30
GCP_TENANTS = 25
PER_TENANT = 12
MAX_BYTES = 4000


@dataclass
class Running:
    """The module's tenants, what was published and the worker ingesting them."""

    tenants: Tenants
    sent: dict[bytes, str]
    worker: Worker
    started_ms: int


@pytest.fixture(scope="module")
async def running(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """Tenants created, traffic (and poison) published before the worker starts, then the worker."""
    tenants = Tenants(new_tag())
    await create_tenants(
        tenants,
        [f"{tenants.tag}-aws{i:02d}" for i in range(AWS_TENANTS)],
        [f"{tenants.tag}-gcp{i:02d}" for i in range(GCP_TENANTS)],
        raw_every=3,
    )
    started_ms = int(time.time() * 1000)
    sent = await publish_all(tenants, PER_TENANT)
    async with Publisher(project=PROJECT) as publisher, aws_clients() as aws:
        await publisher.publish("aws", tenants.aws[1], [LegacyMessage(b"A" * (MAX_BYTES + 1))])
        await publisher.publish("gcp", tenants.gcp[1], [LegacyMessage(b"G" * (MAX_BYTES + 1))])
        # a corrupted SNS envelope (a notification whose Message is not a string), straight onto the queue
        await aws.sqs.send_message(
            QueueUrl=tenants.queue_urls[tenants.aws[2]],
            MessageBody=json.dumps(
                {"Type": "Notification", "TopicArn": "arn:aws:sns:x", "Message": {"no": 1}}
            ),
        )
    tmp = tmp_path_factory.mktemp("ingest-tenants")
    worker = await asyncio.to_thread(
        start_worker, stack, tmp, tenants, CARRYOVER_MAX_MESSAGE_BYTES=str(MAX_BYTES)
    )
    try:
        yield Running(tenants, sent, worker, started_ms)
    finally:
        worker.stop()
        await delete_tenants(tenants)


async def test_every_message_of_55_tenants_lands_exactly_once_with_provenance(
    running: Running, stack: RunningStack
) -> None:
    tenants, sent = running.tenants, running.sent
    records = await read_staging(stack, staging_topic(running.worker), len(sent), wait=90)
    result = tally(sent, records)
    print(f"\n55 tenants: {result.line()}")
    assert result.lost == [], running.worker.log_tail()
    assert result.duplicated == 0
    assert result.unexpected == []
    assert len(records) == len(sent) == (AWS_TENANTS + GCP_TENANTS) * PER_TENANT

    for record in records:
        slug = sent[record.value]
        tenant = tenants.tenant_id(slug)
        headers = record.headers
        assert record.key == tenant.encode()
        assert headers["tenant"] == tenant.encode()
        assert headers["legacyType"] == b"message.sent"
        assert headers["legacyVersion"] == b"3"
        assert headers["source_message_id"]
        assert running.started_ms <= int(headers["received_at"]) <= int(time.time() * 1000)
        if slug in tenants.queue_urls:
            assert headers["source"] == b"sqs"
            assert headers["source_id"] == tenants.queue_urls[slug].encode()
        else:
            assert headers["source"] == b"pubsub"
            assert (
                headers["source_id"] == f"projects/{PROJECT}/subscriptions/carryover-legacy-{slug}".encode()
            )
    raw = [r for r in records if r.headers["source"] == b"sqs" and "sns_message_id" not in r.headers]
    assert len(raw) == 10 * PER_TENANT  # every third AWS tenant has raw delivery on


async def test_poison_messages_are_dead_lettered_with_original_bytes(
    running: Running, stack: RunningStack
) -> None:
    letters = await read_topic(stack.bootstrap, dlq_topic(running.worker), 3, wait=30)
    by_reason = {r.headers["dlq_reason"]: r for r in letters}
    assert len(letters) == 3
    assert set(by_reason) == {b"too_large", b"sns_envelope_unparseable"}
    big = [r for r in letters if r.headers["dlq_reason"] == b"too_large"]
    assert sorted(r.headers["source"] for r in big) == [b"pubsub", b"sqs"]
    for r in big:
        assert r.headers["dlq_stage"] == b"ingest"
        original = r.value[:1] * (MAX_BYTES + 1)  # the limit counts headers too: the copy keeps what fits
        assert original.startswith(r.value) and 0 < len(r.value) < len(original)
        assert r.headers["dlq_truncated"] == b"true"
        assert r.headers["dlq_original_bytes"] == str(MAX_BYTES + 1).encode()
        assert r.headers["dlq_original_sha256"] == hashlib.sha256(original).hexdigest().encode()
        assert r.headers["dlq_origin"] == r.headers["source_id"] + b"#" + r.headers["source_message_id"]
    bad = by_reason[b"sns_envelope_unparseable"]
    assert json.loads(bad.value)["Message"] == {"no": 1}
    assert bad.headers["tenant"] == running.tenants.tenant_id(running.tenants.aws[2]).encode()
    # acknowledged at the source: nothing is left or in flight on the queues
    view = sources_view(running.worker)
    assert view["totals"]["sqs"]["dead_lettered"] == 2
    assert view["totals"]["pubsub"]["dead_lettered"] == 1
    # the lag page sums the sources of every ingesting worker (here one) from carryover.ops.worker-status
    summed = await lag_sources(running.worker)
    assert summed["workers"] == [
        f"{running.worker.env['CARRYOVER_APP_ID']}@http://127.0.0.1:{running.worker.web_port}"
    ]
    assert summed["totals"]["sqs"]["dead_lettered"] == 2 and summed["totals"]["pubsub"]["dead_lettered"] == 1


def read_json(url: str) -> Any:
    """``GET url`` parsed as JSON."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def lag_sources(worker: Worker, wait: float = 40.0) -> dict[str, Any]:
    """The ``sources`` of the worker's /lag.json once it sums at least one worker's status."""
    deadline = time.monotonic() + wait
    answer: Any = None
    while time.monotonic() < deadline:
        try:
            answer = await asyncio.to_thread(read_json, f"http://127.0.0.1:{worker.web_port}/lag.json")
        except OSError as exc:  # 503 before the first sample
            answer = repr(exc)
        if isinstance(answer, dict) and answer.get("sources") and answer["sources"]["workers"]:
            summed: dict[str, Any] = answer["sources"]
            if summed["totals"].get("sqs", {}).get("dead_lettered") == 2:
                return summed
        await asyncio.sleep(1.0)
    raise TimeoutError(f"/lag.json never summed the worker statuses: {answer}")


async def test_tenants_created_mid_run_are_picked_up_and_deleted_ones_dropped(
    running: Running, stack: RunningStack
) -> None:
    tenants = running.tenants
    late = Tenants(tenants.tag)
    await create_tenants(late, [f"{tenants.tag}-late-aws"], [f"{tenants.tag}-late-gcp"])
    tenants.aws += late.aws
    tenants.gcp += late.gcp
    tenants.queue_urls.update(late.queue_urls)
    late_sent = await publish_all(late, 5)
    records = await read_staging(stack, staging_topic(running.worker), len(running.sent) + 10, wait=30)
    result = tally(late_sent, records)
    assert result.lost == [], running.worker.log_tail()
    assert {r.headers["tenant"] for r in records if r.value in late_sent} == {b"late-aws", b"late-gcp"}

    gone_aws, gone_gcp = tenants.aws[0], tenants.gcp[0]
    async with aws_clients() as aws, gcp_clients() as gcp:
        await delete_aws_tenant(gone_aws, clients=aws)
        await delete_gcp_tenant(gone_gcp, project=PROJECT, clients=gcp)
    deadline = time.monotonic() + 15
    inactive: set[str] = set()
    while time.monotonic() < deadline:
        view = sources_view(running.worker)
        inactive = {s["name"] for s in view["sources"] if not s["active"]}
        if {f"carryover-legacy-{gone_aws}", f"carryover-legacy-{gone_gcp}"} <= inactive:
            break
        await asyncio.sleep(0.5)
    assert {f"carryover-legacy-{gone_aws}", f"carryover-legacy-{gone_gcp}"} <= inactive
    assert view["totals"]["sqs"]["sources"] == AWS_TENANTS  # 30 + 1 late - 1 deleted
    assert view["totals"]["pubsub"]["sources"] == GCP_TENANTS
