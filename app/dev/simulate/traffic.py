"""Deterministic, seeded generator of realistic legacy traffic with a ground truth (pure).

For N tenants x M conversations it plays a plausible life of each tenant — users created, rooms created
(v2 rooms list their members; v1 rooms are followed by joins), messages with mentions, hashtags and links,
edits, reactions, membership and role changes, room updates / deactivation / reactivation, user updates,
suppressions and legal holds — mixing legacy versions and the three encodings (JSON, base64 protobuf,
encrypted wrapper around either).  A ``bad_fraction`` of publications is broken on purpose: garbage,
unknown type, unsupported version, tampered ciphertext, unknown key id.

Every :class:`Publication` carries its ground truth, computed here independently of
:mod:`app.normalize.mapping`: the canonical events a consumer must see (topic, ce_type, tenant, key fields —
message events include the plain text a consumer decrypts) or the dead-letter reason. The same seed and
configuration always produce the same publications, byte for byte.

"""

from __future__ import annotations

import html
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from app.crypto import aead
from app.topics import COMPLIANCE, CONVERSATIONS, MESSAGES, USERS
from models.legacy import codec
from models.legacy.spec import SPECS, AttrValue, versions
from models.legacy.values import urlsafe_id

CLOUDS = ("aws", "gcp")
BAD_KINDS = ("garbage", "unknown_type", "unsupported_version", "tampered_ciphertext", "unknown_key_id")
BAD_REASONS = {
    "garbage": "malformed",
    "unknown_type": "unknown_type",
    "unsupported_version": "unsupported_version",
    "tampered_ciphertext": "decrypt_failed",
    "unknown_key_id": "unknown_key_id",
}
ENCODINGS = ("json", "protobuf", "encrypted")
_WORDS = (
    "ok",
    "sounds",
    "good",
    "price",
    "looks",
    "firm",
    "can",
    "you",
    "check",
    "the",
    "size",
    "today",
    "ticket",
    "booked",
    "thanks",
    "call",
    "me",
    "when",
    "free",
    "spread",
    "tight",
    "risk",
    "limit",
)
_TAGS = ("deal", "fx", "rates", "urgent", "followup", "q3", "credit")
_LABELS = ("this", "the deck", "report", "ticket", "term sheet")
_EMOJI = ("+1", "heart", "eyes", "rocket", "white_check_mark")
_UNITS = ("Rates", "FX", "Credit", "Equities", "Operations", "Compliance")
_FIRST = ("Jane", "John", "Aiko", "Ravi", "Maria", "Lars", "Chen", "Fatima", "Tom", "Ines")
_LAST = ("Doe", "Smith", "Tanaka", "Patel", "Garcia", "Berg", "Wei", "Khan", "Novak", "Costa")
_WEIGHTS = {
    "MESSAGE_SENT": 40, "MESSAGE_EDITED": 6, "REACTION_ADDED": 10, "REACTION_REMOVED": 3,
    "USER_JOINED_ROOM": 4, "USER_LEFT_ROOM": 2, "MEMBER_PROMOTED": 2, "MEMBER_DEMOTED": 1,
    "ROOM_UPDATED": 2, "ROOM_DEACTIVATED": 1, "ROOM_CREATED": 1, "USER_CREATED": 1, "USER_UPDATED": 2,
    "USER_DEACTIVATED": 0.3, "MESSAGE_SUPPRESSED": 1, "LEGAL_HOLD_SET": 0.6, "LEGAL_HOLD_RELEASED": 0.4,
}  # fmt: skip


class SimulatorKeys(Protocol):
    """The tenant keys the legacy backend encrypts with (a :class:`app.crypto.keyring.Keyring` fits)."""

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        """A live key of the tenant."""
        ...

    def key_ids(self, tenant_id: str) -> list[str]:
        """The tenant's live key ids."""
        ...


