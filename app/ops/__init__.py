"""Operations: lag evaluation (pure, :mod:`.lag`), the lag page and metrics, health and readiness probes,
and the ingestion counters view — Faust web blueprints registered by :func:`register`."""

from __future__ import annotations

from faust.types import AppT

from app.ops import health_views, lag_views


def register(app: AppT) -> None:
    """Add the lag, metrics and health views to ``app`` (before its web server starts)."""
    lag_views.blueprint.register(app)
    health_views.blueprint.register(app)
