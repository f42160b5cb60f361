"""The worker-side ingestion service: declares the topics, owns the Kafka sink, runs the adapters.

Registered by ``agents/ingest.py`` (:meth:`IngestService.bound_to`) when the worker's roles include
``ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mode import Service

from app.ingest.runner import IngestRunner
from app.ingest.sink import KafkaSink

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)


class IngestService(Service):
    """Lands every tenant queue and subscription into staging for as long as the worker runs."""

    _task: asyncio.Task[None] | None = None
    _sink: KafkaSink | None = None
    carryover_app: CarryoverApp

    @classmethod
    def bound_to(cls, app: CarryoverApp) -> type[IngestService]:
        """This service for ``app`` (Faust instantiates the services it is given)."""
        return type(cls.__name__, (cls,), {"carryover_app": app})

    async def on_start(self) -> None:
        """Make sure staging and the dead-letter topic exist, connect the producer, start the adapters."""
        settings, topics = self.carryover_app.carryover, self.carryover_app.streams
        await topics.staging.maybe_declare()
        await topics.dead_letters.maybe_declare()
        self._sink = KafkaSink(
            settings.bootstrap_servers,
            topics.staging.get_topic_name(),
            topics.dead_letters.get_topic_name(),
            local=settings.local_broker,
            fail_every_nth=settings.test_fail_every_nth_send,
            max_request_size=settings.kafka_max_record_bytes,
        )
        await self._sink.start()
        runner = IngestRunner.from_settings(settings, self._sink)
        self._task = asyncio.create_task(runner.run(), name="ingest")
        self._task.add_done_callback(self._on_runner_done)
        log.info(
            "ingest: SQS prefix %r, Pub/Sub %s/%r, max in flight %d",
            settings.sqs_queue_prefix,
            settings.pubsub_project,
            settings.pubsub_subscription_prefix,
            settings.max_in_flight,
        )

    @staticmethod
    def _on_runner_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest stopped: %r", task.exception())

    async def on_stop(self) -> None:
        """Stop receiving, let in-flight batches finish (bounded), then close the producer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sink is not None:
            await self._sink.stop()
