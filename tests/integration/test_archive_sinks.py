"""Archive sinks: an object is written once; a re-run with the same bytes is "identical", other bytes are a
conflict and the delivered object is kept. S3 against moto's real HTTP server: conditional put, Object
Lock in COMPLIANCE mode with the retention, SSE-KMS with the tenant's key; a locked object cannot be
deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from app.archive.policy import parse_destination
from app.archive.sinks import DirectorySink, ObjectConflict, open_sinks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto server of its own, dummy credentials exported."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_directory_sink_writes_once(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)

    async def run() -> None:
        assert await sink.put_once("t/a/x.jsonl", b"one", tenant="t", retention_days=1) == "written"
        assert await sink.put_once("t/a/x.jsonl", b"one", tenant="t", retention_days=1) == "identical"
        with pytest.raises(ObjectConflict, match="kept"):
            await sink.put_once("t/a/x.jsonl", b"two", tenant="t", retention_days=1)
        assert await sink.get("t/a/x.jsonl") == b"one" and await sink.get("t/a/y") is None
        assert await sink.list("t/a/") == ["t/a/x.jsonl"]

    asyncio.run(run())
    assert sorted(p.name for p in (tmp_path / "t" / "a").iterdir()) == ["x.jsonl"]  # no temporary left


def test_s3_conditional_put_object_lock_and_sse_kms(s3_endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    kms = boto3.client("kms", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="acme-archive", ObjectLockEnabledForBucket=True)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/carryover-archive-acme", TargetKeyId=key_id)

    async def run() -> tuple[str, str, str]:
        async with open_sinks(s3_endpoint, "us-east-1", "alias/carryover-archive-{tenant}") as sinks:
            sink = sinks.for_destination(parse_destination("s3://acme-archive/eu"))
            first = await sink.put_once("k/x.eml", b"mail", tenant="acme", retention_days=30)
            again = await sink.put_once("k/x.eml", b"mail", tenant="acme", retention_days=30)
            with pytest.raises(ObjectConflict):
                await sink.put_once("k/x.eml", b"other", tenant="acme", retention_days=30)
            assert await sink.list("k/") == ["k/x.eml"] and await sink.get("k/x.eml") == b"mail"
            assert await sink.get("k/none") is None
            return first, again, "ok"

    assert asyncio.run(run()) == ("written", "identical", "ok")
    head = s3.head_object(Bucket="acme-archive", Key="eu/k/x.eml")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < retain <= dt.timedelta(days=30)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/carryover-archive-acme") or key_id in head["SSEKMSKeyId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket="acme-archive", Key="eu/k/x.eml", VersionId=head["VersionId"])
    versions = s3.list_object_versions(Bucket="acme-archive", Prefix="eu/k/x.eml")["Versions"]
    assert len(versions) == 1  # the conflicting put never made a second version
