"""app.state.conversation: membership intervals in event time (edges, out of order, rejoin, leave without
join, role changes), lifecycle, kind, holds, counters and their window, business units through a directory,
JSON round trip, size, and order-insensitivity (examples from real protobuf events + hypothesis)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from app.state.conversation import COUNTER_NAMES, ConversationState, Interval, derive_intervals
from app.state.directory import DictDirectory
from app.state.facts import Fact, FactKind, conversation_key, fact_from_event
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.conversation_deactivated_pb2 import ConversationDeactivated
from models.canonical.carryover.collaboration.v1.conversation_reactivated_pb2 import ConversationReactivated
from models.canonical.carryover.collaboration.v1.conversation_updated_pb2 import ConversationUpdated
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.collaboration.v1.member_left_pb2 import MemberLeft
from models.canonical.carryover.collaboration.v1.member_role_changed_pb2 import MemberRoleChanged
from models.canonical.carryover.collaboration.v1.message_edited_pb2 import MessageEdited
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.collaboration.v1.reaction_added_pb2 import ReactionAdded
from models.canonical.carryover.collaboration.v1.reaction_removed_pb2 import ReactionRemoved
from models.canonical.carryover.common.v1.member_role_pb2 import (
    MEMBER_ROLE_MEMBER,
    MEMBER_ROLE_MODERATOR,
    MEMBER_ROLE_OWNER,
    MemberRole,
)
from models.canonical.carryover.compliance.v1.legal_hold_released_pb2 import LegalHoldReleased
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, ROOM = "acme-bank", "q83vEjRWeJCrze8SNFZ4kA"
ROLE = {"member": MEMBER_ROLE_MEMBER, "owner": MEMBER_ROLE_OWNER, "moderator": MEMBER_ROLE_MODERATOR}


def _common(event_id: str, t: int) -> dict[str, Any]:
    when = Timestamp()
    when.FromMilliseconds(t)
    return {"tenant_id": TENANT, "event_id": event_id, "event_time": when}


def _fact(event: Message) -> Fact:
    fact = fact_from_event(event)
    assert fact is not None
    return fact


def created(e: str, t: int, name: str = "FX desk", creator: str = "u1") -> Fact:
    return _fact(
        ConversationCreated(
            **_common(e, t), conversation_id=ROOM, name=name, creator_user_id=creator, external=True
        )
    )


def renamed(e: str, t: int, name: str) -> Fact:
    return _fact(ConversationUpdated(**_common(e, t), conversation_id=ROOM, name=name, actor_user_id="u1"))


def deactivated(e: str, t: int) -> Fact:
    return _fact(ConversationDeactivated(**_common(e, t), conversation_id=ROOM, actor_user_id="u1"))


def reactivated(e: str, t: int) -> Fact:
    return _fact(ConversationReactivated(**_common(e, t), conversation_id=ROOM, actor_user_id="u1"))


def joined(e: str, t: int, user: str, role: str = "member") -> Fact:
    return _fact(
        MemberJoined(**_common(e, t), conversation_id=ROOM, user_id=user, actor_user_id=user, role=ROLE[role])
    )


def left(e: str, t: int, user: str) -> Fact:
    return _fact(MemberLeft(**_common(e, t), conversation_id=ROOM, user_id=user, actor_user_id=user))


def role_changed(e: str, t: int, user: str, old: str, new: str) -> Fact:
    event = MemberRoleChanged(
        **_common(e, t), conversation_id=ROOM, user_id=user, actor_user_id="u1", old_role=ROLE[old]
    )
    event.new_role = MemberRole.Value(f"MEMBER_ROLE_{new.upper()}")
    return _fact(event)


def sent(e: str, t: int, user: str, message: str = "m1") -> Fact:
    return _fact(MessageSent(**_common(e, t), conversation_id=ROOM, message_id=message, sender_user_id=user))


def edited(e: str, t: int, user: str) -> Fact:
    return _fact(MessageEdited(**_common(e, t), conversation_id=ROOM, message_id="m1", editor_user_id=user))


def reacted(e: str, t: int, user: str, removed: bool = False) -> Fact:
    cls = ReactionRemoved if removed else ReactionAdded
    return _fact(cls(**_common(e, t), conversation_id=ROOM, message_id="m1", user_id=user, emoji="+1"))


def suppressed(e: str, t: int) -> Fact:
    return _fact(MessageSuppressed(**_common(e, t), conversation_id=ROOM, message_id="m1", actor_user_id="c"))


def hold_set(e: str, t: int, hold: str = "h1") -> Fact:
    return _fact(LegalHoldSet(**_common(e, t), hold_id=hold, conversation_id=ROOM, reason="matter"))


def hold_released(e: str, t: int, hold: str = "h1") -> Fact:
    return _fact(LegalHoldReleased(**_common(e, t), hold_id=hold, actor_user_id="c"))


def state(*facts: Fact, window: int = 2_000) -> ConversationState:
    conversation = ConversationState(TENANT, ROOM, window=window)
    conversation.apply_all(facts)
    return conversation


# -- membership --------------------------------------------------------------------------------------------

JOIN_100_LEAVE_200 = state(joined("e1", 100, "u2"), left("e2", 200, "u2"))


@pytest.mark.parametrize(
    ("t_ms", "members"),
    [
        (99, {}),
        (100, {"u2": "member"}),  # joined at t: a member at t
        (150, {"u2": "member"}),
        (199, {"u2": "member"}),
        (200, {}),  # left at t: not a member at t
        (201, {}),
    ],
)
def test_members_at_interval_edges(t_ms: int, members: dict[str, str]) -> None:
    assert JOIN_100_LEAVE_200.members_at(t_ms) == members


def test_a_message_before_the_join_that_allows_it_still_counts() -> None:
    conversation = state(sent("m", 150, "u2"))  # the message arrives first
    assert conversation.counters["sent"] == 1
    assert conversation.members_at(150) == {}
    assert conversation.apply(joined("j", 100, "u2"))  # its join arrives later
    assert conversation.members_at(150) == {"u2": "member"}
    assert conversation.counters["sent"] == 1
    assert conversation.members_at(50) == {}  # a message sent before its join: the sender was no member then
    assert state(joined("j", 100, "u2"), sent("m", 50, "u2")).counters["sent"] == 1


def test_leave_then_rejoin_forms_a_new_interval_in_any_arrival_order() -> None:
    facts = [joined("e1", 100, "u2"), left("e2", 200, "u2"), joined("e3", 300, "u2", "owner")]
    expected = {"u2": [Interval(100, 200, "member"), Interval(300, None, "owner")]}
    assert state(*facts).membership_intervals() == expected
    assert state(*reversed(facts)).membership_intervals() == expected
    assert state(*reversed(facts)).members_at(250) == {}
    assert state(*reversed(facts)).members_at(300) == {"u2": "owner"}


def test_a_leave_without_a_join_is_kept_until_its_join_arrives() -> None:
    conversation = state(left("e2", 200, "u2"))
    assert conversation.membership_intervals() == {"u2": [Interval(None, 200, "")]}
    assert conversation.members_at(-(10**12)) == {"u2": ""}  # a member since before anything known
    assert conversation.members_at(200) == {}
    conversation.apply(joined("e1", 100, "u2"))
    assert conversation.membership_intervals() == {"u2": [Interval(100, 200, "member")]}
    assert conversation.members_at(99) == {}


def test_a_second_leave_waits_for_its_missing_join() -> None:
    conversation = state(joined("e1", 100, "u2"), left("e2", 200, "u2"), left("e4", 400, "u2"))
    assert conversation.membership_intervals() == {"u2": [Interval(100, 200, "member")]}
    conversation.apply(joined("e3", 300, "u2"))
    assert conversation.membership_intervals() == {
        "u2": [Interval(100, 200, "member"), Interval(300, 400, "member")]
    }


def test_role_changes_within_an_interval() -> None:
    conversation = state(
        joined("e1", 100, "u2"),
        role_changed("e2", 150, "u2", "member", "owner"),
        role_changed("e3", 170, "u2", "owner", "moderator"),
        left("e4", 300, "u2"),
    )
    [interval] = conversation.membership_intervals()["u2"]
    assert interval == Interval(100, 300, "member", ((150, "owner"), (170, "moderator")))
    assert [conversation.members_at(t) for t in (149, 150, 169, 170, 300)] == [
        {"u2": "member"},
        {"u2": "owner"},
        {"u2": "owner"},
        {"u2": "moderator"},
        {},
    ]
    assert interval.current_role == "moderator"


@pytest.mark.parametrize(
    ("facts", "intervals"),
    [
        # a role change as the first fact: a member since before anything known, with the old role
        (
            (role_changed("r", 150, "u2", "member", "owner"),),
            [Interval(None, None, "member", ((150, "owner"),))],
        ),
        # a role change of a former member: a member again from the change, with the new role
        (
            (joined("j", 100, "u2"), left("l", 200, "u2"), role_changed("r", 300, "u2", "member", "owner")),
            [Interval(100, 200, "member"), Interval(300, None, "owner")],
        ),
        # joined again while a member: a role change when the role differs, nothing when not
        (
            (joined("j", 100, "u2"), joined("j2", 120, "u2", "moderator")),
            [Interval(100, None, "member", ((120, "moderator"),))],
        ),
        ((joined("j", 100, "u2"), joined("j2", 120, "u2")), [Interval(100, None, "member")]),
        # a role change to the role already held records nothing
        (
            (joined("j", 100, "u2"), role_changed("r", 150, "u2", "member", "member")),
            [Interval(100, None, "member")],
        ),
        # equal times: ordered by event id ("a" < "b"): leave then join keeps the member
        (
            (joined("j", 100, "u2"), left("a", 200, "u2"), joined("b", 200, "u2")),
            [Interval(100, 200, "member"), Interval(200, None, "member")],
        ),
        # ... and join then leave at the same time is an empty interval
        ((joined("a", 200, "u2"), left("b", 200, "u2")), [Interval(200, 200, "member")]),
    ],
)
def test_interval_rules(facts: tuple[Fact, ...], intervals: list[Interval]) -> None:
    assert state(*facts).membership_intervals() == {"u2": intervals}
    assert state(*reversed(facts)).membership_intervals() == {"u2": intervals}


def test_members_now_and_many_members() -> None:
    conversation = state(
        joined("a", 100, "u1", "owner"), joined("b", 110, "u2"), joined("c", 120, "u3"), left("d", 130, "u2")
    )
    assert conversation.members() == {"u1": "owner", "u3": "member"}
    assert conversation.members_at(125) == {"u1": "owner", "u2": "member", "u3": "member"}
    assert derive_intervals([]) == ()
    assert conversation.intervals_of("nobody") == ()


# -- the conversation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "kind"),
    [
        ((), "im"),
        ((created("c", 100),), "room"),
        ((joined("a", 1, "u1"), sent("b", 2, "u2")), "im"),
        ((joined("a", 1, "u1"), joined("b", 1, "u2"), sent("c", 2, "u2")), "im"),
        ((joined("a", 1, "u1"), sent("b", 2, "u2"), reacted("c", 3, "u3")), "mim"),
        ((sent("a", 1, "u1"), edited("b", 2, "u2"), reacted("c", 3, "u3", removed=True)), "mim"),
        ((joined("a", 1, "u1"), joined("b", 1, "u2"), joined("c", 1, "u3"), created("d", 0)), "room"),
        ((sent("a", 1, "u1"), suppressed("b", 2), suppressed("c", 3)), "im"),  # officers take no part
    ],
)
def test_kind_is_room_when_created_else_inferred(facts: tuple[Fact, ...], kind: str) -> None:
    assert state(*facts).kind == kind


LIFECYCLE = state(created("c", 100), deactivated("d", 200), reactivated("r", 300), deactivated("d2", 400))


@pytest.mark.parametrize(
    ("t_ms", "active"), [(99, False), (100, True), (199, True), (200, False), (300, True), (400, False)]
)
def test_active_at(t_ms: int, active: bool) -> None:
    assert LIFECYCLE.active_at(t_ms) is active


def test_lifecycle_queries() -> None:
    assert (LIFECYCLE.active, LIFECYCLE.deactivated_ms, LIFECYCLE.created_ms) == (False, 400, 100)
    assert LIFECYCLE.lifecycle() == [
        (100, "created"),
        (200, "deactivated"),
        (300, "reactivated"),
        (400, "deactivated"),
    ]
    reopened = state(deactivated("d", 200), reactivated("r", 300))
    assert (reopened.active, reopened.deactivated_ms, reopened.created_ms) == (True, None, None)
    assert [reopened.active_at(t) for t in (0, 200, 300)] == [True, False, True]  # active before deactivation
    assert [state(reactivated("r", 300)).active_at(t) for t in (0, 300)] == [False, True]
    assert state().active and state().active_at(0) and state().deactivated_ms is None


def test_name_and_creation() -> None:
    conversation = state(renamed("u", 200, "FX spot"), created("c", 100, "FX desk", creator="u9"))
    assert conversation.name == "FX spot"  # the latest, though it arrived first
    assert (conversation.creator_user_id, conversation.external, conversation.public) == ("u9", True, False)
    assert state(renamed("u", 50, "old"), created("c", 100, "FX desk")).name == "FX desk"
    unknown = state(sent("m", 1, "u1"))
    assert (unknown.name, unknown.created_ms, unknown.external, unknown.public, unknown.creator_user_id) == (
        "",
        None,
        None,
        None,
        "",
    )


def test_legal_holds_in_event_time() -> None:
    conversation = state(hold_set("s1", 100), hold_set("s2", 150, "h2"))
    assert conversation.legal_holds == {"h1", "h2"}
    assert conversation.apply(hold_released("r1", 200))  # a release names no conversation: routed here
    assert [conversation.legal_holds_at(t) for t in (99, 100, 150, 200)] == [
        set(),
        {"h1"},
        {"h1", "h2"},
        {"h2"},
    ]
    assert conversation.legal_holds == {"h2"}


# -- counters ----------------------------------------------------------------------------------------------


def test_counters_count_each_event_once() -> None:
    facts = [
        sent("a", 1, "u1"),
        sent("b", 2, "u1", "m2"),
        edited("c", 3, "u1"),
        reacted("d", 4, "u2"),
        reacted("e", 5, "u2", removed=True),
        suppressed("f", 6),
    ]
    conversation = state(*facts)
    expected = {"sent": 2, "edited": 1, "reactions_added": 1, "reactions_removed": 1, "suppressed": 1}
    assert conversation.counters == expected and set(expected) == set(COUNTER_NAMES)
    assert [conversation.apply(f) for f in facts] == [False] * len(facts)
    assert conversation.counters == expected
    assert conversation.last_event_ms == 6


def test_the_window_of_recent_ids_and_what_happens_beyond_it() -> None:
    conversation = state(*(sent(f"e{t}", t, "u1") for t in range(1, 5)), window=3)  # remembers e2, e3, e4
    assert conversation.counters["sent"] == 4
    assert not conversation.apply(sent("e4", 4, "u1"))  # in the window: a duplicate, dropped
    assert not conversation.apply(sent("e2", 2, "u1"))
    assert conversation.apply(sent("e1", 1, "u1"))  # pushed out of the window: counted twice (documented)
    assert conversation.counters["sent"] == 5
    assert conversation.apply(sent("e0", 0, "u1"))  # older than the window: counted, not remembered
    assert conversation.apply(sent("e0", 0, "u1"))
    assert conversation.counters["sent"] == 7
    assert conversation.apply(sent("e5", 5, "u1"))  # newer: remembered, the oldest pushed out
    assert not conversation.apply(sent("e5", 5, "u1"))
    assert conversation.apply(sent("e2", 2, "u1"))
    assert ConversationState(TENANT, ROOM).window == 2_000
    with pytest.raises(ValueError):
        ConversationState(TENANT, ROOM, window=0)


# -- business units ----------------------------------------------------------------------------------------


def _user(e: str, t: int, user: str, unit: str, created: bool = False) -> Fact:
    if created:
        return _fact(
            UserCreated(**_common(e, t), user_id=user, username=user, display_name=user, business_unit=unit)
        )
    return _fact(UserUpdated(**_common(e, t), user_id=user, business_unit=unit))


def test_business_units_of_the_members_at_t() -> None:
    directory = DictDirectory()
    for fact in (_user("a", 0, "u1", "Rates", created=True), _user("b", 0, "u2", "Credit", created=True)):
        directory.apply(fact)
    conversation = state(
        joined("j1", 100, "u1"), joined("j2", 200, "u2"), joined("j3", 200, "u3"), left("l", 300, "u1")
    )
    assert conversation.business_units_at(150, directory) == {"Rates"}
    assert conversation.business_units_at(250, directory) == {"Rates", "Credit"}
    assert conversation.member_business_units_at(250, directory) == {
        "u1": "Rates",
        "u2": "Credit",
        "u3": None,
    }
    assert conversation.business_units_at(300, directory) == {"Credit"}
    # a business-unit change that arrives after the messages it covers
    directory.apply(_user("c", 220, "u2", "Legal"))
    assert conversation.business_units_at(250, directory) == {"Rates", "Legal"}
    assert conversation.business_units_at(210, directory) == {"Rates", "Credit"}
    assert DictDirectory().user(TENANT, "u1") is None
    assert conversation.business_units_at(250, DictDirectory()) == frozenset()


# -- routing, serialization, size ---------------------------------------------------------------------------


def test_misrouted_facts_are_refused() -> None:
    conversation = ConversationState(TENANT, ROOM)
    assert conversation.key == conversation_key(TENANT, ROOM)
    with pytest.raises(ValueError, match="applied to"):
        conversation.apply(replace(sent("a", 1, "u1"), conversation_id="other"))
    with pytest.raises(ValueError, match="applied to"):
        conversation.apply(replace(sent("a", 1, "u1"), tenant="globex"))
    with pytest.raises(ValueError, match="applied to"):
        conversation.apply(replace(hold_set("a", 1), conversation_id=""))  # a hold on a custodian
    with pytest.raises(ValueError, match="not a conversation fact"):
        conversation.apply(_user("a", 1, "u1", "Rates"))
    assert conversation == ConversationState(TENANT, ROOM)


EVERYTHING = [
    created("c", 100, "Zoë's desk"),
    joined("j1", 100, "u1", "owner"),
    joined("j2", 110, "u2"),
    role_changed("r", 120, "u2", "member", "moderator"),
    left("l", 130, "u2"),
    left("l3", 130, "u3"),
    sent("m1", 140, "u1"),
    edited("m2", 150, "u1"),
    reacted("m3", 160, "u4"),
    reacted("m4", 170, "u4", removed=True),
    suppressed("m5", 180),
    hold_set("h", 190),
    hold_released("hr", 195),
    renamed("n", 200, "desk"),
    deactivated("d", 210),
    reactivated("re", 220),
]


def test_json_round_trip() -> None:
    conversation = state(*EVERYTHING)
    data = conversation.to_json()
    again = ConversationState.from_json(data)
    assert again == conversation and again.to_json() == data
    assert again.membership_intervals() == conversation.membership_intervals()
    assert (again.kind, again.name, again.counters, again.last_event_ms) == (
        conversation.kind,
        conversation.name,
        conversation.counters,
        220,
    )
    assert not again.apply(sent("m1", 140, "u1"))  # the window survives the round trip
    assert b" " not in data.replace("Zoë's desk".encode(), b"")
    assert ConversationState.from_json(ConversationState("t", "c").to_json()) == ConversationState("t", "c")


def test_from_json_with_a_smaller_window_keeps_the_newest_ids() -> None:
    data = state(*(sent(f"e{t}", t, "u1") for t in range(10))).to_json()
    small = ConversationState.from_json(data, window=3)
    assert [small.apply(sent(f"e{t}", t, "u1")) for t in (9, 8, 7, 6)] == [False, False, False, True]


@pytest.mark.parametrize(
    "data",
    [b"{}", b"[]", b"nope", b'{"v":9}', state(sent("a", 1, "u1")).to_json().replace(b'"le":1', b'"le":"1"')],
)
def test_from_json_refuses_what_is_not_a_state(data: bytes) -> None:
    with pytest.raises(ValueError):
        ConversationState.from_json(data)


def test_ten_thousand_members_serialize_quickly() -> None:
    conversation = ConversationState(TENANT, ROOM)
    for i in range(10_000):
        event_id = f"{i:08x}-6a53-5f4e-9d0e-0f1d7b2b8a11"
        conversation.apply(
            Fact(FactKind.MEMBER_JOINED, event_id, 1_000 + i, TENANT, ROOM, user_id=f"{i}", role="member")
        )
    started = time.perf_counter()
    data = conversation.to_json()
    again = ConversationState.from_json(data)
    members = again.members_at(6_000)
    elapsed = time.perf_counter() - started
    assert len(members) == 5_001 and again == conversation
    assert len(data) < 1_000_000, len(data)  # ~83 bytes a member
    assert elapsed < 1.5, elapsed


# -- properties --------------------------------------------------------------------------------------------

_USERS = st.sampled_from(["u1", "u2", "u3", "u4"])
_ROLES = st.sampled_from(["", "member", "owner", "moderator"])
_TIMES = st.integers(min_value=0, max_value=30)


def _any_fact(kind: FactKind, t: int, user: str, role: str, old_role: str, hold: str, name: str) -> Fact:
    conversation_id = "" if kind is FactKind.LEGAL_HOLD_RELEASED else ROOM
    fields: dict[str, Any] = {"conversation_id": conversation_id, "hold_id": hold, "name": name}
    if kind in (FactKind.MEMBER_JOINED, FactKind.MEMBER_LEFT, FactKind.ROLE_CHANGED):
        fields.update(user_id=user, role=role if kind is not FactKind.MEMBER_LEFT else "", old_role=old_role)
    elif kind in (
        FactKind.MESSAGE_SENT,
        FactKind.MESSAGE_EDITED,
        FactKind.REACTION_ADDED,
        FactKind.REACTION_REMOVED,
    ):
        fields.update(user_id=user)
    elif kind is FactKind.CREATED:
        fields.update(actor_user_id=user, external=bool(t % 2))
    return Fact(kind, "", t, TENANT, **fields)


_CONVERSATION_KINDS = [k for k in FactKind if not k.startswith("user_")]
_FACTS = st.lists(
    st.builds(
        _any_fact,
        st.sampled_from(_CONVERSATION_KINDS),
        _TIMES,
        _USERS,
        _ROLES,
        _ROLES,
        st.sampled_from(["h1", "h2"]),
        st.sampled_from(["", "A", "B"]),
    ),
    max_size=25,
).map(lambda facts: [replace(f, event_id=f"e{i:02d}") for i, f in enumerate(facts)])


@settings(max_examples=200, deadline=None)
@given(_FACTS, st.randoms(use_true_random=False), st.data())
def test_order_and_duplicates_do_not_matter(facts: list[Fact], rnd: Any, data: st.DataObject) -> None:
    reference = state(*facts)
    extra = data.draw(st.lists(st.sampled_from(facts), max_size=10)) if facts else []
    shuffled = facts + extra
    rnd.shuffle(shuffled)
    other = state(*shuffled)
    assert other.to_json() == reference.to_json()
    assert ConversationState.from_json(other.to_json()).to_json() == reference.to_json()
    assert [other.apply(f) for f in facts] == [False] * len(facts)
    for t in range(-1, 32):
        assert other.members_at(t) == reference.members_at(t)
        assert other.active_at(t) == reference.active_at(t)


@settings(max_examples=200, deadline=None)
@given(_FACTS)
def test_intervals_are_ordered_disjoint_and_agree_with_members_at(facts: list[Fact]) -> None:
    conversation = state(*facts)
    for user, intervals in conversation.membership_intervals().items():
        for before, after in zip(intervals, intervals[1:], strict=False):
            assert before.left_ms is not None and after.joined_ms is not None
            assert before.left_ms <= after.joined_ms
        for interval in intervals:
            assert (
                interval.joined_ms is None
                or interval.left_ms is None
                or interval.joined_ms <= interval.left_ms
            )
            assert [t for t, _ in interval.role_changes] == sorted(t for t, _ in interval.role_changes)
        for t in range(-1, 32):
            inside = [i for i in intervals if i.contains(t)]
            assert len(inside) <= 1
            assert (user in conversation.members_at(t)) == bool(inside)
            if inside:
                assert conversation.members_at(t)[user] == inside[0].role_at(t)


@settings(max_examples=100, deadline=None)
@given(st.lists(_TIMES, max_size=12), st.randoms(use_true_random=False))
def test_counters_within_the_window_are_exactly_once_in_any_order(times: list[int], rnd: Any) -> None:
    facts = [sent(f"e{i:02d}", t, "u1") for i, t in enumerate(times)]
    deliveries = facts + facts[: len(facts) // 2]
    rnd.shuffle(deliveries)
    conversation = state(*deliveries, window=len(facts) or 1)
    assert conversation.counters["sent"] == len(facts)
    assert conversation.to_json() == state(*facts, window=len(facts) or 1).to_json()
