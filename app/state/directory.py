"""Users as state knows them: profile, active flag and business-unit history in event time (pure).

A :class:`UserRecord` is built from the user facts (``user_created``, ``user_updated``, ``user_deactivated``)
of one (tenant, user); it keeps what it needs of each fact with its event id and event time, so applying the
same facts in any order, any number of times, gives the same record (and the same :meth:`UserRecord.to_json`
bytes). There is no limit on how late a user fact may arrive: a business-unit change that arrives after the
messages it covers is still placed at its event time, and ``business_unit_at`` answers with it from then on.

:class:`Directory` is what conversation state asks for users (``user(tenant, user_id)``); the agent backs it
with its table, :class:`DictDirectory` with a dict (tests, tools).

Conventions:

* Facts are ordered by (event time, event id): at equal times the greater event id is the later one
  (arbitrary but deterministic; the legacy system gives no finer order).
* ``''`` in ``display_name``, ``email`` or ``business_unit`` of a fact means "not given" (legacy v1 events,
  partial updates) and changes nothing; the latest given value wins.
* ``business_unit_at(t)``: the unit of the latest change at or before ``t``; before the first known change,
  the earliest known unit (a user's first unit is usually only learned with the first event that names it,
  e.g. a v1 ``USER_CREATED`` has none); None when no fact named a unit.
* ``active_at(t)``: the latest lifecycle fact (created, deactivated) at or before ``t`` decides; before the
  first one, the user was active when that first one is a deactivation and did not exist yet (False) when it
  is the creation; a user with no lifecycle fact (known from updates only) is active.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from typing import Protocol

from app.state.facts import USER_KINDS, Fact, FactKind, user_key
from app.state.stamped import Stamped, insert_once, read_stamped, read_text, time_of

FORMAT_VERSION = 1
"""Version of :meth:`UserRecord.to_json`'s layout (``"v"``)."""

_CREATED, _DEACTIVATED = "c", "d"

"""(event time ms, event id, value): one value a fact gave, with the fact's place in event time."""


