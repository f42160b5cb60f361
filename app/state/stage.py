"""What the state stage's agents and views share in a worker: its tables, the directory, its counters.

Faust-aware glue only; the decisions are in the pure modules (:mod:`app.state.routing`,
:mod:`app.state.conversation`, :mod:`app.state.answers`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.dead_letters import dead_letter_headers, fit_dead_letter
from app.state.directory_replica import DirectoryReplica
from app.state.routing import Headers, HoldTarget, StateInputError, StateTooLarge

STAGE = "state"
"""``dlq_stage`` of the state stage's dead letters."""
REASON_UNREADABLE = "state_unreadable"
"""A canonical or repartitioned record state cannot read, or one that is not under its conversation's key."""
REASON_TOO_LARGE = "state_too_large"
"""The conversation's state would outgrow the largest changelog record; the event is not in the state."""
REASON_AGENT_ERROR = "agent_error"
"""Any other exception while handling the record (the traceback is in the worker's log)."""


@dataclass
class StateStats:
    """Counters of the state stage in this worker (logged every 30 s)."""

    routed: int = 0
    forwarded: int = 0
    hold_booked: int = 0
    not_state: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    changelog_read_active: int = 0
    """Changelog records this worker read to recover partitions it became active for."""
    changelog_read_standby: int = 0
    """Changelog records this worker read to keep its standby copies up to date."""


class TableHoldBook:
    """The hold book (:class:`app.state.routing.HoldBook`) in a Faust table of bytes keys and values."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> HoldTarget | None:
        """The hold's target, None if never seen."""
        raw = self.table.get(key.encode())
        return HoldTarget.from_json(raw) if raw is not None else None

    def put(self, key: str, target: HoldTarget) -> None:
        """Remember ``target`` for ``key`` (a changelog write)."""
        self.table[key.encode()] = target.to_json()


RecordHook = Callable[[int, int, Headers, bytes], Awaitable[None]]


@dataclass
class StateStage:
    """The state stage of one worker: tables, directory replica, settings it needs, counters."""

    conversations: Any
    """Faust table: conversation key (bytes) -> :class:`ConversationState` JSON."""
    holds: Any
    """Faust table: hold key (bytes) -> :class:`HoldTarget` JSON."""
    directory: DirectoryReplica
    window: int
    max_state_bytes: int
    admin_token: str = field(repr=False)
    stats: StateStats = field(default_factory=StateStats)
    after_record: list[RecordHook] = field(default_factory=list)
    """Called for every record of the conversation-events topic after the state handled it, in offset order
    (the archive's step): ``hook(partition, offset, headers, value)``."""
    control_headers: set[str] = field(default_factory=set)
    """Headers of records that are not events (the archive's ticks): the state leaves them to the hooks."""


def count_changelog_reads(app: Any, table: Any, stats: StateStats) -> None:
    """Count, in ``stats``, every changelog record ``table`` reads, as active recovery or standby upkeep.

    Faust hands each changelog record to ``table.on_changelog_event`` while recovering an active partition
    and while following a standby one: counting there measures what a standby saves at failover.
    """
    original = table.on_changelog_event
    recovery = app.tables.recovery

    async def on_changelog_event(event: Any) -> None:
        if event.message.tp in recovery.active_tps:
            stats.changelog_read_active += 1
        else:
            stats.changelog_read_standby += 1
        await original(event)

    table.on_changelog_event = on_changelog_event


def state_dead_letter(
    value: bytes, headers: Headers, *, reason: str, error: str, origin: str, max_bytes: int
) -> tuple[bytes, Headers]:
    """A dead letter of the state stage for ``value`` (the record's bytes, kept whole when they fit)."""
    marked = dead_letter_headers(headers, reason=reason, stage=STAGE, error=error, origin=origin)
    return fit_dead_letter(value, marked, max_bytes)


def dead_letter_reason(exc: BaseException, where: str) -> tuple[str, str]:
    """(``dlq_reason``, ``dlq_error``) for a record that raised ``exc`` in ``where`` (an agent's name)."""
    if isinstance(exc, StateTooLarge):
        return REASON_TOO_LARGE, str(exc)
    if isinstance(exc, StateInputError | UnicodeDecodeError):
        return REASON_UNREADABLE, str(exc)
    return REASON_AGENT_ERROR, f"{type(exc).__name__} in the {where}; see the worker log"
