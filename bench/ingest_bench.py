"""Ingestion benchmark: messages/s landed from SQS and from Pub/Sub with 50 and 300 sources, next to the
source-only ceiling (the same pollers receiving and deleting/acking with no Kafka) measured in the same run.

For every case a private local stack (Tansu, moto's server, Google's Pub/Sub emulator) is used:

* drain: N sources are pre-loaded with a backlog, the in-process :class:`IngestRunner` lands it; the rate
  is backlog / time until the last message is acknowledged at the source;
* trickle: then messages are published one at a time across the sources while the runner runs; latency
  is publish -> landed (Kafka acknowledged, or for the ceiling: handed to the no-op sink), p50 / p99;
* RSS of this process after the case.

Run: ``python -m bench.ingest_bench`` (a few minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from gcloud.aio.pubsub import PublisherClient, PubsubMessage, SubscriberClient

from app.ingest.landing import Landing, LandingConfig
from app.ingest.pubsub import PubSubConfig
from app.ingest.runner import IngestRunner
from app.ingest.sink import KafkaSink, Sink
from app.ingest.sqs import SqsConfig
from app.ingest.stats import IngestStats
from app.topics import STAGING
from bench.common import percentile, private_stack, rss_mb

PROJECT = "carryover-bench"
PAYLOAD_PAD = 400  # ~450-byte payloads, like a legacy JSON event


class NullSink:
    """Acknowledges everything at once without Kafka: the source-only ceiling of the benchmark."""

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        """Pretend every landing is durable."""
        return [None] * len(landings)


def payload(seq: int) -> bytes:
    """A payload carrying its publish time (ms) so landing latency can be measured."""
    return f"{time.time() * 1000:.3f}:{seq}:".encode() + b"x" * PAYLOAD_PAD


class TimingSink:
    """Wraps a sink; records publish -> landed latency (ms) of every landing the inner sink made durable."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.latencies_ms: list[float] = []
        self.landed = 0

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        """Write through the inner sink, then time what it acknowledged."""
        results = await self.inner.write(landings)
        now_ms = time.time() * 1000
        for landing, error in zip(landings, results, strict=True):
            if error is None:
                self.landed += 1
                self.latencies_ms.append(now_ms - float(landing.value.split(b":", 1)[0]))
        return results


@dataclass
class Result:
    """One row of the table."""

    cloud: str
    sources: int
    sink: str
    messages: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    rss_mb: float


