"""State benchmark: the per-conversation state stage (role ``state``) on real ``faust worker`` processes, on a
private local broker (Tansu), with its comparison measured in the same run.

1. **Throughput.** One worker (role ``state``, RocksDB) drains a backlog of canonical records written before
   it starts (the simulator's legacy traffic put through the real ``Normalizer`` here); rate = events
   applied to ``state-conversations`` per second, from the first applied to the last (``/state/stats``
   polled every 0.1 s). Next to it, in the same run and alternating with it, a normalize-role worker drains
   the staging records of the *same* publications (rate = staging records per second from the first to
   the last output record received here, as in ``bench.normalize_bench``). Each is repeated (``--repeats``)
   and reported as median and min-max, with the worker's CPU seconds (user + system, from /proc) per 1 000
   input records over the same span, and its peak RSS.
2. **Size.** One worker builds the state of many conversations from canonical ``ConversationCreated`` +
   ``MemberJoined`` records generated here (generated protobuf classes, Confluent framing, a mock schema
   id), in two halves: after each, the worker's RSS and the size of its data directory (RocksDB). Sizes
   beyond what was built are a straight-line extrapolation through the two points, labelled as such.
3. **Recovery.** On the changelog that worker wrote: a new worker with an empty data directory (RocksDB,
   then the memory store) recovering all of ``state-conversations``; then two workers with one standby
   replica and with none, one of them stopped, and the time until the survivor serves every partition and
   the changelog records it read for that.

Run: ``python -m bench.state_bench`` (~12-15 minutes on 2 vCPUs); ``--quick`` for a smoke run (< 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from app import topics as topic_names
from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.catalog.wire import frame
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator
from app.normalize.runtime import build_normalizer
from app.settings import load
from bench.common import peak_rss_mb, private_stack, rss_mb
from bench.normalize_bench import BenchRecord, Outputs, bench_records, produce, variant_command
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.common.v1.member_role_pb2 import MemberRole
from tests.support.state import Record, get_json, produce_canonical, reference
from tests.support.worker import Worker

TOKEN = "state-bench-" + uuid.uuid4().hex
PARTITIONS = default_catalog().topics[topic_names.CONVERSATION_EVENTS].partitions
MOCK_SCHEMA_ID = 1
"""State reads any schema id (``app.state.routing.decode_envelope``)."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_S = 0.1
QUIET = {"s": 5.0}
"""Seconds a worker must stay ready with its counters still to count as settled: longer than the recovery
delay (``CARRYOVER_RECOVERY_DELAY_SECONDS``, 3 s by default; ``--quick``: 0.5 s), during which a worker that
was just assigned partitions looks idle. Settling is timed at the first poll showing the final figures."""


# --- measuring a worker process -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def dir_mib(path: Path) -> float:
    """Bytes allocated on disk under ``path`` (st_blocks, so sparse files count what they use), in MiB."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total / 2**20


def launch(env: dict[str, str], log_path: Path, *, web: bool = True) -> Worker:
    """Start a worker process and return at once (the caller polls it); ``Worker`` for stop / kill."""
    worker = Worker(env=dict(env), log_path=log_path)
    worker.env["CARRYOVER_WEB_PORT"] = str(worker.web_port)
    command = [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"]
    if not web:
        command = variant_command("carryover")
    with log_path.open("ab") as log:
        worker.proc = subprocess.Popen(  # noqa: S603
            command,
            cwd=Path(__file__).resolve().parents[1],
            env=worker.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return worker


def state_stats(worker: Worker) -> dict[str, Any] | None:
    """The worker's ``/state/stats``; None while it does not answer; RuntimeError once it exited."""
    assert worker.proc is not None
    if worker.proc.poll() is not None:
        raise RuntimeError(f"worker exited with {worker.proc.returncode}:\n{worker.log_tail()}")
    status, stats = get_json(worker.web_port, "/state/stats", TOKEN)
    return stats if status == 200 else None


def handled(stats: dict[str, Any]) -> int:
    """Repartitioned events the conversation agent is done with."""
    return int(stats["applied"] + stats["duplicates"] + stats["not_state"] + stats["dead_lettered"])


@dataclass
class Sample:
    """One poll of a worker: when, its CPU seconds so far, its state counters."""

    at: float
    cpu: float
    stats: dict[str, Any]


