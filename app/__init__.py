"""carryover: legacy chat events onto a multi-tenant Kafka event mesh.

Importing ``app`` or any module under it builds nothing and reads no environment. The Faust app is made by
:func:`app.faust_app.create_app` from a :class:`app.settings.Settings` value; ``faust -A app worker`` asks
this package for ``app.app``, which builds it once from the ``CARRYOVER_*`` environment (a bad setting ends
the command with its one-line explanation).
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp


@functools.cache
def worker_app() -> CarryoverApp:
    """The worker's app, built from the environment on first use."""
    from app.faust_app import create_app  # noqa: PLC0415
    from app.settings import SettingsError, load  # noqa: PLC0415

    try:
        settings = load()
    except SettingsError as exc:
        print(f"carryover: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings)


def __getattr__(name: str) -> object:
    if name == "app":
        return worker_app()
    raise AttributeError(f"module 'app' has no attribute {name!r}")
