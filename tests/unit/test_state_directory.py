"""app.state.directory: business unit in force at t, profile, active flag, late and duplicate facts,
JSON round trip and order-insensitivity (examples + hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from app.state.directory import DictDirectory, UserRecord
from app.state.facts import Fact, FactKind, fact_from_event, user_key
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_deactivated_pb2 import UserDeactivated
from models.canonical.carryover.identity.v1.user_event_pb2 import UserEvent
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, USER = "acme-bank", "1005"


def _common(event_id: str, time_ms: int) -> dict[str, Any]:
    when = Timestamp()
    when.FromMilliseconds(time_ms)
    return {"tenant_id": TENANT, "event_id": event_id, "event_time": when}


def created(event_id: str, time_ms: int, unit: str = "", name: str = "Jane", email: str = "") -> Fact:
    event = UserEvent(
        user_created=UserCreated(
            **_common(event_id, time_ms),
            user_id=USER,
            username="jdoe",
            display_name=name,
            email=email,
            business_unit=unit,
        )
    )
    fact = fact_from_event(event)
    assert fact is not None
    return fact


def updated(event_id: str, time_ms: int, unit: str = "", name: str = "", email: str = "") -> Fact:
    event = UserUpdated(
        **_common(event_id, time_ms), user_id=USER, display_name=name, email=email, business_unit=unit
    )
    fact = fact_from_event(event)
    assert fact is not None
    return fact


def deactivated(event_id: str, time_ms: int) -> Fact:
    fact = fact_from_event(UserDeactivated(**_common(event_id, time_ms), user_id=USER, actor_user_id="9"))
    assert fact is not None
    return fact


def record(*facts: Fact) -> UserRecord:
    user = UserRecord(TENANT, USER)
    user.apply_all(facts)
    return user


RATES_THEN_CREDIT = record(created("e1", 100, unit="Rates"), updated("e2", 200, unit="Credit"))


@pytest.mark.parametrize(
    ("t_ms", "unit"),
    [
        (50, "Rates"),  # before the first known unit: the earliest known
        (99, "Rates"),
        (100, "Rates"),
        (150, "Rates"),
        (199, "Rates"),
        (200, "Credit"),  # a change at t is in force at t
        (10**15, "Credit"),
    ],
)
def test_business_unit_at(t_ms: int, unit: str) -> None:
    assert RATES_THEN_CREDIT.business_unit_at(t_ms) == unit


def test_business_unit_unknown_and_history() -> None:
    assert record(created("e1", 100)).business_unit_at(100) is None  # v1 USER_CREATED names no unit
    assert record(created("e1", 100)).business_unit is None
    assert RATES_THEN_CREDIT.business_unit == "Credit"
    assert RATES_THEN_CREDIT.business_unit_history() == [(100, "Rates"), (200, "Credit")]


def test_a_business_unit_change_arriving_late_is_placed_at_its_event_time() -> None:
    user = record(created("e1", 100, unit="Rates"))
    assert user.business_unit_at(500) == "Rates"  # what was known when a message at 500 arrived
    assert user.apply(updated("e2", 300, unit="Credit"))
    assert user.business_unit_at(500) == "Credit"
    assert user.business_unit_at(299) == "Rates"
    assert user.apply(updated("e0", 50, unit="Legal"))  # an even older change, arriving last
    assert user.business_unit_at(0) == "Legal" and user.business_unit_at(100) == "Rates"


def test_empty_fields_of_partial_updates_change_nothing() -> None:
    user = record(created("e1", 100, unit="Rates", name="Jane", email="jane@x"))
    assert not user.apply(updated("e2", 200))
    assert (user.display_name, user.email, user.business_unit) == ("Jane", "jane@x", "Rates")
    assert user.apply(updated("e3", 300, email="jane@y"))
    assert (user.display_name, user.email) == ("Jane", "jane@y")


def test_the_latest_profile_wins_whatever_the_arrival_order() -> None:
    user = record(updated("e2", 200, name="Jane Q. Doe"), created("e1", 100, name="Jane"))
    assert user.display_name == "Jane Q. Doe"


def test_equal_times_are_ordered_by_event_id() -> None:
    user = record(updated("b", 100, unit="B"), updated("a", 100, unit="A"))
    assert user.business_unit_at(100) == "B"
    assert user.business_unit_history() == [(100, "A"), (100, "B")]


@pytest.mark.parametrize(
    ("facts", "active", "at"),
    [
        ((), True, {0: True}),
        ((updated("e1", 100, name="x"),), True, {0: True}),
        ((created("e1", 100),), True, {99: False, 100: True}),
        ((created("e1", 100), deactivated("e2", 200)), False, {99: False, 150: True, 199: True, 200: False}),
        ((deactivated("e2", 200),), False, {0: True, 200: False}),  # active before its deactivation
    ],
)
def test_active_and_active_at(facts: tuple[Fact, ...], active: bool, at: dict[int, bool]) -> None:
    user = record(*facts)
    assert user.active is active
    assert {t: user.active_at(t) for t in at} == at


def test_duplicates_change_nothing() -> None:
    facts = [
        created("e1", 100, unit="Rates", email="a@b"),
        updated("e2", 200, unit="Credit"),
        deactivated("e3", 300),
    ]
    user = record(*facts)
    before = user.to_json()
    assert [user.apply(f) for f in facts] == [False, False, False]
    assert user.to_json() == before


def test_misrouted_facts_are_refused() -> None:
    user = UserRecord(TENANT, USER)
    with pytest.raises(ValueError, match="applied to"):
        user.apply(Fact(FactKind.USER_UPDATED, "e", 1, TENANT, user_id="other"))
    with pytest.raises(ValueError, match="applied to"):
        user.apply(Fact(FactKind.USER_UPDATED, "e", 1, "globex", user_id=USER))
    with pytest.raises(ValueError, match="not a user fact"):
        user.apply(Fact(FactKind.MESSAGE_SENT, "e", 1, TENANT, conversation_id="c", user_id=USER))


def test_json_round_trip_and_layout() -> None:
    user = record(
        created("e1", 100, unit="Rates", name="Zoë", email="z@x"),
        updated("e2", 200, unit="Credit"),
        deactivated("e3", 300),
    )
    data = user.to_json()
    again = UserRecord.from_json(data)
    assert again == user and again.to_json() == data
    assert (again.display_name, again.email, again.active, again.business_unit) == (
        "Zoë",
        "z@x",
        False,
        "Credit",
    )
    assert b" " not in data and "Zoë".encode() in data  # compact, UTF-8 not escaped
    assert UserRecord.from_json(UserRecord("t", "u").to_json()) == UserRecord("t", "u")


@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b"[]",
        b'{"v":2,"t":"t","u":"u","dn":null,"em":null,"lc":[],"bu":[]}',
        b'{"v":1,"t":1,"u":"u","dn":null,"em":null,"lc":[],"bu":[]}',
        b'{"v":1,"t":"t","u":"u","dn":null,"em":null,"lc":[[1,"e"]],"bu":[]}',
        b'{"v":1,"t":"t","u":"u","dn":null,"em":null,"lc":[],"bu":[["1","e","x"]]}',
        b"not json",
    ],
)
def test_from_json_refuses_what_is_not_a_record(data: bytes) -> None:
    with pytest.raises(ValueError):
        UserRecord.from_json(data)


def test_dict_directory() -> None:
    directory = DictDirectory()
    assert directory.user(TENANT, USER) is None
    assert directory.apply(created("e1", 100, unit="Rates"))
    assert not directory.apply(created("e1", 100, unit="Rates"))
    found = directory.user(TENANT, USER)
    assert found is not None and found.business_unit == "Rates"
    assert set(directory.records) == {user_key(TENANT, USER)}
    assert directory.user("globex", USER) is None
    assert DictDirectory([found]).user(TENANT, USER) is found


_UNITS = st.sampled_from(["", "Rates", "Credit", "Legal"])
_FACT = st.builds(
    lambda kind, t, unit, name: Fact(
        kind, "", t, TENANT, user_id=USER, business_unit=unit, display_name=name, email=name and name + "@x"
    ),
    st.sampled_from([FactKind.USER_CREATED, FactKind.USER_UPDATED, FactKind.USER_DEACTIVATED]),
    st.integers(min_value=0, max_value=20),
    _UNITS,
    st.sampled_from(["", "A", "B"]),
)


@given(st.lists(_FACT, max_size=12), st.randoms(use_true_random=False), st.data())
def test_order_and_duplicates_do_not_matter(facts: list[Fact], rnd: Any, data: st.DataObject) -> None:
    facts = [replace(f, event_id=f"e{i}") for i, f in enumerate(facts)]
    reference = record(*facts)
    extra = data.draw(st.lists(st.sampled_from(facts), max_size=6)) if facts else []
    shuffled = facts + extra
    rnd.shuffle(shuffled)
    other = record(*shuffled)
    assert other.to_json() == reference.to_json()
    assert UserRecord.from_json(other.to_json()).to_json() == reference.to_json()
    for t in range(-1, 22):
        assert other.business_unit_at(t) == reference.business_unit_at(t)
        assert other.active_at(t) == reference.active_at(t)
