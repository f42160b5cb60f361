"""Where each canonical record goes on its way to per-conversation state (pure).

The canonical topics are keyed by tenant; state and the archive need one ordered history per conversation.
:func:`route_record` decides, for one record of ``collaboration.conversations.v1``,
``collaboration.messages.v1`` or ``compliance.actions.v1``, which records the state stage's repartition
topic (``carryover.state.conversation-events.v1``) receives, keyed by
:func:`app.state.facts.conversation_key`: the record's own bytes and headers unchanged, plus the header
``canonical_topic`` naming the topic it came from (the envelope type to decode it with).

Legal holds need one lookup: a ``LegalHoldReleased`` names only its hold. The :class:`HoldBook` (a table
co-partitioned with ``compliance.actions.v1``, whose records of one tenant share a partition) remembers what
each hold was set on. A release is forwarded to the conversation its hold was set on; a release that arrives
before its hold is kept in the book and forwarded when the hold arrives; a hold on a user (custodian) is
booked, and neither it nor its release reaches a conversation (custodian holds belong to the archive's
policies, not to one conversation's state).

No Faust, Kafka or cloud imports.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import DecodeError, Message

from app.catalog.model import default_catalog
from app.catalog.wire import WireFormatError, unframe
from app.state.conversation import ConversationState
from app.state.facts import Fact, FactKind, conversation_key, fact_from_event, split_key, user_key

CANONICAL_TOPIC_HEADER = "canonical_topic"
"""Header added to every repartitioned record: the catalog name of the canonical topic it came from."""

Headers = list[tuple[str, bytes]]


class StateInputError(ValueError):
    """A canonical record state cannot read (not Confluent-framed protobuf of its topic's envelope)."""


def decode_envelope(topic: str, value: bytes) -> Message:
    """The envelope of canonical ``topic`` (catalog name, no prefix) framed in ``value``; any schema id."""
    try:
        cls = default_catalog().envelope_class(topic)
        envelope = cls()
        envelope.ParseFromString(unframe(value).payload)
    except (WireFormatError, DecodeError) as exc:
        raise StateInputError(f"not a {topic} record: {exc}") from exc
    return envelope


def decode_fact(topic: str, value: bytes) -> Fact | None:
    """The :class:`Fact` of a canonical record; None for an event type state does not use.

    Raises :class:`StateInputError` when the bytes are not the topic's envelope or the event lacks what
    state needs to place it (an id, a conversation, a user).
    """
    envelope = decode_envelope(topic, value)
    try:
        return fact_from_event(envelope)
    except ValueError as exc:
        raise StateInputError(str(exc)) from exc


@dataclass
class HoldTarget:
    """What one legal hold was set on, and releases that arrived before it (JSON in the hold book).

    ``pending`` holds (value, headers) of releases seen before their hold; they are forwarded when it
    arrives. ``conversation_id`` / ``custodian`` are ``''`` while unknown.
    """

    conversation_id: str = ""
    custodian: str = ""
    pending: list[tuple[bytes, Headers]] = field(default_factory=list)

    def to_json(self) -> bytes:
        """Compact JSON (bytes base64)."""
        return json.dumps(
            {
                "c": self.conversation_id,
                "u": self.custodian,
                "p": [[_b64(value), [[k, _b64(v)] for k, v in headers]] for value, headers in self.pending],
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> HoldTarget:
        """The target :meth:`to_json` wrote; ValueError when it is not one."""
        raw = json.loads(data)
        try:
            pending = [
                (base64.b64decode(value), [(str(name), base64.b64decode(h)) for name, h in headers])
                for value, headers in raw["p"]
            ]
            return cls(str(raw["c"]), str(raw["u"]), pending)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a hold target: {data[:200]!r}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hold_key(tenant: str, hold_id: str) -> str:
    """Key of a hold in the hold book: ``"<tenant>/<hold id>"``, escaped like the state keys."""
    return user_key(tenant, hold_id)


class HoldBook(Protocol):
    """The hold book: what each hold of a tenant was set on (a Faust table in the worker)."""

    def get(self, key: str) -> HoldTarget | None:
        """The hold's target, None if never seen."""

    def put(self, key: str, target: HoldTarget) -> None:
        """Remember ``target`` for ``key``."""


class DictHoldBook:
    """The hold book in a dict (tests, tools, the reference state)."""

    def __init__(self) -> None:
        self.targets: dict[str, HoldTarget] = {}

    def get(self, key: str) -> HoldTarget | None:
        """The hold's target, None if never seen."""
        return self.targets.get(key)

    def put(self, key: str, target: HoldTarget) -> None:
        """Remember ``target`` for ``key``."""
        self.targets[key] = target


@dataclass(frozen=True)
class Forward:
    """One record for the repartition topic: key (conversation key), the canonical value and headers."""

    key: str
    value: bytes
    headers: Headers


@dataclass(frozen=True)
class Routed:
    """What :func:`route_record` decided: the records to forward, and what happened (for counters)."""

    forwards: tuple[Forward, ...]
    outcome: str
    """``"conversation"`` (forwarded), ``"hold_booked"`` (custodian hold, release of one, or a release
    waiting for its hold), ``"not_state"`` (an event type state does not use)."""


def route_record(topic: str, value: bytes, headers: Sequence[tuple[str, bytes]], holds: HoldBook) -> Routed:
    """Route one record of a canonical conversation topic (``topic``: catalog name, no prefix).

    Raises :class:`StateInputError` for a record state cannot read (the caller dead-letters it).
    """
    fact = decode_fact(topic, value)
    if fact is None or fact.scope == "user":
        return Routed((), "not_state")
    tagged: Headers = [*((k, bytes(v)) for k, v in headers if k != CANONICAL_TOPIC_HEADER)]
    tagged.append((CANONICAL_TOPIC_HEADER, topic.encode()))
    if fact.scope == "conversation":
        forwards = [Forward(conversation_key(fact.tenant, fact.conversation_id), value, tagged)]
        if fact.kind is FactKind.LEGAL_HOLD_SET and fact.hold_id:
            forwards += _book_hold(holds, fact, fact.conversation_id, "")
        return Routed(tuple(forwards), "conversation")
    # a hold on a user, or a release (which names only its hold)
    key = hold_key(fact.tenant, fact.hold_id)
    if fact.kind is FactKind.LEGAL_HOLD_SET:
        return Routed(tuple(_book_hold(holds, fact, "", fact.user_id)), "hold_booked")
    target = holds.get(key) or HoldTarget()
    if target.conversation_id:
        forward = Forward(conversation_key(fact.tenant, target.conversation_id), value, tagged)
        return Routed((forward,), "conversation")
    if not target.custodian:
        target.pending.append((value, tagged))
        holds.put(key, target)
    return Routed((), "hold_booked")


def _book_hold(holds: HoldBook, fact: Fact, conversation_id: str, custodian: str) -> list[Forward]:
    """Record what the hold of ``fact`` was set on; the releases that waited for it, now forwardable."""
    key = hold_key(fact.tenant, fact.hold_id)
    target = holds.get(key) or HoldTarget()
    released = target.pending if conversation_id else []
    holds.put(key, HoldTarget(conversation_id or target.conversation_id, custodian or target.custodian, []))
    if not conversation_id:
        return []
    return [Forward(conversation_key(fact.tenant, conversation_id), v, h) for v, h in released]


def conversation_of_key(key: str) -> tuple[str, str]:
    """(tenant, conversation id) of a repartitioned record's key; ValueError when it is not one."""
    return split_key(key)


class StateTooLarge(ValueError):
    """A conversation's state would outgrow the largest record its table's changelog can take."""


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_record` did: the conversation's new state (None when unchanged) and the outcome."""

    state: bytes | None
    outcome: str
    """``"applied"``, ``"duplicate"`` (already in the state: a re-sent event) or ``"not_state"``."""


def apply_record(
    current: bytes | None,
    key: str,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    *,
    window: int,
    max_state_bytes: int,
) -> Applied:
    """Apply one record of the repartition topic to its conversation's state (``current``: its JSON).

    Raises :class:`StateInputError` for a record state cannot read or that does not belong to its key, and
    :class:`StateTooLarge` when the new state would exceed ``max_state_bytes`` (the state is then unchanged
    and the caller dead-letters the record).
    """
    try:
        tenant, conversation_id = split_key(key)
    except ValueError as exc:
        raise StateInputError(str(exc)) from exc
    topic = next((bytes(v).decode() for k, v in headers if k == CANONICAL_TOPIC_HEADER), "")
    if not topic:
        raise StateInputError(f"record without the {CANONICAL_TOPIC_HEADER} header")
    fact = decode_fact(topic, value)
    if fact is None or fact.scope == "user":
        return Applied(None, "not_state")
    if fact.tenant != tenant or fact.conversation_id not in ("", conversation_id):
        raise StateInputError(
            f"{fact.kind} {fact.event_id} of {fact.tenant}/{fact.conversation_id} under key {key!r}"
        )
    if current is None:
        state = ConversationState(tenant, conversation_id, window=window)
    else:
        state = ConversationState.from_json(current, window=window)
    if not state.apply(fact):
        return Applied(None, "duplicate")
    new = state.to_json()
    if len(new) > max_state_bytes:
        raise StateTooLarge(
            f"the state of {key} would be {len(new)} bytes, over the {max_state_bytes} a changelog record "
            "may take (CARRYOVER_KAFKA_MAX_RECORD_BYTES)"
        )
    return Applied(new, "applied")
