"""Archive benchmark, end to end: archived messages per second through a real worker, and what archiving
costs the state stage it rides on — both measured in the same run on a private local broker (Tansu).

The same canonical traffic (the simulator's legacy publications put through the real ``Normalizer`` here,
as ``bench.state_bench`` makes it) is drained, alternating and repeated (``--repeats``), by

* **state** — a worker with ``CARRYOVER_ROLES=state`` (the comparison: the stage the archive is a step of);
* **state + archive** — ``CARRYOVER_ROLES=state,archive`` with one policy per (tenant, business unit): a
  ``--window-minutes`` window, all three formats (Actiance XML, EML, JSON Lines), to a local directory
  (``file://``: write-once, fsync; S3 round trips are not in it), a grace of the traffic's span (a backlog
  read through the route agent interleaves its source topics in batches; with 60 s, a third of the events
  were late and the run measured the supplement path).

Both read the canonical topics (route agent → conversation-events → state). Reported per side: events/s
applied to the state (first to last applied, ``/state/stats`` polled every 0.1 s) and the worker's CPU
seconds per 1 000 events over that span; for state + archive also **archive complete**: seconds from the
first applied event until every window of every policy has its manifest (the windows of the traffic's last
event are closed by one tick per partition that the bench sends once the state applied every event, at
that window's end plus grace: the worker's own idle ticks are off, since a tick at the wall clock would
close every window from the traffic's months-old event time up to today), the **archived messages/s**
over that span (messages listed in the manifests' counts), files and MiB written.

Run: ``python -m bench.archive_stream_bench`` (~10 minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from app import local_broker
from app import topics as topic_names
from app.archive.closing import tick_headers
from app.archive.manifest import Manifest, manifest_key
from app.archive.policy import ArchiveFormat, ArchivePolicy, window_of, windows_between
from app.dev.simulate.traffic import _UNITS as BUSINESS_UNITS
from app.state.facts import FactKind, split_key
from app.state.routing import CANONICAL_TOPIC_HEADER, DictHoldBook, decode_fact, route_record
from bench.common import peak_rss_mb, private_stack
from bench.state_bench import (
    TOKEN,
    Bench,
    Drain,
    handled,
    launch,
    make_traffic,
    poll_until,
    spread,
    state_drain,
)
from tests.support.cli import carryover
from tests.support.state import Record, produce_canonical


@dataclass
class ArchiveDrain:
    """One state + archive drain: the state side as a :class:`Drain`, and the archive's completion."""

    drain: Drain
    complete_s: float
    messages: int
    files: int
    mib: float
    late: int
    """Events that came after their window closed (the worker's log): delivered as supplements."""

    @property
    def messages_per_s(self) -> float:
        return self.messages / max(self.complete_s, 1e-3)


def policies(
    tenants: list[str], since_ms: int, minutes: int, root: Path, grace_s: int
) -> list[ArchivePolicy]:
    """One policy per (tenant, business unit), every format, to ``file://root``."""
    return [
        ArchivePolicy.from_dict(
            {
                "tenant": tenant,
                "business_unit": unit,
                "schedule": {"every_seconds": minutes * 60},
                "formats": [f.value for f in ArchiveFormat],
                "destination": f"file://{root}",
                "retention_days": 1,
                "grace_seconds": grace_s,
                "since_ms": since_ms,
            }
        )
        for tenant in tenants
        for unit in BUSINESS_UNITS
    ]


def routed_events(canonical: dict[str, list[Record]]) -> list[Record]:
    """The conversation-events records the route agent makes of ``canonical`` (topic by topic)."""
    holds = DictHoldBook()
    out: list[Record] = []
    for topic in topic_names.CONVERSATION_SOURCES:
        for _key, value, headers in canonical.get(topic, []):
            for forward in route_record(topic, value, headers, holds).forwards:
                out.append((forward.key.encode(), forward.value, forward.headers))
    return out


def event_span(events: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]) -> tuple[int, int]:
    """(first, last) event time in ms of the repartitioned events."""
    times = []
    for _key, value, headers in events:
        fact = decode_fact(dict(headers)[CANONICAL_TOPIC_HEADER].decode(), value)
        if fact is not None and fact.time_ms > 0:
            times.append(fact.time_ms)
    return min(times), max(times)


