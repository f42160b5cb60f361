"""KMS envelope key provider (adapter): tenant data keys stored wrapped in the key file, unwrapped by
AWS KMS ``Decrypt``; new data keys come from ``GenerateDataKey``.

Each tenant entry names its ``kms_key_id`` (the per-tenant KMS key); every wrapped data key is bound to
its tenant and key id through the KMS encryption context ``{"carryover:tenant": ..., "carryover:key_id":
...}``, so a wrapped key copied into another tenant's entry does not unwrap.  The endpoint comes from
``endpoint_url``, else ``AWS_ENDPOINT_URL_KMS`` / ``AWS_ENDPOINT_URL`` (moto locally); the region from
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (default us-east-1).
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from app.crypto.errors import KeyFileError
from app.crypto.keyfile import decode_b64, read_key_file, write_key_file
from app.crypto.keyring import KeySet, SecretKey, TenantKeys


def encryption_context(tenant_id: str, key_id: str) -> dict[str, str]:
    """The KMS encryption context that binds a wrapped data key to its tenant and key id."""
    return {"carryover:tenant": tenant_id, "carryover:key_id": key_id}


def _endpoint(explicit: str | None) -> str | None:
    return explicit or os.environ.get("AWS_ENDPOINT_URL_KMS") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region(explicit: str | None) -> str:
    return explicit or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class KmsEnvelopeProvider:
    """Loads tenant keys by unwrapping the key file's data keys with KMS.

    A data key that KMS refuses to unwrap (revoked, wrong tenant, disabled KMS key) is left out and
    reported in ``failures`` as (tenant, key id, KMS error code); the other tenants still load.  If KMS
    cannot be reached at all, ``load``/``refresh`` raise.
    """

    def __init__(
        self, path: Path, *, region: str | None = None, endpoint_url: str | None = None, concurrency: int = 16
    ) -> None:
        self.path = Path(path)
        self.region = _region(region)
        self.endpoint_url = _endpoint(endpoint_url)
        self.concurrency = concurrency
        self.failures: list[tuple[str, str, str]] = []

    def _client(self) -> Any:
        return get_session().create_client("kms", region_name=self.region, endpoint_url=self.endpoint_url)

    async def load(self) -> KeySet:
        """Unwraps every tenant's data keys."""
        entries = read_key_file(self.path)
        for tenant, entry in entries.items():
            if not isinstance(entry.get("kms_key_id"), str):
                raise KeyFileError(
                    f"key file {self.path}: tenant {tenant!r} has no kms_key_id (a local key file?)"
                )
        gate = asyncio.Semaphore(self.concurrency)
        failures: list[tuple[str, str, str]] = []
        async with self._client() as kms:

            async def unwrap(tenant: str, key_id: str, wrapped: str) -> tuple[str, str, SecretKey | None]:
                blob = decode_b64(wrapped, f"key file {self.path}: tenant {tenant!r} key {key_id!r}")
                async with gate:
                    try:
                        answer = await kms.decrypt(
                            CiphertextBlob=blob,
                            KeyId=entries[tenant]["kms_key_id"],
                            EncryptionContext=encryption_context(tenant, key_id),
                        )
                    except ClientError as exc:
                        failures.append(
                            (tenant, key_id, str(exc.response.get("Error", {}).get("Code", "ClientError")))
                        )
                        return tenant, key_id, None
                return tenant, key_id, SecretKey(answer["Plaintext"])

            results = await asyncio.gather(
                *(
                    unwrap(t, kid, w)
                    for t, e in sorted(entries.items())
                    for kid, w in sorted(e["keys"].items())
                )
            )
        keys: dict[str, dict[str, SecretKey]] = {tenant: {} for tenant in entries}
        for tenant, key_id, key in results:
            if key is not None:
                keys[tenant][key_id] = key
        self.failures = sorted(failures)
        return KeySet(
            {
                tenant: TenantKeys(
                    entry["current"] if entry["current"] in keys[tenant] else None, keys[tenant]
                )
                for tenant, entry in entries.items()
            }
        )

    async def refresh(self) -> KeySet:
        """Re-reads the key file and unwraps again (picks up rotation and revocation)."""
        return await self.load()

    async def add_data_key(
        self, tenant_id: str, kms_key_id: str, key_id: str, *, make_current: bool = True
    ) -> None:
        """Creates a data key for ``tenant_id`` with GenerateDataKey under ``kms_key_id`` and stores it
        wrapped in the key file (created if missing), optionally as the tenant's current key."""
        entries = read_key_file(self.path) if self.path.exists() else {}
        for tenant, entry in entries.items():
            if key_id in entry["keys"] and tenant != tenant_id:
                raise KeyFileError(f"key id {key_id!r} already belongs to tenant {tenant!r}")
        async with self._client() as kms:
            answer = await kms.generate_data_key(
                KeyId=kms_key_id, KeySpec="AES_256", EncryptionContext=encryption_context(tenant_id, key_id)
            )
        entry = entries.setdefault(tenant_id, {"keys": {}})
        entry["kms_key_id"] = kms_key_id
        entry["keys"][key_id] = base64.b64encode(answer["CiphertextBlob"]).decode()
        if make_current or "current" not in entry:
            entry["current"] = key_id
        write_key_file(self.path, entries)

    def __repr__(self) -> str:
        return (
            f"KmsEnvelopeProvider({str(self.path)!r}, region={self.region!r}, endpoint={self.endpoint_url!r})"
        )
