"""Runs the configured sources (SQS, Pub/Sub, any other adapter) side by side, with one shared in-flight cap.

Framework-free (plain asyncio), so the worker's service, the benchmark and in-process tests run the same
code. Each adapter runs in its own :class:`~app.ingest.driver.IngestDriver`; the worker wraps the runner
in :class:`app.ingest.service.IngestService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from app.ingest.admission import AdmissionGate
from app.ingest.driver import IngestDriver
from app.ingest.flow import InFlightLimiter
from app.ingest.port import SourcePort
from app.ingest.pubsub import PubSubAdapter, PubSubConfig
from app.ingest.sink import Sink
from app.ingest.sqs import SqsAdapter, SqsConfig
from app.ingest.stats import IngestStats, registry
from app.settings import Settings

log = logging.getLogger(__name__)
SUMMARY_INTERVAL_SECONDS = 30.0


class IngestRunner:
    """Every configured source plus the periodic one-line summary; ``run`` until cancelled."""

    def __init__(
        self,
        sqs: SqsConfig | None,
        pubsub: PubSubConfig | None,
        sink: Sink,
        *,
        max_in_flight: int,
        stats: IngestStats = registry,
        summary_interval: float = SUMMARY_INTERVAL_SECONDS,
        adapters: Sequence[SourcePort[Any]] = (),
        gate: AdmissionGate | None = None,
    ) -> None:
        self.limiter = InFlightLimiter(max_in_flight)
        self.gate = gate
        self.stats = stats
        self.summary_interval = summary_interval
        ports: list[SourcePort[Any]] = []
        if sqs is not None:
            ports.append(SqsAdapter(sqs))
        if pubsub is not None:
            ports.append(PubSubAdapter(pubsub))
        ports.extend(adapters)
        self.drivers: list[IngestDriver[Any]] = [
            IngestDriver(port, sink, self.limiter, stats, gate) for port in ports
        ]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sink: Sink,
        stats: IngestStats = registry,
        gate: AdmissionGate | None = None,
    ) -> IngestRunner:
        """Both adapters configured from carryover's settings (``gate``: staging admission, if any)."""
        return cls(
            SqsConfig.from_settings(settings),
            PubSubConfig.from_settings(settings),
            sink,
            max_in_flight=settings.max_in_flight,
            stats=stats,
            gate=gate,
        )

    async def run(self) -> None:
        """Run the sources and the summary log until cancelled.

        Cancelled (the worker stops): every driver shuts down at once and side by side (no receive after
        the stop, batches in flight land within the grace, the rest is released at once), then one line
        says what the shutdown did and how long it took.
        """
        tasks = [asyncio.create_task(self._summarise(), name="ingest-summary")]
        for driver in self.drivers:
            tasks.append(asyncio.create_task(driver.run(), name=f"ingest-{driver.port.kind}"))
        try:
            await asyncio.gather(*tasks)
        finally:
            started = time.monotonic()
            for task in tasks:
                if not task.cancelling():  # once: gather cancelled them already when it was cancelled
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            log.info("%s", self.stats.summary_line())
            log.info("%s", self.shutdown_line(time.monotonic() - started))

    def shutdown_line(self, seconds: float) -> str:
        """The drivers' shutdown figures in one log line."""
        reports = [d.shutdown_report for d in self.drivers if d.shutdown_report is not None]
        landed = sum(r.landed for r in reports)
        released = sum(r.released for r in reports)
        errors = sum(r.release_errors for r in reports)
        cancelled = sum(r.cancelled_batches for r in reports)
        grace = max((d.schedule.shutdown_grace for d in self.drivers), default=0.0)
        return (
            f"ingest shutdown in {seconds:.1f}s (grace {grace:g}s): landed {landed}, released {released} at "
            f"once, release errors {errors}, batches cut at the grace {cancelled}"
            + "".join(f" | {r.line()}" for r in reports)
        )

    async def _summarise(self) -> None:
        while True:
            await asyncio.sleep(self.summary_interval)
            log.info("%s", self.stats.summary_line())
