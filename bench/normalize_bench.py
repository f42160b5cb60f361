"""Normalize benchmark: the staging -> canonical stage alone, carryover's Faust agent next to (a) a raw
aiokafka consume -> transform -> produce loop and (b) Quix Streams doing the same transformation, all
measured in the same run on a private local broker (Tansu).

Every variant gets its own topic prefix holding the same pre-generated staging records (simulated legacy
traffic of many tenants, all encodings, ~2% bad payloads) and runs as its own process:

* drain: the staging backlog is written first, then the variant starts; rate = staging records / time
  between the first and the last output record received here (start-up excluded; record timestamps
  cannot be used: Quix Streams gives outputs their input's timestamp);
* trickle: staging records are then written one by one at a steady rate below every variant's capacity;
  latency = staging write -> output record received by a consumer in this process, p50 / p99 (a staging
  record with several canonical events counts at its last);
* peak RSS of the variant's process (VmHWM).

Every output is checked against what the same :class:`~app.normalize.normalizer.Normalizer` produces here: the
variants must write the same number of canonical records and dead letters, or the run fails.

Run: ``python -m bench.normalize_bench`` (a few minutes); ``--quick`` for a smoke run. The Quix Streams
variant needs ``.venv-quix`` (created on first use: Quix Streams 3.28.1 pins confluent-kafka < 2.13, so it
cannot share carryover's virtualenv); ``--variants carryover aiokafka`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

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

REPO = Path(__file__).resolve().parents[1]
QUIX_VENV = REPO / ".venv-quix"
QUIX_PINS = ["quixstreams==3.28.1", "confluent-kafka==2.12.2"]
VARIANTS = ("carryover", "aiokafka", "quix")


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
    """One variant's figures."""

    variant: str
    records: int
    outputs: int
    rate: float
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


def variant_command(variant: str) -> list[str]:
    """The process that runs ``variant``."""
    if variant == "carryover":
        return [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info", "--without-web"]
    python = str(ensure_quix_venv()) if variant == "quix" else sys.executable
    return [python, "-m", "bench.normalize_variants", variant]


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


async def run_variant(
    variant: str,
    env: dict[str, str],
    backlog: Sequence[BenchRecord],
    trickle: Sequence[BenchRecord],
    rate: float,
    log_dir: Path,
) -> Result:
    """Drain then trickle through one variant in its own process; its own topic prefix."""
    prefix = f"nb{uuid.uuid4().hex[:6]}-{variant}."
    bootstrap = env["CARRYOVER_BROKER"].split("://", 1)[1]
    report = await apply_topics(bootstrap, default_catalog(), dry_run=False, prefix=prefix)
    assert report.ok, report.summary()
    await produce(bootstrap, prefix + STAGING, backlog)
    outputs = Outputs(bootstrap, prefix)
    await outputs.start()
    proc_env = {**os.environ, **env, "CARRYOVER_TOPIC_PREFIX": prefix, "CARRYOVER_ROLES": "normalize"}
    proc_env["CARRYOVER_DATA_DIR"] = str(log_dir / f"{variant}-data")
    log_path = log_dir / f"{variant}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220, S603 - started once, not awaited
            variant_command(variant), cwd=REPO, env=proc_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        want = sum(r.outputs for r in backlog)
        await outputs.wait_for(want, 300, proc, log_path)
        span_s = outputs.last - (outputs.first or outputs.last)
        drain_rate = len(backlog) / max(span_s, 1e-3)
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
            len(backlog),
            expected,
            drain_rate,
            percentile(latencies, 50),
            percentile(latencies, 99),
            peak_rss_mb(proc.pid),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        await outputs.stop()


def table(results: list[Result]) -> str:
    """The results as a Markdown table with each variant's ratio to the raw aiokafka loop."""
    base = next((r.rate for r in results if r.variant == "aiokafka"), None)

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    rows = [
        "| variant | staging records | outputs | records/s (drain) | vs aiokafka loop | p50 ms | p99 ms "
        "| peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r.rate / base:.2f}" if base else "-"
        rows.append(
            f"| {r.variant} | {r.records} | {r.outputs} | {r.rate:.0f} | {ratio} | {ms(r.p50_ms)} | "
            f"{ms(r.p99_ms)} | {r.peak_rss_mb:.0f} |"
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
    for variant in args.variants:
        result = await run_variant(variant, env, backlog, trickle, args.rate, work)
        print(
            f"  {variant:9}: {result.rate:7.0f} records/s, p50 {result.p50_ms or 0:.0f} ms, "
            f"p99 {result.p99_ms or 0:.0f} ms, peak RSS {result.peak_rss_mb:.0f} MiB",
            flush=True,
        )
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    """Start a private broker, run every variant, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="staging backlog for the drain")
    parser.add_argument("--trickle", type=int, default=1500, help="records written one by one")
    parser.add_argument("--rate", type=float, default=100.0, help="trickle records per second")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="2000 records, 200 trickled")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.trickle = 2000, 200
    with private_stack("normalize benchmark", broker_only=True) as (work, stack_env):
        env = {k: v for k, v in stack_env.items() if k.startswith("CARRYOVER_")}
        env.update(CARRYOVER_LOCAL_BROKER="true", CARRYOVER_SCHEMA_REGISTRY_URL="mock://bench")
        results = asyncio.run(main_async(args, env, work))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
