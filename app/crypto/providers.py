"""Choosing a key provider from settings (``CARRYOVER_KEY_PROVIDER``: local or kms)."""

from __future__ import annotations

from pathlib import Path

from app.crypto.keyring import KeyProvider, Keyring


def key_provider(kind: str, key_file: Path) -> KeyProvider:
    """The provider named ``kind`` ("local" key file or "kms" envelope) over ``key_file``."""
    if kind == "local":
        from app.crypto.keyfile import LocalKeyFileProvider  # noqa: PLC0415

        return LocalKeyFileProvider(key_file)
    if kind == "kms":
        from app.crypto.kms import KmsEnvelopeProvider  # noqa: PLC0415 - aiobotocore only when used

        return KmsEnvelopeProvider(key_file)
    raise ValueError(f"unknown key provider {kind!r} (expected local or kms)")


def keyring(kind: str, key_file: Path, ttl_seconds: float) -> Keyring:
    """A keyring over the named provider (call ``await keyring.load()`` before use)."""
    return Keyring(key_provider(kind, key_file), ttl_seconds=ttl_seconds)
