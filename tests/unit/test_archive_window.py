"""app.archive.window: which business units archive a conversation in a window (members during it, a move
between units mid-window, speakers without membership), which events (the window's only, once, in order),
participants at start and end, and suppression markers."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import Message

from app.archive.policy import Window
from app.archive.window import (
    archive_event,
    business_units_during,
    conversation_window,
    window_events,
)
from tests.unit.test_archive_builders import (
    DAY,
    HOUR,
    ROOM,
    T0,
    TENANT,
    created,
    desk_directory,
    desk_events,
    desk_window,
    directory,
    hold,
    joined,
    left,
    sent,
    sent_envelope,
    state_of,
    suppressed,
)


def _units(events: list[Message], units: dict[str, list[tuple[int, str]]], window: Window = DAY) -> set[str]:
    state = state_of(events)
    in_window = window_events(TENANT, ROOM, window, events)
    return set(business_units_during(state, directory(units), window, in_window))


@pytest.mark.parametrize(
    ("name", "events", "units", "expected"),
    [
        (
            "member all day",
            [joined("j", T0 - HOUR, "u1")],
            {"u1": [(0, "trading")]},
            {"trading"},
        ),
        (
            "left before the window",
            [joined("j", T0 - 2 * HOUR, "u1"), left("l", T0, "u1")],
            {"u1": [(0, "trading")]},
            set(),
        ),
        (
            "left one millisecond into the window",
            [joined("j", T0 - 2 * HOUR, "u1"), left("l", T0 + 1, "u1")],
            {"u1": [(0, "trading")]},
            {"trading"},
        ),
        (
            "joined at the window's end",
            [joined("j", T0 + 24 * HOUR, "u1")],
            {"u1": [(0, "trading")]},
            set(),
        ),
        (
            "joined during the window",
            [joined("j", T0 + 23 * HOUR, "u1")],
            {"u1": [(0, "trading")]},
            {"trading"},
        ),
        (
            "moved from trading to sales mid-window",
            [joined("j", T0 - HOUR, "u1")],
            {"u1": [(0, "trading"), (T0 + 12 * HOUR, "sales")]},
            {"trading", "sales"},
        ),
        (
            "moved after leaving: only the unit while a member",
            [joined("j", T0 - HOUR, "u1"), left("l", T0 + 6 * HOUR, "u1")],
            {"u1": [(0, "trading"), (T0 + 12 * HOUR, "sales")]},
            {"trading"},
        ),
        (
            "unit learned late applies back to the start (the earliest known unit)",
            [joined("j", T0 - HOUR, "u1")],
            {"u1": [(T0 + 30 * HOUR, "research")]},
            {"research"},
        ),
        (
            "two members of two units",
            [joined("j1", T0 - HOUR, "u1"), joined("j2", T0 + HOUR, "u2")],
            {"u1": [(0, "trading")], "u2": [(0, "sales")]},
            {"trading", "sales"},
        ),
        (
            "a sender without membership counts (IMs)",
            [sent("s", T0 + HOUR, "u7", "hi")],
            {"u7": [(0, "wealth")]},
            {"wealth"},
        ),
        (
            "a sender outside the window does not",
            [sent("s", T0 - HOUR, "u7", "hi")],
            {"u7": [(0, "wealth")]},
            set(),
        ),
        (
            "a user the directory does not know counts for none",
            [joined("j", T0 - HOUR, "u404")],
            {},
            set(),
        ),
    ],
)
def test_business_units_during_the_window(
    name: str, events: list[Message], units: dict[str, list[tuple[int, str]]], expected: set[str]
) -> None:
    assert _units(events, units) == expected, name


def test_a_conversation_is_archived_for_each_unit_with_a_member() -> None:
    events = desk_events()
    state, book = state_of(events), desk_directory()
    assert business_units_during(state, book, DAY, window_events(TENANT, ROOM, DAY, events)) == {
        "trading",
        "sales",
    }
    for unit in ("trading", "sales"):
        window = conversation_window(state, book, unit, DAY, events)
        assert window is not None and window.business_unit == unit
    assert conversation_window(state, book, "compliance", DAY, events) is None  # the officer is no member


def test_no_archive_for_a_window_without_events() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 - 1, "u1", "before")]
    assert conversation_window(state_of(events), directory({"u1": [(0, "t")]}), "t", DAY, events) is None


def test_only_the_windows_events_once_in_order() -> None:
    events = desk_events()
    shuffled = events + events[3:8]  # re-sends
    random.Random(7).shuffle(shuffled)
    window = desk_window(events=shuffled)
    assert [e.fact.event_id for e in window.events] == [
        "e10", "e11", "e12", "e13", "e14", "e15", "e16", "e17", "e18", "e19",
    ]  # fmt: skip
    assert desk_window(events=shuffled) == desk_window()
    assert window.event_counts() == {
        "member_joined": 1,
        "member_left": 1,
        "message_edited": 1,
        "message_sent": 4,
        "message_suppressed": 1,
        "reaction_added": 1,
        "role_changed": 1,
    }


def test_equal_times_are_ordered_by_event_id() -> None:
    events = [joined("j", T0 - HOUR, "u1")] + [sent(e, T0 + 5, "u1", e) for e in ("c", "a", "b")]
    window = conversation_window(state_of(events), directory({"u1": [(0, "t")]}), "t", DAY, events)
    assert window is not None
    assert [e.fact.event_id for e in window.events] == ["a", "b", "c"]


def test_envelopes_and_events_are_both_read() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent_envelope("s1", T0 + 1, "u1", "hi")]
    window = conversation_window(state_of([events[0]]), directory({"u1": [(0, "t")]}), "t", DAY, events)
    assert window is not None and [e.fact.event_id for e in window.events] == ["s1"]


def test_legal_holds_are_not_archived() -> None:
    assert archive_event(hold("h", T0)) is None
    assert archive_event(created("c", T0)) is not None


def test_participants_at_start_and_end() -> None:
    window = desk_window()
    start = [(p.person.user_id, p.role, p.business_unit) for p in window.participants_at_start]
    end = [(p.person.user_id, p.role, p.business_unit) for p in window.participants_at_end]
    assert start == [("u1", "owner", "trading"), ("u2", "member", "trading")]
    assert end == [("u1", "owner", "trading"), ("u2", "owner", "trading")]  # u3 came and went, u2 promoted
    assert window.person("u3").display_name == 'Carol "CJ" O\'Neil'
    assert window.person("u9").email == "dee@acme.example"  # the officer is named by the suppression
    assert window.conversation_name == "FX desk" and window.conversation_kind == "room"


def test_participants_at_end_include_a_join_in_the_last_millisecond() -> None:
    events = [
        joined("j1", T0 - HOUR, "u1"),
        joined("j2", DAY.end_ms - 1, "u2"),
        joined("j3", DAY.end_ms, "u3"),
    ]
    book = directory({"u1": [(0, "t")], "u2": [(0, "t")], "u3": [(0, "t")]})
    window = conversation_window(state_of(events), book, "t", DAY, events)
    assert window is not None
    assert [p.person.user_id for p in window.participants_at_end] == ["u1", "u2"]


def test_suppressed_messages_are_kept_with_a_marker() -> None:
    window = desk_window()
    assert window.suppressed_message_ids == {"m4"}
    assert window.is_suppressed("m4") and not window.is_suppressed("m1")
    assert "e16" in [e.fact.event_id for e in window.events]  # the message itself is still there


def test_a_suppression_of_an_earlier_windows_message_is_an_event_of_its_own_window() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 - 1, "u1", "old"), suppressed("x", T0 + 1, "m-s")]
    window = conversation_window(state_of(events), directory({"u1": [(0, "t")]}), "t", DAY, events)
    assert window is not None
    assert [e.fact.event_id for e in window.events] == ["x"]


@pytest.mark.parametrize(
    "stranger",
    [sent("s", T0 + 1, "u1", "hi", room="another-room"), sent_envelope("s", T0, "u1", "x")],
)
def test_events_of_another_conversation_or_a_clashing_event_id_are_refused(stranger: Message) -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "hi")]
    with pytest.raises(ValueError):
        window_events(TENANT, ROOM, DAY, [*events, stranger])
