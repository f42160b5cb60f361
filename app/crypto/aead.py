"""AES-256-GCM with key ids (pure).

Wire form of a ciphertext: ``12-byte nonce || ciphertext || 16-byte tag``.  The associated data binds every
ciphertext to its tenant and key id (:func:`associated_data`), so a ciphertext copied into another tenant's
record, or relabelled with another key id, fails to decrypt.

Deterministic sealing (:func:`seal_deterministic`) derives the nonce with HMAC-SHA256 from a context
string (the canonical event id) *and* a hash of the plaintext, under a subkey derived from the data key:
a replay of the same event produces identical bytes, and even a changed plaintext under the same event id
never reuses a nonce with different data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.crypto.errors import DecryptError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_AD_LABEL = b"carryover.aead.v1"
_NONCE_LABEL = b"carryover.nonce.v1"


def _frame(*parts: bytes) -> bytes:
    """Length-prefixed concatenation, so ("ab", "c") and ("a", "bc") differ."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


@lru_cache(maxsize=4096)
def associated_data(tenant_id: str, key_id: str) -> bytes:
    """The associated data of every ciphertext: label, tenant id and key id (cached per pair)."""
    return _frame(_AD_LABEL, tenant_id.encode(), key_id.encode())


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"AES-256-GCM needs a {KEY_BYTES}-byte key, got {len(key)} bytes")


_KEYS_CACHED = 1024
"""Most data keys whose cipher and nonce subkey are kept (a worker holds its tenants' live keys)."""


@lru_cache(maxsize=_KEYS_CACHED)
def _cipher(key: bytes) -> AESGCM:
    """The AES-GCM cipher of a checked data key, built once per key."""
    _check_key(key)
    return AESGCM(key)


@lru_cache(maxsize=_KEYS_CACHED)
def _nonce_subkey(key: bytes) -> bytes:
    """The HMAC key nonces are derived under, derived once per data key."""
    _check_key(key)
    return hmac.new(key, _NONCE_LABEL, hashlib.sha256).digest()


def encrypt(
    key: bytes, plaintext: bytes, *, tenant_id: str, key_id: str, nonce: bytes | None = None
) -> bytes:
    """Encrypts ``plaintext`` for ``tenant_id`` under ``key_id``; a random nonce unless one is given."""
    cipher = _cipher(bytes(key))
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    return nonce + cipher.encrypt(nonce, plaintext, associated_data(tenant_id, key_id))


def decrypt(key: bytes, blob: bytes, *, tenant_id: str, key_id: str) -> bytes:
    """Decrypts ``nonce || ct || tag``; raises DecryptError when it does not authenticate."""
    cipher = _cipher(bytes(key))
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptError(
            f"ciphertext for tenant {tenant_id!r} key {key_id!r} is too short ({len(blob)} bytes)"
        )
    try:
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data(tenant_id, key_id))
    except InvalidTag:
        raise DecryptError(
            f"ciphertext does not authenticate under tenant {tenant_id!r} key {key_id!r} "
            "(tampered, truncated, encrypted with another key, or another tenant's data)"
        ) from None


def derive_nonce(key: bytes, context: bytes, plaintext: bytes) -> bytes:
    """A nonce determined by (key, context, plaintext): HMAC-SHA256 under a nonce subkey, first 12 bytes."""
    subkey = _nonce_subkey(bytes(key))
    digest = hmac.digest(subkey, _frame(context, hashlib.sha256(plaintext).digest()), "sha256")
    return digest[:NONCE_BYTES]


def seal_deterministic(key: bytes, plaintext: bytes, *, tenant_id: str, key_id: str, context: str) -> bytes:
    """Encrypts with a nonce derived from ``context`` and the plaintext: same inputs, same bytes."""
    nonce = derive_nonce(key, context.encode(), plaintext)
    return encrypt(key, plaintext, tenant_id=tenant_id, key_id=key_id, nonce=nonce)
