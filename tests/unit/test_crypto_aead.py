"""AES-256-GCM with tenant/key-id binding and deterministic sealing."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.crypto import aead
from app.crypto.errors import DecryptError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_round_trip(plaintext: bytes, tenant: str, key_id: str) -> None:
    blob = aead.encrypt(KEY, plaintext, tenant_id=tenant, key_id=key_id)
    assert len(blob) == aead.NONCE_BYTES + len(plaintext) + aead.TAG_BYTES
    assert aead.decrypt(KEY, blob, tenant_id=tenant, key_id=key_id) == plaintext


@pytest.mark.parametrize(
    ("key", "tenant", "key_id"),
    [(OTHER_KEY, "acme", "acme/v1"), (KEY, "globex", "acme/v1"), (KEY, "acme", "acme/v2")],
    ids=["wrong key", "moved to another tenant", "relabelled key id"],
)
def test_ciphertext_only_opens_for_its_tenant_key_and_key_id(key: bytes, tenant: str, key_id: str) -> None:
    blob = aead.encrypt(KEY, b"secret trade", tenant_id="acme", key_id="acme/v1")
    with pytest.raises(DecryptError) as caught:
        aead.decrypt(key, blob, tenant_id=tenant, key_id=key_id)
    assert caught.value.reason == "decrypt_failed"
    assert KEY.hex() not in str(caught.value) and "secret trade" not in str(caught.value)


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_detected(position: int, bit: int) -> None:
    blob = bytearray(aead.encrypt(KEY, b"0123456789abcdef", tenant_id="t", key_id="k"))
    blob[position % len(blob)] ^= 1 << bit
    with pytest.raises(DecryptError):
        aead.decrypt(KEY, bytes(blob), tenant_id="t", key_id="k")


def test_truncated_ciphertext_is_a_decrypt_error() -> None:
    with pytest.raises(DecryptError, match="too short"):
        aead.decrypt(KEY, b"\x00" * 27, tenant_id="t", key_id="k")


def test_deterministic_sealing_is_replay_stable_and_context_sensitive() -> None:
    first = aead.seal_deterministic(KEY, b"hello", tenant_id="t", key_id="k", context="event-1")
    again = aead.seal_deterministic(KEY, b"hello", tenant_id="t", key_id="k", context="event-1")
    other_event = aead.seal_deterministic(KEY, b"hello", tenant_id="t", key_id="k", context="event-2")
    other_text = aead.seal_deterministic(KEY, b"hellp", tenant_id="t", key_id="k", context="event-1")
    assert first == again
    assert first[:12] != other_event[:12]
    assert first[:12] != other_text[:12]  # a changed plaintext never reuses the nonce
    assert aead.decrypt(KEY, first, tenant_id="t", key_id="k") == b"hello"


def test_random_nonces_differ() -> None:
    assert aead.encrypt(KEY, b"x", tenant_id="t", key_id="k") != aead.encrypt(
        KEY, b"x", tenant_id="t", key_id="k"
    )


def test_key_of_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        aead.encrypt(os.urandom(16), b"x", tenant_id="t", key_id="k")
