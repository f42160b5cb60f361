"""Typed crypto errors. Each carries the dead-letter ``reason`` slug it maps to; messages name tenants and
key ids (not secret) but never key material or plaintext."""

from __future__ import annotations


class CryptoError(Exception):
    """Base class: something about keys or ciphertext went wrong."""

    reason = "decrypt_failed"


class UnknownKeyError(CryptoError):
    """No live key with that id for that tenant (or the tenant has no keys / no current key)."""

    reason = "unknown_key_id"


class DecryptError(CryptoError):
    """A ciphertext did not authenticate: tampered, truncated, wrong key, or another tenant's data."""

    reason = "decrypt_failed"


class KeyFileError(Exception):
    """A key file is missing, unreadable or not in the expected shape (a configuration problem)."""
