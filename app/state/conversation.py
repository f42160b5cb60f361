"""One conversation's state in event time: membership, lifecycle, kind, holds and counters (pure).

A :class:`ConversationState` is built by applying the conversation's facts (:class:`app.state.facts.Fact`,
scope ``"conversation"``, plus legal-hold releases routed to it). It answers for any moment ``t`` (event
time, ms): who was a member and in which role (:meth:`~ConversationState.members_at`), whether the
conversation was active (:meth:`~ConversationState.active_at`), which legal holds applied, and which
business units its members were in (:meth:`~ConversationState.business_units_at`, through a
:class:`app.state.directory.Directory`).

**Idempotent and order-insensitive.** Applying the same facts in any order, with any duplicates, gives the
same state and the same :meth:`~ConversationState.to_json` bytes; the only exception is the counters beyond
their window (below). Membership, lifecycle and hold facts are *kept* (de-duplicated by event id) and every
answer is derived from them sorted by (event time, event id). So there is no limit on how late a membership,
lifecycle or hold fact may arrive: a join that arrives after the member's messages, or a leave that arrives
before its join, is placed at its event time and every later answer takes it into account (answers given
before it arrived are not revised, of course).

**Counters** (messages sent and edited, reactions added and removed, suppressions) count each event id once.
To recognise redeliveries the state keeps the event ids of the most recent counted events, by (event time,
event id), at most ``window`` of them (default :data:`RECENT_WINDOW` = 2 000; ~45 bytes each in the JSON).
A counted event whose id is in the window is a duplicate and changes nothing. Once the window is full, an
event older than every event in it cannot be told from a redelivery: it is counted and not remembered, so
**a duplicate older than the window counts twice** (and so does a redelivery of an event that was pushed out
of the window). Within the window, counters are exactly once and order-insensitive like the rest.

**Conventions.**

* Order: facts are sorted by (event time ms, event id); at equal times the greater event id is the later
  (arbitrary but deterministic: the legacy system gives no finer order).
* Intervals are half-open, ``[joined_ms, left_ms)``: a user who joined at ``t`` is a member at ``t``; a user
  who left at ``t`` is not a member at ``t``. ``joined_ms`` None means "since before anything we know"
  (a leave or role change with no earlier join), ``left_ms`` None "still a member".
* Per member, in order: a join opens an interval (a join while already a member only records a role change
  when it gives another role); a leave closes the open interval; the first fact of a member being a leave
  keeps an interval ``[None, t)``; a later leave of a non-member changes nothing (its join is missing; it
  counts when that join arrives); a role change of a non-member opens an interval: ``[None, ...)`` with the
  old role when it is the member's first fact, else at the change's time with the new role.
* Roles: ``"member"``, ``"owner"``, ``"moderator"``, ``""`` when the event gave none (see facts).
* Kind: ``"room"`` when a ``ConversationCreated`` is known (the legacy system only has rooms). Otherwise
  *inferred*: ``"im"`` when at most 2 distinct users ever took part (members, senders, editors, reactors),
  ``"mim"`` when more. The inference can change as facts arrive (a ``"im"`` may become ``"mim"``, and any
  becomes ``"room"`` when its creation arrives).
* Active: the latest lifecycle fact (created, deactivated, reactivated) at or before ``t`` decides. Before the
  first one: active when the first is a deactivation, not active when it is the creation (it did not exist)
  or a reactivation. A conversation with no lifecycle fact is active.
* Name: the latest non-empty name of a created or updated fact. ``external`` / ``public`` /
  ``creator_user_id`` / ``created_ms``: from the earliest created fact.
* Legal holds: per hold id, the latest set/release at or before ``t`` decides.

**Size.** The JSON keeps one short array per membership fact (~80 bytes with a UUID event id and a user id
of a few digits): a conversation with 10 000 members who joined once is ~0.83 MB; ``to_json`` takes ~20 ms,
``from_json`` ~45 ms. The counter window adds ~45 bytes per remembered id (~90 KB when full). A table's
changelog record must fit the topic's ``max.message.bytes`` (1 MB by default): at about 12 000 membership
facts a conversation outgrows it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.state.directory import Directory
from app.state.facts import (
    COUNTED_KINDS,
    HOLD_KINDS,
    LIFECYCLE_KINDS,
    MEMBERSHIP_KINDS,
    Fact,
    FactKind,
    conversation_key,
)
from app.state.stamped import Stamped, insert_once, read_int, read_stamped, read_text, time_of

FORMAT_VERSION = 1
"""Version of :meth:`ConversationState.to_json`'s layout (``"v"``)."""
RECENT_WINDOW = 2_000
"""Default number of recent counted event ids a conversation remembers to drop redeliveries."""