@dataclass(frozen=True)
class ExpectedEvent:
    """One canonical event a consumer must see: topic, ce_type, tenant and identifying fields."""

    topic: str
    ce_type: str
    tenant_id: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Publication:
    """One legacy publication and its ground truth.

    ``attributes`` are the SNS / Pub/Sub message attributes (eventType, tenantId, schemaVersion,
    contentEncoding, publicationId).  Exactly one of ``expected`` (non-empty) and ``dead_letter_reason``
    is set.
    """

    publication_id: str
    tenant_id: str
    cloud: str
    body: bytes
    attributes: Mapping[str, str]
    legacy_type: str
    legacy_version: int
    encoding: str
    expected: tuple[ExpectedEvent, ...] = ()
    dead_letter_reason: str | None = None
    bad_kind: str | None = None

    def ground_truth(self) -> dict[str, Any]:
        """This publication as one JSON-able ground-truth row (body in base64)."""
        import base64  # noqa: PLC0415 - only needed when writing ground truth

        return {
            "publication_id": self.publication_id,
            "tenant_id": self.tenant_id,
            "cloud": self.cloud,
            "legacy_type": self.legacy_type,
            "legacy_version": self.legacy_version,
            "encoding": self.encoding,
            "bad_kind": self.bad_kind,
            "attributes": dict(self.attributes),
            "body_b64": base64.b64encode(self.body).decode(),
            "expected": [
                {"topic": e.topic, "ce_type": e.ce_type, "tenant_id": e.tenant_id, "fields": dict(e.fields)}
                for e in self.expected
            ],
            "dead_letter_reason": self.dead_letter_reason,
        }


@dataclass(frozen=True)
class TrafficConfig:
    """What to simulate. ``clouds`` maps tenant -> "aws"/"gcp" (default: alternating in tenant order)."""

    tenants: Sequence[str]
    conversations_per_tenant: int = 3
    users_per_tenant: int = 6
    bad_fraction: float = 0.0
    seed: int = 0
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    clouds: Mapping[str, str] = field(default_factory=dict)

    def cloud_of(self, tenant: str) -> str:
        """The cloud a tenant's legacy deployment publishes to."""
        return self.clouds.get(tenant) or CLOUDS[list(self.tenants).index(tenant) % 2]


@dataclass
class _Room:
    raw_id: bytes
    name: str
    creator: str
    members: dict[str, str]
    active: bool = True
    messages: list[str] = field(default_factory=list)
    reactions: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return urlsafe_id(self.raw_id)


@dataclass
class _User:
    id: str
    username: str
    display_name: str
    email: str
    business_unit: str
    active: bool = True


@dataclass
class _Tenant:
    name: str
    users: list[_User] = field(default_factory=list)
    rooms: list[_Room] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)
    pending: list[tuple[str, dict[str, AttrValue]]] = field(default_factory=list)


Plan = tuple[dict[str, AttrValue], list[ExpectedEvent]] | None
"""Legacy attributes (canonical forms) and the canonical events expected, or None if impossible now."""


def _ev(topic: str, event_type: str, tenant: str, /, **fields: str) -> ExpectedEvent:
    return ExpectedEvent(topic, f"carryover.{event_type}", tenant, fields)


