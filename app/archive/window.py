"""What goes into one (tenant, business unit, window, conversation) archive (pure).

:func:`conversation_window` takes a conversation's :class:`app.state.ConversationState`, the
:class:`app.state.Directory`, a business unit, an :class:`app.archive.policy.Window` and the conversation's
canonical events (decoded protobuf events or the envelopes carrying them, in any order, duplicates allowed),
and gives the :class:`ConversationWindow` the renderers turn into files, or None when the business unit has
nothing to archive there.

**Which conversations a business unit archives.** A conversation is archived for a business unit when the
unit *had a member in it during the window*: some user was a member at some moment ``t`` of the window (their
membership intervals, half-open like the window) while their business unit at ``t`` was that unit (each
user's unit is looked up in the directory at ``t``, so a user who moves between units mid-window makes the
conversation count for both). A user who sent, edited or reacted in the window counts as a member at that
event's time too: IMs and legacy conversations often have no membership facts for their speakers.
:func:`business_units_during` gives every unit a conversation is archived for.

**Which events.** Only the window's: events with ``start_ms <= event time < end_ms``, de-duplicated by event
id (re-sends are expected: the pipeline is at-least-once) and ordered by (event time, event id), the order of
the per-conversation state. The archived kinds are :data:`ARCHIVED_KINDS`: messages, edits, reactions,
suppressions, members entering, leaving and changing role, and the conversation's creation, renaming,
deactivation and reactivation. Legal holds are not part of a conversation's transcript. A conversation with no
archived event in the window has no archive for that window (the state did not change there), so
:func:`conversation_window` returns None for it.

**Suppressions.** A suppressed message is kept: the suppression is an event of the window it happened in
(rendered as an update record), and a message sent or edited in the same window as its suppression carries a
suppression marker (:meth:`ConversationWindow.is_suppressed`). Whether the text is left out is the policy's
``redact_suppressed``, applied by the renderers.

**Participants** at the window's start are the members at ``start_ms``; at its end, the members after every
event of the window, i.e. at ``end_ms - 1`` (an event at ``end_ms`` belongs to the next window). Each comes
with their role and their business unit at that moment. Names and e-mail addresses are the directory's
latest (the directory keeps no history of them).

Message text stays encrypted here: :class:`ArchiveEvent` holds the canonical event as it arrived, and only a
renderer decrypts, with the key lookup it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from app.archive.policy import Window
from app.catalog.model import ENVELOPE_ONEOF, inner_event
from app.state.conversation import ConversationState
from app.state.directory import Directory, UserRecord
from app.state.facts import Fact, FactKind, fact_from_event

ARCHIVED_KINDS = frozenset(
    {
        FactKind.CREATED,
        FactKind.UPDATED,
        FactKind.DEACTIVATED,
        FactKind.REACTIVATED,
        FactKind.MEMBER_JOINED,
        FactKind.MEMBER_LEFT,
        FactKind.ROLE_CHANGED,
        FactKind.MESSAGE_SENT,
        FactKind.MESSAGE_EDITED,
        FactKind.REACTION_ADDED,
        FactKind.REACTION_REMOVED,
        FactKind.MESSAGE_SUPPRESSED,
    }
)
"""The fact kinds a conversation's archive holds (everything of a conversation except legal holds)."""

_ACTING_KINDS = frozenset(
    {FactKind.MESSAGE_SENT, FactKind.MESSAGE_EDITED, FactKind.REACTION_ADDED, FactKind.REACTION_REMOVED}
)
"""Events whose ``user_id`` took part in the conversation at the event's time."""


@dataclass(frozen=True)
class ArchiveEvent:
    """One canonical event of a conversation: its :class:`Fact` and the event itself (never an envelope)."""

    fact: Fact
    event: Message = field(compare=False, repr=False)

    @property
    def sort_key(self) -> tuple[int, str]:
        """(event time ms, event id): the order of a window's events."""
        return self.fact.time_ms, self.fact.event_id


def archive_event(message: Message) -> ArchiveEvent | None:
    """The :class:`ArchiveEvent` of a canonical event or envelope; None for a type the archive does not keep.

    ValueError (from :func:`app.state.facts.fact_from_event`) for an event state could not place.
    """
    if message.DESCRIPTOR.oneofs_by_name.get(ENVELOPE_ONEOF) is not None:
        message = inner_event(message)
    fact = fact_from_event(message)
    if fact is None or fact.kind not in ARCHIVED_KINDS:
        return None
    return ArchiveEvent(fact, message)


@dataclass(frozen=True)
class Person:
    """A user as the archive names them: id, the directory's display name and e-mail (``''`` if unknown)."""

    user_id: str
    display_name: str = ""
    email: str = ""


@dataclass(frozen=True)
class Participant:
    """A member at a moment: who, in which role and, then, in which business unit (None if unknown)."""

    person: Person
    role: str
    business_unit: str | None


@dataclass(frozen=True)
class ConversationWindow:
    """Everything one archive of one conversation for one business unit and window holds (module docstring).

    ``events`` are the window's events in (event time, event id) order, each once; ``people`` everyone they or
    the participants name, by user id; ``suppressed_message_ids`` the messages suppressed by an event of the
    window.
    """

    tenant: str
    business_unit: str
    conversation_id: str
    conversation_name: str
    conversation_kind: str
    window: Window
    participants_at_start: tuple[Participant, ...]
    participants_at_end: tuple[Participant, ...]
    events: tuple[ArchiveEvent, ...]
    people: Mapping[str, Person] = field(compare=False)
    suppressed_message_ids: frozenset[str] = frozenset()

    def person(self, user_id: str) -> Person:
        """The person with ``user_id`` (a bare :class:`Person` for an id no event named)."""
        return self.people.get(user_id) or Person(user_id)

    def is_suppressed(self, message_id: str) -> bool:
        """True when an event of this window suppressed the message."""
        return message_id in self.suppressed_message_ids

    def event_counts(self) -> dict[str, int]:
        """{fact kind: number of the window's events of that kind}, kinds sorted, zero counts left out."""
        counts: dict[str, int] = {}
        for item in self.events:
            counts[str(item.fact.kind)] = counts.get(str(item.fact.kind), 0) + 1
        return dict(sorted(counts.items()))


