"""When archive windows close, per partition of the conversation-events topic (pure).

The archive step sees every record of ``carryover.state.conversation-events.v1`` in offset order, one
partition at a time (it runs inside the state agent, after the record was applied to its conversation's
state). For each partition it keeps a :class:`Progress`:

* the partition's **event-time watermark**: the latest event time it has read (and the time of the
  partition's latest *tick*, see below);
* per policy (:class:`Cursor`), the **next window to close** on that partition and the offset the partition's
  part of that window starts after;
* per policy and open window, the first offset of an event of that window (where a re-read of the window's
  events starts).

**The close rule.** A window ``[start, end)`` of a policy closes on a partition when the partition's watermark
reaches ``end + grace``. Windows close in order, one after the other, each on every partition, including
windows in which the partition saw nothing (their part is empty: that is what proves, in the manifest, that
the partition was looked at). An **idle partition** (no record for ``CARRYOVER_ARCHIVE_IDLE_SECONDS`` of
wall-clock time) receives a *tick*: a record the archive itself writes into that partition, carrying the
wall-clock time; it moves the watermark like an event would. The tick is in the log, so a re-run after a
crash sees the same ticks at the same offsets and closes the same windows at the same offsets.

**Late events**: an event whose window already closed on its partition (:attr:`Step.late`).

:class:`PolicyBook` holds the policies read from ``carryover.config.archive`` (compacted, keyed by
:func:`app.archive.policy.policy_id`, a tombstone deletes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.archive.policy import ArchivePolicy, PolicyError, Window, policy_id, window_of

TICK_HEADER = "archive_tick"
"""Header of a tick record (its value: the wall-clock time in UTC epoch ms, decimal)."""


@dataclass(frozen=True)
class ActivePolicy:
    """A policy as the archive uses it: the policy, its id and the instant its chain starts."""

    policy: ArchivePolicy
    since_ms: int

    @property
    def id(self) -> str:
        """:func:`policy_id` of the policy."""
        return policy_id(self.policy.tenant, self.policy.business_unit)

    @property
    def first_window(self) -> Window:
        """The first window of the policy's chain (the one containing ``since_ms``)."""
        return window_of(self.policy, self.since_ms)


class PolicyBook:
    """The archive policies read so far from ``carryover.config.archive`` (last record per key wins)."""

    def __init__(self) -> None:
        self._by_id: dict[str, ActivePolicy] = {}
        self.unreadable = 0

    def apply(self, key: bytes | None, value: bytes | None, timestamp_ms: int) -> str | None:
        """Apply one record; returns why it was ignored (unreadable, key mismatch), None when applied."""
        name = (key or b"").decode(errors="replace")
        if value is None:
            self._by_id.pop(name, None)
            return None
        try:
            policy = ArchivePolicy.from_json(value)
        except PolicyError as exc:
            self.unreadable += 1
            return str(exc)
        if policy_id(policy.tenant, policy.business_unit) != name:
            self.unreadable += 1
            return f"a policy of {policy.tenant}/{policy.business_unit} under key {name!r}"
        since = policy.since_ms if policy.since_ms is not None else timestamp_ms
        self._by_id[name] = ActivePolicy(policy, since)
        return None

    def get(self, pid: str) -> ActivePolicy | None:
        """The policy with id ``pid``."""
        return self._by_id.get(pid)

    def of_tenant(self, tenant: str) -> list[ActivePolicy]:
        """The tenant's policies, by id."""
        return sorted((p for p in self._by_id.values() if p.policy.tenant == tenant), key=lambda p: p.id)

    def all(self) -> list[ActivePolicy]:
        """Every policy, by id."""
        return sorted(self._by_id.values(), key=lambda p: p.id)

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(frozen=True)
class LateEvent:
    """An event that came after its window closed on its partition: which window, conversation, offset."""

    start_ms: int
    end_ms: int
    conversation_key: str
    offset: int

    @property
    def window(self) -> Window:
        """The (closed) window the event belongs to."""
        return Window(self.start_ms, self.end_ms)


@dataclass
class Cursor:
    """Of one policy on one partition: the next window to close and the offset its part starts after."""

    start_ms: int
    end_ms: int
    after_offset: int
    first_offsets: dict[int, int] = field(default_factory=dict)
    """Open windows with an event: window start -> offset of the first event of that window."""
    late: list[LateEvent] = field(default_factory=list)
    """Late events seen since the last close: delivered as supplements when the next window closes."""

    @property
    def window(self) -> Window:
        """The next window to close."""
        return Window(self.start_ms, self.end_ms)


