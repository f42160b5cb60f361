"""Ingestion: every tenant SQS queue and Pub/Sub subscription into ``legacy.staging.v1``.

Thin on purpose: the adapters live in :mod:`app.ingest`; this module registers the service that runs them
and the ``/sources/`` JSON view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.ingest.service import IngestService
from app.ops import source_views

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp


def register(app: CarryoverApp) -> None:
    """Run ingestion with ``app`` and serve its counters at ``/sources/``."""
    app.service(IngestService.bound_to(app))
    source_views.blueprint.register(app)