def poll_until(
    worker: Worker, done: Callable[[dict[str, Any]], bool], wait: float, what: str
) -> list[Sample]:
    """Poll ``/state/stats`` (and CPU) every 0.1 s until ``done(stats)``; every answered sample."""
    assert worker.proc is not None
    samples: list[Sample] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        stats = state_stats(worker)
        if stats is not None:
            samples.append(Sample(time.monotonic(), cpu_seconds(worker.proc.pid), stats))
            if done(stats):
                return samples
        time.sleep(POLL_S)
    last = samples[-1].stats if samples else None
    raise TimeoutError(f"{what}: not done after {wait:.0f}s; last stats {last}\n{worker.log_tail()}")


@dataclass
class Settled:
    """A worker done with a rebalance: its stats, when it was done, when its active changelog read began."""

    stats: dict[str, Any]
    since: float
    """Monotonic time of the first poll that showed the final figures (when it was done, not when noticed)."""
    reading_from: float | None
    """Monotonic time of the first poll at which ``changelog_read_active`` had moved (None: it never did)."""


def settle(
    worker: Worker, owns: int = PARTITIONS, quiet_for: float = 0.0, wait: float = 300.0, baseline: int = 0
) -> Settled:
    """Once the worker actively owns ``owns`` partitions, is out of recovery and its changelog / applied
    counters stopped moving for ``quiet_for`` s (``baseline``: its ``changelog_read_active`` before)."""
    quiet_for = quiet_for or QUIET["s"]
    moving = ("changelog_read_active", "changelog_read_standby", "applied", "active_partitions")
    last: dict[str, Any] | None = None
    since = time.monotonic()
    deadline = since + wait
    reading_from: float | None = None
    while time.monotonic() < deadline:
        stats = state_stats(worker)
        now = time.monotonic()
        ready = stats is not None and get_json(worker.web_port, "/readyz", None)[0] == 200
        if reading_from is None and stats is not None and stats["changelog_read_active"] > baseline:
            reading_from = now
        ready = ready and not stats["in_recovery"] and len(stats["active_partitions"]) >= owns  # type: ignore[index]
        if not ready or last is None or any(stats[k] != last[k] for k in moving):  # type: ignore[index]
            last, since = (stats if ready else None), now
        elif now - since >= quiet_for:
            return Settled(last, since, reading_from)
        time.sleep(POLL_S)
    raise TimeoutError(f"worker {worker.web_port} not settled after {wait:.0f}s: {last}\n{worker.log_tail()}")


# --- the runs ---------------------------------------------------------------------------------------------


@dataclass
class Drain:
    """One drain of a backlog by one worker."""

    stage: str
    records_in: int
    outputs: int
    seconds: float
    cpu_s: float
    peak_rss_mib: float

    @property
    def rate(self) -> float:
        return self.records_in / max(self.seconds, 1e-3)

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.records_in * 1000


@dataclass
class Bench:
    """The run's broker, environment and work directory."""

    work: Path
    env: dict[str, str]
    bootstrap: str
    runs: int = 0

    def fresh(self, role: str, **extra: str) -> dict[str, str]:
        """Environment of a worker of a new app (own app id, topic prefix, data dir)."""
        self.runs += 1
        tag = f"{self.runs:02d}{uuid.uuid4().hex[:4]}"
        return {
            **self.env,
            "CARRYOVER_ROLES": role,
            "CARRYOVER_APP_ID": f"state-bench-{tag}",
            "CARRYOVER_TOPIC_PREFIX": f"sb{tag}.",
            "CARRYOVER_DATA_DIR": str(self.work / f"data-{tag}"),
            **extra,
        }

    def topics(self, env: dict[str, str]) -> None:
        """The catalog's topics under the worker's prefix."""
        report = asyncio.run(
            apply_topics(
                self.bootstrap, default_catalog(), dry_run=False, prefix=env["CARRYOVER_TOPIC_PREFIX"]
            )
        )
        assert report.ok, report.summary()


def state_drain(bench: Bench, records: dict[str, list[Record]], events: int, label: str) -> Drain:
    """A state worker drains ``records`` (written before it starts); ``events`` repartitioned events."""
    env = bench.fresh("state")
    bench.topics(env)
    asyncio.run(produce_canonical(bench.bootstrap, env["CARRYOVER_TOPIC_PREFIX"], records))
    worker = launch(env, bench.work / f"{label}.log")
    try:
        samples = poll_until(worker, lambda s: handled(s) >= events, 600, label)
        assert worker.proc is not None
        peak = peak_rss_mb(worker.proc.pid)
    finally:
        worker.kill()
    first = next(s for s in samples if s.stats["applied"] > 0)
    last = samples[-1]
    assert last.stats["dead_lettered"] == 0 and handled(last.stats) == events, last.stats
    applied = last.stats["applied"] - first.stats["applied"]
    return Drain("state", applied, last.stats["applied"], last.at - first.at, last.cpu - first.cpu, peak)


