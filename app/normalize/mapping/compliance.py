"""compliance context: message suppression and legal holds (pure)."""

from __future__ import annotations

from app.normalize.mapping.context import EventContext, Mapped, Mapper
from app.topics import COMPLIANCE
from models.canonical.carryover.compliance.v1.compliance_event_pb2 import ComplianceEvent
from models.canonical.carryover.compliance.v1.legal_hold_released_pb2 import LegalHoldReleased
from models.canonical.carryover.compliance.v1.legal_hold_set_pb2 import LegalHoldSet
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.legacy.codec import LegacyEvent, LegacyFormatError


def message_suppressed(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """MESSAGE_SUPPRESSED v1 (reason optional) / v2 -> MessageSuppressed."""
    suppressed = MessageSuppressed(
        **ctx.common(0),
        conversation_id=event.text("conversation_id"),
        message_id=event.text("message_id"),
        actor_user_id=event.text("actor_user_id"),
        reason=event.text("reason", ""),
    )
    return [Mapped(COMPLIANCE, ComplianceEvent(message_suppressed=suppressed))]


def legal_hold_set(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """LEGAL_HOLD_SET v2 -> LegalHoldSet; a hold needs a custodian (user) or a conversation."""
    user_id, conversation_id = event.text("user_id", ""), event.text("conversation_id", "")
    if not user_id and not conversation_id:
        raise LegacyFormatError(
            "malformed", "LEGAL_HOLD_SET v2 needs custodian.userId or conversation.streamId"
        )
    hold = LegalHoldSet(
        **ctx.common(0),
        hold_id=event.text("hold_id"),
        user_id=user_id,
        conversation_id=conversation_id,
        reason=event.text("reason"),
        actor_user_id=event.text("actor_user_id"),
    )
    return [Mapped(COMPLIANCE, ComplianceEvent(legal_hold_set=hold))]


def legal_hold_released(event: LegacyEvent, ctx: EventContext) -> list[Mapped]:
    """LEGAL_HOLD_RELEASED v2 -> LegalHoldReleased."""
    released = LegalHoldReleased(
        **ctx.common(0), hold_id=event.text("hold_id"), actor_user_id=event.text("actor_user_id")
    )
    return [Mapped(COMPLIANCE, ComplianceEvent(legal_hold_released=released))]


MAPPERS: dict[tuple[str, int], Mapper] = {
    ("MESSAGE_SUPPRESSED", 1): message_suppressed,
    ("MESSAGE_SUPPRESSED", 2): message_suppressed,
    ("LEGAL_HOLD_SET", 2): legal_hold_set,
    ("LEGAL_HOLD_RELEASED", 2): legal_hold_released,
}
"""compliance mappers by legacy (type, version)."""
