"""SIGTERM to an ingest worker while its messages are in flight: it stops receiving, gives the batches the
grace (``CARRYOVER_SHUTDOWN_GRACE_SECONDS``), releases at once every message Kafka did not acknowledge (SQS
visibility 0, Pub/Sub ack deadline 0) and exits; nothing is lost, and the released messages can be received
again at once, not after the visibility timeout / ack deadline (120 s here).

How the messages are kept in flight: the worker writes to its own Tansu broker, frozen with SIGSTOP (its
connections stay open, so every write just waits for Kafka's ack) after a first wave has landed. The
broker is resumed (SIGCONT) once the worker logged its shutdown line, so that Faust's own stop (and the
producer's close) meets a live broker; the records the frozen broker was holding may then land too, which
makes duplicates on staging (same source message id), never losses.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.dev.stack import tansu_binary
from app.dev.stack.resources import resource_name
from tests.e2e.test_ingest_support import (
    PROJECT,
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

GRACE = 4.0
TIMEOUT = 120  # SQS visibility timeout and Pub/Sub ack deadline: a message not released waits this long
AWS_TENANTS, GCP_TENANTS = 2, 2
FIRST_AWS, FIRST_GCP = 3, 10  # landed before the broker freezes
HELD_AWS, HELD_GCP = 10, 20  # in flight at SIGTERM
SHUTDOWN_LINE = re.compile(r"ingest shutdown in [0-9.]+s .*")


class FrozenBroker:
    """A Tansu broker (memory storage) of this test only; ``freeze`` / ``thaw`` are SIGSTOP / SIGCONT."""

    def __init__(self, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of this broker."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it is ready."""
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(  # noqa: S603
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "ready in" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"broker did not start:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the broker's process group."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """Resume (if frozen) and kill -9 the broker."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def subscription_path(slug: str) -> str:
    """The Pub/Sub subscription path of one test tenant."""
    return f"projects/{PROJECT}/subscriptions/{resource_name(slug)}"


async def pull_and_nack(stack: RunningStack, paths: list[str]) -> int:
    """Pull (immediate) every subscription until empty, then hand the messages back (ack deadline 0)."""
    root = f"http://{stack.pubsub_host}/v1"
    pulled = 0
    async with aiohttp.ClientSession() as http:
        for path in paths:
            ack_ids: list[str] = []
            while True:
                body = {"maxMessages": 100, "returnImmediately": True}
                async with http.post(f"{root}/{path}:pull", json=body) as resp:
                    got: list[dict[str, Any]] = (await resp.json()).get("receivedMessages", [])
                if not got:
                    break
                ack_ids += [m["ackId"] for m in got]
            pulled += len(ack_ids)
            if ack_ids:
                body = {"ackIds": ack_ids, "ackDeadlineSeconds": 0}
                async with http.post(f"{root}/{path}:modifyAckDeadline", json=body) as resp:
                    resp.raise_for_status()
    return pulled


async def wait_for(what: str, check: Any, seconds: float, every: float = 0.1) -> float:
    """Poll ``check()`` (sync or async) until truthy; seconds it took. Fails after ``seconds``."""
    started = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(every)


async def test_sigterm_mid_flight_releases_at_once_and_loses_nothing(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("ingest-shutdown")
    broker = FrozenBroker(tmp / "tansu.log")
    await asyncio.to_thread(broker.start)
    tenants = Tenants(new_tag())
    await create_tenants(
        tenants,
        [f"{tenants.tag}-a{i}" for i in range(AWS_TENANTS)],
        [f"{tenants.tag}-g{i}" for i in range(GCP_TENANTS)],
        ack_deadline=TIMEOUT,
    )
    first: Worker | None = None
    second: Worker | None = None
    try:
        first = await asyncio.to_thread(
            start_worker,
            stack,
            tmp,
            tenants,
            CARRYOVER_BROKER=f"kafka://{broker.bootstrap}",
            CARRYOVER_SQS_VISIBILITY_TIMEOUT=str(TIMEOUT),
            CARRYOVER_PUBSUB_ACK_DEADLINE=str(TIMEOUT),
            CARRYOVER_SHUTDOWN_GRACE_SECONDS=str(GRACE),
        )
        topic = staging_topic(first)
        sent = await publish_all(tenants, FIRST_AWS, per_gcp_tenant=FIRST_GCP)
        landed = await read_topic(broker.bootstrap, topic, len(sent), wait=45)
        assert tally(sent, landed).lost == [], first.log_tail()

        # freeze Kafka: what is received now is written but never acknowledged, so it stays in flight
        broker.signal(signal.SIGSTOP)
        held = await publish_all(tenants, HELD_AWS, start=1000, per_gcp_tenant=HELD_GCP)
        sent.update(held)
        want = {"sqs": AWS_TENANTS * HELD_AWS, "pubsub": GCP_TENANTS * HELD_GCP}

        def all_in_flight() -> bool:
            totals = sources_view(first)["totals"]
            return all(totals[kind]["in_flight"] >= count for kind, count in want.items())

        await wait_for(f"{want} in flight", all_in_flight, 30)
        acked_before = {k: v["acknowledged"] for k, v in sources_view(first)["totals"].items()}
        log_mark = first.log_path.stat().st_size

        # SIGTERM (the whole process group, as Kubernetes does)
        assert first.proc is not None
        sigterm_at = time.monotonic()
        os.killpg(first.proc.pid, signal.SIGTERM)

        def shutdown_line() -> str | None:
            found = SHUTDOWN_LINE.search(first.log_path.read_bytes()[log_mark:].decode(errors="replace"))
            return found.group(0) if found else None

        released_after = await wait_for("the shutdown line", shutdown_line, GRACE + 20, every=0.05)
        line = shutdown_line()
        # the released SQS messages are visible again at once (moto counts exactly)
        sqs_visible_after = await wait_for(
            "the released SQS messages to be visible",
            lambda: _all_visible(tenants, HELD_AWS),
            10,
        )
        # and the Pub/Sub ones can be pulled again at once (then handed back for the next worker)
        gcp_paths = [subscription_path(slug) for slug in tenants.gcp]
        pubsub_pulled = await pull_and_nack(stack, gcp_paths)
        broker.signal(signal.SIGCONT)  # let Faust's own stop (consumer, producers) finish
        exit_code = await asyncio.to_thread(first.proc.wait, 60)
        exited_after = time.monotonic() - sigterm_at
        log_after = first.log_path.read_bytes()[log_mark:].decode(errors="replace")
        acked_after = _acknowledged_in(log_after)

        # a new worker receives the released messages at once (their timeout is 120 s)
        restart_at = time.monotonic()
        second = Worker(env=first.env, log_path=tmp / "worker-second.log")
        await asyncio.to_thread(second.start)

        def received_again() -> bool:
            totals = sources_view(second)["totals"]
            return all(totals[kind]["acknowledged"] >= count for kind, count in want.items())

        await wait_for("the new worker to land the released messages", received_again, 45)
        redelivered_after = time.monotonic() - restart_at
        records = await read_topic(broker.bootstrap, topic, len(sent), wait=45, settle=1.5)
        result = tally(sent, records)
        totals = sources_view(second)["totals"]
        print(
            f"\nSIGTERM with {want} in flight (Kafka frozen), grace {GRACE:g}s, timeouts {TIMEOUT}s:"
            f"\n  shutdown line {released_after:.1f}s after SIGTERM: {line}"
            f"\n  SQS messages visible again {sqs_visible_after:.1f}s after it; Pub/Sub pulled again at "
            f"once: {pubsub_pulled} of {want['pubsub']}"
            f"\n  process exited {exited_after:.1f}s after SIGTERM (code {exit_code}); broker resumed only "
            f"after the shutdown line"
            f"\n  new worker (start included) landed them within {redelivered_after:.1f}s: received "
            f"{totals['sqs']['received']} sqs ({totals['sqs']['redelivered']} redelivered), "
            f"{totals['pubsub']['received']} pubsub; {result.line()}"
        )
        assert line is not None
        assert f"released {sum(want.values())} at once" in line, line
        assert "release errors 0" in line, line
        assert acked_after == acked_before, "nothing acknowledged at the source without Kafka's ack"
        assert pubsub_pulled == want["pubsub"], "the emulator should honour modifyAckDeadline 0"
        assert exit_code == 0, first.log_tail()
        assert exited_after < GRACE + 20, f"exit took {exited_after:.1f}s:\n{first.log_tail()}"
        assert redelivered_after < TIMEOUT / 2, "redelivered at once, not after the visibility timeout"
        assert totals["sqs"]["redelivered"] >= want["sqs"]
        assert result.lost == [], second.log_tail()
        assert result.unexpected == []
        assert result.dup_ids_consistent, "a duplicate must carry its original's source message id"
    finally:
        broker.signal(signal.SIGCONT)
        for worker in (first, second):
            if worker is not None:
                worker.kill()
        broker.kill()
        await delete_tenants(tenants)


async def _all_visible(tenants: Tenants, per_queue: int) -> bool:
    counts = await queue_counts(tenants)
    return all(visible == per_queue and in_flight == 0 for visible, in_flight in counts.values())


def _acknowledged_in(log: str) -> dict[str, int]:
    """The acknowledged counters of the worker's last summary line (logged at shutdown)."""
    found = re.findall(r"(sqs|pubsub): \d+ sources, received \d+, landed \d+, acked (\d+)", log)
    return {kind: int(count) for kind, count in found[-2:]}