class TrafficGenerator:
    """Iterates publications forever (or use :meth:`take`); deterministic for a seed and configuration."""

    def __init__(self, config: TrafficConfig, keys: SimulatorKeys) -> None:
        if not config.tenants:
            raise ValueError("at least one tenant")
        for tenant in config.tenants:
            if not keys.key_ids(tenant):
                raise ValueError(
                    f"no keys for tenant {tenant!r}: generate the key file for every simulated tenant"
                )
        self.config = config
        self.keys = keys
        self.rng = random.Random(config.seed)
        self.sequence = 0
        self.clock_ms = config.start_ms
        self.tenants = {t: self._bootstrap(t) for t in config.tenants}

    # ---- state ----

    def _new_user(self, tenant: _Tenant) -> _User:
        rng = self.rng
        uid = str(rng.randrange(10**13, 10**15))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        user = _User(
            uid,
            f"{first.lower()}.{last.lower()}{len(tenant.users)}",
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}@{tenant.name}.example",
            rng.choice(_UNITS),
        )
        tenant.users.append(user)
        return user

    def _bootstrap(self, name: str) -> _Tenant:
        tenant = _Tenant(name)
        for _ in range(max(2, self.config.users_per_tenant)):
            user = self._new_user(tenant)
            tenant.pending.append(("USER_CREATED", self._user_created_attrs(user)))
        for _ in range(max(1, self.config.conversations_per_tenant)):
            tenant.pending.append(("ROOM_CREATED", {}))
        tenant.pending.reverse()  # pending is a stack
        return tenant

    # ---- public ----

    def __iter__(self) -> Iterator[Publication]:
        while True:
            yield self.next()

    def take(self, count: int) -> list[Publication]:
        """The next ``count`` publications."""
        return [self.next() for _ in range(count)]

    def next(self) -> Publication:
        """The next publication."""
        self.sequence += 1
        self.clock_ms += self.rng.randrange(5, 1500)
        tenant = self.tenants[self.rng.choice(list(self.config.tenants))]
        if self.rng.random() < self.config.bad_fraction:
            return self._bad(tenant)
        return self._good(tenant)

    # ---- good publications ----

    def _publication_id(self) -> str:
        return f"sim-{self.config.seed:x}-{self.sequence:09d}"

    def _good(self, tenant: _Tenant) -> Publication:
        if tenant.pending:
            event_type, attrs = tenant.pending.pop()
        else:
            event_type = self.rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
            attrs = {}
        version = self.rng.choice(versions(event_type))
        planned = self._plan(tenant, event_type, version, attrs)
        if planned is None:  # not possible in the current state: a message instead
            event_type, version = "MESSAGE_SENT", self.rng.choice(versions("MESSAGE_SENT"))
            planned = self._plan(tenant, event_type, version, {})
            assert planned is not None
        attrs, expected = planned
        encoding = self.rng.choices(ENCODINGS, weights=(50, 25, 25))[0]
        body = self._encode(tenant.name, event_type, version, attrs, encoding)
        return self._publication(tenant.name, body, event_type, version, encoding, expected=tuple(expected))

    def _publication(
        self,
        tenant: str,
        body: bytes,
        event_type: str,
        version: int,
        encoding: str,
        *,
        expected: tuple[ExpectedEvent, ...] = (),
        reason: str | None = None,
        bad_kind: str | None = None,
    ) -> Publication:
        publication_id = self._publication_id()
        attributes = {
            "eventType": event_type,
            "tenantId": tenant,
            "schemaVersion": str(version),
            "contentEncoding": encoding,
            "publicationId": publication_id,
        }
        return Publication(
            publication_id,
            tenant,
            self.config.cloud_of(tenant),
            body,
            attributes,
            event_type,
            version,
            encoding,
            expected,
            reason,
            bad_kind,
        )

    def _encode(
        self, tenant: str, event_type: str, version: int, attrs: Mapping[str, AttrValue], encoding: str
    ) -> bytes:
        if encoding != "encrypted":
            encode = codec.encode_json if encoding == "json" else codec.encode_protobuf
            return encode(event_type, version, attrs, tenant_id=tenant, occurred_ms=self.clock_ms)
        inner_encode = self.rng.choice((codec.encode_json, codec.encode_protobuf))
        # inside the wrapper the tenant id is sometimes left out: the wrapper carries it
        inner_tenant = tenant if self.rng.random() < 0.5 else None
        inner = inner_encode(event_type, version, attrs, tenant_id=inner_tenant, occurred_ms=self.clock_ms)
        key_id = self.rng.choice(sorted(self.keys.key_ids(tenant)))  # any live key: rotation in flight
        key = self.keys.decryption_key(tenant, key_id)
        blob = aead.encrypt(key, inner, tenant_id=tenant, key_id=key_id, nonce=self.rng.randbytes(12))
        return codec.encode_encrypted(tenant, key_id, blob)

    # ---- bad publications ----

    def _bad(self, tenant: _Tenant) -> Publication:
        kind = self.rng.choice(BAD_KINDS)
        name = tenant.name
        if kind == "garbage":
            # a truncated document: SNS only carries text, so garbage is text too
            cut = self.rng.randbytes(self.rng.randrange(8, 64)).hex()
            body = f'{{"eventType":"MESSAGE_SENT","tenantId":"{name}","body":"{cut}'.encode()
            return self._publication(name, body, "MESSAGE_SENT", 1, "json", reason="malformed", bad_kind=kind)
        if kind == "unknown_type":
            body = json.dumps(
                {
                    "eventType": "VOICE_CALL_STARTED",
                    "schemaVersion": 1,
                    "tenantId": name,
                    "occurredAt": "2026-01-01T00:00:00.000Z",
                }
            ).encode()
            return self._publication(
                name, body, "VOICE_CALL_STARTED", 1, "json", reason="unknown_type", bad_kind=kind
            )
        if kind == "unsupported_version":
            body = json.dumps({"type": "ROOM_UPDATED", "version": 7, "podId": name}).encode()
            return self._publication(
                name, body, "ROOM_UPDATED", 7, "json", reason="unsupported_version", bad_kind=kind
            )
        user = self.rng.choice(tenant.users)
        attrs = self._user_updated_attrs(user)
        inner = codec.encode_json("USER_UPDATED", 2, attrs, tenant_id=name, occurred_ms=self.clock_ms)
        key_id = sorted(self.keys.key_ids(name))[-1]
        blob = aead.encrypt(
            self.keys.decryption_key(name, key_id),
            inner,
            tenant_id=name,
            key_id=key_id,
            nonce=self.rng.randbytes(12),
        )
        if kind == "tampered_ciphertext":
            flipped = bytearray(blob)
            flipped[self.rng.randrange(len(flipped))] ^= 1 << self.rng.randrange(8)
            body = codec.encode_encrypted(name, key_id, bytes(flipped))
        else:
            body = codec.encode_encrypted(name, f"{name}/retired-{self.rng.randrange(1000)}", blob)
        return self._publication(
            name, body, "USER_UPDATED", 2, "encrypted", reason=BAD_REASONS[kind], bad_kind=kind
        )

    # ---- planning one event: legacy attributes (canonical forms) + expected canonical events ----

    def _plan(self, tenant: _Tenant, event_type: str, version: int, given: dict[str, AttrValue]) -> Plan:
        planner = getattr(self, "_plan_" + event_type.lower())
        result: Plan = planner(tenant, version, given)
        return result

    def _active_users(self, tenant: _Tenant) -> list[_User]:
        return [u for u in tenant.users if u.active]

    def _active_rooms(self, tenant: _Tenant) -> list[_Room]:
        return [r for r in tenant.rooms if r.active]

    def _user_created_attrs(self, user: _User) -> dict[str, AttrValue]:
        return {
            "user_id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "business_unit": user.business_unit,
        }

    def _user_updated_attrs(self, user: _User) -> dict[str, AttrValue]:
        return {
            "user_id": user.id,
            "display_name": user.display_name,
            "email": user.email,
            "business_unit": user.business_unit,
        }

    def _plan_user_created(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        user = next((u for u in tenant.users if u.id == given.get("user_id")), None) or self._new_user(tenant)
        attrs = self._user_created_attrs(user)
        business_unit = user.business_unit if version >= 2 else ""  # v1 had no business unit
        return attrs, [
            _ev(
                USERS,
                "identity.v1.UserCreated",
                tenant.name,
                user_id=user.id,
                username=user.username,
                business_unit=business_unit,
            )
        ]

    def _plan_user_updated(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        users = self._active_users(tenant)
        if not users:
            return None
        user = self.rng.choice(users)
        user.business_unit = self.rng.choice(_UNITS)
        return self._user_updated_attrs(user), [
            _ev(
                USERS,
                "identity.v1.UserUpdated",
                tenant.name,
                user_id=user.id,
                business_unit=user.business_unit,
            )
        ]

    def _plan_user_deactivated(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        users = self._active_users(tenant)
        if len(users) <= 3:
            return None
        user, actor = self.rng.sample(users, 2)
        user.active = False
        for room in tenant.rooms:
            room.members.pop(user.id, None)
        return (
            {"user_id": user.id, "actor_user_id": actor.id},
            [_ev(USERS, "identity.v1.UserDeactivated", tenant.name, user_id=user.id, actor_user_id=actor.id)],
        )

    def _plan_room_created(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        users = self._active_users(tenant)
        creator = self.rng.choice(users)
        others = self.rng.sample(
            [u for u in users if u is not creator], k=min(len(users) - 1, self.rng.randrange(1, 4))
        )
        room = _Room(
            self.rng.randbytes(18),
            f"{self.rng.choice(_TAGS).upper()} desk {len(tenant.rooms) + 1}",
            creator.id,
            {creator.id: "OWNER"},
        )
        tenant.rooms.append(room)
        attrs: dict[str, AttrValue] = {
            "conversation_id": room.id,
            "name": room.name,
            "creator_user_id": creator.id,
            "description": f"{tenant.name} {room.name}",
            "external": self.rng.random() < 0.2,
            "public": self.rng.random() < 0.5,
        }
        expected = [
            _ev(
                CONVERSATIONS,
                "collaboration.v1.ConversationCreated",
                tenant.name,
                conversation_id=room.id,
                creator_user_id=creator.id,
                name=room.name,
            )
        ]
        if version >= 2:  # v2 lists the initial members; each becomes a MemberJoined
            members = [(creator.id, "OWNER")] + [(u.id, "MEMBER") for u in others]
            attrs["members"] = tuple(members)
            for uid, role in members:
                room.members[uid] = role
                expected.append(
                    _ev(
                        CONVERSATIONS,
                        "collaboration.v1.MemberJoined",
                        tenant.name,
                        conversation_id=room.id,
                        user_id=uid,
                        role=role,
                    )
                )
        else:  # v1 rooms: the backend sent the joins separately
            for user in reversed(others):
                tenant.pending.append(("USER_JOINED_ROOM", {"conversation_id": room.id, "user_id": user.id}))
        return attrs, expected

    def _plan_room_updated(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = self._active_rooms(tenant)
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        room.name = f"{room.name.split(' (')[0]} ({self.rng.choice(_TAGS)})"
        actor = self.rng.choice(list(room.members) or [room.creator])
        return (
            {"conversation_id": room.id, "name": room.name, "actor_user_id": actor},
            [
                _ev(
                    CONVERSATIONS,
                    "collaboration.v1.ConversationUpdated",
                    tenant.name,
                    conversation_id=room.id,
                    name=room.name,
                    actor_user_id=actor,
                )
            ],
        )

    def _plan_room_deactivated(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = self._active_rooms(tenant)
        if len(rooms) <= 1:
            return None
        room = self.rng.choice(rooms)
        room.active = False
        actor = room.creator
        tenant.pending.append(("ROOM_REACTIVATED", {"conversation_id": room.id}))
        return (
            {"conversation_id": room.id, "actor_user_id": actor},
            [
                _ev(
                    CONVERSATIONS,
                    "collaboration.v1.ConversationDeactivated",
                    tenant.name,
                    conversation_id=room.id,
                    actor_user_id=actor,
                )
            ],
        )

    def _plan_room_reactivated(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        room = next((r for r in tenant.rooms if r.id == given.get("conversation_id")), None)
        if room is None or room.active:
            return None
        room.active = True
        return (
            {"conversation_id": room.id, "actor_user_id": room.creator},
            [
                _ev(
                    CONVERSATIONS,
                    "collaboration.v1.ConversationReactivated",
                    tenant.name,
                    conversation_id=room.id,
                    actor_user_id=room.creator,
                )
            ],
        )

    def _plan_user_joined_room(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        if given:
            room = next(r for r in tenant.rooms if r.id == given["conversation_id"])
            user_id = str(given["user_id"])
            if user_id in room.members or not room.active:
                return None
        else:
            candidates = [
                (r, u)
                for r in self._active_rooms(tenant)
                for u in self._active_users(tenant)
                if u.id not in r.members
            ]
            if not candidates:
                return None
            room, user = self.rng.choice(candidates)
            user_id = user.id
        role = "MODERATOR" if version >= 2 and self.rng.random() < 0.2 else "MEMBER"
        actor = room.creator
        room.members[user_id] = role
        attrs: dict[str, AttrValue] = {"conversation_id": room.id, "user_id": user_id, "actor_user_id": actor}
        if version >= 2:
            attrs["role"] = role
        return attrs, [
            _ev(
                CONVERSATIONS,
                "collaboration.v1.MemberJoined",
                tenant.name,
                conversation_id=room.id,
                user_id=user_id,
                role=role,
            )
        ]

    def _plan_user_left_room(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        candidates = [(r, uid) for r in self._active_rooms(tenant) for uid in r.members if uid != r.creator]
        if not candidates:
            return None
        room, user_id = self.rng.choice(candidates)
        del room.members[user_id]
        return (
            {"conversation_id": room.id, "user_id": user_id},
            [
                _ev(
                    CONVERSATIONS,
                    "collaboration.v1.MemberLeft",
                    tenant.name,
                    conversation_id=room.id,
                    user_id=user_id,
                    actor_user_id=user_id,
                )
            ],
        )

    def _role_change(self, tenant: _Tenant, version: int, promote: bool) -> Plan:
        wanted = ("MEMBER",) if promote else ("OWNER", "MODERATOR")
        candidates = [
            (r, uid, role)
            for r in self._active_rooms(tenant)
            for uid, role in r.members.items()
            if role in wanted and uid != r.creator and (version >= 2 or role != "MODERATOR")
        ]
        if not candidates:
            return None
        room, user_id, old = self.rng.choice(candidates)
        new = ("OWNER" if version == 1 or self.rng.random() < 0.5 else "MODERATOR") if promote else "MEMBER"
        room.members[user_id] = new
        attrs: dict[str, AttrValue] = {
            "conversation_id": room.id,
            "user_id": user_id,
            "actor_user_id": room.creator,
        }
        if version >= 2:
            attrs.update(from_role=old, to_role=new)
        return attrs, [
            _ev(
                CONVERSATIONS,
                "collaboration.v1.MemberRoleChanged",
                tenant.name,
                conversation_id=room.id,
                user_id=user_id,
                old_role=old,
                new_role=new,
            )
        ]

    def _plan_member_promoted(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        return self._role_change(tenant, version, promote=True)

    def _plan_member_demoted(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        return self._role_change(tenant, version, promote=False)

    def _body(self, room: _Room) -> tuple[str, str, list[str], list[str]]:
        """MessageML and the plain text a consumer must read, plus mentioned user ids and hashtags."""
        rng = self.rng
        markup: list[str] = []
        plain: list[str] = []
        mentions: list[str] = []
        tags: list[str] = []
        for word in rng.sample(_WORDS, rng.randrange(2, 6)):
            markup.append(html.escape(word))
            plain.append(word)
        if rng.random() < 0.4 and room.members:
            uid = rng.choice(sorted(room.members))
            markup.insert(0, f'<mention uid="{uid}"/>')
            plain.insert(0, f"@{uid}")
            mentions.append(uid)
        if rng.random() < 0.3:
            label = rng.choice(_LABELS)
            markup.append(f'<a href="https://docs.example/{rng.randrange(10**6)}">{label}</a>')
            plain.append(label)
        if rng.random() < 0.5:
            tag = rng.choice(_TAGS)
            markup.append(f'<hash tag="{tag}"/>' if rng.random() < 0.5 else f"#{tag}")
            plain.append(f"#{tag}")
            tags.append(tag)
        return "<messageML>" + " ".join(markup) + "</messageML>", " ".join(plain), mentions, tags

    def _plan_message_sent(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = [r for r in self._active_rooms(tenant) if r.members]
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        sender = self.rng.choice(sorted(room.members))
        markup, text, mentions, tags = self._body(room)
        message_id = urlsafe_id(self.rng.randbytes(15))
        attrs: dict[str, AttrValue] = {
            "conversation_id": room.id,
            "message_id": message_id,
            "sender_user_id": sender,
            "markup": markup,
        }
        parent = ""
        if room.messages and self.rng.random() < 0.2:
            parent = self.rng.choice(room.messages)
            attrs["parent_message_id"] = parent
        room.messages.append(message_id)
        return attrs, [
            _ev(
                MESSAGES,
                "collaboration.v1.MessageSent",
                tenant.name,
                conversation_id=room.id,
                message_id=message_id,
                sender_user_id=sender,
                parent_message_id=parent,
                text=text,
                mentions=",".join(mentions),
                hashtags=",".join(tags),
            )
        ]

    def _plan_message_edited(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = [r for r in self._active_rooms(tenant) if r.messages and r.members]
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        message_id = self.rng.choice(room.messages)
        editor = self.rng.choice(sorted(room.members))
        markup, text, mentions, tags = self._body(room)
        return (
            {
                "conversation_id": room.id,
                "message_id": message_id,
                "editor_user_id": editor,
                "markup": markup,
            },
            [
                _ev(
                    MESSAGES,
                    "collaboration.v1.MessageEdited",
                    tenant.name,
                    conversation_id=room.id,
                    message_id=message_id,
                    editor_user_id=editor,
                    text=text,
                    mentions=",".join(mentions),
                    hashtags=",".join(tags),
                )
            ],
        )

    def _plan_reaction_added(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = [r for r in self._active_rooms(tenant) if r.messages and r.members]
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        reaction = (
            self.rng.choice(room.messages),
            self.rng.choice(sorted(room.members)),
            self.rng.choice(_EMOJI),
        )
        room.reactions.append(reaction)
        return self._reaction(tenant, room, reaction, "ReactionAdded")

    def _plan_reaction_removed(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = [r for r in self._active_rooms(tenant) if r.reactions]
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        reaction = room.reactions.pop(self.rng.randrange(len(room.reactions)))
        return self._reaction(tenant, room, reaction, "ReactionRemoved")

    def _reaction(self, tenant: _Tenant, room: _Room, reaction: tuple[str, str, str], name: str) -> Plan:
        message_id, user_id, emoji = reaction
        return (
            {"conversation_id": room.id, "message_id": message_id, "user_id": user_id, "emoji": emoji},
            [
                _ev(
                    MESSAGES,
                    f"collaboration.v1.{name}",
                    tenant.name,
                    conversation_id=room.id,
                    message_id=message_id,
                    user_id=user_id,
                    emoji=emoji,
                )
            ],
        )

    def _plan_message_suppressed(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        rooms = [r for r in tenant.rooms if r.messages]
        if not rooms:
            return None
        room = self.rng.choice(rooms)
        message_id = self.rng.choice(room.messages)
        officer = self.rng.choice(self._active_users(tenant)).id
        return (
            {
                "conversation_id": room.id,
                "message_id": message_id,
                "actor_user_id": officer,
                "reason": "information barrier",
            },
            [
                _ev(
                    COMPLIANCE,
                    "compliance.v1.MessageSuppressed",
                    tenant.name,
                    conversation_id=room.id,
                    message_id=message_id,
                    actor_user_id=officer,
                )
            ],
        )

    def _plan_legal_hold_set(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        hold_id = f"hold-{self.rng.randrange(10**8):08d}"
        officer = self.rng.choice(self._active_users(tenant)).id
        custodian = self.rng.choice(tenant.users).id
        room = self.rng.choice(tenant.rooms) if tenant.rooms and self.rng.random() < 0.5 else None
        tenant.holds.append(hold_id)
        attrs: dict[str, AttrValue] = {
            "hold_id": hold_id,
            "user_id": custodian,
            "reason": "litigation",
            "actor_user_id": officer,
        }
        fields = {"hold_id": hold_id, "user_id": custodian, "conversation_id": "", "actor_user_id": officer}
        if room is not None:
            attrs["conversation_id"] = fields["conversation_id"] = room.id
        return attrs, [_ev(COMPLIANCE, "compliance.v1.LegalHoldSet", tenant.name, **fields)]

    def _plan_legal_hold_released(self, tenant: _Tenant, version: int, given: dict[str, AttrValue]) -> Plan:
        if not tenant.holds:
            return None
        hold_id = tenant.holds.pop(self.rng.randrange(len(tenant.holds)))
        officer = self.rng.choice(self._active_users(tenant)).id
        return (
            {"hold_id": hold_id, "actor_user_id": officer},
            [
                _ev(
                    COMPLIANCE,
                    "compliance.v1.LegalHoldReleased",
                    tenant.name,
                    hold_id=hold_id,
                    actor_user_id=officer,
                )
            ],
        )


def generate(config: TrafficConfig, keys: SimulatorKeys, count: int) -> list[Publication]:
    """The first ``count`` publications for this configuration."""
    return TrafficGenerator(config, keys).take(count)


def write_ground_truth(target: Path | IO[str], publications: Iterable[Publication]) -> int:
    """Writes one JSON line per publication (see :meth:`Publication.ground_truth`); returns how many."""
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as out:
            return write_ground_truth(out, publications)
    count = 0
    for publication in publications:
        target.write(json.dumps(publication.ground_truth(), sort_keys=True) + "\n")
        count += 1
    return count


assert set(_WEIGHTS) | {"ROOM_REACTIVATED"} == {t for t, _ in SPECS}, "every legacy type is simulated"
