"""What every mapper gets besides the legacy event, and what it returns (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.member_role_pb2 import (
    MEMBER_ROLE_MEMBER,
    MEMBER_ROLE_MODERATOR,
    MEMBER_ROLE_OWNER,
    MemberRole,
)
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance
from models.legacy.codec import LegacyEvent

_TIMESTAMP_SECONDS_MIN, _TIMESTAMP_SECONDS_MAX = -62_135_596_800, 253_402_300_799
"""The seconds a protobuf Timestamp can hold (years 1 to 9999), as ``Timestamp.FromMilliseconds`` checks."""

ROLES: dict[str, MemberRole] = {
    "MEMBER": MEMBER_ROLE_MEMBER,
    "OWNER": MEMBER_ROLE_OWNER,
    "MODERATOR": MEMBER_ROLE_MODERATOR,
}


@dataclass(frozen=True)
class Mapped:
    """One canonical envelope and the topic it goes to."""

    topic: str
    envelope: Message


@dataclass(frozen=True)
class EventContext:
    """Tenant, time, provenance, deterministic event ids and the tenant's text sealer for one legacy event.

    Mappers number the canonical events they produce from 0; ``event_id(i)`` and ``seal(i, text)`` use
    that index, so the same legacy event always yields the same ids and ciphertexts.
    """

    tenant_id: str
    occurred_ms: int
    provenance: Provenance
    event_id: Callable[[int], str]
    seal: Callable[[int, str], EncryptedText]

    def common(self, index: int) -> dict[str, Any]:
        """The four common attributes of canonical event number ``index`` (constructor keywords)."""
        seconds, millis = divmod(self.occurred_ms, 1000)
        if _TIMESTAMP_SECONDS_MIN <= seconds <= _TIMESTAMP_SECONDS_MAX:
            when = Timestamp(seconds=seconds, nanos=millis * 1_000_000)
        else:  # raises ValueError, as it always did
            when = Timestamp()
            when.FromMilliseconds(self.occurred_ms)
        return {
            "tenant_id": self.tenant_id,
            "event_id": self.event_id(index),
            "event_time": when,
            "provenance": self.provenance,
        }


Mapper = Callable[[LegacyEvent, EventContext], list[Mapped]]
"""Maps one legacy event of a known (type, version) to its canonical events."""
