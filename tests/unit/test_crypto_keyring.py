"""Keyring: rotation, TTL cache, refresh, isolation, and keys never printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from app.crypto.errors import KeyFileError, UnknownKeyError
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file, read_key_file, write_key_file
from app.crypto.keyring import Keyring, KeySet, SecretKey, key_set

K1, K2, K3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingProvider:
    """A provider whose keys the test changes, counting loads; can be made to fail."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.loads = 0
        self.fail = False

    async def load(self) -> KeySet:
        self.loads += 1
        if self.fail:
            raise ConnectionError("kms unreachable")
        return self.keys

    refresh = load


def two_tenants() -> KeySet:
    return key_set(
        {
            "acme": ("acme/v2", [("acme/v1", K1), ("acme/v2", K2)]),
            "globex": ("globex/v1", [("globex/v1", K3)]),
        }
    )


def test_current_key_encrypts_all_live_keys_decrypt() -> None:
    ring = Keyring.static(two_tenants())
    assert ring.current_key("acme") == ("acme/v2", K2)
    assert ring.decryption_key("acme", "acme/v1") == K1
    assert ring.decryption_key("acme", "acme/v2") == K2


@pytest.mark.parametrize(
    ("tenant", "key_id", "says"),
    [
        ("acme", "acme/v9", "no live key 'acme/v9'"),
        ("acme", "globex/v1", "no live key"),
        ("initech", "x", "no keys"),
    ],
)
def test_unknown_keys_raise_typed_error(tenant: str, key_id: str, says: str) -> None:
    ring = Keyring.static(two_tenants())
    with pytest.raises(UnknownKeyError, match=says) as caught:
        ring.decryption_key(tenant, key_id)
    assert caught.value.reason == "unknown_key_id"


def test_key_id_shared_by_two_tenants_is_refused() -> None:
    with pytest.raises(KeyFileError, match="listed for tenants"):
        key_set({"a": ("k", [("k", K1)]), "b": ("k", [("k", K2)])})


def test_nothing_that_holds_keys_prints_them() -> None:
    keys = two_tenants()
    ring = Keyring.static(keys)
    texts = [
        repr(ring),
        str(ring),
        repr(keys),
        repr(keys.get("acme")),
        str(keys.get("acme")),
        repr(SecretKey(K1)),
    ]
    for text in texts:
        for key in (K1, K2, K3):
            assert (
                key.hex() not in text and repr(key) not in text and base64.b64encode(key).decode() not in text
            )
    assert "acme/v2" in repr(keys.get("acme"))


async def test_ttl_expiry_refresh_and_failed_refresh() -> None:
    clock = Clock()
    provider = CountingProvider(two_tenants())
    ring = Keyring(provider, ttl_seconds=100, clock=clock)
    with pytest.raises(UnknownKeyError, match="not loaded"):
        ring.current_key("acme")
    await ring.load()
    assert await ring.ensure_fresh() is False  # fresh
    clock.now += 60  # past half the TTL -> reload
    provider.keys = key_set({"acme": ("acme/v3", [("acme/v2", K2), ("acme/v3", K3)])})  # rotated, v1 revoked
    assert await ring.ensure_fresh() is True
    assert ring.current_key("acme") == ("acme/v3", K3)
    with pytest.raises(UnknownKeyError):
        ring.decryption_key("acme", "acme/v1")
    provider.fail = True
    clock.now += 60
    assert await ring.ensure_fresh() is False
    assert ring.last_error == "ConnectionError: kms unreachable"
    assert ring.decryption_key("acme", "acme/v2") == K2  # still within the TTL
    clock.now += 50
    with pytest.raises(UnknownKeyError, match="expired"):
        ring.decryption_key("acme", "acme/v2")


async def test_a_miss_triggers_a_reload_on_the_next_ensure_fresh() -> None:
    provider = CountingProvider(two_tenants())
    ring = Keyring(provider, ttl_seconds=100, clock=Clock())
    await ring.load()
    with pytest.raises(UnknownKeyError):
        ring.current_key("initech")
    provider.keys = key_set({"initech": ("initech/v1", [("initech/v1", K1)])})
    assert await ring.ensure_fresh() is True
    assert ring.current_key("initech") == ("initech/v1", K1)


@pytest.mark.parametrize("name", ["keys.json", "keys.yaml"])
async def test_generated_key_file_loads_with_the_local_provider(tmp_path: Path, name: str) -> None:
    path = generate_key_file(tmp_path / name, ["acme", "globex"], versions=3)
    assert path.stat().st_mode & 0o777 == 0o600
    ring = Keyring(LocalKeyFileProvider(path))
    await ring.load()
    assert ring.tenants() == ["acme", "globex"]
    assert ring.key_ids("acme") == ["acme/v1", "acme/v2", "acme/v3"]
    key_id, key = ring.current_key("globex")
    assert key_id == "globex/v3" and len(key) == 32
    assert ring.decryption_key("acme", "acme/v1") != ring.decryption_key("globex", "globex/v1")


async def test_rotation_through_the_key_file(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "keys.json", ["acme"], versions=1)
    ring = Keyring(LocalKeyFileProvider(path))
    await ring.load()
    old_id, old_key = ring.current_key("acme")
    entries = read_key_file(path)
    entries["acme"]["keys"]["acme/v2"] = base64.b64encode(K2).decode()
    entries["acme"]["current"] = "acme/v2"
    write_key_file(path, entries)
    await ring.refresh()
    assert ring.current_key("acme") == ("acme/v2", K2)
    assert ring.decryption_key("acme", old_id) == old_key


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"tenants": {}}), "format"),
        (json.dumps({"format": "carryover-keys/1", "tenants": {"a": {"keys": {}}}}), "non-empty"),
        (
            json.dumps(
                {"format": "carryover-keys/1", "tenants": {"a": {"current": "x", "keys": {"k": "AAAA"}}}}
            ),
            "current",
        ),
        (
            json.dumps(
                {"format": "carryover-keys/1", "tenants": {"a": {"current": "k", "keys": {"k": "%%"}}}}
            ),
            "not valid base64",
        ),
        (
            json.dumps(
                {"format": "carryover-keys/1", "tenants": {"a": {"current": "k", "keys": {"k": "AAAA"}}}}
            ),
            "not 32 bytes",
        ),
        (
            json.dumps(
                {
                    "format": "carryover-keys/1",
                    "tenants": {"a": {"current": "k", "kms_key_id": "alias/x", "keys": {"k": "AAAA"}}},
                }
            ),
            "kms key provider",
        ),
    ],
)
async def test_bad_key_files_are_explained(tmp_path: Path, document: str, says: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(document)
    with pytest.raises(KeyFileError, match=says):
        await LocalKeyFileProvider(path).load()


async def test_yaml_key_file_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "keys.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "format": "carryover-keys/1",
                "tenants": {
                    "acme": {"current": "acme/v1", "keys": {"acme/v1": base64.b64encode(K1).decode()}}
                },
            }
        )
    )
    ring = Keyring(LocalKeyFileProvider(path))
    await ring.load()
    assert ring.current_key("acme") == ("acme/v1", K1)


async def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file"):
        await LocalKeyFileProvider(tmp_path / "nope.json").load()
