"""collaboration context: rooms -> conversations, membership, messages and reactions (pure)."""

from __future__ import annotations

from typing import Any

from app.normalize.mapping.context import ROLES, EventContext, Mapped, Mapper
from app.normalize.mapping.markup import NormalizedText, normalize_markup
from app.topics import CONVERSATIONS, MESSAGES
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.conversation_deactivated_pb2 import ConversationDeactivated
from models.canonical.carryover.collaboration.v1.conversation_event_pb2 import ConversationEvent
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
from models.canonical.carryover.common.v1.link_pb2 import Link
from models.canonical.carryover.common.v1.mention_pb2 import Mention
from models.legacy.codec import LegacyEvent


def _conversation(**event: Any) -> Mapped:
    return Mapped(CONVERSATIONS, ConversationEvent(**event))


def _message(**event: Any) -> Mapped:
    return Mapped(MESSAGES, MessageEvent(**event))


def _content(body: NormalizedText) -> dict[str, Any]:
    return {
        "mentions": [Mention(user_id=uid, display_name=name) for uid, name in body.mentions],
        "hashtags": list(body.hashtags),
        "links": [Link(url=url, text=text) for url, text in body.links],
    }


def message_sent(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MESSAGE_SENT v1/v2 -> MessageSent, text sealed with the tenant's current key."""
    body = normalize_markup(event.text("markup"))
    sent = MessageSent(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        message_id=event.text("message_id"),
        sender_user_id=event.text("sender_user_id"),
        text=ctx.seal(0, body.text),
        parent_message_id=event.text("parent_message_id", ""),
        **_content(body),
    )
    return [_message(message_sent=sent)]


def message_edited(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MESSAGE_EDITED v1/v2 -> MessageEdited."""
    body = normalize_markup(event.text("markup"))
    edited = MessageEdited(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        message_id=event.text("message_id"),
        editor_user_id=event.text("editor_user_id"),
        text=ctx.seal(0, body.text),
        **_content(body),
    )
    return [_message(message_edited=edited)]


def _reaction_fields(event: LegacyEvent) -> dict[str, Any]:
    return {
        "conversation_id": event.text("conversation_id"),
        "message_id": event.text("message_id"),
        "user_id": event.text("user_id"),
        "emoji": event.text("emoji"),
    }


def reaction_added(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """REACTION_ADDED v2 -> ReactionAdded."""
    return [_message(reaction_added=ReactionAdded(**ctx.common(0), **_reaction_fields(event)))]


def reaction_removed(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """REACTION_REMOVED v2 -> ReactionRemoved."""
    return [_message(reaction_removed=ReactionRemoved(**ctx.common(0), **_reaction_fields(event)))]


def room_created(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """ROOM_CREATED v1 -> ConversationCreated; v2 also lists initial members -> one MemberJoined each."""
    conversation_id, creator = event.text("conversation_id"), event.text("creator_user_id")
    created = ConversationCreated(
        **ctx.common(0),
        conversation_id=conversation_id,
        name=event.text("name"),
        description=event.text("description", ""),
        creator_user_id=creator,
        external=event.flag("external"),
        public=event.flag("public"),
    )
    out = [_conversation(conversation_created=created)]
    for index, (user_id, role) in enumerate(event.members(), start=1):
        joined = MemberJoined(
            **ctx.common(index),
            conversation_id=conversation_id,
            user_id=user_id,
            actor_user_id=creator,
            role=ROLES[role],
        )
        out.append(_conversation(member_joined=joined))
    return out


def room_updated(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """ROOM_UPDATED v1 -> ConversationUpdated."""
    updated = ConversationUpdated(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        name=event.text("name"),
        description=event.text("description", ""),
        actor_user_id=event.text("actor_user_id"),
    )
    return [_conversation(conversation_updated=updated)]


def room_deactivated(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """ROOM_DEACTIVATED v1 -> ConversationDeactivated."""
    fields: dict[str, Any] = {
        "conversation_id": event.text("conversation_id"),
        "actor_user_id": event.text("actor_user_id"),
    }
    return [_conversation(conversation_deactivated=ConversationDeactivated(**ctx.common(0), **fields))]


def room_reactivated(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """ROOM_REACTIVATED v1 -> ConversationReactivated."""
    fields: dict[str, Any] = {
        "conversation_id": event.text("conversation_id"),
        "actor_user_id": event.text("actor_user_id"),
    }
    return [_conversation(conversation_reactivated=ConversationReactivated(**ctx.common(0), **fields))]


def user_joined(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """USER_JOINED_ROOM v1 (plain member; self-join unless an actor is named) / v2 (role) -> MemberJoined."""
    user_id = event.text("user_id")
    joined = MemberJoined(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        user_id=user_id,
        actor_user_id=event.text("actor_user_id", user_id),
        role=ROLES[event.text("role", "MEMBER")],
    )
    return [_conversation(member_joined=joined)]


def user_left(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """USER_LEFT_ROOM v1 -> MemberLeft (the user left by themselves unless an actor is named)."""
    user_id = event.text("user_id")
    left = MemberLeft(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        user_id=user_id,
        actor_user_id=event.text("actor_user_id", user_id),
    )
    return [_conversation(member_left=left)]


def _role_changed(event: LegacyEvent, ctx: EventContext, old_role: str, new_role: str) -> list[Mapped]:
    changed = MemberRoleChanged(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        user_id=event.text("user_id"),
        actor_user_id=event.text("actor_user_id"),
        old_role=ROLES[old_role],
        new_role=ROLES[new_role],
    )
    return [_conversation(member_role_changed=changed)]


def member_promoted_v1(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MEMBER_PROMOTED v1 knew only members and owners: member -> owner."""
    return _role_changed(event, ctx, "MEMBER", "OWNER")


def member_demoted_v1(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MEMBER_DEMOTED v1: owner -> member."""
    return _role_changed(event, ctx, "OWNER", "MEMBER")


def member_role_changed_v2(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MEMBER_PROMOTED / MEMBER_DEMOTED v2 carry both roles (moderators exist since v2)."""
    return _role_changed(event, ctx, event.text("from_role"), event.text("to_role"))


MAPPERS: dict[tuple[str, int], Mapper] = {
    ("MESSAGE_SENT", 1): message_sent,
    ("MESSAGE_SENT", 2): message_sent,
    ("MESSAGE_EDITED", 1): message_edited,
    ("MESSAGE_EDITED", 2): message_edited,
    ("REACTION_ADDED", 2): reaction_added,
    ("REACTION_REMOVED", 2): reaction_removed,
    ("ROOM_CREATED", 1): room_created,
    ("ROOM_CREATED", 2): room_created,
    ("ROOM_UPDATED", 1): room_updated,
    ("ROOM_DEACTIVATED", 1): room_deactivated,
    ("ROOM_REACTIVATED", 1): room_reactivated,
    ("USER_JOINED_ROOM", 1): user_joined,
    ("USER_JOINED_ROOM", 2): user_joined,
    ("USER_LEFT_ROOM", 1): user_left,
    ("MEMBER_PROMOTED", 1): member_promoted_v1,
    ("MEMBER_PROMOTED", 2): member_role_changed_v2,
    ("MEMBER_DEMOTED", 1): member_demoted_v1,
    ("MEMBER_DEMOTED", 2): member_role_changed_v2,
}
"""collaboration mappers by legacy (type, version)."""
