"""app.state.facts: every canonical event type to its Fact (built with the generated classes, bare and in
its envelope), refusals, roles, event time, the table keys and their escaping, Fact JSON."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from app.catalog.model import default_catalog, message_class
from app.state.facts import (
    Fact,
    FactKind,
    conversation_key,
    fact_from_event,
    role_name,
    split_key,
    user_key,
)
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
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.member_role_pb2 import (
    MEMBER_ROLE_MEMBER,
    MEMBER_ROLE_MODERATOR,
    MEMBER_ROLE_OWNER,
)
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance
from models.canonical.carryover.compliance.v1.legal_hold_released_pb2 import LegalHoldReleased
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_deactivated_pb2 import UserDeactivated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, ROOM, T_MS = "acme-bank", "q83vEjRWeJCrze8SNFZ4kA", 1_717_171_717_123
EID = "0b4c5e7a-6a53-5f4e-9d0e-0f1d7b2b8a11"


def _common(event_id: str = EID, time_ms: int = T_MS) -> dict[str, Any]:
    when = Timestamp()
    when.FromMilliseconds(time_ms)
    return {
        "tenant_id": TENANT,
        "event_id": event_id,
        "event_time": when,
        "provenance": Provenance(source="sqs", source_id="q", source_message_id="m-1", legacy_type="X"),
    }


TEXT = EncryptedText(key_id="acme-bank/v2", ciphertext=b"\x00" * 40)
BASE = {"event_id": EID, "time_ms": T_MS, "tenant": TENANT}
IN_ROOM = {**BASE, "conversation_id": ROOM}

CASES: list[tuple[Message, Fact]] = [
    (
        ConversationCreated(
            **_common(),
            conversation_id=ROOM,
            name="FX desk",
            description="spot",
            creator_user_id="1003",
            external=True,
            public=True,
        ),
        Fact(FactKind.CREATED, **IN_ROOM, actor_user_id="1003", name="FX desk", external=True, public=True),
    ),
    (
        ConversationUpdated(**_common(), conversation_id=ROOM, name="FX", actor_user_id="1004"),
        Fact(FactKind.UPDATED, **IN_ROOM, actor_user_id="1004", name="FX"),
    ),
    (
        ConversationDeactivated(**_common(), conversation_id=ROOM, actor_user_id="1004"),
        Fact(FactKind.DEACTIVATED, **IN_ROOM, actor_user_id="1004"),
    ),
    (
        ConversationReactivated(**_common(), conversation_id=ROOM, actor_user_id="1004"),
        Fact(FactKind.REACTIVATED, **IN_ROOM, actor_user_id="1004"),
    ),
    (
        MemberJoined(
            **_common(),
            conversation_id=ROOM,
            user_id="1005",
            actor_user_id="1003",
            role=MEMBER_ROLE_MODERATOR,
        ),
        Fact(FactKind.MEMBER_JOINED, **IN_ROOM, user_id="1005", actor_user_id="1003", role="moderator"),
    ),
    (
        MemberLeft(**_common(), conversation_id=ROOM, user_id="1005", actor_user_id="1005"),
        Fact(FactKind.MEMBER_LEFT, **IN_ROOM, user_id="1005", actor_user_id="1005"),
    ),
    (
        MemberRoleChanged(
            **_common(),
            conversation_id=ROOM,
            user_id="1005",
            actor_user_id="1003",
            old_role=MEMBER_ROLE_MEMBER,
            new_role=MEMBER_ROLE_OWNER,
        ),
        Fact(
            FactKind.ROLE_CHANGED,
            **IN_ROOM,
            user_id="1005",
            actor_user_id="1003",
            role="owner",
            old_role="member",
        ),
    ),
    (
        MessageSent(
            **_common(),
            conversation_id=ROOM,
            message_id="msg-1",
            sender_user_id="1001",
            text=TEXT,
            parent_message_id="msg-0",
        ),
        Fact(FactKind.MESSAGE_SENT, **IN_ROOM, user_id="1001", message_id="msg-1"),
    ),
    (
        MessageEdited(
            **_common(), conversation_id=ROOM, message_id="msg-1", editor_user_id="1002", text=TEXT
        ),
        Fact(FactKind.MESSAGE_EDITED, **IN_ROOM, user_id="1002", message_id="msg-1"),
    ),
    (
        ReactionAdded(**_common(), conversation_id=ROOM, message_id="msg-1", user_id="1005", emoji="+1"),
        Fact(FactKind.REACTION_ADDED, **IN_ROOM, user_id="1005", message_id="msg-1"),
    ),
    (
        ReactionRemoved(**_common(), conversation_id=ROOM, message_id="msg-1", user_id="1005", emoji="+1"),
        Fact(FactKind.REACTION_REMOVED, **IN_ROOM, user_id="1005", message_id="msg-1"),
    ),
    (
        MessageSuppressed(
            **_common(), conversation_id=ROOM, message_id="msg-1", actor_user_id="9", reason="wrong room"
        ),
        Fact(FactKind.MESSAGE_SUPPRESSED, **IN_ROOM, actor_user_id="9", message_id="msg-1"),
    ),
    (
        LegalHoldSet(
            **_common(), hold_id="hold-42", conversation_id=ROOM, reason="matter", actor_user_id="9"
        ),
        Fact(FactKind.LEGAL_HOLD_SET, **IN_ROOM, actor_user_id="9", hold_id="hold-42"),
    ),
    (
        LegalHoldReleased(**_common(), hold_id="hold-42", actor_user_id="9"),
        Fact(FactKind.LEGAL_HOLD_RELEASED, **BASE, actor_user_id="9", hold_id="hold-42"),
    ),
    (
        UserCreated(
            **_common(),
            user_id="1005",
            username="jdoe",
            display_name="Jane Doe",
            email="jane@example.com",
            business_unit="Rates",
        ),
        Fact(
            FactKind.USER_CREATED,
            **BASE,
            user_id="1005",
            display_name="Jane Doe",
            email="jane@example.com",
            business_unit="Rates",
        ),
    ),
    (
        UserUpdated(**_common(), user_id="1005", business_unit="Credit"),
        Fact(FactKind.USER_UPDATED, **BASE, user_id="1005", business_unit="Credit"),
    ),
    (
        UserDeactivated(**_common(), user_id="1005", actor_user_id="9"),
        Fact(FactKind.USER_DEACTIVATED, **BASE, user_id="1005", actor_user_id="9"),
    ),
]


@pytest.mark.parametrize(("event", "expected"), CASES, ids=[e.DESCRIPTOR.name for e, _ in CASES])
def test_each_event_type_gives_its_fact_bare_and_in_its_envelope(event: Message, expected: Fact) -> None:
    assert fact_from_event(event) == expected
    _topic, envelope = default_catalog().wrap(event)
    assert fact_from_event(envelope) == expected


def test_the_cases_cover_every_fact_kind_and_every_catalogued_event() -> None:
    assert {fact.kind for _, fact in CASES} == set(FactKind)
    assert {event.DESCRIPTOR.full_name for event, _ in CASES} == set(default_catalog().events)


def test_every_catalogued_event_type_gives_a_fact() -> None:
    """Guards the catalog: a new event type on a canonical topic must be taught to fact_from_event."""
    for event_type in default_catalog().events:
        cls = message_class(event_type)
        fields = {f.name for f in cls.DESCRIPTOR.fields}
        values = {"event_id": EID, "conversation_id": ROOM, "user_id": "1"}
        event = cls(**{k: v for k, v in values.items() if k in fields})
        assert fact_from_event(event) is not None, event_type


@pytest.mark.parametrize(
    ("fact_scope", "event"),
    [
        ("conversation", CASES[0][0]),
        ("conversation", CASES[11][0]),  # message suppressed names its conversation
        ("conversation", CASES[12][0]),  # hold on a conversation
        ("hold", LegalHoldSet(**_common(), hold_id="h", user_id="1005")),  # hold on a custodian
        ("hold", CASES[13][0]),  # a release names only the hold
        ("user", CASES[14][0]),
    ],
)
def test_scope_and_key(fact_scope: str, event: Message) -> None:
    fact = fact_from_event(event)
    assert fact is not None and fact.scope == fact_scope
    expected = {
        "conversation": conversation_key(TENANT, fact.conversation_id),
        "user": user_key(TENANT, fact.user_id),
        "hold": None,
    }[fact_scope]
    assert fact.key() == expected


def test_other_messages_give_no_fact() -> None:
    assert fact_from_event(Provenance(source="sqs")) is None
    assert fact_from_event(Timestamp(seconds=1)) is None


@pytest.mark.parametrize(
    "event",
    [
        MessageSent(
            **{**_common(), "event_id": ""}, conversation_id=ROOM, message_id="m", sender_user_id="1"
        ),
        MessageSent(**_common(), message_id="m", sender_user_id="1"),
        MemberJoined(**_common(), conversation_id=ROOM),
        UserUpdated(**_common(), display_name="x"),
    ],
    ids=["no event id", "no conversation", "member without user", "user without user id"],
)
def test_events_state_cannot_place_are_refused(event: Message) -> None:
    with pytest.raises(ValueError):
        fact_from_event(event)


def test_an_empty_envelope_is_refused() -> None:
    envelope = default_catalog().envelope_class(
        default_catalog().topic_of("carryover.identity.v1.UserCreated").name
    )
    with pytest.raises(ValueError):
        fact_from_event(envelope())


@pytest.mark.parametrize(
    ("role", "name"),
    [
        (0, ""),
        (MEMBER_ROLE_MEMBER, "member"),
        (MEMBER_ROLE_OWNER, "owner"),
        (MEMBER_ROLE_MODERATOR, "moderator"),
        (99, "role_99"),
    ],
)
def test_role_names(role: int, name: str) -> None:
    assert role_name(role) == name


def test_an_unknown_role_number_survives_the_event() -> None:
    joined = MemberJoined(**_common(), conversation_id=ROOM, user_id="1")
    joined.role = 7  # type: ignore[assignment]
    fact = fact_from_event(joined)
    assert fact is not None and fact.role == "role_7"


@pytest.mark.parametrize(("time_ms", "expected"), [(T_MS, T_MS), (0, 0), (-1_500, -1_500), (1, 1)])
def test_time_is_event_time_in_ms(time_ms: int, expected: int) -> None:
    fact = fact_from_event(UserUpdated(**_common(time_ms=time_ms), user_id="1"))
    assert fact is not None and fact.time_ms == expected


def test_sub_millisecond_event_time_is_floored_and_unset_is_zero() -> None:
    common = _common()
    common["event_time"] = Timestamp(seconds=10, nanos=999_999)
    fact = fact_from_event(UserUpdated(**common, user_id="1"))
    assert fact is not None and fact.time_ms == 10_000
    del common["event_time"]
    fact = fact_from_event(UserUpdated(**common, user_id="1"))
    assert fact is not None and fact.time_ms == 0


@pytest.mark.parametrize(
    ("tenant", "conversation", "key"),
    [
        ("acme", "abc-_DEF", "acme/abc-_DEF"),
        ("acme", "a/b", "acme/a%2Fb"),
        ("a/b", "c", "a%2Fb/c"),
        ("acme", "100%", "acme/100%25"),
        ("acme", "%2F", "acme/%252F"),
        ("", "", "/"),
    ],
)
def test_keys_escape_percent_and_slash(tenant: str, conversation: str, key: str) -> None:
    assert conversation_key(tenant, conversation) == key
    assert user_key(tenant, conversation) == key
    assert split_key(key) == (tenant, conversation)


@given(st.text(), st.text(), st.text(), st.text())
def test_keys_are_one_to_one(t1: str, c1: str, t2: str, c2: str) -> None:
    assert split_key(conversation_key(t1, c1)) == (t1, c1)
    assert (conversation_key(t1, c1) == conversation_key(t2, c2)) == ((t1, c1) == (t2, c2))


@pytest.mark.parametrize("key", ["no-separator", "a/b/c"])
def test_split_key_refuses_what_no_key_function_makes(key: str) -> None:
    with pytest.raises(ValueError):
        split_key(key)


@pytest.mark.parametrize("fact", [f for _, f in CASES], ids=[f.kind.value for _, f in CASES])
def test_fact_json_round_trip(fact: Fact) -> None:
    data = fact.to_json()
    assert Fact.from_json(data) == fact
    assert (b'"hold_id"' in data) == bool(fact.hold_id)  # fields left at their defaults are left out
    assert (b'"external"' in data) == fact.external


@given(
    st.sampled_from(FactKind),
    st.text(min_size=1),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(),
    st.text(),
    st.booleans(),
)
def test_fact_json_round_trip_property(
    kind: FactKind, event_id: str, time_ms: int, tenant: str, name: str, external: bool
) -> None:
    fact = Fact(kind, event_id, time_ms, tenant, conversation_id=name, name=name, external=external)
    assert Fact.from_json(fact.to_json()) == fact


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"kind":"nope","event_id":"e","time_ms":1,"tenant":"t"}',
        b'{"kind":"created"}',
        b'{"kind":"created","event_id":"e","time_ms":"1","tenant":"t"}',
        b'{"kind":"created","event_id":"e","time_ms":1,"tenant":"t","extra":1}',
    ],
)
def test_fact_from_json_refuses_what_is_not_a_fact(data: bytes) -> None:
    with pytest.raises(ValueError):
        Fact.from_json(data)
