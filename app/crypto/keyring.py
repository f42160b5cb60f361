"""Per-tenant keys with rotation, cached with a TTL; lookups are synchronous and read the cache.

Each tenant has several live key versions: the *current* one encrypts, every live one decrypts.  Key
providers (:mod:`app.crypto.keyfile`, :mod:`app.crypto.kms`) load a :class:`KeySet` asynchronously;
the :class:`Keyring` keeps it for ``ttl_seconds``.  Callers (the normalize agent) await
:meth:`Keyring.ensure_fresh` now and then — it reloads once half the TTL has passed or after a lookup
missed; a failed reload keeps the old keys until the TTL is over, after which lookups fail with
UnknownKeyError (a revoked key stops working within one TTL).

Nothing here shows key bytes: ``repr``/``str`` of keys, key sets and keyrings print ids only.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from app.crypto.aead import KEY_BYTES
from app.crypto.errors import KeyFileError, UnknownKeyError


class SecretKey:
    """32 bytes of key material that never appear in a repr, str or log line."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise KeyFileError(f"a tenant key must be {KEY_BYTES} bytes, got {len(material)}")
        self._material = bytes(material)

    def reveal(self) -> bytes:
        """The key bytes, for the cipher only."""
        return self._material

    def __repr__(self) -> str:
        return "SecretKey(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._material, other._material)

    def __hash__(self) -> int:
        return hash(SecretKey)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretKey cannot be pickled")


@dataclass(frozen=True)
class TenantKeys:
    """The live keys of one tenant: key id -> key, and which one encrypts (None if it could not be loaded)."""

    current_key_id: str | None
    keys: Mapping[str, SecretKey] = field(repr=False)

    def __repr__(self) -> str:
        return f"TenantKeys(current={self.current_key_id!r}, key_ids={sorted(self.keys)!r})"


class KeySet:
    """All tenants' live keys. A key id may belong to one tenant only (checked here)."""

    def __init__(self, tenants: Mapping[str, TenantKeys]) -> None:
        owner: dict[str, str] = {}
        for tenant, keys in tenants.items():
            for key_id in keys.keys:
                if key_id in owner:
                    raise KeyFileError(
                        f"key id {key_id!r} is listed for tenants {owner[key_id]!r} and {tenant!r}"
                    )
                owner[key_id] = tenant
            if keys.current_key_id is not None and keys.current_key_id not in keys.keys:
                raise KeyFileError(
                    f"tenant {tenant!r}: current key {keys.current_key_id!r} is not among its keys"
                )
        self._tenants = dict(tenants)

    def get(self, tenant_id: str) -> TenantKeys | None:
        """One tenant's keys, or None."""
        return self._tenants.get(tenant_id)

    def tenants(self) -> list[str]:
        """Tenant ids, sorted."""
        return sorted(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)

    def __repr__(self) -> str:
        return f"KeySet({len(self._tenants)} tenants)"


class KeyLookup(Protocol):
    """What the pure core needs from a keyring."""

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        """The live key ``key_id`` of ``tenant_id``; raises UnknownKeyError."""
        ...

    def current_key(self, tenant_id: str) -> tuple[str, bytes]:
        """(key id, key) that encrypts for ``tenant_id`` now; raises UnknownKeyError."""
        ...


class KeyProvider(Protocol):
    """Loads every tenant's live keys (from a key file, or unwrapping them with KMS)."""

    async def load(self) -> KeySet:
        """The first load."""
        ...

    async def refresh(self) -> KeySet:
        """A later load (key rotation, new tenants, revocations)."""
        ...


class Keyring:
    """TTL cache of one provider's keys with synchronous lookups (implements :class:`KeyLookup`)."""

    def __init__(
        self,
        provider: KeyProvider,
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._ttl = ttl_seconds
        self._clock = clock
        self._keys: KeySet | None = None
        self._loaded_at = float("-inf")
        self._missed = False
        self.last_error: str | None = None

    @classmethod
    def static(cls, keys: KeySet) -> Keyring:
        """A keyring over fixed keys that never expire (tests, tools)."""
        ring = cls(_StaticProvider(keys), ttl_seconds=float("inf"))
        ring._keys, ring._loaded_at = keys, 0.0
        return ring

    async def load(self) -> None:
        """Loads the keys; raises what the provider raises (a worker should not start without keys)."""
        self._install(await self._provider.load())

    async def refresh(self) -> None:
        """Reloads the keys now; raises what the provider raises."""
        self._install(await self._provider.refresh())

    async def ensure_fresh(self) -> bool:
        """Reloads when half the TTL has passed or a lookup missed since the last load; True if it did.

        A failed reload is remembered in ``last_error`` and the current keys stay until their TTL ends.
        """
        age = self._clock() - self._loaded_at
        if self._keys is not None and age < self._ttl / 2 and not self._missed:
            return False
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001 - keep serving the cached keys; the error is reported
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _install(self, keys: KeySet) -> None:
        self._keys, self._loaded_at, self._missed, self.last_error = keys, self._clock(), False, None

    @property
    def expired(self) -> bool:
        """True when the cached keys are older than the TTL (or were never loaded)."""
        return self._keys is None or self._clock() - self._loaded_at > self._ttl

    def _tenant(self, tenant_id: str) -> TenantKeys:
        if self._keys is None:
            raise UnknownKeyError("tenant keys are not loaded yet")
        if self.expired:
            raise UnknownKeyError(
                f"tenant keys expired (not refreshed for {self._ttl:g}s; last error: {self.last_error})"
            )
        keys = self._keys.get(tenant_id)
        if keys is None:
            self._missed = True
            raise UnknownKeyError(f"no keys for tenant {tenant_id!r}")
        return keys

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        """The live key ``key_id`` of ``tenant_id``; raises UnknownKeyError."""
        key = self._tenant(tenant_id).keys.get(key_id)
        if key is None:
            self._missed = True
            raise UnknownKeyError(f"tenant {tenant_id!r} has no live key {key_id!r}")
        return key.reveal()

    def current_key(self, tenant_id: str) -> tuple[str, bytes]:
        """(key id, key) that encrypts for ``tenant_id`` now; raises UnknownKeyError."""
        keys = self._tenant(tenant_id)
        if keys.current_key_id is None:
            raise UnknownKeyError(f"tenant {tenant_id!r} has no usable current key")
        return keys.current_key_id, keys.keys[keys.current_key_id].reveal()

    def tenants(self) -> list[str]:
        """Tenants with keys in the cache."""
        return self._keys.tenants() if self._keys is not None else []

    def key_ids(self, tenant_id: str) -> list[str]:
        """Live key ids of one tenant, sorted (empty if unknown)."""
        keys = self._keys.get(tenant_id) if self._keys is not None else None
        return sorted(keys.keys) if keys is not None else []

    def __repr__(self) -> str:
        return f"Keyring({self._keys!r}, ttl={self._ttl:g}s)"


class _StaticProvider:
    """A provider over fixed keys."""

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    async def load(self) -> KeySet:
        """The fixed keys."""
        return self._keys

    async def refresh(self) -> KeySet:
        """The fixed keys."""
        return self._keys


def key_set(tenants: Mapping[str, tuple[str | None, Iterable[tuple[str, bytes]]]]) -> KeySet:
    """A KeySet from plain values: tenant -> (current key id, [(key id, key bytes), ...])."""
    return KeySet(
        {
            t: TenantKeys(current, {kid: SecretKey(k) for kid, k in keys})
            for t, (current, keys) in tenants.items()
        }
    )
