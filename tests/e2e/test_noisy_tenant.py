"""A trickling tenant's events keep arriving while another tenant's backlog drains (issue 14), on the real
stack: a worker running ingest + normalize for a few tenants publishing a steady trickle, then one Pub/Sub
tenant publishes a backlog. The same scenario as ``bench/noisy_bench.py`` (whose classes it reuses), sized
for the suite: what it shows is that the trickle is not queued behind the backlog in staging, with either
normalize path. With the agent, normalize is slower than ingestion in one worker, so a backlog builds up
in front of staging and staging admission must hold it in its own subscription (asserted); the batch stage
keeps up with ingestion here, so admission has nothing to hold.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from app.dev.simulate.publish import Publisher
from bench.noisy_bench import PROJECT, Bench
from tests.e2e.test_ingest_support import sources_view
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

BACKLOG = 6_000
TRICKLING = 10
PER_TENANT_RATE = 2.0


@pytest.mark.parametrize("path", ["batch", "agent"])
async def test_a_trickle_arrives_while_a_backlog_drains(
    stack: RunningStack, tmp_path: Path, path: str
) -> None:
    args = argparse.Namespace(
        tenants=TRICKLING,
        per_tenant_rate=PER_TENANT_RATE,
        pubsub_backlog=BACKLOG,
        sqs_backlog=0,
        repeats=1,
        drain_timeout=300.0,
    )
    bench = Bench(args, {**stack.env, "CARRYOVER_NORMALIZE_PATH": path}, tmp_path, "pubsub")
    await bench.setup()
    async with Publisher(project=PROJECT) as publisher:
        bench.publisher = publisher
        worker, observer = await bench.start_worker("trickle-then-backlog")
        try:
            row, drain = await bench.backlog_into_running_worker(worker, observer)
            view = sources_view(worker)
        finally:
            await asyncio.to_thread(worker.stop)
            await observer.stop()
    # sources are named after their tenant (carryover-legacy-<tenant>); the tenant comes with each message
    hot = [s for s in view["sources"] if s["name"].endswith(bench.hot)]
    drain_seconds = (drain.last or 0.0) - (drain.first or 0.0)
    print(
        f"\n{path}: backlog {BACKLOG} drained in {drain_seconds:.1f}s ({row.rate or 0:.0f}/s, landed "
        f"{row.landed_rate or 0:.0f}/s); trickle {row.trickle} messages, missing {row.missing}, "
        f"publish -> canonical p50 {row.p50 or 0:.0f} ms p99 {row.p99 or 0:.0f} ms "
        f"(staging p99 {row.staged_p99 or 0:.0f} ms); hot source held {hot[0]['held'] if hot else '?'} turns"
    )
    assert drain.canonical >= drain.expected and not drain.timed_out, "the backlog drained"
    assert row.trickle >= TRICKLING, "the trickle ran while the backlog drained"
    assert row.missing == 0, "every trickle message published during the drain reached the canonical topics"
    assert hot, view["sources"]
    if path == "agent":  # normalize slower than ingestion: admission has a backlog to hold back
        assert hot[0]["held"] > 0, "the backlog was held in its subscription while above its share"
    trickling = [s for s in view["sources"] if s["name"].endswith(tuple(bench.tenants))]
    assert trickling and all(s["held"] == 0 for s in trickling), "a trickling tenant is never held"
    assert row.p99 is not None and row.p99 / 1000 < max(6.0, drain_seconds / 3), (
        "the trickle did not queue behind the backlog in staging"
    )