def normalize_drain(bench: Bench, backlog: list[BenchRecord], label: str) -> Drain:
    """A normalize worker drains the staging records of the same publications (``bench.normalize_bench``'s
    clock: first to last output record received here)."""
    env = bench.fresh("normalize")
    bench.topics(env)
    prefix = env["CARRYOVER_TOPIC_PREFIX"]
    asyncio.run(produce(bench.bootstrap, prefix + topic_names.STAGING, backlog))
    want = sum(r.outputs for r in backlog)
    log_path = bench.work / f"{label}.log"

    async def drain() -> tuple[Outputs, list[tuple[float, float]], float]:
        outputs = Outputs(bench.bootstrap, prefix)
        await outputs.start()
        worker = launch(env, log_path, web=False)
        assert worker.proc is not None
        cpu: list[tuple[float, float]] = []
        try:
            deadline = time.monotonic() + 600
            while outputs.count < want:
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"normalize: {outputs.count} of {want} outputs\n{worker.log_tail()}")
                cpu.append((time.monotonic(), cpu_seconds(worker.proc.pid)))
                await asyncio.sleep(POLL_S / 2)
            cpu.append((time.monotonic(), cpu_seconds(worker.proc.pid)))
            return outputs, cpu, peak_rss_mb(worker.proc.pid)
        finally:
            worker.kill()
            await outputs.stop()

    outputs, cpu, peak = asyncio.run(drain())
    first, last = outputs.first or outputs.last, outputs.last

    def cpu_at(t: float) -> float:
        return min(cpu, key=lambda s: abs(s[0] - t))[1]

    return Drain("normalize", len(backlog), outputs.count, last - first, cpu_at(last) - cpu_at(first), peak)


# --- traffic ----------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """The same publications as staging records (normalize's input) and canonical records (state's)."""

    staging: list[BenchRecord]
    canonical: dict[str, list[Record]]
    events: int  # repartitioned events the canonical records make (route agent's forwards)
    conversations: int

    @property
    def canonical_count(self) -> int:
        return sum(len(v) for v in self.canonical.values())


def make_traffic(bench: Bench, publications: int, tenants: int) -> Traffic:
    """Simulated legacy traffic (no bad payloads), normalized here once for state's input."""
    names = [f"sbt-{i:03d}" for i in range(tenants)]
    key_file = generate_key_file(bench.work / "keys.json", names)
    bench.env["CARRYOVER_KEY_FILE"] = str(key_file)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    config = TrafficConfig(tenants=names, conversations_per_tenant=4, bad_fraction=0.0, seed=23)
    pubs = TrafficGenerator(config, keys).take(publications)
    normalizer = asyncio.run(build_normalizer(load(bench.env)))
    staging = bench_records(pubs, normalizer)
    canonical: dict[str, list[Record]] = collections.defaultdict(list)
    for r in staging:
        for out in normalizer.process(r.key, r.value, r.headers, "bench/0/0"):
            assert not out.dead_letter, dict(out.headers)
            canonical[out.topic].append((out.key, out.value, out.headers))
    ref = reference(canonical, 256)
    return Traffic(staging, dict(canonical), ref.forwards, len(ref.states))


def framed(topic: str, event: Any) -> bytes:
    """``event`` in its topic's envelope, Confluent-framed with a mock schema id."""
    _name, envelope = default_catalog().wrap(event)
    return frame(MOCK_SCHEMA_ID, [0], envelope.SerializeToString())


