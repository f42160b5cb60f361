"""Builders shared by the archive tests (canonical events with encrypted text, state, directory, keys), and
the checks that they build what the archive reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from app.archive.policy import Window
from app.archive.window import ArchiveEvent, ConversationWindow, archive_event, conversation_window
from app.crypto import aead
from app.crypto.errors import UnknownKeyError
from app.state.conversation import ConversationState
from app.state.directory import DictDirectory, UserRecord
from app.state.facts import fact_from_event
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.conversation_deactivated_pb2 import ConversationDeactivated
from models.canonical.carryover.collaboration.v1.conversation_reactivated_pb2 import ConversationReactivated
from models.canonical.carryover.collaboration.v1.conversation_updated_pb2 import ConversationUpdated
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.collaboration.v1.member_left_pb2 import MemberLeft
from models.canonical.carryover.collaboration.v1.member_role_changed_pb2 import MemberRoleChanged
from models.canonical.carryover.collaboration.v1.message_edited_pb2 import MessageEdited
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.collaboration.v1.reaction_added_pb2 import ReactionAdded
from models.canonical.carryover.collaboration.v1.reaction_removed_pb2 import ReactionRemoved
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.member_role_pb2 import (
    MEMBER_ROLE_MEMBER,
    MEMBER_ROLE_OWNER,
    MemberRole,
)
from models.canonical.carryover.common.v1.mention_pb2 import Mention
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, ROOM = "acme-bank", "q83vEjRWeJCrze8SNFZ4kA"
KEY_ID, KEY = "acme-bank-k1", bytes(range(32))
HOUR = 3_600_000
T0 = int(datetime(2024, 3, 1, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
"""2024-03-01T00:00:00Z, the start of the test day."""
DAY = Window(T0, T0 + 24 * HOUR)


class Keys:
    """A key lookup with one key of one tenant."""

    def __init__(self, tenant: str = TENANT, key_id: str = KEY_ID, key: bytes = KEY) -> None:
        self.tenant, self.key_id, self.key = tenant, key_id, key
        self.lookups = 0

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        self.lookups += 1
        if (tenant_id, key_id) != (self.tenant, self.key_id):
            raise UnknownKeyError(f"no key {key_id!r} for {tenant_id!r}")
        return self.key


def common(event_id: str, t: int, tenant: str = TENANT) -> dict[str, Any]:
    when = Timestamp()
    when.FromMilliseconds(t)
    return {"tenant_id": tenant, "event_id": event_id, "event_time": when}


def encrypted(text: str, context: str, tenant: str = TENANT) -> EncryptedText:
    blob = aead.seal_deterministic(KEY, text.encode(), tenant_id=tenant, key_id=KEY_ID, context=context)
    return EncryptedText(key_id=KEY_ID, ciphertext=blob)


def created(e: str, t: int, name: str = "FX desk", creator: str = "u1", room: str = ROOM) -> Message:
    return ConversationCreated(**common(e, t), conversation_id=room, name=name, creator_user_id=creator)


def joined(
    e: str,
    t: int,
    user: str,
    role: MemberRole = MEMBER_ROLE_MEMBER,
    actor: str = "",
    room: str = ROOM,
) -> Message:
    return MemberJoined(
        **common(e, t), conversation_id=room, user_id=user, role=role, actor_user_id=actor or user
    )


def left(e: str, t: int, user: str, actor: str = "", room: str = ROOM) -> Message:
    return MemberLeft(**common(e, t), conversation_id=room, user_id=user, actor_user_id=actor or user)


def promoted(e: str, t: int, user: str) -> Message:
    return MemberRoleChanged(
        **common(e, t),
        conversation_id=ROOM,
        user_id=user,
        actor_user_id="u1",
        old_role=MEMBER_ROLE_MEMBER,
        new_role=MEMBER_ROLE_OWNER,
    )


def sent(
    e: str, t: int, user: str, text: str, message_id: str = "", parent: str = "", room: str = ROOM
) -> Message:
    return MessageSent(
        **common(e, t),
        conversation_id=room,
        message_id=message_id or f"m-{e}",
        sender_user_id=user,
        text=encrypted(text, e),
        mentions=[Mention(user_id="u2", display_name="Bob")] if "@bob" in text else [],
        hashtags=["fx"] if "#fx" in text else [],
        parent_message_id=parent,
    )


def sent_envelope(e: str, t: int, user: str, text: str) -> Message:
    return MessageEvent(message_sent=sent(e, t, user, text))  # type: ignore[arg-type]


def edited(e: str, t: int, user: str, message_id: str, text: str) -> Message:
    return MessageEdited(
        **common(e, t),
        conversation_id=ROOM,
        message_id=message_id,
        editor_user_id=user,
        text=encrypted(text, e),
    )


def reacted(e: str, t: int, user: str, message_id: str, emoji: str = "thumbsup") -> Message:
    return ReactionAdded(
        **common(e, t), conversation_id=ROOM, message_id=message_id, user_id=user, emoji=emoji
    )


def suppressed(e: str, t: int, message_id: str, reason: str = "MNPI", officer: str = "u9") -> Message:
    return MessageSuppressed(
        **common(e, t), conversation_id=ROOM, message_id=message_id, actor_user_id=officer, reason=reason
    )


def every_kind_events() -> list[Message]:
    """One event of every archived kind (lifecycle without actors, a reaction removed, a reply)."""
    return [
        created("k0", T0 + 1, name="Deal <room> & co", creator=""),
        joined("k1", T0 + 2, "u1"),
        ConversationUpdated(**common("k2", T0 + 3), conversation_id=ROOM, name="Renamed", actor_user_id="u1"),
        sent("k3", T0 + 4, "u1", "first", message_id="m1"),
        sent("k4", T0 + 5, "u1", "reply", message_id="m2", parent="m1"),
        reacted("k5", T0 + 6, "u1", "m1", emoji="🎉"),
        ReactionRemoved(
            **common("k6", T0 + 7), conversation_id=ROOM, message_id="m1", user_id="u1", emoji="🎉"
        ),
        promoted("k7", T0 + 8, "u1"),
        ConversationDeactivated(**common("k8", T0 + 9), conversation_id=ROOM),
        ConversationReactivated(**common("k9", T0 + 10), conversation_id=ROOM, actor_user_id="u1"),
        edited("k10", T0 + 11, "u1", "m2", "reply, edited"),
        suppressed("k11", T0 + 12, "m2", reason=""),
        left("k12", T0 + 13, "u1", actor="u9"),
    ]


def hold(e: str, t: int) -> Message:
    return LegalHoldSet(**common(e, t), conversation_id=ROOM, hold_id="h1", actor_user_id="u9")


def state_of(events: Iterable[Message], room: str = ROOM) -> ConversationState:
    state = ConversationState(TENANT, room)
    for event in events:
        fact = fact_from_event(event)
        assert fact is not None
        state.apply(fact)
    return state


def directory(
    units: Mapping[str, Sequence[tuple[int, str]]], names: dict[str, tuple[str, str]] | None = None
) -> DictDirectory:
    """Users with their business-unit changes [(t, unit)] and (display name, e-mail)."""
    book = DictDirectory()
    names = names or {}
    for user, changes in units.items():
        display, email = names.get(user, (f"User {user}", f"{user}@acme.example"))
        book.apply(
            fact_from_event(
                UserCreated(**common(f"uc-{user}", 0), user_id=user, display_name=display, email=email)
            )  # type: ignore[arg-type]
        )
        for i, (t, unit) in enumerate(changes):
            update = UserUpdated(**common(f"uu-{user}-{i}", t), user_id=user, business_unit=unit)
            book.apply(fact_from_event(update))  # type: ignore[arg-type]
    return book


def directory_with_a_lone_surrogate() -> DictDirectory:
    """User u1 (unit "t") whose stored name holds a lone surrogate: protobuf cannot carry it, JSON can."""
    name = "bad \\ud800 name"
    record = f'{{"v":1,"t":"{TENANT}","u":"u1","dn":[0,"x","{name}"],"em":null,"lc":[],"bu":[[0,"y","t"]]}}'
    return DictDirectory([UserRecord.from_json(record.encode())])


def desk_events() -> list[Message]:
    """A day of an FX desk room: joins, messages, an edit, a reaction, a suppression, a leave, a hold."""
    return [
        created("e00", T0 - 10 * HOUR),
        joined("e01", T0 - 9 * HOUR, "u1", MEMBER_ROLE_OWNER),
        joined("e02", T0 - 9 * HOUR, "u2"),
        sent("e03", T0 - HOUR, "u1", "yesterday's message"),
        sent("e10", T0 + 9 * HOUR, "u1", "Morning @bob, EUR/USD 1.0842 #fx", message_id="m1"),
        sent("e11", T0 + 9 * HOUR + 5, "u2", "line one\nline two & <three>", message_id="m2"),
        edited("e12", T0 + 9 * HOUR + 60_000, "u1", "m1", "Morning @bob, EUR/USD 1.0843 #fx"),
        reacted("e13", T0 + 9 * HOUR + 70_000, "u2", "m1"),
        joined("e14", T0 + 10 * HOUR, "u3", actor="u1"),
        sent("e15", T0 + 10 * HOUR + 1, "u3", "héllo — naïve ünïcödé 日本語", message_id="m3"),
        sent("e16", T0 + 11 * HOUR, "u2", "inside info", message_id="m4"),
        suppressed("e17", T0 + 11 * HOUR + 30_000, "m4"),
        promoted("e18", T0 + 12 * HOUR, "u2"),
        left("e19", T0 + 13 * HOUR, "u3"),
        hold("e20", T0 + 14 * HOUR),
        sent("e30", T0 + 24 * HOUR, "u1", "tomorrow's message"),
    ]


def desk_directory() -> DictDirectory:
    return directory(
        {"u1": [(0, "trading")], "u2": [(0, "trading")], "u3": [(0, "sales")], "u9": [(0, "compliance")]},
        {
            "u1": ("Alice Smith", "alice@acme.example"),
            "u2": ("Bob Ünver", "bob@acme.example"),
            "u3": ('Carol "CJ" O\'Neil', "carol@acme.example"),
            "u9": ("Officer Dee", "dee@acme.example"),
        },
    )


def desk_window(business_unit: str = "trading", events: list[Message] | None = None) -> ConversationWindow:
    events = desk_events() if events is None else events
    window = conversation_window(state_of(events), desk_directory(), business_unit, DAY, events)
    assert window is not None
    return window


def as_archive_events(events: Iterable[Message]) -> list[ArchiveEvent]:
    return [e for e in (archive_event(m) for m in events) if e is not None]


# -- the builders build what the archive reads -----------------------------------------------------------


def test_desk_events_decrypt_with_the_keys() -> None:
    event = sent("x1", T0, "u1", "bonjour")
    assert aead.decrypt(KEY, event.text.ciphertext, tenant_id=TENANT, key_id=KEY_ID) == b"bonjour"  # type: ignore[attr-defined]


def test_desk_window_has_the_days_events_only() -> None:
    window = desk_window()
    ids = [e.fact.event_id for e in window.events]
    assert ids == ["e10", "e11", "e12", "e13", "e14", "e15", "e16", "e17", "e18", "e19"]
