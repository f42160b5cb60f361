"""Shared helpers for the ingestion tests (no tests here): tenants, traffic, a worker, and counting what a
consumer of legacy.staging.v1 reads."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.dev.simulate.publish import LegacyMessage, Publisher
from app.dev.stack.resources import (
    aws_clients,
    create_aws_tenant,
    create_gcp_tenant,
    delete_aws_tenant,
    delete_gcp_tenant,
    gcp_clients,
    resource_name,
)
from tests.support.kafka import Record, read_topic
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

PROJECT = "carryover-local"


@dataclass
class Tenants:
    """A set of tenants created for one test, under a unique name prefix so no other test sees them."""

    tag: str
    aws: list[str] = field(default_factory=list)
    gcp: list[str] = field(default_factory=list)
    queue_urls: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """The queue / subscription prefix the worker of this test discovers."""
        return resource_name(f"{self.tag}-")

    def tenant_id(self, slug: str) -> str:
        """The tenant id carryover derives from the resource name (name minus the prefix)."""
        return slug[len(self.tag) + 1 :]


def new_tag() -> str:
    """A short unique tag for resource names."""
    return "i" + uuid.uuid4().hex[:7]


async def create_tenants(
    tenants: Tenants,
    aws: Iterable[str],
    gcp: Iterable[str],
    *,
    raw_every: int = 0,
    ack_deadline: int | None = None,
) -> None:
    """Create the tenants' resources (every ``raw_every``-th AWS tenant with raw delivery)."""
    slots = asyncio.Semaphore(16)
    async with aws_clients() as aws_c, gcp_clients() as gcp_c:

        async def one_aws(i: int, slug: str) -> None:
            async with slots:
                made = await create_aws_tenant(
                    slug, raw_delivery=bool(raw_every) and i % raw_every == 0, clients=aws_c
                )
                tenants.queue_urls[slug] = made.queue_url

        async def one_gcp(slug: str) -> None:
            async with slots:
                await create_gcp_tenant(slug, project=PROJECT, ack_deadline=ack_deadline, clients=gcp_c)

        aws_list, gcp_list = list(aws), list(gcp)
        await asyncio.gather(
            *(one_aws(i, s) for i, s in enumerate(aws_list)), *(one_gcp(s) for s in gcp_list)
        )
    tenants.aws += aws_list
    tenants.gcp += gcp_list


async def delete_tenants(tenants: Tenants) -> None:
    """Remove every resource the test created."""
    async with aws_clients() as aws_c, gcp_clients() as gcp_c:
        await asyncio.gather(
            *(delete_aws_tenant(s, clients=aws_c) for s in tenants.aws),
            *(delete_gcp_tenant(s, project=PROJECT, clients=gcp_c) for s in tenants.gcp),
            return_exceptions=True,
        )


def payloads(slug: str, count: int, start: int = 0) -> list[LegacyMessage]:
    """``count`` distinct legacy JSON payloads for one tenant, each naming itself in ``seq``."""
    return [
        LegacyMessage(
            json.dumps({"seq": f"{slug}/{i}", "type": "message.sent", "text": "héllo ✓"}).encode(),
            {"legacyType": "message.sent", "legacyVersion": "3"},
        )
        for i in range(start, start + count)
    ]


async def publish_all(
    tenants: Tenants, per_tenant: int, start: int = 0, per_gcp_tenant: int | None = None
) -> dict[bytes, str]:
    """Publish ``per_tenant`` messages to every tenant (``per_gcp_tenant`` to Pub/Sub ones if given);
    returns payload -> tenant slug."""
    sent: dict[bytes, str] = {}
    async with Publisher(project=PROJECT) as publisher:
        slots = asyncio.Semaphore(16)

        async def one(cloud: str, slug: str) -> None:
            count = per_gcp_tenant if cloud == "gcp" and per_gcp_tenant is not None else per_tenant
            messages = payloads(slug, count, start)
            async with slots:
                await publisher.publish(cloud, slug, messages)  # type: ignore[arg-type]
            for m in messages:
                sent[m.payload] = slug

        await asyncio.gather(*(one("aws", s) for s in tenants.aws), *(one("gcp", s) for s in tenants.gcp))
    return sent


def start_worker(stack: RunningStack, tmp: Path, tenants: Tenants, **env: str) -> Worker:
    """An ingest-only worker discovering this test's tenants every second."""
    overrides = {
        "CARRYOVER_ROLES": "ingest",
        "CARRYOVER_SQS_QUEUE_PREFIX": tenants.prefix,
        "CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX": tenants.prefix,
        "CARRYOVER_PUBSUB_PROJECT": PROJECT,
        "CARRYOVER_DISCOVERY_INTERVAL_SECONDS": "1",
        **env,
    }
    worker_environment = worker_env(stack, tmp, **overrides)
    return Worker(env=worker_environment, log_path=tmp / f"worker-{tenants.tag}.log").start()


def staging_topic(worker: Worker) -> str:
    """The worker's (prefixed) staging topic."""
    return worker.env["CARRYOVER_TOPIC_PREFIX"] + "legacy.staging.v1"


def dlq_topic(worker: Worker) -> str:
    """The worker's (prefixed) dead-letter topic."""
    return worker.env["CARRYOVER_TOPIC_PREFIX"] + "carryover.dlq.v1"


async def read_staging(stack: RunningStack, topic: str, expect: int, wait: float = 60.0) -> list[Record]:
    """Everything on the staging topic once ``expect`` records arrived (or at timeout)."""
    return await read_topic(stack.bootstrap, topic, expect, wait=wait, settle=1.5)


def sources_view(worker: Worker) -> dict[str, Any]:
    """The worker's /sources/ JSON."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/sources/", timeout=5) as resp:
        view: dict[str, Any] = json.loads(resp.read())
    return view


@dataclass
class Tally:
    """What arrived compared with what was sent."""

    sent: int
    landed: int
    lost: list[bytes]
    duplicated: int
    unexpected: list[bytes]
    dup_ids_consistent: bool

    def line(self) -> str:
        """sent / landed / lost / duplicated, for the report."""
        return f"sent {self.sent}, landed {self.landed}, lost {len(self.lost)}, duplicated {self.duplicated}"


def tally(sent: dict[bytes, str], records: Sequence[Record]) -> Tally:
    """Count, per payload, how often it is on staging; duplicates must share their source message id."""
    counts = Counter(r.value for r in records)
    ids: dict[bytes, set[bytes]] = defaultdict(set)
    for r in records:
        ids[r.value].add(r.headers["source_message_id"])
    return Tally(
        sent=len(sent),
        landed=sum(1 for p in sent if counts[p] > 0),
        lost=[p for p in sent if counts[p] == 0],
        duplicated=sum(counts[p] - 1 for p in sent if counts[p] > 1),
        unexpected=[p for p in counts if p not in sent],
        dup_ids_consistent=all(len(v) == 1 for v in ids.values()),
    )


async def queue_counts(tenants: Tenants) -> dict[str, tuple[int, int]]:
    """Per AWS tenant: (visible, in flight) messages on its queue."""
    out: dict[str, tuple[int, int]] = {}
    async with aws_clients() as aws_c:
        for slug, url in tenants.queue_urls.items():
            reply = await aws_c.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
            attrs = reply["Attributes"]
            out[slug] = (
                int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            )
    return out
