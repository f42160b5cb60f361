"""The worker-side ingestion service: declares the topics, owns the Kafka sink, runs the adapters.

Registered by ``agents/ingest.py`` (:meth:`IngestService.bound_to`) when the worker's roles include
``ingest``.

Stopping (SIGTERM): mode's worker stops the Faust app, whose ``on_stop`` (consumer, streams, producer
flush) runs before its children, this service among them, are stopped; mode puts no time limit on either,
and cancels the tasks left only once every service stopped. So the service starts the ingestion shutdown
as soon as the app begins to stop (the app's ``wait_until_stopped``), not when its own ``on_stop`` comes;
``on_stop`` then waits for that shutdown to finish (bounded by the drivers: the grace
``CARRYOVER_SHUTDOWN_GRACE_SECONDS`` plus the release calls) before closing the producer. The worker
process exits only after that.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mode import Service

from app.ingest.admission import AdmissionGate
from app.ingest.runner import IngestRunner
from app.ingest.sink import KafkaSink
from app.ingest.staging_progress import StagingProgressReader
from app.ops.lag_monitor import client_options

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)
SINK_STOP_SECONDS = 10.0
"""How long closing the producer may take after the shutdown (it flushes; nothing waits on it any more)."""


class IngestService(Service):
    """Lands every tenant queue and subscription into staging for as long as the worker runs."""

    _task: asyncio.Task[None] | None = None
    _watch: asyncio.Task[None] | None = None
    _sink: KafkaSink | None = None
    _admission: asyncio.Task[None] | None = None
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
        gate = None
        if settings.staging_admission_seconds > 0:
            gate = AdmissionGate(target_seconds=settings.staging_admission_seconds)
            reader = StagingProgressReader(
                gate,
                topics.staging.get_topic_name(),
                self.carryover_app.conf.id,
                client_options(self.carryover_app),
            )
            self._admission = asyncio.create_task(reader.run(), name="ingest-staging-admission")
        runner = IngestRunner.from_settings(settings, self._sink, gate=gate)
        self._task = asyncio.create_task(runner.run(), name="ingest")
        self._task.add_done_callback(self._on_runner_done)
        self._watch = asyncio.create_task(self._stop_with_app(), name="ingest-stop-watch")
        log.info(
            "ingest: SQS prefix %r, Pub/Sub %s/%r, max in flight %d, staging admission %s",
            settings.sqs_queue_prefix,
            settings.pubsub_project,
            settings.pubsub_subscription_prefix,
            settings.max_in_flight,
            f"{settings.staging_admission_seconds:g}s of normalize" if gate is not None else "off",
        )

    @staticmethod
    def _on_runner_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest stopped: %r", task.exception())

    async def _stop_with_app(self) -> None:
        """Start the ingestion shutdown as soon as the app starts stopping (before its own ``on_stop``)."""
        await self.carryover_app.wait_until_stopped()
        self._begin_shutdown("the worker is stopping")

    def _begin_shutdown(self, why: str) -> None:
        task = self._task
        if task is not None and not task.done() and not task.cancelling():
            log.info("ingest: stopping (%s): no more receives, landing what is in flight", why)
            task.cancel()

    async def on_stop(self) -> None:
        """Stop receiving, let in-flight batches land within the grace, release the rest, close the producer.

        The runner is cancelled once; its drivers bound their own shutdown, which is awaited in full here
        (a second cancellation would cut the releases short).
        """
        self._begin_shutdown("service stop")
        if self._task is not None:
            await asyncio.wait([self._task])
        if self._watch is not None:
            self._watch.cancel()
        if self._admission is not None:
            self._admission.cancel()
            await asyncio.gather(self._admission, return_exceptions=True)
        if self._sink is not None:
            try:
                await asyncio.wait_for(self._sink.stop(), SINK_STOP_SECONDS)
            except Exception as exc:  # noqa: BLE001 - every message is settled or released already
                log.warning("ingest: closing the Kafka producer: %r", exc)
