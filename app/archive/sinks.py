"""Where archive objects go: S3 with Object Lock (COMPLIANCE) or a local directory (demos). Adapters.

Both sinks write an object **once**: :meth:`Sink.put_once` never replaces an object that exists.

* S3: ``PutObject`` with ``If-None-Match: *`` (a conditional put; S3 and moto answer 412 when the key
  exists), ``ObjectLockMode=COMPLIANCE`` with ``ObjectLockRetainUntilDate`` = now + the policy's retention,
  ``ChecksumAlgorithm=SHA256``, and SSE-KMS with the tenant's key when ``CARRYOVER_ARCHIVE_SSE_KMS_KEY`` names
  one (``{tenant}`` is replaced by the tenant id). The bucket must have Object Lock enabled (created with
  ``ObjectLockEnabledForBucket``).
* Directory: the bytes are written to a temporary file, then hard-linked to their name (``link`` fails when
  the name exists, so a file is never replaced), then the temporary file is removed.

When the object exists, its bytes are read and compared by SHA-256: equal bytes are a re-run after a crash
(``"identical"``); different bytes raise :class:`ObjectConflict` and the delivered object is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from app.archive.policy import Destination


class ObjectConflict(RuntimeError):
    """An object exists under the key with other bytes: it is kept, the new bytes are not delivered."""


class Sink(Protocol):
    """Write-once object storage for one destination."""

    async def put_once(self, key: str, data: bytes, *, tenant: str, retention_days: int) -> str:
        """Deliver ``data`` under ``key``: ``"written"`` or ``"identical"``; ObjectConflict otherwise."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, None when there is none."""
        ...

    async def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectorySink:
    """A local directory (demos only: nothing protects the files at rest)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    async def put_once(self, key: str, data: bytes, *, tenant: str, retention_days: int) -> str:
        """Write ``data`` to ``key`` unless a file is there (see the module docstring)."""
        return await asyncio.to_thread(self._put_once, key, data)

    def _put_once(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                if _sha(path.read_bytes()) == _sha(data):
                    return "identical"
                raise ObjectConflict(f"{path} exists with other bytes; it is kept") from None
            return "written"
        finally:
            os.unlink(temporary)

    async def get(self, key: str) -> bytes | None:
        """The file's bytes, None when missing."""
        path = self._path(key)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.is_file() else None)

    async def list(self, prefix: str) -> list[str]:
        """Keys of files under ``prefix`` (a directory path ending with ``/``, or a key prefix)."""

        def walk() -> list[str]:
            base = self._path(prefix.rstrip("/")) if prefix.endswith("/") else self._path(prefix).parent
            if not base.is_dir():
                return []
            keys = []
            for path in base.rglob("*"):
                if path.is_file() and not path.name.startswith(".incoming-"):
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(walk)


class S3Sink:
    """An S3 bucket (prefix) with Object Lock; one aiobotocore client, opened by :func:`open_sinks`."""

    def __init__(self, client: Any, bucket: str, prefix: str, kms_key_template: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.kms_key_template = kms_key_template

    async def put_once(self, key: str, data: bytes, *, tenant: str, retention_days: int) -> str:
        """Conditional put with Object Lock (see the module docstring)."""
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=retention_days)
        extra: dict[str, Any] = {}
        if self.kms_key_template:
            extra = {
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": self.kms_key_template.replace("{tenant}", tenant),
            }
        try:
            await self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                IfNoneMatch="*",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
                ChecksumAlgorithm="SHA256",
                **extra,
            )
            return "written"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
        existing = await self.get(key)
        if existing is not None and _sha(existing) == _sha(data):
            return "identical"
        raise ObjectConflict(f"s3://{self.bucket}/{self.prefix}{key} exists with other bytes; it is kept")

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, None when missing."""
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
            return data

    async def lock(self, key: str) -> tuple[str | None, dt.datetime | None]:
        """(Object Lock mode, retain-until) of the object; (None, None) when it has none."""
        head = await self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    async def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (without the sink's own prefix), sorted."""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(str(o["Key"])[len(self.prefix) :] for o in page.get("Contents", []))
        return sorted(keys)


class Sinks:
    """The sink of each destination, made on first use; one S3 client for every bucket."""

    def __init__(self, s3_client: Any, kms_key_template: str) -> None:
        self.s3_client = s3_client
        self.kms_key_template = kms_key_template
        self._made: dict[Destination, Sink] = {}

    def for_destination(self, destination: Destination) -> Sink:
        """The sink of ``destination``."""
        sink = self._made.get(destination)
        if sink is None:
            if destination.scheme == "s3":
                sink = S3Sink(self.s3_client, destination.bucket, destination.prefix, self.kms_key_template)
            else:
                sink = DirectorySink(Path(destination.path))
            self._made[destination] = sink
        return sink


@asynccontextmanager
async def open_sinks(endpoint_url: str, region: str, kms_key_template: str) -> AsyncIterator[Sinks]:
    """:class:`Sinks` with an S3 client pointed at ``endpoint_url`` (empty: AWS itself)."""
    config = AioConfig(max_pool_connections=32, retries={"max_attempts": 5, "mode": "standard"})
    async with get_session().create_client(
        "s3", endpoint_url=endpoint_url or None, region_name=region, config=config
    ) as client:
        yield Sinks(client, kms_key_template)
