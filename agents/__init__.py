"""Thin Faust agents, one module per stage of the data path; each registers its role on an app.

:data:`ROLES` maps a worker role (``CARRYOVER_ROLES``) to the function that adds that role's agents, tables,
timers, services and views to an app; :func:`app.faust_app.create_app` calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agents import archive, ingest, normalize, state, webhooks

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

ROLES: dict[str, Callable[[CarryoverApp], None]] = {
    "ingest": ingest.register,
    "normalize": normalize.register,
    "state": state.register,
    "webhooks": webhooks.register,
    "archive": archive.register,
}