class Sources:
    """Creates, fills and removes N queues or subscriptions on the stack."""

    def __init__(self, cloud: str, count: int, env: dict[str, str]) -> None:
        self.cloud, self.count, self.env = cloud, count, env
        self.prefix = f"carryover-legacy-b{uuid.uuid4().hex[:6]}-"
        self.names = [f"{self.prefix}{i:03d}" for i in range(count)]
        self.urls: list[str] = []

    async def create(self) -> None:
        """Make the queues (SQS) or topics + subscriptions (Pub/Sub)."""
        if self.cloud == "sqs":
            async with self._sqs() as sqs:
                sem = asyncio.Semaphore(16)

                async def one(name: str) -> str:
                    async with sem:
                        return str((await sqs.create_queue(QueueName=name))["QueueUrl"])

                self.urls = list(await asyncio.gather(*(one(n) for n in self.names)))
        else:
            async with aiohttp.ClientSession() as http:
                pub, sub = self._gcp(http)
                sem = asyncio.Semaphore(16)

                async def make(name: str) -> None:
                    async with sem:
                        topic = pub.topic_path(PROJECT, name)
                        await pub.create_topic(topic)
                        await sub.create_subscription(sub.subscription_path(PROJECT, name), topic)

                await asyncio.gather(*(make(n) for n in self.names))

    async def delete(self) -> None:
        """Remove what :meth:`create` made."""
        if self.cloud == "sqs":
            async with self._sqs() as sqs:
                await asyncio.gather(
                    *(sqs.delete_queue(QueueUrl=u) for u in self.urls), return_exceptions=True
                )
        else:
            async with aiohttp.ClientSession() as http:
                pub, sub = self._gcp(http)
                await asyncio.gather(
                    *(sub.delete_subscription(sub.subscription_path(PROJECT, n)) for n in self.names),
                    *(pub.delete_topic(pub.topic_path(PROJECT, n)) for n in self.names),
                    return_exceptions=True,
                )

    async def fill(self, per_source: int) -> int:
        """Pre-load ``per_source`` messages on every source; returns the total."""
        seq = iter(range(10**9))
        if self.cloud == "sqs":
            async with self._sqs() as sqs:
                sem = asyncio.Semaphore(8)

                async def fill_queue(url: str) -> None:
                    for start in range(0, per_source, 10):
                        n = min(10, per_source - start)
                        entries = [
                            {"Id": str(i), "MessageBody": payload(next(seq)).decode()} for i in range(n)
                        ]
                        async with sem:
                            await sqs.send_message_batch(QueueUrl=url, Entries=entries)

                await asyncio.gather(*(fill_queue(u) for u in self.urls))
        else:
            async with aiohttp.ClientSession() as http:
                pub, _sub = self._gcp(http)
                sem = asyncio.Semaphore(16)

                async def fill_topic(name: str) -> None:
                    async with sem:
                        await pub.publish(
                            pub.topic_path(PROJECT, name),
                            [PubsubMessage(payload(next(seq))) for _ in range(per_source)],
                        )

                await asyncio.gather(*(fill_topic(n) for n in self.names))
        return per_source * self.count

    async def trickle(self, total: int, per_second: float) -> None:
        """Publish ``total`` single messages round-robin over the sources at ``per_second``."""
        interval = 1.0 / per_second
        async with self._sqs() as sqs, aiohttp.ClientSession() as http:
            pub, _sub = self._gcp(http)
            pending = []
            for i in range(total):
                if self.cloud == "sqs":
                    call = sqs.send_message(
                        QueueUrl=self.urls[i % self.count], MessageBody=payload(i).decode()
                    )
                else:
                    call = pub.publish(
                        pub.topic_path(PROJECT, self.names[i % self.count]), [PubsubMessage(payload(i))]
                    )
                pending.append(asyncio.create_task(call))
                await asyncio.sleep(interval)
            await asyncio.gather(*pending)

    def _sqs(self) -> Any:
        config = AioConfig(max_pool_connections=64)
        return get_session().create_client(
            "sqs", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name="us-east-1", config=config
        )

    def _gcp(self, http: aiohttp.ClientSession) -> tuple[PublisherClient, SubscriberClient]:
        root = f"http://{self.env['PUBSUB_EMULATOR_HOST']}/v1"
        return (
            PublisherClient(session=http, api_root=root),  # type: ignore[arg-type]
            SubscriberClient(session=http, api_root=root),  # type: ignore[arg-type]
        )


