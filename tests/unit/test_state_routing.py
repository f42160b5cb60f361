"""app.state.routing and app.state.answers: canonical records to conversation keys (holds included), records
applied to state, unreadable records refused, and the read path's answer; app.ops.admin's token check."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from app import topics as topic_names
from app.catalog.model import default_catalog, oneof_field_for
from app.catalog.wire import frame, message_indexes_for
from app.ops.admin import admin_refusal
from app.ops.health_views import WorkerState, readiness_failures
from app.state.answers import business_unit_timeline, conversation_answer
from app.state.conversation import ConversationState
from app.state.directory import DictDirectory
from app.state.facts import conversation_key
from app.state.routing import (
    CANONICAL_TOPIC_HEADER,
    DictHoldBook,
    HoldTarget,
    StateInputError,
    StateTooLarge,
    apply_record,
    decode_fact,
    route_record,
)
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.collaboration.v1.member_left_pb2 import MemberLeft
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.compliance.v1.legal_hold_released_pb2 import LegalHoldReleased
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, ROOM = "acme-bank", "room-1"


def _when(t_ms: int) -> Timestamp:
    when = Timestamp()
    when.FromMilliseconds(t_ms)
    return when


def record(topic: str, event: Message) -> bytes:
    """``event`` in its topic's envelope, Confluent-framed (schema id 7)."""
    cls = default_catalog().envelope_class(topic)
    envelope = cls()
    getattr(envelope, oneof_field_for(cls.DESCRIPTOR, event.DESCRIPTOR.full_name)).CopyFrom(event)
    return frame(7, message_indexes_for(cls.DESCRIPTOR), envelope.SerializeToString())


def common(event_id: str, t_ms: int) -> dict[str, Any]:
    return {"tenant_id": TENANT, "event_id": event_id, "event_time": _when(t_ms)}


HEADERS = [("ce_id", b"x"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]


def test_a_conversation_event_is_forwarded_unchanged_under_its_conversation_key() -> None:
    value = record(
        topic_names.MESSAGES, MessageSent(**common("e1", 10), conversation_id=ROOM, sender_user_id="u1")
    )
    routed = route_record(topic_names.MESSAGES, value, HEADERS, DictHoldBook())
    assert routed.outcome == "conversation"
    (forward,) = routed.forwards
    assert forward.key == conversation_key(TENANT, ROOM) and forward.value == value
    assert forward.headers == [*HEADERS, (CANONICAL_TOPIC_HEADER, topic_names.MESSAGES.encode())]


def test_a_release_reaches_the_conversation_its_hold_was_set_on_in_either_order() -> None:
    hold_set = record(
        topic_names.COMPLIANCE, LegalHoldSet(**common("s", 10), hold_id="h1", conversation_id=ROOM)
    )
    release = record(topic_names.COMPLIANCE, LegalHoldReleased(**common("r", 20), hold_id="h1"))
    in_order, book = [], DictHoldBook()
    for value in (hold_set, release):
        in_order += route_record(topic_names.COMPLIANCE, value, [], book).forwards
    assert [f.value for f in in_order] == [hold_set, release]
    assert {f.key for f in in_order} == {conversation_key(TENANT, ROOM)}

    book = DictHoldBook()
    early = route_record(topic_names.COMPLIANCE, release, [], book)
    assert early.forwards == () and early.outcome == "hold_booked"  # kept until its hold arrives
    late = route_record(topic_names.COMPLIANCE, hold_set, [], book)
    assert [f.value for f in late.forwards] == [hold_set, release]
    assert HoldTarget.from_json(book.targets[f"{TENANT}/h1"].to_json()).pending == []


def test_a_custodian_hold_is_booked_and_its_release_reaches_no_conversation() -> None:
    book = DictHoldBook()
    custodian = record(topic_names.COMPLIANCE, LegalHoldSet(**common("s", 10), hold_id="h2", user_id="u9"))
    release = record(topic_names.COMPLIANCE, LegalHoldReleased(**common("r", 20), hold_id="h2"))
    assert route_record(topic_names.COMPLIANCE, custodian, [], book).outcome == "hold_booked"
    assert route_record(topic_names.COMPLIANCE, release, [], book).forwards == ()
    assert book.targets[f"{TENANT}/h2"].custodian == "u9" and book.targets[f"{TENANT}/h2"].pending == []


def test_hold_targets_round_trip_with_pending_releases() -> None:
    target = HoldTarget("", "", [(b"\x00\x01value", [("ce_id", b"\xff")])])
    assert HoldTarget.from_json(target.to_json()) == target
    with pytest.raises(ValueError, match="not a hold target"):
        HoldTarget.from_json(b'{"c": 1}')


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x00\x00\x00\x00\x07\x00\xff\xff",
        b"not framed at all",
        record(topic_names.MESSAGES, MessageSent()),
    ],
)
def test_records_state_cannot_read_are_refused_with_a_reason(value: bytes) -> None:
    with pytest.raises(StateInputError):
        route_record(topic_names.MESSAGES, value, [], DictHoldBook())


