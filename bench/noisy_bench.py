"""Noisy-neighbour benchmark (issue 14): one tenant's backlog against 50 trickling tenants, SQS and Pub/Sub.

Everything runs on a private local stack (Tansu, moto's server, Google's Pub/Sub emulator) through a real
``faust -A app worker`` process with ``CARRYOVER_ROLES=ingest,normalize`` (tenant from the ``tenantId``
attribute, as in production). Per cloud, with simulated legacy traffic (``app.dev.simulate``), published the
way a tenant's backend does (SNS -> SQS, or a Pub/Sub topic). All phases run on one worker that is already
running with its trickle flowing, as in production (a fresh worker would land a backlog at full speed before
normalize's first commit, which opens the admission gate):

1. **trickle alone**: after a warm-up round, the trickling tenants publish one message each per
   ``1/--per-tenant-rate`` seconds, spread evenly, for ``--trickle-seconds``;
2. **backlog alone**: the hot tenant's backlog is published to its queue / topic (a few seconds) and drains
   with no other traffic. Drain rate = backlog publications / time from the first to the last canonical
   record of the hot tenant seen by a consumer here;
3. **trickle + backlog**: the trickle flows (4 s warm-up, then a commit), a new backlog of the same size
   (new events: normalize would drop a repeat as duplicates) is published beside it, and the trickle runs
   until the backlog has drained. Only trickle messages published before the backlog's last canonical
   record count.

On SQS a backlog is loaded while the worker is stopped, which then starts again with the same app, group and
offsets (on moto, SNS publishes starve the queues' receives of CPU, so loading into a running worker would
measure moto's publishing); the trickle of phase 3 resumes as it starts.

Latency = publish call started -> the last canonical record of that legacy message read by a consumer of the
canonical topics here (p50 / p99), and -> its staging record (the ingestion part). Every trickle message
carries a unique W3C ``traceparent`` attribute: ingestion lands it as a staging header and normalize keeps a
valid upstream traceparent on every canonical record it makes, so each record is matched to its publication
by trace id. "-> canonical written" uses the canonical records' own timestamps (when normalize produced
them) instead of when this benchmark's consumer read them: the two differ when the benchmark, which reads
every staging and canonical record, falls behind. "hot-partition p99" is the p99 of the trickling tenants
whose staging records share a partition with the hot tenant's (head-of-line blocking in normalize shows there
first).

Targets (issue 14): trickle p99 with the backlog <= 2x the p99 without; backlog drain rate with the trickle
>= 0.8x its rate alone.

``--latency`` (issue 9, part 7) replaces phase 3 by a trickle at **half the sustained rate**: phase 2 measures
the sustained rate (the backlog's drain alone), then every trickling tenant publishes
at (drain rate / 2) / ``--tenants`` for ``--trickle-seconds``. Latency is also given from the publish call's
return (the message is with the cloud) to the canonical record: SNS publishes on moto took seconds.

Run: ``python -m bench.noisy_bench`` (~9 minutes here: Pub/Sub 3, SQS 6); ``--quick`` for a shorter run;
``--clouds sqs``; ``--repeats N``; ``--label before`` names the table (the script prints the git commit and
whether ``app/ingest`` had uncommitted changes, at the start and at the end of the run).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.publish import LegacyMessage, Publisher
from app.dev.simulate.traffic import Publication, TrafficConfig, TrafficGenerator
from app.dev.stack.resources import aws_clients, create_aws_tenant, create_gcp_tenant, gcp_clients
from app.topics import DEAD_LETTERS, STAGING
from bench.common import percentile, private_stack
from tests.support.worker import Worker

REPO = Path(__file__).resolve().parents[1]
PROJECT = "carryover-bench"
CLOUD = {"sqs": "aws", "pubsub": "gcp"}
DLQ_TOPIC = DEAD_LETTERS
LOAD_CONCURRENCY = 4
PUBLISH_CONCURRENCY = 48
HOT_CHUNK = 5000


def say(line: str) -> None:
    """A progress line, stamped."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def git(*args: str) -> str:
    """A git command's output in this checkout ("?" when git fails)."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603, S607
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return done.stdout.strip()


def tree_state() -> str:
    """Commit, and the state of ``app/ingest`` against it (with a hash of the diff, to see it change)."""
    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--short", "app/ingest")
    if not status:
        return f"commit {commit}, app/ingest clean"
    digest = hashlib.sha1(git("diff", "HEAD", "--", "app/ingest").encode()).hexdigest()[:8]  # noqa: S324
    files = ", ".join(line.split()[-1] for line in status.splitlines())
    return f"commit {commit}, app/ingest UNCOMMITTED changes ({files}; diff sha1 {digest})"


def trace_of(traceparent: bytes | None) -> str | None:
    """The trace id of a ``traceparent`` header."""
    if not traceparent or len(traceparent) < 35:
        return None
    return traceparent[3:35].decode(errors="replace")


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class MachineLoad:
    """The machine's CPU use (all cores, 100 = every core busy) and load average over a span."""

    def __init__(self) -> None:
        self.ticks, self.load = machine_ticks(), os.getloadavg()[0]

    def line(self) -> str:
        """ "busy % / load average at start-end"."""
        busy, total = machine_ticks()
        share = 100 * (busy - self.ticks[0]) / max(1, total - self.ticks[1])
        return f"{share:.0f} % / {self.load:.1f}-{os.getloadavg()[0]:.1f}"


