"""Normalize benchmark: the staging -> canonical stage alone, carryover's Faust worker next to (a) a raw
aiokafka consume -> transform -> produce loop and (b) Quix Streams doing the same transformation, measured
in the same run on a private local broker (Tansu), each with the dedupe window on and with it off.

Every run of a variant gets its own topic prefix holding the same pre-generated staging records (simulated
legacy traffic of many tenants, all encodings, ~2% bad payloads) and runs as its own process
(:mod:`bench.normalize_variants` says what each does):

* drain: the staging backlog is written first, then the variant starts; the clock starts when the variant
  hands its first staging record to the normalizer (it prints the moment, with its own and the broker's
  CPU counters) and stops when the last output record is received here; rate = staging records / that
  span; CPU per record = (user + system CPU of the variant's process, then of the broker, over that span)
  / staging records;
* trickle: staging records are then written one by one at a steady rate below every variant's capacity;
  latency = staging write -> output record received by a consumer in this process, p50 / p99 (a staging
  record with several canonical events counts at its last);
* peak RSS of the variant's process (VmHWM).

Variants alternate (the order rotates every round) and repeat (``--runs``, 3 by default), with the dedupe
window on (1 h) and off; the tables give each variant's median and min-max, and its ratios to the raw
loop and to Quix Streams. Every output is checked against what the same
:class:`~app.normalize.normalizer.Normalizer` produces here: a variant that writes a different number of
canonical records and dead letters fails the run.

Run: ``python -m bench.normalize_bench`` (~20 minutes); ``--quick`` for a smoke run. The Quix Streams
variant needs ``.venv-quix`` (created on first use: Quix Streams 3.28.1 pins confluent-kafka < 2.13, so it
cannot share carryover's virtualenv); ``--variants carryover aiokafka`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import Publication, TrafficConfig, TrafficGenerator
from app.ingest.landing import provenance_headers
from app.normalize.normalizer import Normalizer, header_map
from app.normalize.runtime import build_normalizer
from app.settings import load
from app.topics import STAGING
from bench.common import peak_rss_mb, percentile, private_stack
from bench.normalize_variants import SEEN_CHANGELOG, cpu_ticks

REPO = Path(__file__).resolve().parents[1]
QUIX_VENV = REPO / ".venv-quix"
QUIX_PINS = ["quixstreams==3.28.1", "confluent-kafka==2.12.2"]
VARIANTS = ("carryover", "aiokafka", "quix", "carryover-agent", "before")
"""``carryover``: the worker with its default normalize path (the batch stage); ``carryover-agent``: the same
worker with ``CARRYOVER_NORMALIZE_PATH=agent``; ``before``: carryover's worker from another tree
(``--before-tree``), e.g. the commit before a change."""
FAUST_VARIANTS = ("carryover", "carryover-agent", "before")
BEFORE_TREE: list[Path] = []
READER_FETCH_WAIT_MS = 20
"""Fetch wait of the benchmark's reader of the output topics (aiokafka's default 500 adds up to that)."""


@dataclass(frozen=True)
class BenchRecord:
    """One record as ingestion writes it to staging, with what normalize must make of it."""

    message_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    outputs: int  # canonical records + dead letters the normalizer makes of it
    ce_ids: tuple[str, ...]


@dataclass
class Result:
    """One run of one variant."""

    variant: str
    dedupe: bool
    records: int
    outputs: int
    rate: float
    worker_cpu_ms: float  # per staging record
    broker_cpu_ms: float  # per staging record
    p50_ms: float | None
    p99_ms: float | None
    peak_rss_mb: float


def bench_records(publications: Sequence[Publication], normalizer: Normalizer) -> list[BenchRecord]:
    """Staging records (as SQS / Pub/Sub ingestion lands them) and their expected outputs."""
    out = []
    now_ms = int(time.time() * 1000)
    for p in publications:
        message_id = f"{p.publication_id}-{uuid.uuid4().hex[:8]}"
        headers = provenance_headers(
            source="sqs" if p.cloud == "aws" else "pubsub",
            source_id=f"bench-{p.tenant_id}",
            source_message_id=message_id,
            received_at_ms=now_ms,
            tenant=p.tenant_id,
        ) + [(name, value.encode()) for name, value in p.attributes.items()]
        produced = normalizer.process(p.tenant_id.encode(), p.body, headers, "bench/0/0")
        canonical = [o for o in produced if not o.dead_letter]
        ce_ids = tuple(header_map(o.headers).get("ce_id", b"").decode() for o in canonical)
        out.append(BenchRecord(message_id, p.tenant_id.encode(), p.body, headers, len(produced), ce_ids))
    return out


def ensure_quix_venv() -> Path:
    """``.venv-quix``: carryover's runtime pins but Quix Streams' confluent-kafka; carryover editable."""
    python = QUIX_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {QUIX_VENV.name} for the Quix Streams variant (once)", flush=True)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if not d.startswith("confluent-kafka")] + QUIX_PINS
    subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *pins], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(REPO)], check=True)
    return python


def variant_command(variant: str) -> tuple[list[str], Path]:
    """The process that runs ``variant`` and its working directory (whose ``app`` it imports)."""
    if variant == "before":
        return [sys.executable, "-m", "bench.normalize_variants", "carryover"], BEFORE_TREE[0]
    if variant == "carryover-agent":
        return [sys.executable, "-m", "bench.normalize_variants", "carryover"], REPO
    python = str(ensure_quix_venv()) if variant == "quix" else sys.executable
    return [python, "-m", "bench.normalize_variants", variant], REPO


async def produce(bootstrap: str, topic: str, records: Sequence[BenchRecord]) -> None:
    """Write the staging backlog (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        acks = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


class Outputs:
    """Reads a variant's canonical and dead-letter topics as they fill; when each record arrived."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        catalog = default_catalog()
        self.partitions = [
            TopicPartition(prefix + name, p)
            for name, spec in catalog.topics.items()
            if name != STAGING
            for p in range(spec.partitions)
        ]
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.count = 0
        self.first: float | None = None  # monotonic receipt time of the first / latest output record
        self.last = 0.0
        self.arrived: dict[str, float] = {}  # ce_id or source_message_id -> monotonic receipt time
        self._task: asyncio.Task[None] | None = None
        self.watch: tuple[int, list[int]] | None = None  # (count, pids): CPU ticks read when it is reached
        self.cpu_at_count: list[int] = []

    async def start(self) -> None:
        """Read every output partition from its beginning, in the background (no consumer group)."""
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    self.count += 1
                    self.first = self.first or now
                    self.last = now
                    headers = dict(r.headers)
                    ident = headers.get("ce_id") or headers.get("source_message_id") or b""
                    self.arrived[ident.decode()] = now
            if self.watch and not self.cpu_at_count and self.count >= self.watch[0]:
                self.cpu_at_count = [cpu_ticks(pid) for pid in self.watch[1]]

    def fetch_eagerly(self) -> None:
        """From now on fetch with a short wait (for the trickle: the reader must not add aiokafka's default
        500 ms to the measured latency; not during the drain, where polling that often would add broker CPU
        to the slower variants' figures)."""
        self.consumer._fetcher._fetch_max_wait_ms = READER_FETCH_WAIT_MS  # noqa: SLF001 - read per request

    async def wait_for(
        self, count: int, seconds: float, proc: subprocess.Popen[bytes], log_path: Path
    ) -> None:
        """Until ``count`` records arrived; fail after ``seconds`` or when ``proc`` exited."""
        deadline = time.monotonic() + seconds
        while self.count < count:
            if proc.poll() is not None:
                tail = _tail(log_path)
                raise RuntimeError(f"the variant exited with {proc.returncode}; {log_path} ends:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count} of {count} output records after {seconds:.0f}s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop consuming."""
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


def _first_record(log_path: Path) -> tuple[float, int, int] | None:
    """(monotonic time, own CPU ticks, broker CPU ticks) from the variant's ``BENCH_FIRST`` line."""
    for line in log_path.read_text(errors="replace").splitlines():
        if "BENCH_FIRST " in line:
            _, at, own, broker = line[line.index("BENCH_FIRST ") :].split()[:4]
            return float(at), int(own), int(broker)
    return None


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """One topic (the raw loop's dedupe changelog)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def run_variant(
    variant: str,
    dedupe: bool,
    env: dict[str, str],
    backlog: Sequence[BenchRecord],
    trickle: Sequence[BenchRecord],
    rate: float,
    log_dir: Path,
    workers: int = 1,
) -> Result:
    """Drain then trickle through one variant in its own process (carryover: ``workers`` worker processes
    of one app); its own topic prefix."""
    prefix = f"nb{uuid.uuid4().hex[:6]}-{variant}."
    bootstrap = env["CARRYOVER_BROKER"].split("://", 1)[1]
    catalog = default_catalog()
    report = await apply_topics(bootstrap, catalog, dry_run=False, prefix=prefix)
    assert report.ok, report.summary()
    if variant == "aiokafka" and dedupe:
        await create_topic(bootstrap, prefix + SEEN_CHANGELOG, catalog.topics[STAGING].partitions)
    await produce(bootstrap, prefix + STAGING, backlog)
    outputs = Outputs(bootstrap, prefix)
    await outputs.start()
    want = sum(r.outputs for r in backlog)
    broker_pid = int(env.get("BENCH_BROKER_PID", "0"))
    proc_env = {
        **os.environ,
        **env,
        "CARRYOVER_TOPIC_PREFIX": prefix,
        "CARRYOVER_APP_ID": prefix.rstrip("."),  # own group, own table changelogs: nothing carried over
        "CARRYOVER_ROLES": "normalize",
        "CARRYOVER_DEDUPE_WINDOW_SECONDS": "3600" if dedupe else "0",
    }
    if variant == "carryover-agent":
        proc_env["CARRYOVER_NORMALIZE_PATH"] = "agent"
    n = workers if variant in FAUST_VARIANTS else 1
    log_paths = [log_dir / f"{prefix}{i}.log" for i in range(n)]
    procs = []
    for i, path in enumerate(log_paths):
        with path.open("wb") as log:
            command, cwd = variant_command(variant)
            worker_env = {**proc_env, "CARRYOVER_DATA_DIR": str(log_dir / f"{prefix}data-{i}")}
            procs.append(
                subprocess.Popen(  # noqa: ASYNC220, S603 - started once, not awaited
                    command, cwd=cwd, env=worker_env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    proc, log_path = procs[0], log_paths[0]
    outputs.watch = (want, [p.pid for p in procs] + [broker_pid])
    try:
        await outputs.wait_for(want, 300, proc, log_path)
        firsts = [f for f in map(_first_record, log_paths) if f is not None]
        assert firsts, f"{variant} printed no BENCH_FIRST line:\n{_tail(log_path)}"
        at = min(f[0] for f in firsts)
        broker0 = min(firsts)[2]
        await asyncio.sleep(0.2)
        ends = outputs.cpu_at_count or [cpu_ticks(p.pid) for p in procs] + [cpu_ticks(broker_pid)]
        broker1 = ends[-1]
        # each worker from its own first record (start-up and group join excluded, as for one)
        own0, own1 = 0, 0
        for path, end in zip(log_paths, ends[:-1], strict=True):
            first = _first_record(path)
            if first is not None:
                own0, own1 = own0 + first[1], own1 + end
        span_s = outputs.last - at
        drain_rate = len(backlog) / max(span_s, 1e-3)
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        worker_cpu_ms = (own1 - own0) * tick_ms / len(backlog)
        broker_cpu_ms = (broker1 - broker0) * tick_ms / len(backlog)
        outputs.fetch_eagerly()
        await asyncio.sleep(1.0)  # the fetch under way ends (at most aiokafka's default wait, 500 ms)
        sent: dict[str, float] = {}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            start = time.monotonic()
            for i, r in enumerate(trickle):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                sent[r.message_id] = time.monotonic()
                await producer.send(prefix + STAGING, r.value, key=r.key, headers=r.headers)
        finally:
            await producer.stop()
        await outputs.wait_for(want + sum(r.outputs for r in trickle), 120, proc, log_path)
        await asyncio.sleep(1.0)
        latencies = []
        for r in trickle:
            idents = r.ce_ids or (r.message_id,)
            latencies.append((max(outputs.arrived[i] for i in idents) - sent[r.message_id]) * 1000)
        expected = want + sum(r.outputs for r in trickle)
        assert outputs.count == expected, f"{variant}: {outputs.count} output records, expected {expected}"
        return Result(
            variant,
            dedupe,
            len(backlog),
            expected,
            drain_rate,
            worker_cpu_ms,
            broker_cpu_ms,
            percentile(latencies, 50),
            percentile(latencies, 99),
            sum(peak_rss_mb(p.pid) for p in procs),
        )
    except BaseException:
        for path in log_paths:
            kept = Path(tempfile.gettempdir()) / f"normalize-bench-failed-{path.name}"
            shutil.copy(path, kept)  # the work directory goes with the private stack
            print(f"  {variant} failed; its log is kept in {kept}", flush=True)
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        await outputs.stop()


NAMES = {
    "carryover": "carryover (batch stage, the default)",
    "carryover-agent": "carryover (Faust agent)",
    "aiokafka": "(a) aiokafka loop",
    "quix": "(b) Quix Streams",
    "before": "carryover, --before-tree",
}


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def table(results: list[Result], dedupe: bool) -> str:
    """One dedupe mode's results as a Markdown table: per variant the median (min–max) of its runs, and
    the ratios of the medians to the raw loop's and to Quix Streams'."""
    runs = [r for r in results if r.dedupe == dedupe]
    by_variant: dict[str, list[Result]] = {}
    for r in runs:
        by_variant.setdefault(r.variant, []).append(r)
    medians = {v: statistics.median(r.rate for r in rs) for v, rs in by_variant.items()}

    def ratio(variant: str, base: str) -> str:
        return f"{medians[variant] / medians[base]:.2f}" if base in medians else "-"

    rows = [
        f"dedupe {'on' if dedupe else 'off'}:",
        "",
        "| variant | runs | records/s, median (min–max) | vs aiokafka loop | vs Quix | worker CPU ms/record "
        "| broker CPU ms/record | p50 ms | p99 ms | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, rs in by_variant.items():
        p50 = [r.p50_ms for r in rs if r.p50_ms is not None]
        p99 = [r.p99_ms for r in rs if r.p99_ms is not None]
        rows.append(
            f"| {NAMES[variant]} | {len(rs)} | {_spread([r.rate for r in rs])} "
            f"| {ratio(variant, 'aiokafka')} | {ratio(variant, 'quix')} "
            f"| {_spread([r.worker_cpu_ms for r in rs], '{:.2f}')} "
            f"| {_spread([r.broker_cpu_ms for r in rs], '{:.2f}')} | {_spread(p50) if p50 else '-'} "
            f"| {_spread(p99) if p99 else '-'} | {statistics.median(r.peak_rss_mb for r in rs):.0f} |"
        )
    return "\n".join(rows)


async def main_async(args: argparse.Namespace, env: dict[str, str], work: Path) -> list[Result]:
    """Generate the traffic once, then run every variant on its own copy of it."""
    tenants = [f"bench-tenant-{i:03d}" for i in range(args.tenants)]
    key_file = generate_key_file(work / "keys.json", tenants)
    env["CARRYOVER_KEY_FILE"] = str(key_file)
    keys = Keyring.static(await LocalKeyFileProvider(key_file).load())
    config = TrafficConfig(tenants=tenants, conversations_per_tenant=4, bad_fraction=0.02, seed=11)
    publications = TrafficGenerator(config, keys).take(args.records + args.trickle)
    normalizer = await build_normalizer(load({**os.environ, **env}))
    records = bench_records(publications, normalizer)
    backlog, trickle = records[: args.records], records[args.records :]
    print(
        f"{len(backlog)} staging records ({sum(r.outputs for r in backlog)} outputs) for the drain, "
        f"{len(trickle)} at {args.rate:.0f}/s for latency, {args.tenants} tenants",
        flush=True,
    )
    results = []
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.dedupe]
    for run in range(args.runs):
        for dedupe in modes:
            shift = (run + (0 if dedupe else 1)) % len(args.variants)
            order = args.variants[shift:] + args.variants[:shift]  # every variant goes first in turn
            for variant in order:
                result = await run_variant(
                    variant, dedupe, env, backlog, trickle, args.rate, work, args.workers
                )
                print(
                    f"  run {run + 1} dedupe {'on ' if dedupe else 'off'} {variant:9}: "
                    f"{result.rate:7.0f} records/s, CPU ms/record worker {result.worker_cpu_ms:.2f} "
                    f"broker {result.broker_cpu_ms:.2f}, p50 {result.p50_ms or 0:.0f} ms, "
                    f"p99 {result.p99_ms or 0:.0f} ms, peak RSS {result.peak_rss_mb:.0f} MiB",
                    flush=True,
                )
                results.append(result)
                if args.json:
                    with Path(args.json).open("a") as out:  # noqa: ASYNC230 - one short line between runs
                        out.write(json.dumps(asdict(result)) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Start a private broker, run every variant, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=15000, help="staging backlog for the drain")
    parser.add_argument("--trickle", type=int, default=300, help="records written one by one")
    parser.add_argument("--rate", type=float, default=50.0, help="trickle records per second")
    parser.add_argument("--runs", type=int, default=3, help="runs of every variant in every dedupe mode")
    parser.add_argument("--dedupe", choices=("on", "off", "both"), default="both")
    parser.add_argument("--json", help="append every run's figures to this file (JSON lines)")
    parser.add_argument(
        "--workers", type=int, default=1, help="carryover worker processes of one app (CPU: their sum)"
    )
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="variant 'before': carryover's worker from this tree (e.g. `git archive OLD | tar -x -C DIR`; "
        "this tree's bench/ is copied into it)",
    )
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS[:3]), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="2000 records, 100 trickled, 1 run")
    args = parser.parse_args(argv)
    if "before" in args.variants:
        if args.before_tree is None:
            parser.error("the variant 'before' needs --before-tree")
        shutil.copytree(REPO / "bench", args.before_tree / "bench", dirs_exist_ok=True)
        BEFORE_TREE.append(args.before_tree.resolve())
    if args.quick:
        args.records, args.trickle, args.runs = 2000, 100, 1
    with private_stack("normalize benchmark", broker_only=True) as (work, stack_env):
        env = {k: v for k, v in stack_env.items() if k.startswith(("CARRYOVER_", "BENCH_"))}
        env.update(CARRYOVER_LOCAL_BROKER="true", CARRYOVER_SCHEMA_REGISTRY_URL="mock://bench")
        results = asyncio.run(main_async(args, env, work))
    print()
    for dedupe in (True, False):
        if any(r.dedupe == dedupe for r in results):
            print(table(results, dedupe))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
