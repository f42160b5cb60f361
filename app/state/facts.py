"""The one thing per-conversation and per-user state needs from a canonical event: a :class:`Fact` (pure).

``fact_from_event(event)`` turns any event of the four canonical topics (collaboration.conversations.v1,
collaboration.messages.v1, identity.users.v1, compliance.actions.v1), or the envelope carrying it, into a
``Fact``; ``conversation_key`` / ``user_key`` are the keys of the repartitioned streams and of the tables.

Where a fact belongs (:attr:`Fact.scope`):

* ``"conversation"``: every collaboration event, ``MessageSuppressed`` and a ``LegalHoldSet`` on a
  conversation: they name a conversation (``Fact.conversation_id``) and go to its
  :class:`app.state.conversation.ConversationState`, key ``conversation_key(tenant, conversation_id)``.
* ``"user"``: ``UserCreated`` / ``UserUpdated`` / ``UserDeactivated`` (``conversation_id`` is ``''``) go to
  the user's :class:`app.state.directory.UserRecord`, key ``user_key(tenant, user_id)``.
* ``"hold"``: a ``LegalHoldSet`` on a user (custodian) and every ``LegalHoldReleased``. The release names only
  its ``hold_id``, not the conversation: routing it to the conversation a hold was set on needs a
  hold id -> conversation lookup kept by the caller. ``ConversationState.apply`` accepts a release fact whose
  ``conversation_id`` is ``''`` for that purpose.

Times are event times (``event_time``, milliseconds since the epoch, floored); an unset ``event_time`` is 0.
Roles are the ``MemberRole`` names without their prefix, lower case: ``"member"``, ``"owner"``,
``"moderator"``; ``""`` for ``MEMBER_ROLE_UNSPECIFIED`` (unknown) and ``"role_<n>"`` for a number this code
does not know yet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from app.catalog.model import ENVELOPE_ONEOF, inner_event
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
from models.canonical.carryover.common.v1.member_role_pb2 import MemberRole
from models.canonical.carryover.compliance.v1.legal_hold_released_pb2 import LegalHoldReleased
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_deactivated_pb2 import UserDeactivated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated


class FactKind(StrEnum):
    """What happened; one kind per canonical event type."""

    CREATED = "created"
    UPDATED = "updated"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    MEMBER_JOINED = "member_joined"
    MEMBER_LEFT = "member_left"
    ROLE_CHANGED = "role_changed"
    MESSAGE_SENT = "message_sent"
    MESSAGE_EDITED = "message_edited"
    REACTION_ADDED = "reaction_added"
    REACTION_REMOVED = "reaction_removed"
    MESSAGE_SUPPRESSED = "message_suppressed"
    LEGAL_HOLD_SET = "legal_hold_set"
    LEGAL_HOLD_RELEASED = "legal_hold_released"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    USER_DEACTIVATED = "user_deactivated"


LIFECYCLE_KINDS = frozenset({FactKind.CREATED, FactKind.DEACTIVATED, FactKind.REACTIVATED})
"""Facts that make a conversation exist, inactive or active again."""
MEMBERSHIP_KINDS = frozenset({FactKind.MEMBER_JOINED, FactKind.MEMBER_LEFT, FactKind.ROLE_CHANGED})
"""Facts about one member of a conversation."""
COUNTED_KINDS = frozenset(
    {
        FactKind.MESSAGE_SENT,
        FactKind.MESSAGE_EDITED,
        FactKind.REACTION_ADDED,
        FactKind.REACTION_REMOVED,
        FactKind.MESSAGE_SUPPRESSED,
    }
)
"""Facts a conversation counts (once per event id, within its window of recent event ids)."""
HOLD_KINDS = frozenset({FactKind.LEGAL_HOLD_SET, FactKind.LEGAL_HOLD_RELEASED})
"""Legal hold facts."""
USER_KINDS = frozenset({FactKind.USER_CREATED, FactKind.USER_UPDATED, FactKind.USER_DEACTIVATED})
"""Facts about a user (the directory's)."""

_ROLE_PREFIX = "MEMBER_ROLE_"


@dataclass(frozen=True)
class Fact:
    """One canonical event as state sees it; fields an event does not carry are ``''`` / ``False``.

    ``user_id`` is the member (joined, left, role changed), the sender (sent), the editor (edited), the
    reacting user (reactions), the custodian (legal hold on a user) or the subject user (user events);
    ``actor_user_id`` whoever did it when that is someone else's field in the event (creator, actor,
    suppressing officer). ``role`` is the role given (joined) or the new role (role changed), ``old_role``
    the role before a change. ``name``: conversation name (created, updated). ``business_unit``,
    ``display_name``, ``email``: user created / updated, ``''`` meaning "not given" (legacy v1 and partial
    updates). ``external`` / ``public``: conversation created. ``hold_id``: legal holds.
    """

    kind: FactKind
    event_id: str
    time_ms: int
    tenant: str
    conversation_id: str = ""
    user_id: str = ""
    actor_user_id: str = ""
    role: str = ""
    old_role: str = ""
    message_id: str = ""
    name: str = ""
    business_unit: str = ""
    display_name: str = ""
    email: str = ""
    external: bool = False
    public: bool = False
    hold_id: str = ""

    @property
    def scope(self) -> str:
        """``"conversation"``, ``"user"`` or ``"hold"``: where the fact goes (see the module docstring)."""
        if self.kind in USER_KINDS:
            return "user"
        if self.conversation_id:
            return "conversation"
        return "hold"

    def key(self) -> str | None:
        """The table key of the state this fact goes to; None for ``"hold"`` facts (routed by hold id)."""
        scope = self.scope
        if scope == "conversation":
            return conversation_key(self.tenant, self.conversation_id)
        if scope == "user":
            return user_key(self.tenant, self.user_id)
        return None

    def to_json(self) -> bytes:
        """Compact JSON of the fields that differ from their defaults (for a repartition topic)."""
        data = {k: v for k, v in asdict(self).items() if v != _DEFAULTS.get(k)}
        data["kind"] = str(self.kind)
        return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Fact:
        """The fact :meth:`to_json` wrote; ValueError when it is not one."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or not set(raw) <= _FIELD_NAMES:
            raise ValueError(f"not a fact: {data[:200]!r}")
        try:
            fact = cls(**{**raw, "kind": FactKind(raw["kind"])})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a fact: {data[:200]!r}") from exc
        for f in fields(cls):
            value = getattr(fact, f.name)
            expected: Any = _TYPES[f.name]
            if type(value) is not expected and not (expected is str and isinstance(value, FactKind)):
                raise ValueError(f"fact field {f.name} has type {type(value).__name__}")
        return fact


_FIELD_NAMES = frozenset(f.name for f in fields(Fact))
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Fact) if f.name not in ("kind", "event_id")}
_TYPES: dict[str, type] = {
    **{f.name: str for f in fields(Fact)},
    "time_ms": int,
    "external": bool,
    "public": bool,
}


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("/", "%2F")


def _unescape(part: str) -> str:
    return part.replace("%2F", "/").replace("%25", "%")


def conversation_key(tenant: str, conversation_id: str) -> str:
    """``"<tenant>/<conversation_id>"``, the key of the per-conversation stream and table.

    Each part is escaped first (``%`` -> ``%25``, then ``/`` -> ``%2F``), so the only ``/`` in a key is the
    separator and two different (tenant, conversation) pairs never share a key; ids without ``%`` or ``/``
    (all of today's: tenant names, URL-safe base64 stream ids) appear unchanged. :func:`split_key` inverts it.
    """
    return f"{_escape(tenant)}/{_escape(conversation_id)}"


def user_key(tenant: str, user_id: str) -> str:
    """``"<tenant>/<user_id>"``, escaped like :func:`conversation_key` (user keys live in their own table)."""
    return f"{_escape(tenant)}/{_escape(user_id)}"


def split_key(key: str) -> tuple[str, str]:
    """(tenant, id) of a key made by :func:`conversation_key` or :func:`user_key`; ValueError otherwise."""
    tenant, sep, rest = key.partition("/")
    if not sep or "/" in rest:
        raise ValueError(f"not a state key: {key!r}")
    return _unescape(tenant), _unescape(rest)


def role_name(role: int) -> str:
    """``"member"``, ``"owner"``, ``"moderator"``; ``""`` when unspecified, ``"role_<n>"`` when unknown."""
    if role == 0:
        return ""
    try:
        name = MemberRole.Name(role)
    except ValueError:
        return f"role_{role}"
    return name.removeprefix(_ROLE_PREFIX).lower()


def _millis(when: Timestamp) -> int:
    return int(when.ToMilliseconds())


def _common(kind: FactKind, event: Any) -> dict[str, Any]:
    """kind, event_id, time_ms and tenant of any canonical event (they all carry fields 1-3)."""
    if not event.event_id:
        raise ValueError(f"{event.DESCRIPTOR.full_name} without event_id")
    return {
        "kind": kind,
        "event_id": str(event.event_id),
        "time_ms": _millis(event.event_time),
        "tenant": str(event.tenant_id),
    }


def _in_conversation(kind: FactKind, event: Any, **extra: Any) -> Fact:
    if not event.conversation_id:
        raise ValueError(f"{event.DESCRIPTOR.full_name} {event.event_id} without conversation_id")
    return Fact(**_common(kind, event), conversation_id=str(event.conversation_id), **extra)


def fact_from_event(event: Message) -> Fact | None:
    """The fact of a canonical event (or of the envelope carrying it); None for any other message type.

    Raises ValueError for an event without ``event_id``, a conversation event without ``conversation_id``,
    or a membership or user event without ``user_id``: state cannot place or de-duplicate it (normalize never
    writes such events).
    """
    if event.DESCRIPTOR.oneofs_by_name.get(ENVELOPE_ONEOF) is not None:
        event = inner_event(event)
    fact = _fact(event)
    if fact is not None and not fact.user_id and fact.kind in MEMBERSHIP_KINDS | USER_KINDS:
        raise ValueError(f"{event.DESCRIPTOR.full_name} {fact.event_id} without user_id")
    return fact


def _fact(event: Message) -> Fact | None:
    k = FactKind
    match event:
        case ConversationCreated():
            return _in_conversation(
                k.CREATED,
                event,
                actor_user_id=event.creator_user_id,
                name=event.name,
                external=event.external,
                public=event.public,
            )
        case ConversationUpdated():
            return _in_conversation(k.UPDATED, event, actor_user_id=event.actor_user_id, name=event.name)
        case ConversationDeactivated():
            return _in_conversation(k.DEACTIVATED, event, actor_user_id=event.actor_user_id)
        case ConversationReactivated():
            return _in_conversation(k.REACTIVATED, event, actor_user_id=event.actor_user_id)
        case MemberJoined():
            return _in_conversation(
                k.MEMBER_JOINED,
                event,
                user_id=event.user_id,
                actor_user_id=event.actor_user_id,
                role=role_name(event.role),
            )
        case MemberLeft():
            return _in_conversation(
                k.MEMBER_LEFT, event, user_id=event.user_id, actor_user_id=event.actor_user_id
            )
        case MemberRoleChanged():
            return _in_conversation(
                k.ROLE_CHANGED,
                event,
                user_id=event.user_id,
                actor_user_id=event.actor_user_id,
                role=role_name(event.new_role),
                old_role=role_name(event.old_role),
            )
        case MessageSent():
            return _in_conversation(
                k.MESSAGE_SENT, event, user_id=event.sender_user_id, message_id=event.message_id
            )
        case MessageEdited():
            return _in_conversation(
                k.MESSAGE_EDITED, event, user_id=event.editor_user_id, message_id=event.message_id
            )
        case ReactionAdded():
            return _in_conversation(
                k.REACTION_ADDED, event, user_id=event.user_id, message_id=event.message_id
            )
        case ReactionRemoved():
            return _in_conversation(
                k.REACTION_REMOVED, event, user_id=event.user_id, message_id=event.message_id
            )
        case MessageSuppressed():
            return _in_conversation(
                k.MESSAGE_SUPPRESSED, event, actor_user_id=event.actor_user_id, message_id=event.message_id
            )
        case LegalHoldSet():
            return Fact(
                **_common(k.LEGAL_HOLD_SET, event),
                conversation_id=event.conversation_id,
                user_id=event.user_id,
                actor_user_id=event.actor_user_id,
                hold_id=event.hold_id,
            )
        case LegalHoldReleased():
            return Fact(
                **_common(k.LEGAL_HOLD_RELEASED, event),
                actor_user_id=event.actor_user_id,
                hold_id=event.hold_id,
            )
        case UserCreated():
            return Fact(
                **_common(k.USER_CREATED, event),
                user_id=event.user_id,
                display_name=event.display_name,
                email=event.email,
                business_unit=event.business_unit,
            )
        case UserUpdated():
            return Fact(
                **_common(k.USER_UPDATED, event),
                user_id=event.user_id,
                display_name=event.display_name,
                email=event.email,
                business_unit=event.business_unit,
            )
        case UserDeactivated():
            return Fact(
                **_common(k.USER_DEACTIVATED, event),
                user_id=event.user_id,
                actor_user_id=event.actor_user_id,
            )
    return None
