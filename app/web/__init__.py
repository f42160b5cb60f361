"""carryover's HTTP views on the worker's Faust web server: lag page, JSON API, metrics, probes.

``register(app)`` adds ``/lag/``, ``/lag.json``, ``/metrics``, ``/healthz`` and ``/readyz``; call it
once, before the web server starts (the app module does).
"""

from __future__ import annotations

from faust.types import AppT

from app.web import health, lag


def register(app: AppT) -> None:
    """Add the lag, metrics and health views to ``app``."""
    lag.blueprint.register(app)
    health.blueprint.register(app)
