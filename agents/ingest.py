"""Ingestion: every tenant SQS queue and Pub/Sub subscription into ``legacy.staging.v1``.

Thin on purpose: the adapters live in :mod:`app.sources`; this module only registers the service and the
``/sources/`` JSON view, and only when the worker runs the ``ingest`` role.
"""

from __future__ import annotations

from app import app, settings

if settings.has_role("ingest"):
    from app.sources.service import IngestService
    from app.web import sources as _sources_view  # noqa: F401 - registers /sources/

    app.service(IngestService)
