"""carryover: legacy chat events onto a multi-tenant Kafka event mesh.

``app`` is the Faust app (``faust -A app worker``); settings come from ``CARRYOVER_*`` variables.
"""

from __future__ import annotations

from app.faust_app import CarryoverApp
from app.settings import load
from app.web import register as register_web_views

settings = load()
app = CarryoverApp(settings)
register_web_views(app)

__all__ = ["app", "settings"]
