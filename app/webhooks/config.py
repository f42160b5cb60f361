"""The ``carryover.config.webhooks`` record: a hook definition with its secrets sealed (pure).

Keyed by hook id; the value is compact JSON::

    {"v": 1, "hook": {<HookDefinition.public_fields() but secret_count>},
     "secrets": [{"key_id": "...", "sealed": "<base64 of nonce || ciphertext || tag>"}, ...],
     "revision": n, "updated_ms": t, "change": "created" | "rotated" | "disabled" | "enabled" | ...}

Each secret is sealed with the hook tenant's *current* key (AES-256-GCM, associated data = tenant and key
id, :mod:`app.crypto.aead`), so the topic, its backups and anyone reading it without the tenant's key see
no secret. ``revision`` counts the changes of one hook (1 at creation); ``change`` says what the last one
was, for the operator. A null value (tombstone) deletes the hook.

:func:`open_hook` needs the tenant's key of each secret (:class:`app.crypto.keyring.KeyLookup`); a record
it cannot open raises :class:`ConfigRecordError` naming the hook and what is wrong, never a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from app.crypto import aead
from app.crypto.errors import CryptoError
from app.crypto.keyring import KeyLookup
from app.webhooks.hooks import HookDefinition, HookDefinitionError

CONFIG_VERSION = 1


class ConfigRecordError(ValueError):
    """A config record that cannot be read: which hook and why (never a secret)."""


@dataclass(frozen=True)
class StoredHook:
    """A hook as the config topic holds it: the definition (secrets open) and its change record."""

    hook: HookDefinition
    revision: int
    updated_ms: int
    change: str

    def public_json(self) -> dict[str, Any]:
        """What the admin API shows: the public fields plus revision, update time and last change."""
        return {
            **self.hook.public_fields(),
            "revision": self.revision,
            "updated_ms": self.updated_ms,
            "change": self.change,
        }


def seal_hook(stored: StoredHook, keys: KeyLookup) -> bytes:
    """The config record value of ``stored``: its secrets sealed with the tenant's current key."""
    hook = stored.hook
    key_id, key = keys.current_key(hook.tenant)
    fields = hook.public_fields()
    del fields["secret_count"]
    sealed = [
        {
            "key_id": key_id,
            "sealed": base64.b64encode(
                aead.encrypt(key, secret.value.encode(), tenant_id=hook.tenant, key_id=key_id)
            ).decode(),
        }
        for secret in hook.secrets
    ]
    record = {
        "v": CONFIG_VERSION,
        "hook": fields,
        "secrets": sealed,
        "revision": stored.revision,
        "updated_ms": stored.updated_ms,
        "change": stored.change,
    }
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def open_hook(value: bytes, keys: KeyLookup, *, hook_id: str = "?") -> StoredHook:
    """The hook in a config record value; :class:`ConfigRecordError` when it cannot be read or opened."""
    try:
        record = json.loads(value)
    except (ValueError, RecursionError):
        raise ConfigRecordError(f"hook {hook_id}: config record is not JSON") from None
    if not isinstance(record, dict) or record.get("v") != CONFIG_VERSION:
        raise ConfigRecordError(f"hook {hook_id}: config record is not version {CONFIG_VERSION}")
    fields, sealed = record.get("hook"), record.get("secrets")
    if not isinstance(fields, dict) or not isinstance(sealed, list):
        raise ConfigRecordError(f"hook {hook_id}: config record lacks 'hook' or 'secrets'")
    tenant = fields.get("tenant")
    if not isinstance(tenant, str):
        raise ConfigRecordError(f"hook {hook_id}: config record has no tenant")
    secrets: list[str] = []
    for index, entry in enumerate(sealed):
        try:
            key_id = str(entry["key_id"])
            blob = base64.b64decode(entry["sealed"], validate=True)
            key = keys.decryption_key(tenant, key_id)
            secrets.append(aead.decrypt(key, blob, tenant_id=tenant, key_id=key_id).decode())
        except (KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ConfigRecordError(f"hook {hook_id}: sealed secret {index} is malformed") from None
        except CryptoError as exc:
            raise ConfigRecordError(
                f"hook {hook_id}: sealed secret {index} cannot be opened with tenant {tenant!r}'s keys "
                f"({type(exc).__name__}): is the worker's CARRYOVER_KEY_FILE the tenant's?"
            ) from None
    try:
        hook = HookDefinition.from_dict({**fields, "secrets": secrets})
    except HookDefinitionError as exc:
        raise ConfigRecordError(f"hook {hook_id}: {exc}") from None
    revision, updated_ms = record.get("revision"), record.get("updated_ms")
    if not isinstance(revision, int) or not isinstance(updated_ms, int):
        raise ConfigRecordError(f"hook {hook_id}: revision and updated_ms must be integers")
    return StoredHook(hook, revision, updated_ms, str(record.get("change", "")))
