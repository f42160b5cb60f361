"""The legacy event family as it really looks after years of drift: every (type, version) and its fields.

Two JSON styles exist.  **v1** (2016-2019 emitters): ``type`` / ``version`` (absent means 1), tenant in
``podId``, time as epoch milliseconds in ``timestamp`` (some old types have none), numeric user ids, room
and message ids in standard base64 with padding, flat field names.  **v2** (2020+): ``eventType`` /
``schemaVersion``, tenant in ``tenantId``, ISO-8601 ``occurredAt``, decimal-string user ids, URL-safe
unpadded ids, nested objects (``conversation.streamId``, ``sender.userId``, ``body.content``).  Newer
types (reactions, legal holds) only exist in v2.  The binary encoding (``PodEvent`` in
``legacy_event.proto``) carries the type's version in a field and uses :data:`PROTO_FIELDS` for every type.

Each field is described once by a :class:`FieldSpec`: the logical attribute (canonical form, see
:mod:`models.legacy.values`), where it sits in the wire document, and its wire kind.  Decoding and
encoding (for the traffic simulator) are both driven by these tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from models.legacy import values as v

Member = tuple[str, str]
"""(user id, role) of a room member, canonical forms."""
AttrValue = str | int | bool | tuple[Member, ...]


def _members_decoder(user_key: str, user_decode: Callable[[object], str]) -> Callable[[object], AttrValue]:
    def decode(value: object) -> AttrValue:
        if not isinstance(value, list) or len(value) > 10_000:
            raise v.ValueFormatError("expected a list of members")
        out: list[Member] = []
        for item in value:
            if not isinstance(item, dict):
                raise v.ValueFormatError("expected each member as an object")
            if user_key not in item:
                raise v.ValueFormatError(f"member without {user_key}")
            out.append((user_decode(item[user_key]), v.role_from_name(item.get("role", "MEMBER"))))
        return tuple(out)

    return decode


def _members_encoder(user_key: str, user_encode: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda members: [{user_key: user_encode(uid), "role": role} for uid, role in members]


class Kind(Enum):
    """How a value is written on the wire: its decoder (wire -> canonical) and encoder (canonical -> wire)."""

    TEXT = (v.text, lambda x: x)
    FLAG = (v.flag, lambda x: x)
    USER_NUMBER = (v.user_id_from_number, int)
    USER_STRING = (v.user_id_from_string, lambda x: x)
    ID_STANDARD = (v.id_from_standard, v.standard_id)
    ID_URLSAFE = (v.id_from_urlsafe, lambda x: x)
    TIME_MILLIS = (v.time_from_millis, lambda x: x)
    TIME_ISO = (v.time_from_iso, v.iso_from_millis)
    ROLE_LOWER = (v.role_from_name, str.lower)
    ROLE_UPPER = (v.role_from_name, lambda x: x)
    MEMBERS_V2 = (_members_decoder("userId", v.user_id_from_string), _members_encoder("userId", str))
    MEMBERS_PROTO = (_members_decoder("user_id", v.user_id_from_number), _members_encoder("user_id", int))

    def decode(self, value: object) -> AttrValue:
        """Wire value -> canonical value; raises ValueFormatError."""
        result: AttrValue = self.value[0](value)
        return result

    def encode(self, value: Any) -> Any:
        """Canonical value -> wire value."""
        return self.value[1](value)


@dataclass(frozen=True)
class FieldSpec:
    """One field: logical attribute name, dotted path in the wire document, wire kind, required or not."""

    attr: str
    path: str
    kind: Kind
    required: bool = True


@dataclass(frozen=True)
class Style:
    """Where a JSON style keeps the type, version, tenant and time."""

    name: str
    type_key: str
    version_key: str
    tenant: FieldSpec
    time: FieldSpec


V1 = Style(
    "v1",
    "type",
    "version",
    FieldSpec("tenant_id", "podId", Kind.TEXT, False),
    FieldSpec("occurred_ms", "timestamp", Kind.TIME_MILLIS),
)
V2 = Style(
    "v2",
    "eventType",
    "schemaVersion",
    FieldSpec("tenant_id", "tenantId", Kind.TEXT, False),
    FieldSpec("occurred_ms", "occurredAt", Kind.TIME_ISO),
)


@dataclass(frozen=True)
class EventSpec:
    """One (type, version) of the JSON encoding."""

    type: str
    version: int
    style: Style
    fields: tuple[FieldSpec, ...]
    time_required: bool = True

    @property
    def required_attrs(self) -> frozenset[str]:
        """Logical attributes every event of this (type, version) must carry."""
        return frozenset(f.attr for f in self.fields if f.required)

    @property
    def time_field(self) -> FieldSpec:
        """The event-time field of this spec."""
        return FieldSpec(self.style.time.attr, self.style.time.path, self.style.time.kind, self.time_required)


def F(attr: str, path: str, kind: Kind, required: bool = True) -> FieldSpec:  # noqa: N802 - table shorthand
    """Shorthand for a FieldSpec in the tables below."""
    return FieldSpec(attr, path, kind, required)


K = Kind
STREAM_V1 = F("conversation_id", "streamId", K.ID_STANDARD)
STREAM_V2 = F("conversation_id", "conversation.streamId", K.ID_URLSAFE)
MESSAGE_V1 = F("message_id", "messageId", K.ID_STANDARD)
MESSAGE_V2 = F("message_id", "messageId", K.ID_URLSAFE)
ACTOR_V1 = F("actor_user_id", "actorId", K.USER_NUMBER)
ACTOR_V2 = F("actor_user_id", "actor.userId", K.USER_STRING)

_SPECS: list[EventSpec] = [
    # collaboration: messages
    EventSpec(
        "MESSAGE_SENT",
        1,
        V1,
        (
            STREAM_V1,
            MESSAGE_V1,
            F("sender_user_id", "fromUserId", K.USER_NUMBER),
            F("markup", "message", K.TEXT),
            F("parent_message_id", "inReplyTo", K.ID_STANDARD, False),
        ),
    ),
    EventSpec(
        "MESSAGE_SENT",
        2,
        V2,
        (
            STREAM_V2,
            MESSAGE_V2,
            F("sender_user_id", "sender.userId", K.USER_STRING),
            F("markup", "body.content", K.TEXT),
            F("parent_message_id", "parentMessageId", K.ID_URLSAFE, False),
        ),
    ),
    EventSpec(
        "MESSAGE_EDITED",
        1,
        V1,
        (
            STREAM_V1,
            MESSAGE_V1,
            F("editor_user_id", "editedBy", K.USER_NUMBER),
            F("markup", "message", K.TEXT),
        ),
    ),
    EventSpec(
        "MESSAGE_EDITED",
        2,
        V2,
        (
            STREAM_V2,
            MESSAGE_V2,
            F("editor_user_id", "editor.userId", K.USER_STRING),
            F("markup", "body.content", K.TEXT),
        ),
    ),
    EventSpec(
        "REACTION_ADDED",
        2,
        V2,
        (STREAM_V2, MESSAGE_V2, F("user_id", "user.userId", K.USER_STRING), F("emoji", "emoji", K.TEXT)),
    ),
    EventSpec(
        "REACTION_REMOVED",
        2,
        V2,
        (STREAM_V2, MESSAGE_V2, F("user_id", "user.userId", K.USER_STRING), F("emoji", "emoji", K.TEXT)),
    ),
    # collaboration: rooms
    EventSpec(
        "ROOM_CREATED",
        1,
        V1,
        (
            STREAM_V1,
            F("name", "roomName", K.TEXT),
            F("description", "roomDescription", K.TEXT, False),
            F("creator_user_id", "creatorId", K.USER_NUMBER),
            F("external", "isExternal", K.FLAG, False),
            F("public", "isPublic", K.FLAG, False),
        ),
    ),
    EventSpec(
        "ROOM_CREATED",
        2,
        V2,
        (
            STREAM_V2,
            F("name", "conversation.name", K.TEXT),
            F("description", "conversation.description", K.TEXT, False),
            F("creator_user_id", "creator.userId", K.USER_STRING),
            F("external", "conversation.external", K.FLAG, False),
            F("public", "conversation.public", K.FLAG, False),
            F("members", "members", K.MEMBERS_V2, False),
        ),
    ),
    EventSpec(
        "ROOM_UPDATED",
        1,
        V1,
        (
            STREAM_V1,
            F("name", "roomName", K.TEXT),
            F("description", "roomDescription", K.TEXT, False),
            ACTOR_V1,
        ),
    ),
    EventSpec("ROOM_DEACTIVATED", 1, V1, (STREAM_V1, ACTOR_V1), time_required=False),
    EventSpec("ROOM_REACTIVATED", 1, V1, (STREAM_V1, ACTOR_V1), time_required=False),
    # collaboration: membership
    EventSpec(
        "USER_JOINED_ROOM",
        1,
        V1,
        (
            STREAM_V1,
            F("user_id", "affectedUserId", K.USER_NUMBER),
            F("actor_user_id", "actorId", K.USER_NUMBER, False),
        ),
    ),
    EventSpec(
        "USER_JOINED_ROOM",
        2,
        V2,
        (
            STREAM_V2,
            F("user_id", "member.userId", K.USER_STRING),
            F("role", "member.role", K.ROLE_UPPER, False),
            F("actor_user_id", "actor.userId", K.USER_STRING, False),
        ),
    ),
    EventSpec(
        "USER_LEFT_ROOM",
        1,
        V1,
        (
            STREAM_V1,
            F("user_id", "affectedUserId", K.USER_NUMBER),
            F("actor_user_id", "actorId", K.USER_NUMBER, False),
        ),
    ),
    EventSpec("MEMBER_PROMOTED", 1, V1, (STREAM_V1, F("user_id", "affectedUserId", K.USER_NUMBER), ACTOR_V1)),
    EventSpec(
        "MEMBER_PROMOTED",
        2,
        V2,
        (
            STREAM_V2,
            F("user_id", "member.userId", K.USER_STRING),
            ACTOR_V2,
            F("from_role", "fromRole", K.ROLE_UPPER),
            F("to_role", "toRole", K.ROLE_UPPER),
        ),
    ),
    EventSpec("MEMBER_DEMOTED", 1, V1, (STREAM_V1, F("user_id", "affectedUserId", K.USER_NUMBER), ACTOR_V1)),
    EventSpec(
        "MEMBER_DEMOTED",
        2,
        V2,
        (
            STREAM_V2,
            F("user_id", "member.userId", K.USER_STRING),
            ACTOR_V2,
            F("from_role", "fromRole", K.ROLE_UPPER),
            F("to_role", "toRole", K.ROLE_UPPER),
        ),
    ),
    # identity
    EventSpec(
        "USER_CREATED",
        1,
        V1,
        (
            F("user_id", "userId", K.USER_NUMBER),
            F("username", "userName", K.TEXT),
            F("display_name", "displayName", K.TEXT),
            F("email", "emailAddress", K.TEXT, False),
        ),
    ),
    EventSpec(
        "USER_CREATED",
        2,
        V2,
        (
            F("user_id", "user.userId", K.USER_STRING),
            F("username", "user.username", K.TEXT),
            F("display_name", "user.displayName", K.TEXT),
            F("email", "user.email", K.TEXT, False),
            F("business_unit", "user.businessUnit", K.TEXT, False),
        ),
    ),
    EventSpec(
        "USER_UPDATED",
        1,
        V1,
        (
            F("user_id", "userId", K.USER_NUMBER),
            F("display_name", "displayName", K.TEXT, False),
            F("email", "emailAddress", K.TEXT, False),
            F("business_unit", "department", K.TEXT, False),
        ),
    ),
    EventSpec(
        "USER_UPDATED",
        2,
        V2,
        (
            F("user_id", "user.userId", K.USER_STRING),
            F("display_name", "user.displayName", K.TEXT, False),
            F("email", "user.email", K.TEXT, False),
            F("business_unit", "user.businessUnit", K.TEXT, False),
        ),
    ),
    EventSpec("USER_DEACTIVATED", 1, V1, (F("user_id", "userId", K.USER_NUMBER), ACTOR_V1)),
    # compliance
    EventSpec(
        "MESSAGE_SUPPRESSED",
        1,
        V1,
        (
            STREAM_V1,
            MESSAGE_V1,
            F("actor_user_id", "suppressedBy", K.USER_NUMBER),
            F("reason", "reason", K.TEXT, False),
        ),
    ),
    EventSpec("MESSAGE_SUPPRESSED", 2, V2, (STREAM_V2, MESSAGE_V2, ACTOR_V2, F("reason", "reason", K.TEXT))),
    EventSpec(
        "LEGAL_HOLD_SET",
        2,
        V2,
        (
            F("hold_id", "holdId", K.TEXT),
            F("user_id", "custodian.userId", K.USER_STRING, False),
            F("conversation_id", "conversation.streamId", K.ID_URLSAFE, False),
            F("reason", "reason", K.TEXT),
            ACTOR_V2,
        ),
    ),
    EventSpec("LEGAL_HOLD_RELEASED", 2, V2, (F("hold_id", "holdId", K.TEXT), ACTOR_V2)),
]

SPECS: dict[tuple[str, int], EventSpec] = {(s.type, s.version): s for s in _SPECS}
"""Every supported (type, version)."""

TYPES: frozenset[str] = frozenset(t for t, _ in SPECS)
"""Every legacy event type."""


def versions(event_type: str) -> list[int]:
    """The supported versions of one type, ascending."""
    return sorted(ver for t, ver in SPECS if t == event_type)


# binary PodEvent: logical attribute -> (PodEvent field, kind); used for every type, the version's
# JSON spec says which attributes are required.
PROTO_FIELDS: dict[str, tuple[str, Kind]] = {
    "conversation_id": ("stream_id", K.ID_STANDARD),
    "message_id": ("message_id", K.ID_STANDARD),
    "parent_message_id": ("parent_message_id", K.ID_STANDARD),
    "sender_user_id": ("from_user_id", K.USER_NUMBER),
    "editor_user_id": ("from_user_id", K.USER_NUMBER),
    "creator_user_id": ("from_user_id", K.USER_NUMBER),
    "actor_user_id": ("from_user_id", K.USER_NUMBER),
    "user_id": ("affected_user_id", K.USER_NUMBER),
    "markup": ("message", K.TEXT),
    "name": ("name", K.TEXT),
    "description": ("description", K.TEXT),
    "external": ("external", K.FLAG),
    "public": ("public", K.FLAG),
    "role": ("role", K.ROLE_UPPER),
    "to_role": ("role", K.ROLE_UPPER),
    "from_role": ("old_role", K.ROLE_UPPER),
    "emoji": ("emoji", K.TEXT),
    "username": ("username", K.TEXT),
    "display_name": ("display_name", K.TEXT),
    "email": ("email", K.TEXT),
    "business_unit": ("business_unit", K.TEXT),
    "reason": ("reason", K.TEXT),
    "hold_id": ("hold_id", K.TEXT),
    "members": ("members", K.MEMBERS_PROTO),
}