def expected_manifests(made: list[ArchivePolicy], last_ms: int) -> list[str]:
    """Every manifest key the policies must end with (each window from the first to the last event's)."""
    keys = []
    for policy in made:
        assert policy.since_ms is not None
        for window in windows_between(policy, policy.since_ms, last_ms + 1):
            keys.append(manifest_key(policy.tenant, policy.business_unit, window))
    return keys


def archive_drain(
    bench: Bench, canonical: dict[str, Any], events: int, made: list[ArchivePolicy], root: Path, label: str
) -> ArchiveDrain:
    """A state + archive worker drains ``canonical`` and archives it under ``root``."""
    # no wall-clock ticks: the traffic's event time is months old, so a tick at "now" would close every
    # window of every policy up to today (thousands per policy); the bench ticks at the traffic's end instead
    env = bench.fresh("state,archive", CARRYOVER_ARCHIVE_IDLE_SECONDS="86400")
    bench.topics(env)
    for i, policy in enumerate(made):
        path = bench.work / f"{label}-policy-{i}.json"
        path.write_bytes(policy.to_json())
        done = carryover(["archive", "policy", "set", str(path)], env)
        assert done.returncode == 0, done.stderr
    asyncio.run(produce_canonical(bench.bootstrap, env["CARRYOVER_TOPIC_PREFIX"], canonical))
    worker = launch(env, bench.work / f"{label}.log")
    wanted = expected_manifests(made, LAST["ms"])
    try:
        samples = poll_until(worker, lambda s: handled(s) >= events, 900, label)
        events_topic = env["CARRYOVER_TOPIC_PREFIX"] + topic_names.CONVERSATION_EVENTS
        asyncio.run(send_ticks(bench.bootstrap, events_topic, end_of_last_windows(made, LAST["ms"])))
        deadline = time.monotonic() + 900
        while not all((root / key).exists() for key in wanted):
            assert time.monotonic() < deadline, f"{label}: manifests missing\n{worker.log_tail()}"
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
            time.sleep(0.1)
        complete_at = time.monotonic()
        assert worker.proc is not None
        peak = peak_rss_mb(worker.proc.pid)
    finally:
        worker.kill()
    first = next(s for s in samples if s.stats["applied"] > 0)
    last = samples[-1]
    applied = last.stats["applied"] - first.stats["applied"]
    drain = Drain(
        "state+archive", applied, last.stats["applied"], last.at - first.at, last.cpu - first.cpu, peak
    )
    messages = sum(
        Manifest.from_json((root / key).read_bytes()).totals().get(str(FactKind.MESSAGE_SENT), 0)
        for key in wanted
    )
    files = [p for p in root.rglob("*") if p.is_file()]
    late = (bench.work / f"{label}.log").read_text(errors="replace").count("came after its window closed")
    return ArchiveDrain(
        drain,
        complete_at - first.at,
        messages,
        len(files),
        sum(p.stat().st_size for p in files) / 2**20,
        late,
    )


def end_of_last_windows(made: list[ArchivePolicy], last_ms: int) -> int:
    """The event time at which the window of the last event has closed for every policy (end + grace)."""
    return max(window_of(policy, last_ms).end_ms + policy.grace_ms for policy in made)


