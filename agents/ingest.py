"""Ingestion: every tenant SQS queue and Pub/Sub subscription into ``legacy.staging.v1``.

Thin on purpose: the adapters live in :mod:`app.ingest`; this module registers the service that runs them
and the ``/sources/`` JSON view.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from app import topics as topic_names
from app.ingest.service import IngestService
from app.ingest.stats import registry
from app.ops import source_views
from app.ops.worker_status import WorkerStatus

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)
SOURCE_KINDS = ("sqs", "pubsub")


def register(app: CarryoverApp) -> None:
    """Run ingestion with ``app``, serve its counters at ``/sources/``, report them to the other workers."""
    settings = app.carryover
    app.service(IngestService.bound_to(app))
    source_views.blueprint.register(app)
    status_topic = settings.topic_prefix + topic_names.WORKER_STATUS

    @app.every(settings.lag_sample_seconds)
    async def publish_worker_status() -> None:
        """This worker's source totals, for every worker's lag page (carryover.ops.worker-status)."""
        worker = f"{settings.app_id}@{app.conf.canonical_url}"
        sources = {kind: registry.totals(kind) for kind in SOURCE_KINDS}
        status = WorkerStatus(worker, time.time(), settings.roles, sources)
        try:
            await app.producer.send(status_topic, worker.encode(), status.to_json(), None, None, [])
        except Exception as exc:  # noqa: BLE001 - a missed status only ages out of the sum
            log.warning("could not publish this worker's status to %s: %r", status_topic, exc)
