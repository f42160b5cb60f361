"""Kafka unreachable for a while: nothing is deleted or acknowledged at the source meanwhile, and when the
broker is back everything published during the outage arrives.

The worker gets its own Tansu broker with S3 storage on the session's moto (it survives kill -9 and a
restart on the same port), so the session's broker and the other tests are not disturbed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from app.dev.stack import tansu_binary
from tests.e2e.test_ingest_support import (
    Tenants,
    create_tenants,
    delete_tenants,
    new_tag,
    publish_all,
    queue_counts,
    sources_view,
    staging_topic,
    start_worker,
    tally,
)
from tests.support.kafka import read_topic
from tests.support.stack import RunningStack, free_port
from tests.support.worker import Worker

pytestmark = pytest.mark.e2e

TENANTS_PER_CLOUD = 4
PER_AWS_TENANT = 10
PER_GCP_TENANT = 50
OUTAGE_SECONDS = 12.0


class Broker:
    """A Tansu broker on a fixed port with S3 storage; ``kill`` is kill -9, ``start`` (re)starts it."""

    def __init__(self, stack: RunningStack, port: int, bucket: str, log: Path) -> None:
        self.port, self.bucket, self.log = port, bucket, log
        self.env = {
            **os.environ,
            "AWS_ENDPOINT": stack.aws_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of this broker."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) the broker and wait until it is ready."""
        url = f"tcp://{self.bootstrap}"
        mark = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(  # noqa: S603
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", f"s3://{self.bucket}/"],
            env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "ready in" not in self.log.read_bytes()[mark:].decode(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"broker did not start:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9 the broker."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def test_nothing_is_acknowledged_while_kafka_is_down_and_everything_arrives_after(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("ingest-outage")
    bucket = f"tansu-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=stack.aws_endpoint).create_bucket(Bucket=bucket)
    broker = Broker(stack, free_port(), bucket, tmp / "tansu.log")
    broker.start()
    tenants = Tenants(new_tag())
    await create_tenants(
        tenants,
        [f"{tenants.tag}-a{i}" for i in range(TENANTS_PER_CLOUD)],
        [f"{tenants.tag}-g{i}" for i in range(TENANTS_PER_CLOUD)],
        ack_deadline=10,
    )
    worker: Worker | None = None
    try:
        worker = await asyncio.to_thread(
            start_worker,
            stack,
            tmp,
            tenants,
            CARRYOVER_BROKER=f"kafka://{broker.bootstrap}",
            CARRYOVER_SQS_VISIBILITY_TIMEOUT="6",
            CARRYOVER_PUBSUB_ACK_DEADLINE="10",
        )
        topic = staging_topic(worker)
        before = await publish_all(tenants, PER_AWS_TENANT, per_gcp_tenant=PER_GCP_TENANT)
        landed_before = await read_topic(broker.bootstrap, topic, len(before), wait=60)
        assert tally(before, landed_before).lost == []
        acked_before = {k: v["acknowledged"] for k, v in sources_view(worker)["totals"].items()}

        broker.kill()
        during = await publish_all(tenants, PER_AWS_TENANT, start=1000, per_gcp_tenant=PER_GCP_TENANT)
        outage_end = time.monotonic() + OUTAGE_SECONDS
        held = {"sqs": 0, "pubsub": 0}
        while time.monotonic() < outage_end:
            view = sources_view(worker)["totals"]
            assert {k: v["acknowledged"] for k, v in view.items()} == acked_before, "acknowledged while down"
            held = {k: max(held[k], view[k]["in_flight"]) for k in held}
            counts = await queue_counts(tenants)
            # every message published during the outage is still on its queue (visible or in flight)
            assert all(visible + in_flight == PER_AWS_TENANT for visible, in_flight in counts.values()), (
                counts
            )
            await asyncio.sleep(1.0)
        assert held["sqs"] > 0 and held["pubsub"] > 0, f"the worker should hold messages in flight: {held}"

        broker.start()  # same port, same S3 bucket
        sent = {**before, **during}
        records = await read_topic(broker.bootstrap, topic, len(sent), wait=90, settle=2.0)
        result = tally(sent, records)
        print(
            f"\nKafka down {OUTAGE_SECONDS:.0f}s (held in flight up to {held}): {result.line()}; "
            f"nothing acknowledged while down"
        )
        assert result.lost == [], worker.log_tail()
        assert result.unexpected == []
        assert result.dup_ids_consistent
    finally:
        if worker is not None:
            worker.kill()
        broker.kill()
        await delete_tenants(tenants)
