"""Compare canonical events with the simulator's ground truth, field by field, as a consumer reads them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.crypto import aead
from app.crypto.keyring import KeyLookup
from models.canonical.carryover.common.v1.member_role_pb2 import MemberRole


def field_value(event: Any, name: str, tenant_id: str, keys: KeyLookup) -> str:
    """The ground-truth form of one field of a canonical event (text decrypted with the tenant's key)."""
    if name == "text":
        key_id = event.text.key_id
        return aead.decrypt(
            keys.decryption_key(tenant_id, key_id), event.text.ciphertext, tenant_id=tenant_id, key_id=key_id
        ).decode()
    if name == "mentions":
        return ",".join(m.user_id for m in event.mentions)
    if name == "hashtags":
        return ",".join(event.hashtags)
    if name in ("role", "old_role", "new_role"):
        return str(MemberRole.Name(getattr(event, name))).removeprefix("MEMBER_ROLE_")
    return str(getattr(event, name))


Fields = tuple[tuple[str, str], ...]


def event_fields(event: Any, names: Iterable[str], tenant_id: str, keys: KeyLookup) -> Fields:
    """(name, value) pairs of ``names``, sorted, in ground-truth form."""
    return tuple(sorted((name, field_value(event, name, tenant_id, keys)) for name in names))