@dataclass
class Sent:
    """One trickle message: when it was published and when its records were seen."""

    tenant: str
    phase: str
    expected: int  # canonical records it makes
    published: float = 0.0  # monotonic, publish call started
    published_wall: float = 0.0  # the same, wall clock (to compare with record timestamps)
    acked: float | None = None  # publish call returned
    staged: float | None = None
    partition: int | None = None  # its staging partition
    seen: int = 0
    canonical: float | None = None  # the last of its canonical records arrived
    written: float | None = None  # wall clock: the latest timestamp of its canonical records (when produced)


@dataclass
class Drain:
    """The hot tenant's backlog in one phase, as seen at staging and at the canonical topics."""

    publications: int
    expected: int  # canonical records
    staged: int = 0
    canonical: int = 0
    first_staged: float | None = None
    last_staged: float | None = None
    first: float | None = None  # first / last canonical record
    last: float | None = None
    partitions: set[int] = field(default_factory=set)
    timed_out: bool = False  # the benchmark stopped waiting before every record arrived

    @property
    def done(self) -> bool:
        """Every canonical record of the backlog arrived (or the benchmark stopped waiting)."""
        return self.canonical >= self.expected or self.timed_out

    def rate(self) -> float | None:
        """Backlog publications per second, first to last canonical record (the share that arrived, when
        timed out)."""
        if self.first is None or self.last is None or self.last <= self.first:
            return None
        return self.publications * min(1.0, self.canonical / self.expected) / (self.last - self.first)

    def landed_rate(self) -> float | None:
        """Backlog publications per second landed in staging, first to last staging record."""
        if self.first_staged is None or self.last_staged is None or self.last_staged <= self.first_staged:
            return None
        return self.staged / (self.last_staged - self.first_staged)