COUNTER_NAMES = ("sent", "edited", "reactions_added", "reactions_removed", "suppressed")
"""Keys of :attr:`ConversationState.counters`."""
_COUNTER_OF = {
    FactKind.MESSAGE_SENT: "sent",
    FactKind.MESSAGE_EDITED: "edited",
    FactKind.REACTION_ADDED: "reactions_added",
    FactKind.REACTION_REMOVED: "reactions_removed",
    FactKind.MESSAGE_SUPPRESSED: "suppressed",
}
_LIFECYCLE_OP = {FactKind.CREATED: "c", FactKind.DEACTIVATED: "d", FactKind.REACTIVATED: "r"}
_MEMBER_OP = {FactKind.MEMBER_JOINED: "j", FactKind.MEMBER_LEFT: "l", FactKind.ROLE_CHANGED: "r"}
_HOLD_OP = {FactKind.LEGAL_HOLD_SET: "s", FactKind.LEGAL_HOLD_RELEASED: "r"}

"""(event time ms, event id, value or op code)."""
MemberFact = tuple[int, str, str, str, str]
"""(event time ms, event id, op "j" | "l" | "r", role given / new role, old role)."""
Origin = tuple[int, str, str, bool, bool]
"""(event time ms, event id, creator user id, external, public) of the earliest created fact."""


@dataclass(frozen=True)
class Interval:
    """One stretch of membership, ``[joined_ms, left_ms)``; None ends are open (see the module docstring).

    ``role`` is the role at the start; ``role_changes`` the (event time ms, new role) changes within it.
    """

    joined_ms: int | None
    left_ms: int | None
    role: str
    role_changes: tuple[tuple[int, str], ...] = ()

    def contains(self, t_ms: int) -> bool:
        """True when the user was a member at ``t_ms`` during this interval."""
        return (self.joined_ms is None or self.joined_ms <= t_ms) and (
            self.left_ms is None or t_ms < self.left_ms
        )

    def role_at(self, t_ms: int) -> str:
        """The role in force at ``t_ms``: the latest change at or before it, else the role at the start."""
        role = self.role
        for when, new_role in self.role_changes:
            if when > t_ms:
                break
            role = new_role
        return role

    @property
    def current_role(self) -> str:
        """The role after every change of the interval."""
        return self.role_changes[-1][1] if self.role_changes else self.role


def derive_intervals(facts: Iterable[MemberFact]) -> tuple[Interval, ...]:
    """One member's intervals from their membership facts sorted by (time, event id) (module docstring)."""
    intervals: list[Interval] = []
    open_since: int | None = None
    open_role = ""
    changes: list[tuple[int, str]] = []
    is_open = False
    for time_ms, _event_id, op, role, old_role in facts:
        current = changes[-1][1] if changes else open_role
        if op == "j":
            if not is_open:
                is_open, open_since, open_role, changes = True, time_ms, role, []
            elif role and role != current:
                changes.append((time_ms, role))
        elif op == "l":
            if is_open:
                intervals.append(Interval(open_since, time_ms, open_role, tuple(changes)))
                is_open = False
            elif not intervals:
                intervals.append(Interval(None, time_ms, old_role))
        elif op == "r":
            if is_open:
                if role != current:
                    changes.append((time_ms, role))
            elif not intervals:
                is_open, open_since, open_role, changes = True, None, old_role, [(time_ms, role)]
            else:
                is_open, open_since, open_role, changes = True, time_ms, role, []
    if is_open:
        intervals.append(Interval(open_since, None, open_role, tuple(changes)))
    return tuple(intervals)


