"""The SQS and Pub/Sub adapters in-process against moto's server and Google's emulator, with a sink that
holds writes (a slow Kafka): visibility / ack-deadline extension, the in-flight cap, pull errors."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from app.dev.simulate.publish import LegacyMessage, Publisher
from app.dev.stack.resources import (
    aws_clients,
    create_aws_tenant,
    create_gcp_tenant,
    delete_aws_tenant,
    delete_gcp_tenant,
)
from app.ingest.landing import Landing, LandingConfig
from app.ingest.pubsub import PubSubConfig, PullClient
from app.ingest.runner import IngestRunner
from app.ingest.sqs import SqsConfig
from app.ingest.stats import IngestStats
from tests.e2e.test_ingest_support import new_tag
from tests.support.stack import RunningStack

pytestmark = pytest.mark.integration
PROJECT = "carryover-local"


class HeldSink:
    """Records every landing; writes complete only once ``release`` is set (Kafka acknowledging)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.written: list[bytes] = []
        self.waiting = 0

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        """Wait for the release, then report every landing durable."""
        self.waiting += len(landings)
        await self.release.wait()
        self.waiting -= len(landings)
        self.written.extend(landing.value for landing in landings)
        return [None] * len(landings)


def config_pair(
    stack: RunningStack, prefix: str, *, visibility: int, ack_deadline: int
) -> tuple[SqsConfig, PubSubConfig]:
    """Adapter configs pointed at the session's moto and emulator, discovering every 0.5 s."""
    landing = LandingConfig(prefix)
    return (
        SqsConfig(
            landing, endpoint_url=stack.aws_endpoint, discovery_interval=0.5, visibility_timeout=visibility
        ),
        PubSubConfig(
            landing,
            project=PROJECT,
            emulator_host=stack.pubsub_host,
            discovery_interval=0.5,
            ack_deadline=ack_deadline,
        ),
    )


def prefix_for(slug: str) -> str:
    """A discovery prefix matching only this test's tenant (``carryover-legacy-TAG-``)."""
    return "carryover-legacy-" + slug.rsplit("-", 1)[0] + "-"


async def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true or fail with ``what``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def tenant(stack: RunningStack) -> AsyncIterator[str]:
    """One tenant on both clouds (Pub/Sub ack deadline 10 s, the minimum), removed afterwards."""
    slug = f"{new_tag()}-t"
    await create_aws_tenant(slug, raw_delivery=True)
    await create_gcp_tenant(slug, project=PROJECT, ack_deadline=10)
    yield slug
    await delete_aws_tenant(slug)
    await delete_gcp_tenant(slug, project=PROJECT)


async def publish(slug: str, aws: int, gcp: int) -> set[bytes]:
    """Publish distinct payloads to the tenant on both clouds; returns them."""
    aws_msgs = [LegacyMessage(f"{slug}/aws/{i}".encode()) for i in range(aws)]
    gcp_msgs = [LegacyMessage(f"{slug}/gcp/{i}".encode()) for i in range(gcp)]
    async with Publisher(project=PROJECT) as publisher:
        await publisher.publish("aws", slug, aws_msgs)
        await publisher.publish("gcp", slug, gcp_msgs)
    return {m.payload for m in aws_msgs + gcp_msgs}


async def run_until_cancelled(runner: IngestRunner) -> asyncio.Task[None]:
    """Start the runner in the background."""
    return asyncio.create_task(runner.run())


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the runner and wait for its shutdown."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_slow_kafka_keeps_messages_invisible_without_redelivery(
    stack: RunningStack, tenant: str
) -> None:
    sent = await publish(tenant, aws=10, gcp=10)
    sqs, pubsub = config_pair(stack, prefix_for(tenant), visibility=4, ack_deadline=10)
    sink, stats = HeldSink(), IngestStats()
    task = await run_until_cancelled(IngestRunner(sqs, pubsub, sink, max_in_flight=100, stats=stats))
    try:
        await wait_for(lambda: sink.waiting == 20, 15, "both sources received")
        # held for 3x the SQS visibility timeout and past the subscription's 10 s deadline
        await asyncio.sleep(12)
        async with aws_clients() as aws:
            url = (await aws.sqs.get_queue_url(QueueName=f"carryover-legacy-{tenant}"))["QueueUrl"]
            attrs = (
                await aws.sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )
            )["Attributes"]
        assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == (
            "0",
            "10",
        )
        assert (stats.totals("sqs")["received"], stats.totals("pubsub")["received"]) == (10, 10), (
            "redelivered"
        )
        assert stats.totals()["in_flight"] == 20
        sink.release.set()
        await wait_for(lambda: stats.totals()["acknowledged"] == 20, 10, "acknowledged after the write")
        assert Counter(sink.written) == Counter(sent)
        assert stats.totals()["redelivered"] == 0
    finally:
        await stop(task)


async def test_in_flight_cap_applies_back_pressure(stack: RunningStack, tenant: str) -> None:
    sent = await publish(tenant, aws=30, gcp=60)
    sqs, pubsub = config_pair(stack, prefix_for(tenant), visibility=30, ack_deadline=30)
    sink, stats = HeldSink(), IngestStats()
    runner = IngestRunner(sqs, pubsub, sink, max_in_flight=15, stats=stats)
    task = await run_until_cancelled(runner)
    try:
        await wait_for(lambda: sink.waiting > 0, 15, "first receive")
        await asyncio.sleep(2)
        assert runner.limiter.in_flight <= 15
        assert stats.totals()["received"] <= 15, "nothing is received beyond the cap while Kafka holds"
        sink.release.set()
        await wait_for(lambda: stats.totals()["acknowledged"] == len(sent), 30, "everything acknowledged")
        assert Counter(sink.written) == Counter(sent)
        assert stats.totals()["in_flight"] == 0
    finally:
        await stop(task)


async def test_pubsub_survives_pull_errors_with_backoff(
    stack: RunningStack, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pull = PullClient.pull_now
    failures = {"left": 3}

    async def flaky_pull(self: PullClient, subscription: str, max_messages: int, http_timeout: int = 15):  # type: ignore[no-untyped-def]
        if failures["left"] > 0:
            failures["left"] -= 1
            url = URL(f"http://{stack.pubsub_host}/v1/{subscription}:pull")
            info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
            raise aiohttp.ClientResponseError(info, (), status=503, message="unavailable")
        return await real_pull(self, subscription, max_messages, http_timeout)

    monkeypatch.setattr(PullClient, "pull_now", flaky_pull)
    sent = await publish(tenant, aws=0, gcp=20)
    _sqs, pubsub = config_pair(stack, prefix_for(tenant), visibility=30, ack_deadline=30)
    sink, stats = HeldSink(), IngestStats()
    sink.release.set()
    task = await run_until_cancelled(IngestRunner(None, pubsub, sink, max_in_flight=100, stats=stats))
    try:
        await wait_for(lambda: stats.totals("pubsub")["acknowledged"] == 20, 30, "acknowledged after errors")
        assert stats.totals("pubsub")["errors"] == 3
        assert Counter(sink.written) == Counter(sent)
    finally:
        await stop(task)