class Observer:
    """Reads one worker's staging, canonical and dead-letter topics from their end, in the background."""

    def __init__(self, bootstrap: str, prefix: str, hot: str, sent: dict[str, Sent]) -> None:
        catalog = default_catalog()
        self.prefix, self.hot, self.sent = prefix, hot.encode(), sent
        self.partitions = [
            TopicPartition(prefix + name, p)
            for name, spec in catalog.topics.items()
            for p in range(spec.partitions)
        ]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        self.drain: Drain | None = None
        self.dead_letters = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition at its end and start reading."""
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_end(*self.partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        staging, dlq = self.prefix + STAGING, self.prefix + DLQ_TOPIC
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    headers = dict(r.headers)
                    if r.topic == dlq:
                        self.dead_letters += 1
                    elif r.topic == staging:
                        self._staged(r.partition, headers, now)
                    else:
                        self._canonical(headers, now, r.timestamp / 1000)

    def _staged(self, partition: int, headers: dict[str, bytes], now: float) -> None:
        drain = self.drain
        if headers.get("tenant") == self.hot:
            if drain is not None:
                drain.staged += 1
                drain.first_staged = drain.first_staged or now
                drain.last_staged = now
                drain.partitions.add(partition)
            return
        sent = self.sent.get(trace_of(headers.get("traceparent")) or "")
        if sent is not None and sent.staged is None:
            sent.staged, sent.partition = now, partition

    def _canonical(self, headers: dict[str, bytes], now: float, written: float) -> None:
        if headers.get("ce_tenantid") == self.hot:
            drain = self.drain
            if drain is not None:
                drain.canonical += 1
                drain.first = drain.first or now
                drain.last = now
            return
        sent = self.sent.get(trace_of(headers.get("traceparent")) or "")
        if sent is not None:
            sent.seen += 1
            sent.written = max(sent.written or 0.0, written)
            if sent.seen >= sent.expected:
                sent.canonical = now

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


@dataclass
class Row:
    """One phase's figures."""

    cloud: str
    phase: str
    backlog: int
    trickle: int = 0  # trickle messages counted
    missing: int = 0  # counted trickle messages never seen at the canonical topics
    publish_p99: float | None = None
    staged_p50: float | None = None
    staged_p99: float | None = None
    p50: float | None = None
    p99: float | None = None
    acked_p50: float | None = None  # from the publish call's return
    acked_p99: float | None = None
    written_p50: float | None = None  # publish call started -> the canonical records' own timestamps
    written_p99: float | None = None
    hot_partition_p99: float | None = None
    hot_partition_tenants: int = 0
    rate: float | None = None
    landed_rate: float | None = None
    worker_cpu: float | None = None  # worker CPU % (100 = one core) over the phase
    load: str = ""
    note: str = ""


