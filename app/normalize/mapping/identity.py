"""identity context: users and their business unit (pure)."""

from __future__ import annotations

from app.normalize.mapping.context import EventContext, Mapped, Mapper
from app.topics import USERS
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_deactivated_pb2 import UserDeactivated
from models.canonical.carryover.identity.v1.user_event_pb2 import UserEvent
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated
from models.legacy.codec import LegacyEvent


def user_created(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """USER_CREATED v1 (no business unit yet) / v2 -> UserCreated."""
    created = UserCreated(
        **ctx.common(0),
        user_id=event.text("user_id"),
        username=event.text("username"),
        display_name=event.text("display_name"),
        email=event.text("email", ""),
        business_unit=event.text("business_unit", ""),
    )
    return [Mapped(USERS, UserEvent(user_created=created))]


def user_updated(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """USER_UPDATED v1 (business unit was called "department") / v2 -> UserUpdated."""
    updated = UserUpdated(
        **ctx.common(0),
        user_id=event.text("user_id"),
        display_name=event.text("display_name", ""),
        email=event.text("email", ""),
        business_unit=event.text("business_unit", ""),
    )
    return [Mapped(USERS, UserEvent(user_updated=updated))]


def user_deactivated(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """USER_DEACTIVATED v1 -> UserDeactivated."""
    deactivated = UserDeactivated(
        **ctx.common(0), user_id=event.text("user_id"), actor_user_id=event.text("actor_user_id")
    )
    return [Mapped(USERS, UserEvent(user_deactivated=deactivated))]


MAPPERS: dict[tuple[str, int], Mapper] = {
    ("USER_CREATED", 1): user_created,
    ("USER_CREATED", 2): user_created,
    ("USER_UPDATED", 1): user_updated,
    ("USER_UPDATED", 2): user_updated,
    ("USER_DEACTIVATED", 1): user_deactivated,
}
"""identity mappers by legacy (type, version)."""