def window_events(
    tenant: str, conversation_id: str, window: Window, events: Iterable[Message | ArchiveEvent]
) -> tuple[ArchiveEvent, ...]:
    """The archived events of ``window`` among ``events``, each event id once, in (time, event id) order.

    ValueError for an archived event of another tenant or conversation (the caller mixed streams up), or two
    different events with one event id.
    """
    chosen: dict[str, ArchiveEvent] = {}
    for item in events:
        archived = item if isinstance(item, ArchiveEvent) else archive_event(item)
        if archived is None:
            continue
        fact = archived.fact
        if fact.tenant != tenant or fact.conversation_id != conversation_id:
            raise ValueError(
                f"event {fact.event_id} of {fact.tenant}/{fact.conversation_id} given for "
                f"{tenant}/{conversation_id}"
            )
        if not window.contains(fact.time_ms):
            continue
        known = chosen.get(fact.event_id)
        if known is None:
            chosen[fact.event_id] = archived
        elif known.fact != fact:
            raise ValueError(f"two different events with event id {fact.event_id}: {known.fact} and {fact}")
    return tuple(sorted(chosen.values(), key=lambda e: e.sort_key))


def business_units_during(
    state: ConversationState,
    directory: Directory,
    window: Window,
    events: Iterable[ArchiveEvent] = (),
) -> frozenset[str]:
    """Every business unit that had a member in the conversation during ``window`` (module docstring).

    ``events``: the window's events (from :func:`window_events`); their senders, editors and reactors count
    as members at the event's time. Users the directory does not know, or without a unit, count for none.
    """
    units: set[str] = set()
    for user_id, intervals in state.membership_intervals().items():
        record = directory.user(state.tenant, user_id)
        if record is None:
            continue
        for interval in intervals:
            low = window.start_ms if interval.joined_ms is None else max(window.start_ms, interval.joined_ms)
            high = window.end_ms if interval.left_ms is None else min(window.end_ms, interval.left_ms)
            if low < high:
                units |= _units_between(record, low, high)
    for item in events:
        if item.fact.kind in _ACTING_KINDS and window.contains(item.fact.time_ms):
            record = directory.user(state.tenant, item.fact.user_id)
            unit = record.business_unit_at(item.fact.time_ms) if record is not None else None
            if unit:
                units.add(unit)
    return frozenset(units)


def _units_between(record: UserRecord, low: int, high: int) -> set[str]:
    """The units ``record`` was in at some moment of ``[low, high)``."""
    moments = [low] + [t for t, _ in record.business_unit_history() if low < t < high]
    return {unit for t in moments if (unit := record.business_unit_at(t))}


def conversation_window(
    state: ConversationState,
    directory: Directory,
    business_unit: str,
    window: Window,
    events: Iterable[Message | ArchiveEvent],
) -> ConversationWindow | None:
    """The archive of the conversation for ``business_unit`` and ``window``; None when there is none.

    None when the window has no archived event of the conversation, or when ``business_unit`` had no member
    in it during the window (see the module docstring). ``events``: the conversation's canonical events (any
    superset of the window's, in any order; others are left out).
    """
    tenant, conversation_id = state.tenant, state.conversation_id
    in_window = window_events(tenant, conversation_id, window, events)
    if not in_window or business_unit not in business_units_during(state, directory, window, in_window):
        return None
    at_start = _participants(state, directory, window.start_ms)
    at_end = _participants(state, directory, window.end_ms - 1)
    named: set[str] = {p.person.user_id for p in at_start + at_end}
    for item in in_window:
        named.update(u for u in (item.fact.user_id, item.fact.actor_user_id) if u)
    people = {user_id: _person(directory, tenant, user_id) for user_id in sorted(named)}
    suppressed = frozenset(
        item.fact.message_id for item in in_window if item.fact.kind is FactKind.MESSAGE_SUPPRESSED
    )
    return ConversationWindow(
        tenant=tenant,
        business_unit=business_unit,
        conversation_id=conversation_id,
        conversation_name=state.name,
        conversation_kind=state.kind,
        window=window,
        participants_at_start=at_start,
        participants_at_end=at_end,
        events=in_window,
        people=people,
        suppressed_message_ids=suppressed,
    )


def _person(directory: Directory, tenant: str, user_id: str) -> Person:
    record = directory.user(tenant, user_id)
    if record is None:
        return Person(user_id)
    return Person(user_id, record.display_name, record.email)


def _participants(state: ConversationState, directory: Directory, t_ms: int) -> tuple[Participant, ...]:
    participants = []
    for user_id, role in sorted(state.members_at(t_ms).items()):
        record = directory.user(state.tenant, user_id)
        unit = record.business_unit_at(t_ms) if record is not None else None
        participants.append(Participant(_person(directory, state.tenant, user_id), role, unit))
    return tuple(participants)


def event_field(item: ArchiveEvent, name: str, default: Any = "") -> Any:
    """Field ``name`` of the canonical event, ``default`` when its type has no such field."""
    if name in item.event.DESCRIPTOR.fields_by_name:
        return getattr(item.event, name)
    return default
