"""A tiny Faust app for the table-failover and web tests, running with carryover's local-broker compat layer.

``count`` counts records per key of ``<prefix>counts.in`` into the ``counts`` table (memory store,
changelog-backed); ``GET /counts/`` answers the table as JSON, as any client of the worker would see it.
A record whose value is ``b"stall"`` is counted under ``"stalled"`` and then blocks the agent for good:
a stuck consumer whose group lags (used by the lag page test). A record whose value is ``b"pause"`` is
counted under ``"paused"`` and then holds the agent until ``GET /resume/`` (a consumer paused, then
resumed: the browser test of the lag page); the record itself is counted once the agent goes on.
A record whose value is ``b"lose-acks"`` (once per worker) leaves the consumer as a rebalance can leave it
(``app/commit_watch.py``): the acknowledgements of the records since the last commit are gone, and the
fetcher is sought back to the committed offset while Faust's read offset stays at this record, so those
records are fetched again and dropped as already read (the race that produces this cannot be triggered on
demand). carryover's web views (lag, metrics, probes) are registered as the carryover app registers them.

``TABLE_APP_PARTITIONS`` (default 4) sizes the source and the table; ``TABLE_APP_COMMIT_INTERVAL``
(default 0.5) is Faust's commit interval in seconds;
``TABLE_APP_END_OFFSET_CORRECTION=false`` removes only the end-offset correction (producer
idempotence stays off, as the local broker needs), to show what the correction is for.

Run: ``faust -A tests.e2e.table_app.counting worker`` with the usual ``CARRYOVER_*`` environment.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust
from faust.web import Request, Response, View

from app import local_broker, ops
from app.faust_app import CarryoverApp
from app.settings import load

SOURCE = "counts.in"
STALL = b"stall"
PAUSE = b"pause"
LOSE_ACKS = b"lose-acks"
PARTITIONS = int(os.environ.get("TABLE_APP_PARTITIONS", "4"))

settings = load()
app = CarryoverApp(
    settings,
    autodiscover=False,
    origin="tests.e2e.table_app.counting",
    broker_commit_interval=float(os.environ.get("TABLE_APP_COMMIT_INTERVAL", "0.5")),
    producer_linger=0.5,  # changelog writes of a burst share batches (also on a loaded machine)
    topic_partitions=PARTITIONS,
)
if os.environ.get("TABLE_APP_END_OFFSET_CORRECTION", "true") == "false":
    local_broker.remove_end_offset_correction()
ops.register(app)

source = app.topic(
    settings.topic_prefix + SOURCE,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=PARTITIONS,
)
counts = app.Table("counts", default=int, partitions=PARTITIONS)
resume = asyncio.Event()
"""Clear while a ``pause`` record holds the agent; ``GET /resume/`` sets it."""
resume.set()
lost_acks_fired = asyncio.Event()
"""Set once ``lose-acks`` acted (it acts once per worker)."""


async def lose_acks(event: faust.EventT[bytes]) -> None:
    """Drop the acknowledgements since the last commit and seek the fetcher back, read offset left here."""
    consumer: Any = app.consumer
    tp, offset = event.message.tp, event.message.offset
    committed = consumer._committed_offset.get(tp) or 0
    lost_acks_fired.set()
    consumer._acked[tp] = [o for o in consumer._acked[tp] if o < committed]
    consumer._acked_index[tp] = set(consumer._acked[tp])
    await consumer._seek(tp, committed)  # the fetcher only: Faust's read offset stays at this record
    print(f"lose-acks at {tp.topic}[{tp.partition}] offset {offset}: fetcher at {committed}", flush=True)


@app.agent(source, concurrency=1)
async def count(stream: faust.StreamT[bytes]) -> None:
    """Add one to the table row of each record's key.

    A ``stall`` record blocks the agent forever; a ``pause`` record blocks it until ``GET /resume/``.
    """
    async for key, value in stream.items():
        if value == LOSE_ACKS and not lost_acks_fired.is_set() and stream.current_event is not None:
            await lose_acks(stream.current_event)
        if value == STALL:
            counts["stalled"] += 1
            await asyncio.Event().wait()
        if value == PAUSE:
            resume.clear()
            counts["paused"] += 1
            await resume.wait()
        counts[key.decode()] += 1


@app.page("/counts/")
class CountsView(View):
    """The whole table as JSON (one worker holds every partition in these tests)."""

    async def get(self, request: Request) -> Response:
        """``{key: count}`` plus whether end-offset correction is on in this worker."""
        return self.json(
            {
                "counts": {str(k): int(v) for k, v in counts.items()},
                "end_offset_correction": local_broker.end_offset_correction_installed(),
            }
        )


@app.page("/resume/")
class ResumeView(View):
    """Let a paused agent go on (a ``pause`` record waits for this)."""

    async def get(self, request: Request) -> Response:
        """``{"resumed": true, "was_paused": whether the agent was waiting}``."""
        was_paused = not resume.is_set()
        resume.set()
        return self.json({"resumed": True, "was_paused": was_paused})
