"""KmsEnvelopeProvider against moto's real KMS HTTP server: data keys generated, stored wrapped, unwrapped,
bound to their tenant, rotated and revoked."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.crypto import aead
from app.crypto.errors import UnknownKeyError
from app.crypto.keyfile import read_key_file, write_key_file
from app.crypto.keyring import Keyring
from app.crypto.kms import KmsEnvelopeProvider

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kms_endpoint() -> Iterator[str]:
    """A moto server of its own (lighter than the session stack), with dummy credentials exported."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def kms_key(endpoint: str, tenant: str) -> str:
    """A fresh per-tenant KMS key; returns its id."""
    client = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    return str(client.create_key(Description=f"carryover tenant {tenant}")["KeyMetadata"]["KeyId"])


async def test_generate_store_unwrap_and_use(kms_endpoint: str, tmp_path: Path) -> None:
    path = tmp_path / "kms-keys.json"
    provider = KmsEnvelopeProvider(path)  # endpoint from AWS_ENDPOINT_URL
    assert provider.endpoint_url == kms_endpoint
    acme, globex = kms_key(kms_endpoint, "acme"), kms_key(kms_endpoint, "globex")
    await provider.add_data_key("acme", acme, "acme/v1")
    await provider.add_data_key("globex", globex, "globex/v1")
    stored = read_key_file(path)
    assert (
        stored["acme"]["kms_key_id"] == acme and len(base64.b64decode(stored["acme"]["keys"]["acme/v1"])) > 32
    )

    ring = Keyring(provider, ttl_seconds=60)
    await ring.load()
    key_id, key = ring.current_key("acme")
    assert key_id == "acme/v1" and len(key) == 32
    blob = aead.encrypt(key, b"hello", tenant_id="acme", key_id=key_id)
    # a second, independent load unwraps the same data key
    other = Keyring(KmsEnvelopeProvider(path))
    await other.load()
    assert (
        aead.decrypt(other.decryption_key("acme", "acme/v1"), blob, tenant_id="acme", key_id="acme/v1")
        == b"hello"
    )
    assert ring.current_key("globex")[1] != key
    assert provider.failures == []


async def test_rotation_keeps_old_keys_for_decryption(kms_endpoint: str, tmp_path: Path) -> None:
    path = tmp_path / "kms-keys.json"
    provider = KmsEnvelopeProvider(path)
    acme = kms_key(kms_endpoint, "acme")
    await provider.add_data_key("acme", acme, "acme/v1")
    ring = Keyring(provider)
    await ring.load()
    old = ring.current_key("acme")
    await provider.add_data_key("acme", acme, "acme/v2")
    await ring.refresh()
    assert ring.current_key("acme")[0] == "acme/v2"
    assert ring.decryption_key("acme", "acme/v1") == old[1]


async def test_wrapped_key_copied_to_another_tenant_does_not_unwrap(
    kms_endpoint: str, tmp_path: Path
) -> None:
    path = tmp_path / "kms-keys.json"
    provider = KmsEnvelopeProvider(path)
    acme, globex = kms_key(kms_endpoint, "acme"), kms_key(kms_endpoint, "globex")
    await provider.add_data_key("acme", acme, "acme/v1")
    await provider.add_data_key("globex", globex, "globex/v1")
    entries = read_key_file(path)
    # an operator mistake or an attack: globex's entry gets acme's wrapped key under a globex key id,
    # and even names acme's KMS key
    entries["globex"]["keys"]["globex/v2"] = entries["acme"]["keys"]["acme/v1"]
    entries["globex"]["kms_key_id"] = acme
    write_key_file(path, entries)
    ring = Keyring(provider)
    await ring.load()
    assert ("globex", "globex/v2", "InvalidCiphertextException") in provider.failures
    with pytest.raises(UnknownKeyError):
        ring.decryption_key("globex", "globex/v2")
    assert ring.current_key("acme")[0] == "acme/v1"  # other tenants unaffected


async def test_unreachable_kms_fails_the_load(tmp_path: Path) -> None:
    path = tmp_path / "kms-keys.json"
    write_key_file(
        path, {"acme": {"current": "acme/v1", "kms_key_id": "alias/x", "keys": {"acme/v1": "AAAA"}}}
    )
    provider = KmsEnvelopeProvider(path, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(Exception) as caught:
        await provider.load()
    assert "AAAA" not in str(caught.value)
