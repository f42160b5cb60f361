"""Per-hook delivery history and de-duplication, as the fan-in keeps it (pure).

One :class:`HookHistory` per hook (the fan-in's table ``webhooks-hook-history``, keyed by hook id, on the
partition of the hook's room): the ids of the last :data:`DEDUPE_IDS` deliveries processed (a delivery id
seen again is not posted again) and the last :data:`HISTORY_ENTRIES` outcomes, each with the delivery id,
event, outcome (``posted`` / ``duplicate`` / ``dead_lettered``), reason and time. No payload, header or
secret is ever kept here.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEDUPE_IDS = 256
HISTORY_ENTRIES = 50
"""Every delivery rewrites its hook's record (a changelog write of ~10 KB for 256 ids of 36 characters and
50 entries): more would cost changelog bytes on every delivery. A delivery id older than the last 256 is
still posted once downstream: its event id is deterministic, and state drops a re-sent event id."""


@dataclass
class HookHistory:
    """Recent delivery ids and outcomes of one hook."""

    ids: deque[str] = field(default_factory=lambda: deque(maxlen=DEDUPE_IDS))
    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY_ENTRIES))
    counts: dict[str, int] = field(default_factory=dict)

    def seen(self, delivery_id: str) -> bool:
        """Whether ``delivery_id`` was processed already (among the last :data:`DEDUPE_IDS`)."""
        return delivery_id in self.ids

    def record(
        self, delivery_id: str, event: str, outcome: str, *, at_ms: int, reason: str = "", detail: str = ""
    ) -> None:
        """Note one outcome (a processed delivery id is remembered for de-duplication)."""
        if outcome != "duplicate" and delivery_id not in self.ids:
            self.ids.append(delivery_id)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        entry: dict[str, Any] = {
            "delivery_id": delivery_id,
            "event": event,
            "outcome": outcome,
            "at_ms": at_ms,
        }
        if reason:
            entry["reason"] = reason
        if detail:
            entry["detail"] = detail[:300]
        self.entries.append(entry)

    def to_json(self) -> bytes:
        """The table value."""
        return json.dumps(
            {"ids": list(self.ids), "entries": list(self.entries), "counts": self.counts},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, value: bytes | None) -> HookHistory:
        """The history in a table value (a new one for None)."""
        history = cls()
        if value:
            raw = json.loads(value)
            history.ids.extend(raw.get("ids", []))
            history.entries.extend(raw.get("entries", []))
            history.counts.update(raw.get("counts", {}))
        return history

    def answer(self) -> dict[str, Any]:
        """What the admin API shows: counts and entries, newest first."""
        return {"counts": dict(self.counts), "entries": list(reversed(self.entries))}