def joined_record(event_id: str, t_ms: int, user: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = record(
        topic_names.CONVERSATIONS, MemberJoined(**common(event_id, t_ms), conversation_id=ROOM, user_id=user)
    )
    return value, [(CANONICAL_TOPIC_HEADER, topic_names.CONVERSATIONS.encode())]


def test_apply_record_applies_once_and_refuses_what_is_not_under_its_key() -> None:
    key = conversation_key(TENANT, ROOM)
    value, headers = joined_record("j1", 10, "u1")
    first = apply_record(None, key, value, headers, window=16, max_state_bytes=10_000)
    assert first.outcome == "applied" and first.state is not None
    again = apply_record(first.state, key, value, headers, window=16, max_state_bytes=10_000)
    assert again == type(again)(None, "duplicate")  # a re-sent record changes nothing
    assert ConversationState.from_json(first.state).members() == {"u1": ""}
    with pytest.raises(StateInputError, match="under key"):
        apply_record(
            None, conversation_key(TENANT, "other-room"), value, headers, window=16, max_state_bytes=10_000
        )
    with pytest.raises(StateInputError, match="canonical_topic"):
        apply_record(None, key, value, [], window=16, max_state_bytes=10_000)
    with pytest.raises(StateTooLarge, match="CARRYOVER_KAFKA_MAX_RECORD_BYTES"):
        apply_record(None, key, value, headers, window=16, max_state_bytes=50)


def test_business_units_over_time_follow_membership_and_unit_changes() -> None:
    directory = DictDirectory()
    for value in (
        record(topic_names.USERS, UserCreated(**common("c1", 1), user_id="u1", business_unit="fx")),
        record(topic_names.USERS, UserCreated(**common("c2", 1), user_id="u2", business_unit="rates")),
        record(topic_names.USERS, UserUpdated(**common("up", 250), user_id="u2", business_unit="credit")),
    ):
        fact = decode_fact(topic_names.USERS, value)
        assert fact is not None
        directory.apply(fact)
    state = ConversationState(TENANT, ROOM)
    for value in (
        record(
            topic_names.CONVERSATIONS,
            ConversationCreated(**common("cr", 50), conversation_id=ROOM, name="FX"),
        ),
        joined_record("j1", 100, "u1")[0],
        joined_record("j2", 200, "u2")[0],
        record(
            topic_names.CONVERSATIONS, MemberLeft(**common("l1", 300), conversation_id=ROOM, user_id="u1")
        ),
    ):
        fact = decode_fact(topic_names.CONVERSATIONS, value)
        assert fact is not None
        state.apply(fact)
    assert business_unit_timeline(state, directory) == [
        {"from_ms": 100, "units": ["fx"]},
        {"from_ms": 200, "units": ["fx", "rates"]},
        {"from_ms": 250, "units": ["credit", "fx"]},
        {"from_ms": 300, "units": ["credit"]},
    ]
    answer = conversation_answer(state, directory)
    assert answer["kind"] == "room" and answer["name"] == "FX" and answer["active"] is True
    assert answer["members"]["u1"]["member_now"] is False and answer["members"]["u2"]["role_now"] == ""
    assert answer["members"]["u2"]["business_unit_now"] == "credit"
    assert answer["facts"] == {"lifecycle": 1, "membership": 3, "holds": 0, "counted": 0}


def test_the_admin_token_guards_with_a_fix_in_every_refusal() -> None:
    off = admin_refusal("", "Bearer anything")
    assert off is not None and off.status == 503 and "CARRYOVER_ADMIN_TOKEN" in off.message
    missing = admin_refusal("t0ken", None)
    assert (
        missing is not None
        and missing.status == 401
        and ("WWW-Authenticate", 'Bearer realm="carryover"') in missing.headers
    )
    wrong = admin_refusal("t0ken", "Bearer t0keN")
    assert wrong is not None and wrong.status == 401 and "t0ken" not in wrong.message
    assert admin_refusal("t0ken", "Basic t0ken") is not None
    assert admin_refusal("t0ken", "Bearer t0ken") is None and admin_refusal("t0ken", "bearer t0ken") is None


def test_a_role_readiness_check_keeps_the_worker_not_ready() -> None:
    ready = WorkerState(producer_started=True, assigned=True, rebalancing=False, recovering=False)
    assert readiness_failures(ready) == []
    waiting = WorkerState(True, True, False, True, waiting_for=("user directory catching up",))
    assert readiness_failures(waiting) == ["tables recovering", "user directory catching up"]
