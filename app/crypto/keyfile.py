"""The tenant key file and the local key provider.

A key file (JSON, or YAML when the name ends in .yaml/.yml) lists each tenant's live keys::

    {"format": "carryover-keys/1",
     "tenants": {"acme-bank": {"current": "acme-bank/v2",
                               "keys": {"acme-bank/v1": "<base64>", "acme-bank/v2": "<base64>"}}}}

With the local provider the values are the 32-byte keys themselves (development and tests).  With the
KMS envelope provider (:mod:`app.crypto.kms`) each tenant also names its ``kms_key_id`` and the values are
KMS-wrapped data keys.  A key id belongs to one tenant only.  The file is written with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from app.crypto.aead import KEY_BYTES
from app.crypto.errors import KeyFileError
from app.crypto.keyring import KeySet, SecretKey, TenantKeys

FORMAT = "carryover-keys/1"


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def read_key_file(path: Path) -> dict[str, dict[str, Any]]:
    """tenant -> {"current": key id, "keys": {key id: base64}, optional "kms_key_id"}; raises KeyFileError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text) if _is_yaml(path) else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KeyFileError(
            f"key file {path} is not valid {'YAML' if _is_yaml(path) else 'JSON'}: {type(exc).__name__}"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyFileError(f'key file {path} must be an object with "format": "{FORMAT}"')
    tenants = document.get("tenants")
    if not isinstance(tenants, dict):
        raise KeyFileError(f'key file {path} has no "tenants" object')
    for tenant, entry in tenants.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("keys"), dict) or not entry["keys"]:
            raise KeyFileError(f'key file {path}: tenant {tenant!r} needs a non-empty "keys" object')
        if entry.get("current") not in entry["keys"]:
            raise KeyFileError(f'key file {path}: tenant {tenant!r} "current" must name one of its keys')
        for key_id, value in entry["keys"].items():
            if not isinstance(value, str):
                raise KeyFileError(
                    f"key file {path}: tenant {tenant!r} key {key_id!r} is not a base64 string"
                )
    return tenants


def decode_b64(value: str, where: str) -> bytes:
    """Base64 text from a key file; raises KeyFileError naming ``where`` (never the value)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where} is not valid base64") from None


def write_key_file(path: Path, tenants: dict[str, dict[str, Any]]) -> Path:
    """Writes a key file atomically with mode 0600; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "tenants": tenants}
    text = (
        yaml.safe_dump(document, sort_keys=True)
        if _is_yaml(path)
        else json.dumps(document, indent=2, sort_keys=True)
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    os.replace(tmp, path)
    return path


def generate_key_file(
    path: Path,
    tenants: Iterable[str],
    *,
    versions: int = 2,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Path:
    """Writes a development key file: ``versions`` random keys per tenant (ids ``<tenant>/v<n>``), the
    newest current.  Returns the path."""
    entries: dict[str, dict[str, Any]] = {}
    for tenant in tenants:
        keys = {
            f"{tenant}/v{n}": base64.b64encode(random_bytes(KEY_BYTES)).decode()
            for n in range(1, versions + 1)
        }
        entries[tenant] = {"current": f"{tenant}/v{versions}", "keys": keys}
    return write_key_file(path, entries)


class LocalKeyFileProvider:
    """Keys straight from a key file (development, tests, or keys delivered by a secret store)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    async def load(self) -> KeySet:
        """Reads and checks the key file; raises KeyFileError."""
        return self._read()

    async def refresh(self) -> KeySet:
        """Re-reads the key file (rotation: add a key, move "current", later drop the old one)."""
        return self._read()

    def _read(self) -> KeySet:
        tenants: dict[str, TenantKeys] = {}
        for tenant, entry in read_key_file(self.path).items():
            if "kms_key_id" in entry:
                raise KeyFileError(
                    f"key file {self.path}: tenant {tenant!r} has KMS-wrapped keys; use the kms key provider"
                )
            keys = {}
            for key_id, value in entry["keys"].items():
                raw = decode_b64(value, f"key file {self.path}: tenant {tenant!r} key {key_id!r}")
                if len(raw) != KEY_BYTES:
                    raise KeyFileError(
                        f"key file {self.path}: tenant {tenant!r} key {key_id!r} is not {KEY_BYTES} bytes"
                    )
                keys[key_id] = SecretKey(raw)
            tenants[tenant] = TenantKeys(entry["current"], keys)
        return KeySet(tenants)

    def __repr__(self) -> str:
        return f"LocalKeyFileProvider({str(self.path)!r})"
