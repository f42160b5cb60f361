"""Event-time stamped facts as the state keeps them (pure): ``(time_ms, event_id, ...)`` tuples kept
sorted, each event id once, and the checked readers their JSON form is loaded with."""

from __future__ import annotations

import bisect
from typing import Any

Stamped = tuple[int, str, str]
"""(event time in ms, event id, value): one stamped value, ordered by time then event id."""


def time_of(item: tuple[Any, ...]) -> int:
    """The event time of a stamped item."""
    return int(item[0])


def insert_once(items: list[Any], item: tuple[Any, ...]) -> bool:
    """Insert ``item`` in order unless an item with its event id (index 1) is there; True when inserted."""
    event_id = item[1]
    if any(existing[1] == event_id for existing in items):
        return False
    bisect.insort(items, item)
    return True


def read_int(value: Any) -> int:
    """``value`` when it is an integer (not a bool), else TypeError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def read_text(value: Any) -> str:
    """``value`` when it is a string, else TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def read_stamped(value: Any) -> Stamped:
    """A stamped value read back from JSON (a 3-item list)."""
    time_ms, event_id, text = value
    return read_int(time_ms), read_text(event_id), read_text(text)