class ConversationState:
    """One conversation of one tenant, from its facts; see the module docstring for what and how.

    JSON layout (:meth:`to_json`, compact, keys sorted), every list sorted by (time, event id):
    ``{"v": 1, "t": tenant, "c": conversation id,
    "lc": [[time, event id, "c" created | "d" deactivated | "r" reactivated], ...],
    "o": [time, event id, creator, external, public] | null (earliest created fact),
    "n": [time, event id, name] | null (latest name),
    "m": {user id: [[time, event id, "j" joined | "l" left | "r" role changed, role, old role], ...]},
    "p": [user id, ...] (senders, editors, reactors; sorted), "k": {counter: n} (:data:`COUNTER_NAMES`),
    "w": [[time, event id], ...] (recent counted events), "h": {hold id: [[time, event id, "s" | "r"]]},
    "le": last event time | null}``.
    """

    __slots__ = (
        "tenant",
        "conversation_id",
        "window",
        "_lifecycle",
        "_origin",
        "_name",
        "_members",
        "_participants",
        "_counters",
        "_recent",
        "_recent_ids",
        "_holds",
        "_last_event_ms",
        "_intervals",
    )

    def __init__(self, tenant: str, conversation_id: str, *, window: int = RECENT_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.window = window
        self._lifecycle: list[Stamped] = []
        self._origin: Origin | None = None
        self._name: Stamped | None = None
        self._members: dict[str, list[MemberFact]] = {}
        self._participants: set[str] = set()
        self._counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._recent: list[tuple[int, str]] = []
        self._recent_ids: set[str] = set()
        self._holds: dict[str, list[Stamped]] = {}
        self._last_event_ms: int | None = None
        self._intervals: dict[str, tuple[Interval, ...]] = {}

    @property
    def key(self) -> str:
        """The state's table key, :func:`app.state.facts.conversation_key`."""
        return conversation_key(self.tenant, self.conversation_id)

    # -- updates ----------------------------------------------------------------------------------------

    def apply(self, fact: Fact) -> bool:
        """Takes a fact into the state; True when anything changed (False for a known fact).

        ValueError for a fact of another tenant or conversation, or a user fact (misrouted). A legal-hold
        release (which names no conversation) is accepted: routing it here is the caller's decision.
        """
        self._check_belongs(fact)
        kind = fact.kind
        changed = False
        if self._last_event_ms is None or fact.time_ms > self._last_event_ms:
            self._last_event_ms, changed = fact.time_ms, True
        if kind in LIFECYCLE_KINDS:
            changed |= insert_once(self._lifecycle, (fact.time_ms, fact.event_id, _LIFECYCLE_OP[kind]))
            if kind is FactKind.CREATED:
                origin = (fact.time_ms, fact.event_id, fact.actor_user_id, fact.external, fact.public)
                if self._origin is None or origin < self._origin:
                    self._origin, changed = origin, True
        if kind in (FactKind.CREATED, FactKind.UPDATED) and fact.name:
            name = (fact.time_ms, fact.event_id, fact.name)
            if self._name is None or name > self._name:
                self._name, changed = name, True
        if kind in MEMBERSHIP_KINDS:
            member_fact = (fact.time_ms, fact.event_id, _MEMBER_OP[kind], fact.role, fact.old_role)
            facts = self._members.setdefault(fact.user_id, [])
            if insert_once(facts, member_fact):
                self._intervals.pop(fact.user_id, None)
                changed = True
        if kind in COUNTED_KINDS:
            if (
                fact.user_id
                and kind is not FactKind.MESSAGE_SUPPRESSED
                and fact.user_id not in self._participants
            ):
                self._participants.add(fact.user_id)
                changed = True
            if self._remember(fact.time_ms, fact.event_id):
                self._counters[_COUNTER_OF[kind]] += 1
                changed = True
        if kind in HOLD_KINDS:
            hold = self._holds.setdefault(fact.hold_id, [])
            changed |= insert_once(hold, (fact.time_ms, fact.event_id, _HOLD_OP[kind]))
        return changed

    def apply_all(self, facts: Iterable[Fact]) -> bool:
        """Applies each fact; True when any changed the state."""
        changed = False
        for fact in facts:
            changed |= self.apply(fact)
        return changed

    def _check_belongs(self, fact: Fact) -> None:
        if fact.kind not in _CONVERSATION_KINDS:
            raise ValueError(f"{fact.kind} fact {fact.event_id} is not a conversation fact")
        if fact.tenant != self.tenant:
            raise ValueError(f"fact {fact.event_id} of tenant {fact.tenant!r} applied to {self.key}")
        if fact.conversation_id != self.conversation_id and not (
            fact.kind is FactKind.LEGAL_HOLD_RELEASED and not fact.conversation_id
        ):
            raise ValueError(
                f"fact {fact.event_id} of conversation {fact.conversation_id!r} applied to {self.key}"
            )

    def _remember(self, time_ms: int, event_id: str) -> bool:
        """True when the counted event is new (not in the window of recent ids); see the module docstring."""
        if event_id in self._recent_ids:
            return False
        entry = (time_ms, event_id)
        if len(self._recent) >= self.window and entry < self._recent[0]:
            return True  # older than everything remembered: counted, not remembered
        bisect.insort(self._recent, entry)
        self._recent_ids.add(event_id)
        if len(self._recent) > self.window:
            _, dropped = self._recent.pop(0)
            self._recent_ids.discard(dropped)
        return True

    # -- queries: membership ----------------------------------------------------------------------------

    def intervals_of(self, user_id: str) -> tuple[Interval, ...]:
        """The user's membership intervals in event-time order; empty when never a member."""
        cached = self._intervals.get(user_id)
        if cached is None:
            cached = derive_intervals(self._members.get(user_id, ()))
            self._intervals[user_id] = cached
        return cached

    def membership_intervals(self) -> dict[str, list[Interval]]:
        """Every user with a membership fact and their intervals, in event-time order."""
        return {user_id: list(self.intervals_of(user_id)) for user_id in sorted(self._members)}

    def members_at(self, t_ms: int) -> dict[str, str]:
        """{user id: role} of the members at ``t_ms`` (joined at ``t``: member; left at ``t``: not)."""
        members: dict[str, str] = {}
        for user_id in self._members:
            for interval in self.intervals_of(user_id):
                if interval.contains(t_ms):
                    members[user_id] = interval.role_at(t_ms)
                    break
        return members

    def members(self) -> dict[str, str]:
        """{user id: role} of the members after every known fact."""
        members: dict[str, str] = {}
        for user_id in self._members:
            intervals = self.intervals_of(user_id)
            if intervals and intervals[-1].left_ms is None:
                members[user_id] = intervals[-1].current_role
        return members

    def member_business_units_at(self, t_ms: int, directory: Directory) -> dict[str, str | None]:
        """{member at ``t_ms``: their business unit at ``t_ms``}; None for unknown users or units."""
        units: dict[str, str | None] = {}
        for user_id in self.members_at(t_ms):
            record = directory.user(self.tenant, user_id)
            units[user_id] = record.business_unit_at(t_ms) if record is not None else None
        return units

    def business_units_at(self, t_ms: int, directory: Directory) -> frozenset[str]:
        """The business units of the members at ``t_ms``, each at ``t_ms`` (unknown ones left out)."""
        units = self.member_business_units_at(t_ms, directory).values()
        return frozenset(unit for unit in units if unit)

    @property
    def participants(self) -> frozenset[str]:
        """Every user who was ever a member or sent, edited or reacted (the basis of the inferred kind)."""
        return frozenset(self._participants.union(self._members))

    # -- queries: the conversation ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"room"`` when its creation is known, else inferred ``"im"`` (<= 2 participants) or ``"mim"``."""
        if self._origin is not None:
            return "room"
        return "im" if len(self.participants) <= 2 else "mim"

    @property
    def name(self) -> str:
        """The latest name; ``''`` when no created or updated fact gave one."""
        return self._name[2] if self._name else ""

    @property
    def created_ms(self) -> int | None:
        """Event time of the (earliest) creation; None when unknown."""
        return self._origin[0] if self._origin else None

    @property
    def creator_user_id(self) -> str:
        """Who created it; ``''`` when unknown."""
        return self._origin[2] if self._origin else ""

    @property
    def external(self) -> bool | None:
        """Whether members of other firms may join; None when the creation is unknown."""
        return self._origin[3] if self._origin else None

    @property
    def public(self) -> bool | None:
        """Whether anyone in the firm may find and join it; None when the creation is unknown."""
        return self._origin[4] if self._origin else None

    def active_at(self, t_ms: int) -> bool:
        """Whether the conversation was active at ``t_ms`` (see the module docstring)."""
        if not self._lifecycle:
            return True
        i = bisect.bisect_right(self._lifecycle, t_ms, key=time_of)
        if i == 0:
            return self._lifecycle[0][2] == "d"
        return self._lifecycle[i - 1][2] != "d"

    @property
    def active(self) -> bool:
        """Whether it is active after every known fact."""
        return self._lifecycle[-1][2] != "d" if self._lifecycle else True

    @property
    def deactivated_ms(self) -> int | None:
        """Event time of the deactivation in force now; None when active."""
        return None if self.active else self._lifecycle[-1][0]

    def lifecycle(self) -> list[tuple[int, str]]:
        """(event time ms, ``"created"`` | ``"deactivated"`` | ``"reactivated"``) in event-time order."""
        names = {"c": "created", "d": "deactivated", "r": "reactivated"}
        return [(t, names[op]) for t, _, op in self._lifecycle]

    def legal_holds_at(self, t_ms: int) -> frozenset[str]:
        """Ids of the legal holds on the conversation at ``t_ms`` (latest set/release at or before it)."""
        held = set()
        for hold_id, facts in self._holds.items():
            i = bisect.bisect_right(facts, t_ms, key=time_of)
            if i and facts[i - 1][2] == "s":
                held.add(hold_id)
        return frozenset(held)

    @property
    def legal_holds(self) -> frozenset[str]:
        """Ids of the legal holds on the conversation after every known fact."""
        return frozenset(hold_id for hold_id, facts in self._holds.items() if facts and facts[-1][2] == "s")

    @property
    def counters(self) -> dict[str, int]:
        """{``"sent"``, ``"edited"``, ``"reactions_added"``, ``"reactions_removed"``, ``"suppressed"``: n}."""
        return dict(self._counters)

    def fact_counts(self) -> dict[str, int]:
        """How many distinct facts the state holds: ``lifecycle``, ``membership`` and ``holds`` (kept by event
        id) and ``counted`` (the sum of the counters)."""
        return {
            "lifecycle": len(self._lifecycle),
            "membership": sum(len(facts) for facts in self._members.values()),
            "holds": sum(len(facts) for facts in self._holds.values()),
            "counted": sum(self._counters.values()),
        }

    @property
    def last_event_ms(self) -> int | None:
        """The latest event time of any fact applied; None before the first."""
        return self._last_event_ms

    # -- serialization ----------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """The state as compact JSON (layout in the class docstring); equal states give equal bytes."""
        doc: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "t": self.tenant,
            "c": self.conversation_id,
            "lc": self._lifecycle,
            "o": self._origin,
            "n": self._name,
            "m": self._members,
            "p": sorted(self._participants),
            "k": self._counters,
            "w": self._recent,
            "h": self._holds,
            "le": self._last_event_ms,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, *, window: int = RECENT_WINDOW) -> ConversationState:
        """The state :meth:`to_json` wrote; ValueError when ``data`` is not one.

        A smaller ``window`` than the one the state was written with keeps only the most recent ids.
        """
        try:
            doc = json.loads(data)
            if doc["v"] != FORMAT_VERSION:
                raise ValueError(f"conversation state format {doc['v']!r}, expected {FORMAT_VERSION}")
            state = cls(read_text(doc["t"]), read_text(doc["c"]), window=window)
            state._lifecycle = sorted(read_stamped(item) for item in doc["lc"])
            if doc["o"] is not None:
                time_ms, event_id, creator, external, public = doc["o"]
                state._origin = (
                    read_int(time_ms),
                    read_text(event_id),
                    read_text(creator),
                    bool(external),
                    bool(public),
                )
            state._name = read_stamped(doc["n"]) if doc["n"] is not None else None
            state._members = {
                read_text(user_id): sorted(_member_fact(item) for item in facts)
                for user_id, facts in doc["m"].items()
            }
            state._participants = {read_text(user_id) for user_id in doc["p"]}
            counters = doc["k"]
            state._counters = {name: read_int(counters.get(name, 0)) for name in COUNTER_NAMES}
            recent = sorted((read_int(t), read_text(e)) for t, e in doc["w"])[-window:]
            state._recent, state._recent_ids = recent, {e for _, e in recent}
            state._holds = {
                read_text(hold_id): sorted(read_stamped(item) for item in facts)
                for hold_id, facts in doc["h"].items()
            }
            state._last_event_ms = read_int(doc["le"]) if doc["le"] is not None else None
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a conversation state: {exc!r}") from exc
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConversationState) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ConversationState({self.tenant!r}, {self.conversation_id!r}, kind={self.kind!r}, "
            f"members={len(self._members)}, active={self.active})"
        )


_CONVERSATION_KINDS = LIFECYCLE_KINDS | MEMBERSHIP_KINDS | COUNTED_KINDS | HOLD_KINDS | {FactKind.UPDATED}


def _member_fact(value: Any) -> MemberFact:
    time_ms, event_id, op, role, old_role = value
    return read_int(time_ms), read_text(event_id), read_text(op), read_text(role), read_text(old_role)