class UserRecord:
    """One user of one tenant, from its user facts; see the module docstring for the conventions.

    JSON layout (:meth:`to_json`, compact, keys sorted): ``{"v": 1, "t": tenant, "u": user id,
    "dn": [time, event id, display name] | null, "em": [time, event id, email] | null,
    "lc": [[time, event id, "c" | "d"], ...] (created / deactivated, sorted),
    "bu": [[time, event id, business unit], ...] (sorted)}``.
    """

    __slots__ = ("tenant", "user_id", "_display", "_email", "_lifecycle", "_units")

    def __init__(self, tenant: str, user_id: str) -> None:
        self.tenant = tenant
        self.user_id = user_id
        self._display: Stamped | None = None
        self._email: Stamped | None = None
        self._lifecycle: list[Stamped] = []
        self._units: list[Stamped] = []

    @property
    def key(self) -> str:
        """The record's table key, :func:`app.state.facts.user_key`."""
        return user_key(self.tenant, self.user_id)

    # -- updates ----------------------------------------------------------------------------------------

    def apply(self, fact: Fact) -> bool:
        """Takes a user fact into the record; True when the record changed (False for a known fact).

        ValueError for a fact of another tenant or user, or one that is not a user fact (misrouted).
        """
        if fact.kind not in USER_KINDS:
            raise ValueError(f"{fact.kind} fact {fact.event_id} is not a user fact")
        if (fact.tenant, fact.user_id) != (self.tenant, self.user_id):
            raise ValueError(
                f"fact {fact.event_id} of user {fact.tenant}/{fact.user_id} applied to {self.key}"
            )
        changed = False
        if fact.kind in (FactKind.USER_CREATED, FactKind.USER_DEACTIVATED):
            op = _CREATED if fact.kind is FactKind.USER_CREATED else _DEACTIVATED
            changed |= insert_once(self._lifecycle, (fact.time_ms, fact.event_id, op))
        if fact.kind is not FactKind.USER_DEACTIVATED:
            if fact.display_name:
                stamped = (fact.time_ms, fact.event_id, fact.display_name)
                if self._display is None or stamped > self._display:
                    self._display, changed = stamped, True
            if fact.email:
                stamped = (fact.time_ms, fact.event_id, fact.email)
                if self._email is None or stamped > self._email:
                    self._email, changed = stamped, True
            if fact.business_unit:
                changed |= insert_once(self._units, (fact.time_ms, fact.event_id, fact.business_unit))
        return changed

    def apply_all(self, facts: Iterable[Fact]) -> bool:
        """Applies each fact; True when any changed the record."""
        changed = False
        for fact in facts:
            changed |= self.apply(fact)
        return changed

    # -- queries ----------------------------------------------------------------------------------------

    @property
    def display_name(self) -> str:
        """The latest display name given; ``''`` when none was."""
        return self._display[2] if self._display else ""

    @property
    def email(self) -> str:
        """The latest e-mail address given; ``''`` when none was."""
        return self._email[2] if self._email else ""

    @property
    def active(self) -> bool:
        """Whether the user is active after every known fact (``active_at`` the end of time)."""
        return self._lifecycle[-1][2] != _DEACTIVATED if self._lifecycle else True

    def active_at(self, t_ms: int) -> bool:
        """Whether the user was active at ``t_ms`` (see the module docstring)."""
        if not self._lifecycle:
            return True
        i = bisect.bisect_right(self._lifecycle, t_ms, key=time_of)
        if i == 0:
            return self._lifecycle[0][2] == _DEACTIVATED
        return self._lifecycle[i - 1][2] != _DEACTIVATED

    @property
    def business_unit(self) -> str | None:
        """The unit in force now (after the latest known change); None when no fact named one."""
        return self._units[-1][2] if self._units else None

    def business_unit_at(self, t_ms: int) -> str | None:
        """The unit in force at ``t_ms``: the latest change at or before it, else the earliest known one."""
        if not self._units:
            return None
        i = bisect.bisect_right(self._units, t_ms, key=time_of)
        return self._units[max(i - 1, 0)][2]

    def business_unit_history(self) -> list[tuple[int, str]]:
        """Every known change as (event time ms, unit), in event-time order (repeats of a unit kept)."""
        return [(t, unit) for t, _, unit in self._units]

    # -- serialization ----------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """The record as compact JSON (layout in the class docstring); equal records give equal bytes."""
        doc = {
            "v": FORMAT_VERSION,
            "t": self.tenant,
            "u": self.user_id,
            "dn": self._display,
            "em": self._email,
            "lc": self._lifecycle,
            "bu": self._units,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UserRecord:
        """The record :meth:`to_json` wrote; ValueError when ``data`` is not one."""
        try:
            doc = json.loads(data)
            if doc["v"] != FORMAT_VERSION:
                raise ValueError(f"user record format {doc['v']!r}, expected {FORMAT_VERSION}")
            record = cls(read_text(doc["t"]), read_text(doc["u"]))
            record._display = read_stamped(doc["dn"]) if doc["dn"] is not None else None
            record._email = read_stamped(doc["em"]) if doc["em"] is not None else None
            record._lifecycle = sorted(read_stamped(item) for item in doc["lc"])
            record._units = sorted(read_stamped(item) for item in doc["bu"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a user record: {exc!r}") from exc
        return record

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserRecord) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"UserRecord({self.tenant!r}, {self.user_id!r}, active={self.active}, "
            f"business_unit={self.business_unit!r})"
        )


class Directory(Protocol):
    """Where conversation state looks users up (the agent backs it with its user table)."""

    def user(self, tenant: str, user_id: str) -> UserRecord | None:
        """The user's record, None when no fact about the user is known."""
        ...


class DictDirectory:
    """A :class:`Directory` in a dict keyed by :func:`app.state.facts.user_key` (tests, tools)."""

    def __init__(self, records: Iterable[UserRecord] = ()) -> None:
        self.records: dict[str, UserRecord] = {r.key: r for r in records}

    def user(self, tenant: str, user_id: str) -> UserRecord | None:
        """The user's record, None when unknown."""
        return self.records.get(user_key(tenant, user_id))

    def apply(self, fact: Fact) -> bool:
        """Applies a user fact to its record (made when missing); True when that changed it."""
        key = user_key(fact.tenant, fact.user_id)
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = UserRecord(fact.tenant, fact.user_id)
        return record.apply(fact)