async def poll_until(done: Callable[[], bool], seconds: float) -> None:
    """Return once ``done()`` is true or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while True:
        if done() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def run_case(
    env: dict[str, str],
    cloud: str,
    count: int,
    per_source: int,
    trickle: int,
    trickle_rate: float,
    kafka: bool,
) -> Result:
    """One (cloud, source count, sink) case: drain a backlog, then a paced trickle for latency."""
    sources = Sources(cloud, count, env)
    await sources.create()
    backlog = await sources.fill(per_source)
    stats = IngestStats()
    inner: Sink
    kafka_sink: KafkaSink | None = None
    if kafka:
        topic = f"bench-{uuid.uuid4().hex[:6]}.{STAGING}"
        admin = AIOKafkaAdminClient(bootstrap_servers=env["BOOTSTRAP"])
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 6, 1), NewTopic(topic + ".dlq", 1, 1)])
        finally:
            await admin.close()
        kafka_sink = KafkaSink(env["BOOTSTRAP"], topic, topic + ".dlq", local=True)
        await kafka_sink.start()
        inner = kafka_sink
    else:
        inner = NullSink()
    sink = TimingSink(inner)
    landing = LandingConfig(sources.prefix)
    runner = IngestRunner(
        SqsConfig(landing, endpoint_url=env["AWS_ENDPOINT_URL"]) if cloud == "sqs" else None,
        PubSubConfig(landing, project=PROJECT, emulator_host=env["PUBSUB_EMULATOR_HOST"])
        if cloud == "pubsub"
        else None,
        sink,
        max_in_flight=5000,
        stats=stats,
        summary_interval=3600,
    )
    started = time.monotonic()
    task = asyncio.create_task(runner.run())
    try:
        await poll_until(lambda: stats.totals()["acknowledged"] >= backlog, 600)
        elapsed = time.monotonic() - started
        sink.latencies_ms.clear()
        await sources.trickle(trickle, trickle_rate)
        await poll_until(lambda: len(sink.latencies_ms) >= trickle, 60)
        latencies = sorted(sink.latencies_ms)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if kafka_sink is not None:
            await kafka_sink.stop()
        await sources.delete()
    return Result(
        cloud,
        count,
        "kafka" if kafka else "none (ceiling)",
        backlog,
        stats.totals()["acknowledged"] and backlog / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        rss_mb(),
    )


def table(results: list[Result]) -> str:
    """The results as a Markdown table, each Kafka row with its ratio to the ceiling of the same case."""
    ceiling = {(r.cloud, r.sources): r.rate for r in results if r.sink != "kafka"}
    rows = [
        "| source | sources | sink | backlog | landed msg/s | p50 ms | p99 ms | RSS MiB | vs ceiling |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for r in results:
        base = ceiling.get((r.cloud, r.sources))
        ratio = f"{r.rate / base:.2f}" if r.sink == "kafka" and base else "1.00" if r.sink != "kafka" else "-"
        rows.append(
            f"| {r.cloud} | {r.sources} | {r.sink} | {r.messages} | {r.rate:.0f} | {ms(r.p50_ms)} | "
            f"{ms(r.p99_ms)} | {r.rss_mb:.0f} | {ratio} |"
        )
    return "\n".join(rows)


async def main_async(args: argparse.Namespace, env: dict[str, str]) -> list[Result]:
    """Every case, ceiling first then Kafka, for each cloud and source count."""
    plan = {
        # moto's SQS serves ~100-300 requests/s in total: keep its backlogs small
        "sqs": {50: (args.sqs_per_source, 60, 20.0), 300: (max(1, args.sqs_per_source // 3), 60, 20.0)},
        "pubsub": {
            50: (args.pubsub_per_source, 200, 100.0),
            300: (max(1, args.pubsub_per_source // 6), 300, 150.0),
        },
    }
    results: list[Result] = []
    for cloud in args.clouds:
        # warm-up (not reported): connection pools, the emulator's JIT, topic creation paths
        await run_case(env, cloud, 10, 5, 10, 50.0, True)
        for count in args.sources:
            per_source, trickle, rate = plan[cloud][count] if count in plan[cloud] else (10, 60, 20.0)
            for kafka in (False, True):
                result = await run_case(env, cloud, count, per_source, trickle, rate, kafka)
                print(
                    f"  {cloud:6} {count:3} sources, sink {result.sink:14}: {result.rate:7.0f} msg/s, "
                    f"p50 {result.p50_ms or 0:.0f} ms, p99 {result.p99_ms or 0:.0f} ms, "
                    f"RSS {result.rss_mb:.0f} MiB",
                    flush=True,
                )
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    """Start a private stack, run every case, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[50, 300])
    parser.add_argument("--clouds", nargs="+", default=["sqs", "pubsub"], choices=["sqs", "pubsub"])
    parser.add_argument("--sqs-per-source", type=int, default=20)
    parser.add_argument("--pubsub-per-source", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="10 sources, tiny backlogs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sources, args.sqs_per_source, args.pubsub_per_source = [10], 5, 20
    with private_stack("ingest benchmark") as (_work, stack_env):
        env = {**stack_env, "BOOTSTRAP": stack_env["CARRYOVER_BROKER"].split("://", 1)[1]}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        results = asyncio.run(main_async(args, env))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
