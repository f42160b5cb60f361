"""Runs the SQS and Pub/Sub adapters side by side on one event loop, with one shared in-flight cap.

Framework-free (plain asyncio), so the worker's service, the benchmark and in-process tests run the same
code. The worker wraps it in :class:`app.ingest.service.IngestService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.ingest.flow import InFlightLimiter
from app.ingest.pubsub import PubSubConfig, PubSubIngester
from app.ingest.sink import Sink
from app.ingest.sqs import SqsConfig, SqsIngester
from app.ingest.stats import IngestStats, registry
from app.settings import Settings

log = logging.getLogger(__name__)
SUMMARY_INTERVAL_SECONDS = 30.0


class IngestRunner:
    """Both adapters plus the periodic one-line summary; ``run`` until cancelled."""

    def __init__(
        self,
        sqs: SqsConfig | None,
        pubsub: PubSubConfig | None,
        sink: Sink,
        *,
        max_in_flight: int,
        stats: IngestStats = registry,
        summary_interval: float = SUMMARY_INTERVAL_SECONDS,
    ) -> None:
        self.limiter = InFlightLimiter(max_in_flight)
        self.stats = stats
        self.summary_interval = summary_interval
        self.sqs = SqsIngester(sqs, sink, self.limiter, stats) if sqs else None
        self.pubsub = PubSubIngester(pubsub, sink, self.limiter, stats) if pubsub else None

    @classmethod
    def from_settings(cls, settings: Settings, sink: Sink, stats: IngestStats = registry) -> IngestRunner:
        """Both adapters configured from carryover's settings."""
        return cls(
            SqsConfig.from_settings(settings),
            PubSubConfig.from_settings(settings),
            sink,
            max_in_flight=settings.max_in_flight,
            stats=stats,
        )

    async def run(self) -> None:
        """Run the adapters and the summary log until cancelled."""
        tasks = [asyncio.create_task(self._summarise(), name="ingest-summary")]
        if self.sqs is not None:
            tasks.append(asyncio.create_task(self.sqs.run(), name="ingest-sqs"))
        if self.pubsub is not None:
            tasks.append(asyncio.create_task(self.pubsub.run(), name="ingest-pubsub"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            log.info("%s", self.stats.summary_line())

    async def _summarise(self) -> None:
        while True:
            await asyncio.sleep(self.summary_interval)
            log.info("%s", self.stats.summary_line())
