"""Operations: lag evaluation (pure, :mod:`.lag`, :mod:`.lag_status`), the lag monitor, the lag page and
metrics, health and readiness probes, the admin token, and the ingestion counters view — Faust web blueprints
and one service registered by :func:`register`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app import topics as topic_names
from app.ops import health_views, lag_views
from app.ops.lag_monitor import LagMonitor

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp


def register(app: CarryoverApp) -> None:
    """Add the lag monitor and the lag, metrics and health views to ``app`` (before its web server starts)."""
    settings = app.carryover
    monitor = LagMonitor(
        app,
        interval=settings.lag_sample_seconds,
        window=settings.lag_window_seconds,
        prefix=settings.topic_prefix,
        status_topic=settings.topic_prefix + topic_names.WORKER_STATUS,
    )
    app.lag_monitor = monitor
    app.service(monitor)  # type: ignore[arg-type]  # Faust starts instances as well as classes
    lag_views.blueprint.register(app)
    health_views.blueprint.register(app)