def membership_records(
    first: int, count: int, joins_per: int, tenants: int, users: int, seed: int = 5
) -> list[Record]:
    """Conversations ``first`` .. ``first + count - 1``: each a ``ConversationCreated`` and ``joins_per``
    ``MemberJoined`` of distinct users (collaboration.conversations.v1, keyed by tenant)."""
    import random  # noqa: PLC0415

    rng = random.Random(seed + first)
    out: list[Record] = []
    base_ms = 1_700_000_000_000
    for n in range(first, first + count):
        tenant = f"sbm-{n % tenants:03d}"
        conversation = f"conv-{n:07d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        t = Timestamp()
        t.FromMilliseconds(base_ms + n)
        created = ConversationCreated(
            tenant_id=tenant,
            event_id=str(uuid.UUID(int=rng.getrandbits(128))),
            event_time=t,
            conversation_id=conversation,
            creator_user_id=f"u{rng.randrange(users)}",
            name=f"room {n}",
        )
        out.append((tenant.encode(), framed(topic_names.CONVERSATIONS, created), []))
        for j, user in enumerate(rng.sample(range(users), joins_per)):
            t = Timestamp()
            t.FromMilliseconds(base_ms + n + 1000 * (j + 1))
            joined = MemberJoined(
                tenant_id=tenant,
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
                event_time=t,
                conversation_id=conversation,
                user_id=f"u{user}",
                actor_user_id=f"u{user}",
                role=MemberRole.MEMBER_ROLE_MEMBER,
            )
            out.append((tenant.encode(), framed(topic_names.CONVERSATIONS, joined), []))
    return out


# --- the three parts --------------------------------------------------------------------------------------


T0 = time.monotonic()


def say(line: str) -> None:
    """A progress line with the seconds since the start."""
    print(f"[{time.monotonic() - T0:5.0f}s] {line}", flush=True)


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``median (min-max)``."""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def throughput(bench: Bench, args: argparse.Namespace) -> list[str]:
    """Alternating normalize / state drains of the same publications; a Markdown table."""
    traffic = make_traffic(bench, args.publications, args.tenants)
    say(
        f"throughput: {len(traffic.staging)} staging records -> {traffic.canonical_count} canonical records "
        f"-> {traffic.events} state events over {traffic.conversations} conversations; "
        f"{args.repeats} drains each, alternating"
    )
    runs: dict[str, list[Drain]] = {"normalize": [], "state": []}
    for i in range(args.repeats):
        for stage in ("normalize", "state") if i % 2 == 0 else ("state", "normalize"):
            if stage == "normalize":
                d = normalize_drain(bench, traffic.staging, f"normalize-{i}")
            else:
                d = state_drain(bench, traffic.canonical, traffic.events, f"state-{i}")
            runs[stage].append(d)
            say(
                f"  {stage:9} #{i}: {d.rate:6.0f} records/s over {d.seconds:5.1f}s, "
                f"{d.cpu_per_1k:.2f} CPU s/1k, peak RSS {d.peak_rss_mib:.0f} MiB"
            )
    rows = [
        "| stage (worker) | input per drain | input records/s | CPU s per 1k input | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    what = {
        "normalize": f"{len(traffic.staging)} staging records (-> {runs['normalize'][0].outputs} canonical)",
        "state": f"{traffic.events} state events ({traffic.conversations} conversations)",
    }
    for stage in ("state", "normalize"):
        ds = runs[stage]
        rows.append(
            f"| {stage} | {what[stage]} | {spread([d.rate for d in ds])} | "
            f"{spread([d.cpu_per_1k for d in ds], '{:.2f}')} | {spread([d.peak_rss_mib for d in ds])} |"
        )
    return rows


@dataclass
class SizePoint:
    """The worker after building the state of ``conversations`` conversations."""

    conversations: int
    joins: int
    rss_mib: float
    disk_mib: float
    events_per_s: float
    changelog_records: int


@dataclass
class Built:
    """The size part's app (its changelog is what recovery reads) and its figures."""

    env: dict[str, str]
    points: list[SizePoint] = field(default_factory=list)
    disk_after_stop_mib: float = 0.0