class Bench:
    """One cloud's run: the tenants, their traffic, the workers."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], work: Path, cloud: str) -> None:
        self.args, self.env, self.work, self.cloud = args, env, work, cloud
        self.bootstrap = env["CARRYOVER_BROKER"].split("://", 1)[1]
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"nb{tag}-"
        self.hot = f"{self.prefix}hot"
        self.tenants = [f"{self.prefix}t{i:03d}" for i in range(args.tenants)]
        self.backlog = args.sqs_backlog if cloud == "sqs" else args.pubsub_backlog
        self.sent: dict[str, Sent] = {}
        self.key_file = work / f"keys-{tag}.json"
        self.runs = 0
        self.publisher: Publisher | None = None
        self.generators: dict[str, TrafficGenerator] = {}
        self.hot_publications: list[Publication] = []  # the backlog to load next
        self.backlogs: list[list[Publication]] = []
        self.loaded = -1  # index of hot_publications in backlogs
        self.publish_sem = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    # ---- set-up ----

    async def setup(self, loads: int = 1) -> None:
        """Key file, tenants on the cloud, traffic generators, ``loads`` backlogs' publications (each load
        new events: a backlog loaded twice into one worker would be dropped by normalize's dedupe)."""
        generate_key_file(self.key_file, [self.hot, *self.tenants])
        keys = Keyring.static(await LocalKeyFileProvider(self.key_file).load())
        if self.cloud == "sqs":
            async with aws_clients() as aws:
                sem = asyncio.Semaphore(8)

                async def aws_one(tenant: str) -> None:
                    async with sem:
                        await create_aws_tenant(tenant, dlq=False, clients=aws)

                await asyncio.gather(*(aws_one(t) for t in [self.hot, *self.tenants]))
        else:
            async with gcp_clients() as gcp:
                sem = asyncio.Semaphore(8)

                async def gcp_one(tenant: str) -> None:
                    async with sem:
                        await create_gcp_tenant(tenant, project=PROJECT, clients=gcp)

                await asyncio.gather(*(gcp_one(t) for t in [self.hot, *self.tenants]))
        for i, tenant in enumerate(self.tenants):
            self.generators[tenant] = TrafficGenerator(TrafficConfig(tenants=[tenant], seed=100 + i), keys)
        # one generator's cost grows with its history (quadratic past ~10 000 for one tenant): chunks of
        # HOT_CHUNK publications from generators of their own seeds; generated here, before anything is
        # timed (generating blocks the event loop that publishes the trickle)
        for load in range(loads):
            publications: list[Publication] = []
            for seed, start in enumerate(range(0, self.backlog, HOT_CHUNK), start=1000 * (load + 1)):
                generator = TrafficGenerator(TrafficConfig(tenants=[self.hot], seed=seed), keys)
                publications += generator.take(min(HOT_CHUNK, self.backlog - start))
            self.backlogs.append(publications)

    def next_backlog(self) -> None:
        """The next pre-generated backlog becomes the one :meth:`load_backlog` publishes."""
        self.loaded += 1
        self.hot_publications = self.backlogs[self.loaded]

    async def load_backlog(self) -> None:
        """Publish the backlog to the hot tenant's topic (the worker is not running)."""
        assert self.publisher is not None
        started = time.monotonic()
        messages = [LegacyMessage(p.body, dict(p.attributes)) for p in self.hot_publications]
        chunk = 500
        sem = asyncio.Semaphore(LOAD_CONCURRENCY)

        async def part(start: int) -> None:
            assert self.publisher is not None
            async with sem:
                await self.publisher.publish(CLOUD[self.cloud], self.hot, messages[start : start + chunk])

        await asyncio.gather(*(part(s) for s in range(0, len(messages), chunk)))
        say(f"{self.cloud}: backlog of {len(messages)} loaded in {time.monotonic() - started:.0f}s")

    def worker_env(self) -> dict[str, str]:
        """A fresh app (own app id, topic prefix, data dir) running ingest + normalize over our tenants."""
        self.runs += 1
        tag = f"{self.runs:02d}{uuid.uuid4().hex[:4]}"
        return {
            **os.environ,
            **self.env,
            "CARRYOVER_ROLES": "ingest,normalize",
            "CARRYOVER_APP_ID": f"noisy-bench-{tag}",
            "CARRYOVER_TOPIC_PREFIX": f"nb{tag}.",
            "CARRYOVER_DATA_DIR": str(self.work / f"data-{tag}"),
            "CARRYOVER_KEY_FILE": str(self.key_file),
            "CARRYOVER_SQS_QUEUE_PREFIX": f"carryover-legacy-{self.prefix}",
            "CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX": f"carryover-legacy-{self.prefix}",
            "CARRYOVER_PUBSUB_PROJECT": PROJECT,
            "CARRYOVER_TENANT_SOURCE": "attribute",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }

    async def start_worker(self, label: str) -> tuple[Worker, Observer]:
        """Topics, the observer, then the worker (returns once it is ready)."""
        env = self.worker_env()
        prefix = env["CARRYOVER_TOPIC_PREFIX"]
        report = await apply_topics(self.bootstrap, default_catalog(), dry_run=False, prefix=prefix)
        assert report.ok, report.summary()
        observer = Observer(self.bootstrap, prefix, self.hot, self.sent)
        await observer.start()
        worker = Worker(env=env, log_path=self.work / f"worker-{self.cloud}-{self.runs:02d}-{label}.log")
        started = time.monotonic()
        await asyncio.to_thread(worker.start, 120.0)
        say(f"{self.cloud}: worker for '{label}' ready in {time.monotonic() - started:.0f}s")
        return worker, observer

    # ---- traffic ----

    async def publish_one(self, tenant: str, phase: str) -> None:
        """One trickle message of ``tenant``, with its own trace id."""
        assert self.publisher is not None
        publication = self.generators[tenant].next()
        trace = uuid.uuid4().hex
        attributes = {**publication.attributes, "traceparent": f"00-{trace}-{uuid.uuid4().hex[:16]}-01"}
        sent = Sent(tenant, phase, len(publication.expected))
        async with self.publish_sem:
            sent.published, sent.published_wall = time.monotonic(), time.time()
            self.sent[trace] = sent
            try:
                await self.publisher.publish(
                    CLOUD[self.cloud], tenant, [LegacyMessage(publication.body, attributes)]
                )
            except Exception as exc:  # noqa: BLE001 - counted as missing, reported
                say(f"{self.cloud}: publish to {tenant} failed: {exc!r}")
                return
            sent.acked = time.monotonic()

    async def trickle(
        self, phase: str, *, seconds: float | None, stop: Callable[[], bool], rate: float | None = None
    ) -> int:
        """Every trickling tenant publishes at ``rate`` (default ``--per-tenant-rate``), spread evenly; until
        ``seconds`` passed or ``stop()``; returns how many were published."""
        per_second = (rate or self.args.per_tenant_rate) * len(self.tenants)
        start = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        k = 0
        while not stop():
            at = start + k / per_second
            if seconds is not None and at - start >= seconds:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tasks.append(asyncio.create_task(self.publish_one(self.tenants[k % len(self.tenants)], phase)))
            k += 1
        await asyncio.gather(*tasks)
        return k

    async def wait_arrivals(self, phase: str, seconds: float) -> None:
        """Until every message of ``phase`` reached the canonical topics, or ``seconds`` passed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(s.canonical is not None for s in self.sent.values() if s.phase == phase and s.acked):
                return
            await asyncio.sleep(0.1)

    async def wait_drain(self, drain: Drain, worker: Worker) -> None:
        """Until the backlog's last canonical record arrived (fails on a dead worker); after
        ``--drain-timeout`` seconds the drain is marked timed out and measured on what arrived."""
        deadline = time.monotonic() + self.args.drain_timeout
        while not drain.done:
            if worker.proc is not None and worker.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                drain.timed_out = True
                say(f"{self.cloud}: stopped waiting: {drain.canonical}/{drain.expected} canonical records")
                return
            await asyncio.sleep(0.05)

    # ---- phases ----

    def drain_for(self) -> Drain:
        """A fresh :class:`Drain` of the backlog."""
        return Drain(len(self.hot_publications), sum(len(p.expected) for p in self.hot_publications))

    async def run(self) -> list[Row]:
        """Per repeat, one running worker, as in production: the trickle alone, the backlog alone (published
        into the running worker), then a new backlog published beside the trickle (``--latency``: the
        trickle at half the sustained rate instead)."""
        rows: list[Row] = []
        async with Publisher(project=PROJECT) as publisher:
            self.publisher = publisher
            # the publishers' connections and topic ARNs, before anything is timed
            await asyncio.gather(*(publisher.publish(CLOUD[self.cloud], t, []) for t in self.tenants))
            if self.cloud == "sqs":
                await asyncio.gather(*(publisher.topic_arn(t) for t in [self.hot, *self.tenants]))
            for _ in range(self.args.repeats):
                worker, observer = await self.start_worker("noisy")
                try:
                    rows.append(await self.trickle_alone(worker, observer))
                    rows.append(sustained := await self.backlog_alone(worker, observer))
                    if not self.args.latency:
                        rows.append((await self.backlog_into_running_worker(worker, observer))[0])
                    elif sustained.rate:
                        half = sustained.rate / 2 / len(self.tenants)
                        name = "trickle at half sustained"
                        rows.append(await self.trickle_alone(worker, observer, rate=half, name=name))
                finally:
                    await asyncio.to_thread(worker.stop)
                    await observer.stop()
        return rows

    @property
    def preload(self) -> bool:
        """SQS: a backlog is loaded while the worker is stopped. On moto, SNS publishes starve the queues'
        receives of CPU (measured: 1 message/s received from the hot queue while 5 000 were published), so
        a backlog published into a running worker would measure moto's publishing, not the drain."""
        return self.cloud == "sqs"

    async def load_while_stopped(self, worker: Worker) -> None:
        """Stop the worker, load the backlog, start it again (same app, group and offsets; a new log)."""
        await asyncio.to_thread(worker.stop)
        await self.load_backlog()
        worker.log_path = worker.log_path.with_name(f"{worker.log_path.stem}-{self.loaded}.log")
        await asyncio.to_thread(worker.start, 120.0)

    async def backlog_alone(self, worker: Worker, observer: Observer) -> Row:
        """The next backlog is published into the running worker (SQS: :attr:`preload`) and drains, with
        no other traffic."""
        self.next_backlog()
        drain = observer.drain = self.drain_for()
        load = MachineLoad()
        if self.preload:
            await self.load_while_stopped(worker)
        cpu = asyncio.create_task(self.cpu_over(worker, drain))
        if not self.preload:
            await self.load_backlog()
        row = self.drain_row("backlog alone", drain, await cpu, load.line())
        say(f"{self.cloud}: backlog alone: {row.rate or 0:.0f} publications/s")
        return row

    async def cpu_over(self, worker: Worker, drain: Drain) -> float | None:
        """Wait for the drain; the worker's CPU % from its first to its last canonical record."""
        assert worker.proc is not None
        pid = worker.proc.pid
        while drain.first is None:
            await asyncio.sleep(0.02)
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await self.wait_drain(drain, worker)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        return 100 * (cpu1 - cpu0) / (t1 - t0) if t1 > t0 else None

    async def trickle_alone(
        self, worker: Worker, observer: Observer, *, rate: float | None = None, name: str = "trickle alone"
    ) -> Row:
        """After a warm-up round, the trickle alone for ``--trickle-seconds`` (each tenant at ``rate``,
        default ``--per-tenant-rate``)."""
        observer.drain = None
        rate = rate or self.args.per_tenant_rate
        warm = f"warm-up-{name}-{self.runs}"
        await self.trickle(warm, seconds=max(1.0, 1 / rate), stop=lambda: False, rate=rate)
        await self.wait_arrivals(warm, 60)
        phase = f"{name}-{self.runs}"
        load = MachineLoad()
        assert worker.proc is not None
        cpu0, t0 = cpu_seconds(worker.proc.pid), time.monotonic()
        await self.trickle(phase, seconds=self.args.trickle_seconds, stop=lambda: False, rate=rate)
        await self.wait_arrivals(phase, 60)
        cpu = 100 * (cpu_seconds(worker.proc.pid) - cpu0) / (time.monotonic() - t0)
        label = name if rate == self.args.per_tenant_rate else f"{name} ({rate * len(self.tenants):.0f}/s)"
        row = self.trickle_row(label, phase, None, load.line())
        row.worker_cpu = cpu
        say(
            f"{self.cloud}: {label}: p50 {row.p50 or 0:.0f} ms, p99 {row.p99 or 0:.0f} ms; from the publish "
            f"call's return p50 {row.acked_p50 or 0:.0f} ms, p99 {row.acked_p99 or 0:.0f} ms "
            f"({row.trickle} messages)"
        )
        return row

    async def backlog_into_running_worker(self, worker: Worker, observer: Observer) -> tuple[Row, Drain]:
        """A running system, as in production: the trickle flows and normalize has committed on staging (a
        group that never committed opens the admission gate), then the next backlog is published beside it;
        the trickle runs until the backlog has drained."""
        warm = f"warm-up-{self.runs}-{self.loaded + 1}"
        await self.trickle(warm, seconds=4.0, stop=lambda: False)
        await self.wait_arrivals(warm, 60)
        await asyncio.sleep(4.0)  # Faust commits every 2.8 s
        self.next_backlog()
        drain = observer.drain = self.drain_for()
        phase = f"with-backlog-{self.runs}-{self.loaded}"
        load = MachineLoad()
        if self.preload:  # the trickle resumes as the worker starts again
            await self.load_while_stopped(worker)
        cpu = asyncio.create_task(self.cpu_over(worker, drain))
        trickling = asyncio.create_task(self.trickle(phase, seconds=None, stop=lambda: drain.done))
        if not self.preload:
            await self.load_backlog()
        worker_cpu = await cpu
        await trickling
        await self.wait_arrivals(phase, 60)
        label = "trickle + backlog"
        if drain.timed_out:
            label += f" (timed out: {drain.canonical}/{drain.expected} records)"
        row = self.trickle_row(label, phase, drain, load.line())
        row.rate, row.landed_rate, row.worker_cpu = drain.rate(), drain.landed_rate(), worker_cpu
        row.backlog = drain.publications
        say(
            f"{self.cloud}: trickle + backlog: p50 {row.p50 or 0:.0f} ms, p99 {row.p99 or 0:.0f} ms "
            f"({row.trickle}), backlog {row.rate or 0:.0f} publications/s"
        )
        return row, drain

    def drain_row(self, phase: str, drain: Drain, cpu: float | None, load: str) -> Row:
        """The backlog's figures (the phase name says when the benchmark stopped waiting for it)."""
        if drain.timed_out:
            phase += f" (timed out: {drain.canonical}/{drain.expected} records)"
        return Row(
            self.cloud,
            phase,
            drain.publications,
            rate=drain.rate(),
            landed_rate=drain.landed_rate(),
            worker_cpu=cpu,
            load=load,
            note=f"hot tenant on staging partition(s) {sorted(drain.partitions)}",
        )

    def trickle_row(self, phase: str, key: str, drain: Drain | None, load: str) -> Row:
        """Latency figures of the trickle messages of ``key`` (with a drain: those published before it
        ended)."""
        counted = [s for s in self.sent.values() if s.phase == key]
        if drain is not None and drain.last is not None:
            counted = [s for s in counted if s.published <= drain.last]
        arrived = [s for s in counted if s.canonical is not None]
        hot_parts = drain.partitions if drain is not None else set()

        def ms(values: Sequence[float]) -> list[float]:
            return sorted(v * 1000 for v in values)

        latency = ms([s.canonical - s.published for s in arrived if s.canonical is not None])
        written = ms([s.written - s.published_wall for s in arrived if s.written is not None])
        after_ack = ms([s.canonical - s.acked for s in arrived if s.canonical is not None and s.acked])
        staged = ms([s.staged - s.published for s in counted if s.staged is not None])
        publish = ms([s.acked - s.published for s in counted if s.acked is not None])
        hot = [s for s in arrived if s.partition in hot_parts]
        hot_latency = ms([s.canonical - s.published for s in hot if s.canonical is not None])
        row = Row(
            self.cloud,
            phase,
            0,
            trickle=len(counted),
            missing=len(counted) - len(arrived),
            publish_p99=percentile(publish, 99),
            staged_p50=percentile(staged, 50),
            staged_p99=percentile(staged, 99),
            p50=percentile(latency, 50),
            p99=percentile(latency, 99),
            acked_p50=percentile(after_ack, 50),
            acked_p99=percentile(after_ack, 99),
            written_p50=percentile(written, 50),
            written_p99=percentile(written, 99),
            hot_partition_p99=percentile(hot_latency, 99) if hot_latency else None,
            hot_partition_tenants=len({s.tenant for s in hot}),
            load=load,
        )
        if drain is not None:
            row.note = (
                f"hot tenant on staging partition(s) {sorted(drain.partitions)}; "
                f"{row.hot_partition_tenants} trickling tenants share them"
            )
        return row