async def send_ticks(bootstrap: str, topic: str, tick_ms: int) -> None:
    """One tick at ``tick_ms`` on every partition of ``topic``: what the worker's idle ticker would send,
    at the traffic's end instead of at the wall clock."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **local_broker.producer_options(True))
    await producer.start()
    try:
        for partition in sorted(await producer.partitions_for(topic)):
            await producer.send_and_wait(
                topic, b"", key=None, partition=partition, headers=tick_headers(tick_ms)
            )
    finally:
        await producer.stop()


LAST = {"ms": 0}


def main(argv: list[str] | None = None) -> int:
    """Start a private broker, alternate the two drains, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--publications", type=int, default=20000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window-minutes", type=int, default=30)
    parser.add_argument(
        "--grace-seconds", type=int, default=None, help="policies' grace (default: the traffic's span + 60 s)"
    )
    parser.add_argument("--quick", action="store_true", help="1 500 publications, one drain each")
    args = parser.parse_args(argv)
    if args.quick:
        args.publications, args.repeats = 1500, 1
    began = time.monotonic()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    with private_stack("archive stream benchmark", broker_only=True) as (work, stack_env):
        env = {**os.environ, **{k: v for k, v in stack_env.items() if k.startswith("CARRYOVER_")}}
        env.update(
            CARRYOVER_LOCAL_BROKER="true",
            CARRYOVER_SCHEMA_REGISTRY_URL="mock://bench",
            CARRYOVER_ADMIN_TOKEN=TOKEN,
            CARRYOVER_STORE="rocksdb://",
            PYTHONUNBUFFERED="1",
        )
        bench = Bench(work, env, env["CARRYOVER_BROKER"].split("://", 1)[1])
        traffic = make_traffic(bench, args.publications, args.tenants)
        routed = routed_events(traffic.canonical)
        first_ms, LAST["ms"] = event_span(routed)
        tenants = sorted({split_key((k or b"").decode())[0] for k, _v, _h in routed})
        # the backlog reaches conversation-events through the route agent, which reads its source topics in
        # batches: a partition's event time runs ahead of a lagging topic by up to the traffic's span, so a
        # grace shorter than that turns much of the traffic into late events (7 001 of 19 495 with 60 s)
        span_s = (LAST["ms"] - first_ms) // 1000
        grace_s = args.grace_seconds if args.grace_seconds is not None else span_s + 60
        print(
            f"{traffic.canonical_count} canonical records -> {traffic.events} state events, "
            f"{traffic.conversations} conversations, {len(tenants)} tenants, event time "
            f"{(LAST['ms'] - first_ms) / 3_600_000:.1f} h; grace {grace_s} s; {args.repeats} drains each, "
            "alternating",
            flush=True,
        )
        state_runs: list[Drain] = []
        archive_runs: list[ArchiveDrain] = []
        for i in range(args.repeats):
            for side in ("state", "archive") if i % 2 == 0 else ("archive", "state"):
                if side == "state":
                    d = state_drain(bench, traffic.canonical, traffic.events, f"state-{i}")
                    state_runs.append(d)
                    print(
                        f"  state          #{i}: {d.rate:6.0f} events/s, {d.cpu_per_1k:.2f} CPU s/1k",
                        flush=True,
                    )
                else:
                    root = work / f"archive-{i}"
                    made = policies(tenants, first_ms, args.window_minutes, root, grace_s)
                    a = archive_drain(bench, traffic.canonical, traffic.events, made, root, f"archive-{i}")
                    archive_runs.append(a)
                    print(
                        f"  state+archive  #{i}: {a.drain.rate:6.0f} events/s, "
                        f"{a.drain.cpu_per_1k:.2f} CPU s/1k; "
                        f"complete in {a.complete_s:.1f}s, {a.messages} messages ({a.messages_per_s:.0f}/s), "
                        f"{a.files} files, {a.mib:.1f} MiB, {a.late} late events",
                        flush=True,
                    )
        policies_count = len(tenants) * len(BUSINESS_UNITS)
    print(f"\narchive stream benchmark, {time.monotonic() - began:.0f}s in all ({sys.version.split()[0]})\n")
    print(
        "| side | events/s applied (median, min-max) | CPU s per 1k events | archive complete s | "
        "archived messages/s | files | MiB | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| state | {spread([d.rate for d in state_runs])} | "
        f"{spread([d.cpu_per_1k for d in state_runs], '{:.2f}')} "
        f"| – | – | – | – | {spread([d.peak_rss_mib for d in state_runs])} |"
    )
    print(
        f"| state + archive ({policies_count} policies, {args.window_minutes}-min windows, 3 formats) | "
        f"{spread([a.drain.rate for a in archive_runs])} | "
        f"{spread([a.drain.cpu_per_1k for a in archive_runs], '{:.2f}')} | "
        f"{spread([a.complete_s for a in archive_runs], '{:.1f}')} | "
        f"{spread([a.messages_per_s for a in archive_runs])} | {archive_runs[0].files} | "
        f"{archive_runs[0].mib:.1f} | {spread([a.drain.peak_rss_mib for a in archive_runs])} |"
    )
    ratio = statistics.median(a.drain.rate for a in archive_runs) / statistics.median(
        d.rate for d in state_runs
    )
    print(f"\nstate+archive / state events/s (medians): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