@dataclass
class Progress:
    """The archive's bookkeeping of one partition (JSON in the archive's table)."""

    watermark_ms: int = -1
    last_offset: int = -1
    cursors: dict[str, Cursor] = field(default_factory=dict)
    late: int = 0
    pending_deletes: list[str] = field(default_factory=list)
    """Table keys of closed windows' conversation sets, deleted when the next record is read (after this
    progress is in the changelog, so a crash never loses a set whose window is not closed)."""

    def to_json(self) -> bytes:
        """Compact JSON."""
        return json.dumps(
            {
                "w": self.watermark_ms,
                "o": self.last_offset,
                "l": self.late,
                "d": self.pending_deletes,
                "c": {
                    pid: [
                        c.start_ms,
                        c.end_ms,
                        c.after_offset,
                        sorted(c.first_offsets.items()),
                        [[e.start_ms, e.end_ms, e.conversation_key, e.offset] for e in c.late],
                    ]
                    for pid, c in sorted(self.cursors.items())
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Progress:
        """The progress :meth:`to_json` wrote."""
        raw = json.loads(data)
        cursors = {
            str(pid): Cursor(
                int(c[0]),
                int(c[1]),
                int(c[2]),
                {int(k): int(v) for k, v in c[3]},
                [LateEvent(int(s), int(e), str(k), int(o)) for s, e, k, o in (c[4] if len(c) > 4 else [])],
            )
            for pid, c in raw["c"].items()
        }
        return cls(int(raw["w"]), int(raw["o"]), cursors, int(raw.get("l", 0)), list(raw.get("d", [])))


@dataclass(frozen=True)
class Close:
    """One window closing on one partition: which, what offsets its part covers, where its events start.

    The part covers offsets ``after_offset + 1`` to ``through_offset`` (every record the partition received
    between the previous window's close and this one); the window's events are re-read from ``first_offset``
    (None when the partition saw no event of the window) to ``through_offset``.
    """

    policy: ActivePolicy
    window: Window
    after_offset: int
    through_offset: int
    first_offset: int | None
    late: tuple[LateEvent, ...] = ()
    """Late events of earlier windows to deliver as supplements with this window."""


@dataclass(frozen=True)
class Step:
    """What one record did: conversations added to open windows, late events, windows closed (in order)."""

    added: tuple[tuple[str, int], ...] = ()
    """(policy id, window start) of each open window the record's conversation takes part in."""
    late: tuple[str, ...] = ()
    """Ids of the policies for which the record's event came after its window closed on the partition."""
    closes: tuple[Close, ...] = ()


def observe(
    progress: Progress,
    book: PolicyBook,
    offset: int,
    *,
    tenant: str | None,
    time_ms: int | None,
    conversation_key: str = "",
) -> Step:
    """Apply the record at ``offset`` (an event of ``tenant``'s conversation ``conversation_key`` at
    ``time_ms``, or a tick: ``tenant`` None)."""
    if offset <= progress.last_offset:
        return Step()  # read again after a crash: already in the progress
    policies = book.all()
    live = {p.id for p in policies}
    for pid in [pid for pid in progress.cursors if pid not in live]:
        del progress.cursors[pid]  # the policy was deleted: its windows stop closing here
    for active in policies:
        if active.id not in progress.cursors:
            first = active.first_window
            progress.cursors[active.id] = Cursor(first.start_ms, first.end_ms, offset - 1)
    added: list[tuple[str, int]] = []
    late: list[str] = []
    if time_ms is not None and tenant is not None:
        for active in book.of_tenant(tenant):
            cursor = progress.cursors[active.id]
            if time_ms < active.since_ms:
                continue
            if time_ms < cursor.start_ms:
                late.append(active.id)
                if conversation_key:
                    closed = window_of(active.policy, time_ms)
                    cursor.late.append(LateEvent(closed.start_ms, closed.end_ms, conversation_key, offset))
                continue
            window = window_of(active.policy, time_ms)
            cursor.first_offsets.setdefault(window.start_ms, offset)
            added.append((active.id, window.start_ms))
    if time_ms is not None:
        progress.watermark_ms = max(progress.watermark_ms, time_ms)
    closes: list[Close] = []
    for active in policies:
        cursor = progress.cursors[active.id]
        while cursor.end_ms + active.policy.grace_ms <= progress.watermark_ms:
            window = cursor.window
            closes.append(
                Close(
                    active,
                    window,
                    cursor.after_offset,
                    offset,
                    cursor.first_offsets.pop(window.start_ms, None),
                    tuple(cursor.late),
                )
            )
            cursor.late = []
            following = window_of(active.policy, window.end_ms)
            cursor.start_ms, cursor.end_ms, cursor.after_offset = following.start_ms, following.end_ms, offset
    progress.last_offset = offset
    progress.late += len(late)
    return Step(tuple(added), tuple(late), tuple(closes))


def parse_tick(headers: Iterable[tuple[str, bytes]]) -> int | None:
    """The wall-clock time of a tick record, None for any other record."""
    for name, value in headers:
        if name == TICK_HEADER:
            try:
                return int(bytes(value).decode())
            except ValueError:
                return None
    return None


def tick_headers(now_ms: int) -> list[tuple[str, bytes]]:
    """The headers of a tick at ``now_ms``."""
    return [(TICK_HEADER, str(now_ms).encode())]


def sorted_unique(items: Sequence[str]) -> list[str]:
    """``items`` sorted, each once."""
    return sorted(set(items))