def build_state(bench: Bench, args: argparse.Namespace) -> Built:
    """One worker builds the state of ``--conversations`` conversations in two halves; RSS and disk after
    each half."""
    env = bench.fresh("state")
    bench.topics(env)
    prefix, data_dir = env["CARRYOVER_TOPIC_PREFIX"], Path(env["CARRYOVER_DATA_DIR"])
    built = Built(env)
    half = args.conversations // 2
    joins_per = args.joins // args.conversations
    say(f"size: {args.conversations} conversations x ({joins_per} joins + 1 created), in two halves")
    worker = launch(env, bench.work / "size.log")
    try:
        done = 0
        for first, count in ((0, half), (half, args.conversations - half)):
            records = membership_records(first, count, joins_per, args.tenants, args.users)
            asyncio.run(produce_canonical(bench.bootstrap, prefix, {topic_names.CONVERSATIONS: records}))
            before, done = done, done + len(records)
            samples = poll_until(worker, lambda s, want=done: handled(s) >= want, 3600, "size build")
            moved = [x for x in samples if x.stats["applied"] > before]
            stats = settle(worker).stats
            assert stats["dead_lettered"] == 0 and stats["applied"] == done, stats
            assert worker.proc is not None
            point = SizePoint(
                first + count,
                (first + count) * joins_per,
                rss_mb(worker.proc.pid),
                dir_mib(data_dir),
                (moved[-1].stats["applied"] - moved[0].stats["applied"])
                / max(moved[-1].at - moved[0].at, 1e-3),
                done,
            )
            built.points.append(point)
            say(
                f"  {point.conversations} conversations, {point.joins} joins: RSS {point.rss_mib:.0f} MiB, "
                f"data dir {point.disk_mib:.1f} MiB (built at {point.events_per_s:.0f} events/s)"
            )
    finally:
        worker.stop(timeout=60)
    built.disk_after_stop_mib = dir_mib(data_dir)
    return built