def fmt(value: float | None, spec: str = ".0f") -> str:
    """A figure or "-"."""
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    out = [
        "| cloud | phase | backlog | trickle msgs (missing) | publish call p99 ms | -> staging p50 / p99 ms "
        "| -> canonical p50 ms | -> canonical p99 ms | publish returned -> canonical p50 / p99 ms "
        "| -> canonical written p50 / p99 ms | hot-partition p99 ms | backlog publ./s (landed/s) "
        "| worker CPU % | machine CPU % / load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        trickle = f"{r.trickle} ({r.missing})" if r.trickle else "-"
        staged = f"{fmt(r.staged_p50)} / {fmt(r.staged_p99)}" if r.trickle else "-"
        rate = f"{fmt(r.rate)} ({fmt(r.landed_rate)})" if r.rate is not None else "-"
        acked = f"{fmt(r.acked_p50)} / {fmt(r.acked_p99)}" if r.trickle else "-"
        written = f"{fmt(r.written_p50)} / {fmt(r.written_p99)}" if r.trickle else "-"
        hot = (
            f"{fmt(r.hot_partition_p99)} ({r.hot_partition_tenants} tenants)"
            if r.hot_partition_tenants
            else "-"
        )
        out.append(
            f"| {r.cloud} | {r.phase} | {r.backlog or '-'} | {trickle} | {fmt(r.publish_p99)} | {staged} | "
            f"{fmt(r.p50)} | {fmt(r.p99)} | {acked} | {written} | {hot} | {rate} | {fmt(r.worker_cpu)} | "
            f"{r.load} |"
        )
    return "\n".join(out)


def verdicts(rows: list[Row]) -> list[str]:
    """Per cloud and repeat: p99 ratio and drain ratio against the targets."""
    lines = []
    for cloud in dict.fromkeys(r.cloud for r in rows):
        mine = [r for r in rows if r.cloud == cloud]
        alone = [r for r in mine if r.phase == "trickle alone"]
        solo = [r for r in mine if r.phase.startswith("backlog alone")]
        mixed = [r for r in mine if r.phase.startswith("trickle + backlog")]
        for half in (r for r in mine if r.phase.startswith("trickle at half sustained")):
            lines.append(
                f"* {cloud}: {half.phase}: publish -> canonical p99 {fmt(half.p99)} ms, from the publish "
                f"call's return {fmt(half.acked_p99)} ms (issue 9 target < 500 ms)"
            )
        if not mixed:
            continue
        p99s, written, drains = [], [], []
        for a, s, m in zip(alone, solo, mixed, strict=False):
            if a.p99 and m.p99:
                p99s.append(m.p99 / a.p99)
            if a.written_p99 and m.written_p99:
                written.append(m.written_p99 / a.written_p99)
            if s.rate and m.rate:
                drains.append(m.rate / s.rate)

        def spread(values: list[float], target: float, at_most: bool) -> str:
            if not values:
                return "-"
            met = sum(1 for v in values if (v <= target if at_most else v >= target))
            figures = (
                f"{values[0]:.2f}"
                if len(values) == 1
                else f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"
            )
            return f"{figures}; target {'<=' if at_most else '>='} {target:.2f} met in {met} of {len(values)}"

        lines.append(
            f"* {cloud}: trickle p99 with / without backlog, as read here = {spread(p99s, 2.0, True)}; "
            f"as written by normalize = {spread(written, 2.0, True)}; backlog drain rate with trickle / "
            f"alone = {spread(drains, 0.8, False)}"
        )
    return lines


async def main_async(args: argparse.Namespace, env: dict[str, str], work: Path) -> list[Row]:
    """Every cloud in turn."""
    rows: list[Row] = []
    for cloud in args.clouds:
        bench = Bench(args, env, work, cloud)
        say(
            f"{cloud}: {args.tenants} trickling tenants at {args.per_tenant_rate:g}/s each, "
            f"hot backlog {bench.backlog}"
        )
        await bench.setup(loads=2 * args.repeats)
        rows += await bench.run()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Start a private stack, run every cloud, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clouds", nargs="+", default=["sqs", "pubsub"], choices=list(CLOUD))
    parser.add_argument("--label", default="current tree", help="names the table (e.g. before / after)")
    parser.add_argument("--tenants", type=int, default=50, help="trickling tenants")
    parser.add_argument("--per-tenant-rate", type=float, default=1.0, help="trickle messages/s per tenant")
    parser.add_argument("--trickle-seconds", type=float, default=60.0, help="trickle alone: how long")
    parser.add_argument("--pubsub-backlog", type=int, default=50_000)
    parser.add_argument(
        "--sqs-backlog", type=int, default=1_000, help="moto drains one queue at ~10-15 msg/s here"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for a backlog to drain; then it is measured on what arrived",
    )
    parser.add_argument("--repeats", type=int, default=1, help="the three phases, this many times per cloud")
    parser.add_argument(
        "--latency",
        action="store_true",
        help="issue 9 part 7: after the trickle alone, a trickle at half the sustained rate; no phase 3",
    )
    parser.add_argument("--quick", action="store_true", help="backlogs 5000 / 1000, 20 s of trickle alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.pubsub_backlog, args.sqs_backlog, args.trickle_seconds = 5000, 1000, 20.0
    before = tree_state()
    started = time.monotonic()
    with private_stack("noisy-neighbour benchmark") as (work, stack_env):
        os.environ.update(stack_env)  # the publishers follow AWS_ENDPOINT_URL / PUBSUB_EMULATOR_HOST
        rows = asyncio.run(main_async(args, stack_env, work))
    after = tree_state()
    print()
    print(f"### {args.label}")
    print()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
        f"run took {(time.monotonic() - started) / 60:.1f} min; {args.tenants} trickling tenants at "
        f"{args.per_tenant_rate:g} msg/s each; backlog: SQS {args.sqs_backlog}, Pub/Sub {args.pubsub_backlog}"
    )
    print(f"tree at start: {before}")
    print(f"tree at end:   {after}")
    print()
    print(table(rows))
    print()
    print("\n".join(verdicts(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
