"""SQS adapter: tenant queues as :class:`~app.ingest.port.SourcePort` sources (aiobotocore calls only).

* Discovery: queues whose name starts with the prefix (``-dlq`` queues skipped); depth is
  ApproximateNumberOfMessages.
* Receive is a long poll (WaitTimeSeconds 20, or under half the shutdown grace if that is shorter; up to
  10 messages), so the driver runs one receive task per queue (``Schedule.pullers`` 0). On shutdown the
  driver lets the polls under way return (an abandoned one could still take messages at the server); a
  deleted queue (NonExistentQueue) is :class:`SourceGone`.
* Acknowledge is DeleteMessageBatch (per-entry failures checked, transient ones retried once); release
  and extension are ChangeMessageVisibilityBatch; a failed write comes back after ``retry_delay`` seconds,
  a message released on shutdown at once (visibility 0).
* One aiobotocore client with a connection pool sized for every concurrent long poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from app.ingest.landing import (
    Landing,
    LandingConfig,
    is_ingested_queue,
    land_sqs,
    queue_name_from_url,
    strip_prefix,
)
from app.ingest.port import (
    DEFAULT_SHUTDOWN_GRACE,
    Received,
    Report,
    Schedule,
    Source,
    SourceGone,
    landing_config,
)
from app.settings import Settings

SQS_BATCH = 10
MAX_WAIT_SECONDS = 20
GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

SqsMessage = dict[str, Any]


@dataclass(frozen=True)
class SqsConfig:
    """How the SQS adapter runs."""

    landing: LandingConfig
    endpoint_url: str | None = None
    region: str = "us-east-1"
    discovery_interval: float = 30.0
    visibility_timeout: int = 30
    wait_time_seconds: int = MAX_WAIT_SECONDS  # long poll; from settings: long_poll_seconds(grace)
    max_messages: int = SQS_BATCH
    pool_connections: int = 1024
    retry_delay: int = 5
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE  # settings.shutdown_grace_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsConfig:
        """The adapter's configuration from carryover's settings."""
        return cls(
            landing=landing_config(settings, settings.sqs_queue_prefix),
            endpoint_url=settings.aws_endpoint_url or None,
            region=settings.aws_region,
            discovery_interval=settings.discovery_interval,
            visibility_timeout=settings.sqs_visibility_timeout,
            wait_time_seconds=long_poll_seconds(settings.shutdown_grace_seconds),
            shutdown_grace=settings.shutdown_grace_seconds,
        )


def long_poll_seconds(shutdown_grace: float) -> int:
    """WaitTimeSeconds of a receive: 20 (the most SQS allows), but under half of the shutdown grace (at
    least 1), so that on shutdown the long polls under way return before the grace is over."""
    return max(1, min(MAX_WAIT_SECONDS, int(shutdown_grace / 2)))


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class SqsAdapter:
    """Every tenant queue matching the prefix, as a source of the ingestion driver."""

    kind = "sqs"
    label = "SQS"

    def __init__(self, config: SqsConfig, session: AioSession | None = None) -> None:
        self.config = config
        self._session = session or get_session()
        self._client: Any = None

    @property
    def schedule(self) -> Schedule:
        """One long-poll task per queue; extension every quarter visibility timeout."""
        timeout = self.config.visibility_timeout
        return Schedule(
            max_messages=self.config.max_messages,
            pullers=0,
            receive_slots=max(1, self.config.pool_connections - 32),
            idle_backoff_max=0.0,
            discovery_interval=self.config.discovery_interval,
            deadline=timeout,
            extend_every=max(0.5, timeout / 4),
            retry_delay=min(self.config.retry_delay, timeout),
            batch_limit=SQS_BATCH,
            shutdown_grace=self.config.shutdown_grace,
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        """One client, its pool sized for every concurrent long poll."""
        aio_config = AioConfig(
            max_pool_connections=self.config.pool_connections,
            read_timeout=self.config.wait_time_seconds + 15,
            connect_timeout=5,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        async with self._session.create_client(
            "sqs", endpoint_url=self.config.endpoint_url, region_name=self.config.region, config=aio_config
        ) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    async def list_queue_urls(self) -> list[str]:
        """Every queue URL carryover ingests (prefix match, ``-dlq`` queues skipped)."""
        urls: list[str] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": self.config.landing.name_prefix, "MaxResults": 1000}
        while True:
            page = await self._client.list_queues(**kwargs)
            urls.extend(page.get("QueueUrls", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        prefix = self.config.landing.name_prefix
        return sorted(url for url in urls if is_ingested_queue(queue_name_from_url(url), prefix))

    async def discover(self) -> list[Source]:
        """Every ingested queue; a received message stays invisible for the visibility timeout."""
        prefix = self.config.landing.name_prefix
        return [
            Source(url, name, strip_prefix(name, prefix), self.config.visibility_timeout)
            for url in await self.list_queue_urls()
            for name in [queue_name_from_url(url)]
        ]

    async def depth(self, source: Source) -> int | None:
        """ApproximateNumberOfMessages."""
        reply = await self._client.get_queue_attributes(
            QueueUrl=source.source_id, AttributeNames=DEPTH_ATTRIBUTES
        )
        return int(reply.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    async def receive(self, source: Source, max_messages: int) -> list[Received[SqsMessage]]:
        """One long poll."""
        try:
            reply = await self._client.receive_message(
                QueueUrl=source.source_id,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=self.config.wait_time_seconds,
                VisibilityTimeout=self.config.visibility_timeout,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except ClientError as exc:
            if _error_code(exc) in GONE_CODES:
                raise SourceGone(source.name) from exc
            raise
        return [
            Received(
                m["ReceiptHandle"],
                str(m.get("MessageId", "")),
                int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                m,
            )
            for m in reply.get("Messages", [])
        ]

    async def acknowledge(self, source: Source, handles: list[str]) -> Report:
        """DeleteMessageBatch; per-entry failures counted, transient ones (and a failed call) retried once."""
        report = Report()
        todo = handles
        for attempt in range(2):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(todo)]
            try:
                reply = await self._client.delete_message_batch(QueueUrl=source.source_id, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - messages come back and are landed again
                report.failed(f"delete: {exc}")
                if attempt == 0:
                    continue
                break
            report.done += len(reply.get("Successful", []))
            failures = reply.get("Failed", [])
            if failures:
                first = failures[0]
                report.failed(f"delete entry: {first.get('Code')}: {first.get('Message')}", len(failures))
            todo = [todo[int(f["Id"])] for f in failures if not f.get("SenderFault")]
            if not todo:
                break
        return report

    async def release(self, source: Source, handles: list[str], seconds: int) -> Report:
        """ChangeMessageVisibilityBatch: visible again (or for extension, invisible) ``seconds`` from now.

        Failures are counted; the old timeout then applies.
        """
        report = Report()
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds} for i, h in enumerate(handles)
        ]
        try:
            reply = await self._client.change_message_visibility_batch(
                QueueUrl=source.source_id, Entries=entries
            )
        except Exception as exc:  # noqa: BLE001
            report.failed(f"visibility: {exc}")
            return report
        failures = reply.get("Failed", [])
        if failures:
            report.failed(f"visibility entry: {failures[0].get('Code')}", len(failures))
        report.done = len(reply.get("Successful", []))
        return report

    extend = release  # the same call: invisible for ``seconds`` more

    def land(self, source: Source, message: Received[SqsMessage], received_at_ms: int) -> Landing:
        """:func:`~app.ingest.landing.land_sqs`."""
        return land_sqs(
            message.message,
            queue_url=source.source_id,
            config=self.config.landing,
            received_at_ms=received_at_ms,
        )