def size_rows(built: Built, args: argparse.Namespace) -> list[str]:
    """Measured points and a straight-line extrapolation to ``--target-conversations``."""
    rows = [
        "| conversations | member joins | how | worker RSS MiB | data dir (RocksDB) MiB |",
        "|---:|---:|---|---:|---:|",
    ]
    for p in built.points:
        rows.append(f"| {p.conversations} | {p.joins} | measured | {p.rss_mib:.0f} | {p.disk_mib:.1f} |")
    last = built.points[-1]
    rows.append(
        f"| {last.conversations} | {last.joins} | measured, after a graceful stop | - | "
        f"{built.disk_after_stop_mib:.1f} |"
    )
    a, b = built.points[0], built.points[-1]
    target = args.target_conversations
    if target > b.conversations and b.conversations > a.conversations:
        scale = (target - b.conversations) / (b.conversations - a.conversations)
        rss = b.rss_mib + (b.rss_mib - a.rss_mib) * scale
        disk = b.disk_mib + (b.disk_mib - a.disk_mib) * scale
        joins = target * (args.joins // args.conversations)
        rows.append(
            f"| {target} | {joins} | **extrapolated** (straight line through the two measured points) | "
            f"{rss:.0f} | {disk:.0f} |"
        )
    return rows


@dataclass
class Recovery:
    """How long until a worker served every partition, and the changelog records it read for that."""

    case: str
    seconds: float
    reading_s: float | None
    changelog_read: int
    note: str


def recover_fresh(bench: Bench, built: Built, store: str) -> Recovery:
    """A new worker, empty data dir, ``store``: start -> it owns and serves every partition."""
    env = {
        **built.env,
        "CARRYOVER_STORE": store,
        "CARRYOVER_DATA_DIR": str(bench.work / f"fresh-{store[:3]}"),
    }
    start = time.monotonic()
    worker = launch(env, bench.work / f"fresh-{store[:3]}.log")
    try:
        up = poll_until(worker, lambda _s: True, 120, "fresh worker web")[0].at
        done = settle(worker)
    finally:
        worker.kill()
    shutil.rmtree(env["CARRYOVER_DATA_DIR"], ignore_errors=True)
    return Recovery(
        f"new worker, empty data dir, {store}",
        done.since - start,
        done.since - done.reading_from if done.reading_from else None,
        done.stats["changelog_read_active"],
        f"from process start; its web server answered after {up - start:.1f}s",
    )


def failover(bench: Bench, built: Built, standby: int, kill9: bool) -> tuple[Recovery, Recovery]:
    """Two workers (fresh data dirs) share the app; one stops; the survivor takes over every partition."""
    env = {**built.env, "CARRYOVER_STANDBY_REPLICAS": str(standby)}
    tag = f"fo{standby}"
    a, b = (
        launch({**env, "CARRYOVER_DATA_DIR": str(bench.work / f"{tag}-{n}")}, bench.work / f"{tag}-{n}.log")
        for n in "ab"
    )
    try:
        start = time.monotonic()
        poll_until(a, lambda _s: True, 120, "worker a web")
        poll_until(b, lambda _s: True, 120, "worker b web")
        settle(a, owns=1, quiet_for=QUIET["s"] + 1)
        started = settle(b, owns=1, quiet_for=QUIET["s"] + 1)
        before = started.stats
        stats_a = state_stats(a) or {}
        upkeep = before["changelog_read_standby"] + stats_a.get("changelog_read_standby", 0)
        warm = Recovery(
            f"2 workers start together on empty data dirs, {standby} standby",
            started.since - start,
            None,
            int(before["changelog_read_active"] + stats_a.get("changelog_read_active", 0)),
            f"from process start; standby upkeep read {upkeep} more",
        )
        stopped = time.monotonic()
        if kill9:
            a.kill()
        else:
            a.stop(timeout=60)
        gone = time.monotonic() - stopped
        done = settle(b, baseline=before["changelog_read_active"])
    finally:
        a.kill()
        b.kill()
    how = "kill -9" if kill9 else "graceful stop (SIGTERM)"
    over = Recovery(
        f"failover, {standby} standby: {how} of one of the 2",
        done.since - stopped,
        done.since - done.reading_from if done.reading_from else None,
        done.stats["changelog_read_active"] - before["changelog_read_active"],
        f"from the stop signal (the stopped worker took {gone:.1f}s to exit); the survivor had "
        f"{len(before['active_partitions'])} of {PARTITIONS} partitions",
    )
    return warm, over


def recovery_rows(results: list[Recovery]) -> list[str]:
    """The recovery table."""
    rows = [
        "| case | s until serving every partition | of it reading the changelog, s | changelog records read "
        "| note |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        reading = "-" if r.reading_s is None else f"{r.reading_s:.1f}"
        rows.append(f"| {r.case} | {r.seconds:.1f} | {reading} | {r.changelog_read} | {r.note} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Start a private broker, run the three parts, print their tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--publications", type=int, default=20000, help="simulated publications (throughput)")
    parser.add_argument("--repeats", type=int, default=3, help="drains per stage, alternating")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=6000, help="conversations the size part builds")
    parser.add_argument("--joins", type=int, default=60000, help="member joins over those conversations")
    parser.add_argument("--users", type=int, default=50000, help="distinct user ids joins draw from")
    parser.add_argument("--target-conversations", type=int, default=100000, help="extrapolate RSS/disk to")
    parser.add_argument("--kill9", action="store_true", help="failover by kill -9 (adds the session timeout)")
    parser.add_argument("--parts", nargs="+", default=["throughput", "size", "recovery"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one drain each")
    args = parser.parse_args(argv)
    if args.quick:
        args.publications, args.repeats, args.conversations, args.joins = 1500, 1, 400, 2000
        QUIET["s"] = 2.5
    tables: list[tuple[str, list[str]]] = []
    began = time.monotonic()
    with private_stack("state benchmark", broker_only=True) as (work, stack_env):
        env = {**os.environ, **{k: v for k, v in stack_env.items() if k.startswith("CARRYOVER_")}}
        env.update(
            CARRYOVER_LOCAL_BROKER="true",
            CARRYOVER_SCHEMA_REGISTRY_URL="mock://bench",
            CARRYOVER_ADMIN_TOKEN=TOKEN,
            CARRYOVER_STORE="rocksdb://",
            PYTHONUNBUFFERED="1",
        )
        if args.quick:
            env["CARRYOVER_RECOVERY_DELAY_SECONDS"] = "0.5"
        bench = Bench(work, env, env["CARRYOVER_BROKER"].split("://", 1)[1])
        if "throughput" in args.parts:
            tables.append(("Throughput (median, min-max)", throughput(bench, args)))
        if "size" in args.parts or "recovery" in args.parts:
            bench.env.setdefault("CARRYOVER_KEY_FILE", str(generate_key_file(work / "keys-size.json", [])))
            built = build_state(bench, args)
            tables.append(("Size", size_rows(built, args)))
            if "recovery" in args.parts:
                say("recovery: fresh workers, then failover with and without a standby")
                stores = ["rocksdb://"] if args.quick else ["rocksdb://", "memory://"]
                results = [recover_fresh(bench, built, store) for store in stores]
                for standby in (1, 0):
                    results.extend(failover(bench, built, standby, args.kill9))
                for r in results:
                    say(f"  {r.case}: {r.seconds:.1f}s, {r.changelog_read} changelog records")
                tables.append(
                    (
                        f"Recovery ({built.points[-1].changelog_records} changelog records)",
                        recovery_rows(results),
                    )
                )
    print(f"\nstate benchmark, {time.monotonic() - began:.0f}s in all")
    for title, rows in tables:
        print(f"\n{title}\n")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
