"""SQS adapter: many tenant queues on one event loop, landed into staging, deleted only after Kafka acked.

* Discovery: queues whose name starts with the prefix (``-dlq`` queues skipped) are listed every
  ``discovery_interval``; a new queue gets a poller, a vanished one loses it. Queue depth
  (ApproximateNumberOfMessages) is refreshed at the same time.
* One poller task per queue long-polls (WaitTimeSeconds 20, up to 10 messages) after taking in-flight
  slots from the shared :class:`~app.ingest.flow.InFlightLimiter`; each received batch is landed in its
  own task so a queue can have several batches in flight.
* A batch is written through the :class:`~app.ingest.sink.Sink`; messages Kafka acknowledged are deleted
  with DeleteMessageBatch (per-entry failures checked, transient ones retried once); messages whose write
  failed are made visible again after ``retry_delay`` seconds and never deleted.
* Messages still in flight get their visibility extended at half the visibility timeout.
* One aiobotocore client with a connection pool sized for every concurrent long poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from app.ingest.flow import InFlightLimiter
from app.ingest.landing import (
    DeadLetter,
    Landing,
    LandingConfig,
    TenantSource,
    is_ingested_queue,
    land_sqs,
    queue_name_from_url,
    strip_prefix,
)
from app.ingest.sink import Sink
from app.ingest.stats import IngestStats, SourceStats, registry
from app.settings import Settings

log = logging.getLogger(__name__)

SQS_BATCH = 10
GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


@dataclass(frozen=True)
class SqsConfig:
    """How the SQS adapter runs."""

    landing: LandingConfig
    endpoint_url: str | None = None
    region: str = "us-east-1"
    discovery_interval: float = 30.0
    visibility_timeout: int = 30
    wait_time_seconds: int = 20
    max_messages: int = SQS_BATCH
    pool_connections: int = 1024
    retry_delay: int = 5
    shutdown_grace: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsConfig:
        """The adapter's configuration from carryover's settings."""
        tenant_source: TenantSource = settings.tenant_source  # type: ignore[assignment]
        return cls(
            landing=LandingConfig(
                settings.sqs_queue_prefix,
                tenant_source,
                settings.tenant_attribute,
                settings.max_message_bytes,
            ),
            endpoint_url=settings.aws_endpoint_url or None,
            region=settings.aws_region,
            discovery_interval=settings.discovery_interval,
            visibility_timeout=settings.sqs_visibility_timeout,
        )


@dataclass
class InFlight:
    """A received message not yet deleted or released."""

    message_id: str
    received: float
    extended: float


@dataclass
class QueuePoller:
    """The state of one polled queue."""

    url: str
    name: str
    stats: SourceStats
    in_flight: dict[str, InFlight] = field(default_factory=dict)  # by receipt handle
    poll_task: asyncio.Task[None] | None = None
    batches: set[asyncio.Task[None]] = field(default_factory=set)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqsIngester:
    """Polls every tenant queue matching the prefix and lands its messages in staging."""

    def __init__(
        self,
        config: SqsConfig,
        sink: Sink,
        limiter: InFlightLimiter,
        stats: IngestStats = registry,
        session: AioSession | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.limiter = limiter
        self.stats = stats
        self._session = session or get_session()
        self._client: Any = None
        self.pollers: dict[str, QueuePoller] = {}
        self._poll_slots = asyncio.Semaphore(max(1, config.pool_connections - 32))

    # --- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Discover and poll until cancelled; on cancellation finish in-flight batches (bounded) and stop."""
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
            extender = asyncio.create_task(self._extend_loop(), name="sqs-visibility")
            try:
                while True:
                    try:
                        await self.discover()
                    except Exception as exc:  # noqa: BLE001 - keep the current set, try again later
                        log.warning("SQS discovery failed: %s", exc)
                    await asyncio.sleep(self.config.discovery_interval)
            finally:
                extender.cancel()
                await self._shutdown()

    async def _shutdown(self) -> None:
        pollers = list(self.pollers.values())
        for poller in pollers:
            if poller.poll_task is not None:
                poller.poll_task.cancel()
        batches = [task for poller in pollers for task in poller.batches]
        if batches:
            _done, pending = await asyncio.wait(batches, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
        tasks = [p.poll_task for p in pollers if p.poll_task is not None]
        await asyncio.gather(*tasks, *batches, return_exceptions=True)

    # --- discovery ---------------------------------------------------------------------------------
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

    async def discover(self) -> set[str]:
        """Start pollers for new queues, stop those of vanished ones, refresh queue depths."""
        urls = set(await self.list_queue_urls())
        for url in urls - set(self.pollers):
            self._start_poller(url)
        for url in set(self.pollers) - urls:
            self._stop_poller(url, "queue no longer listed")
        await self._refresh_depths()
        return urls

    def _start_poller(self, url: str) -> None:
        name = queue_name_from_url(url)
        stats = self.stats.source("sqs", url, name, strip_prefix(name, self.config.landing.name_prefix))
        poller = QueuePoller(url, name, stats)
        poller.poll_task = asyncio.create_task(self._poll(poller), name=f"sqs-poll-{name}")
        self.pollers[url] = poller
        log.info("SQS: polling %s", name)

    def _stop_poller(self, url: str, why: str) -> None:
        poller = self.pollers.pop(url, None)
        if poller is None:
            return
        if poller.poll_task is not None and poller.poll_task is not asyncio.current_task():
            poller.poll_task.cancel()
        self.stats.retire("sqs", url)
        log.info("SQS: stopped polling %s (%s)", poller.name, why)

    async def _refresh_depths(self) -> None:
        slots = asyncio.Semaphore(32)

        async def depth(poller: QueuePoller) -> None:
            async with slots:
                try:
                    reply = await self._client.get_queue_attributes(
                        QueueUrl=poller.url, AttributeNames=DEPTH_ATTRIBUTES
                    )
                except Exception as exc:  # noqa: BLE001 - depth is informative only
                    poller.stats.last_error = f"depth: {exc}"
                    return
                poller.stats.queue_depth = int(
                    reply.get("Attributes", {}).get("ApproximateNumberOfMessages", 0)
                )

        await asyncio.gather(*(depth(p) for p in list(self.pollers.values())))

    # --- polling -----------------------------------------------------------------------------------
    async def _poll(self, poller: QueuePoller) -> None:
        """Poll one queue until cancelled or the queue is gone; a bug in one round never ends the poller."""
        while True:
            try:
                await self._poll_rounds(poller)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                poller.stats.errors += 1
                poller.stats.last_error = f"poller: {exc!r}"
                log.exception("SQS poller for %s failed; restarting it in 1 s", poller.name)
                await asyncio.sleep(1.0)

    async def _poll_rounds(self, poller: QueuePoller) -> None:
        backoff = 1.0
        while True:
            granted = await self.limiter.acquire(self.config.max_messages)
            try:
                async with self._poll_slots:
                    reply = await self._client.receive_message(
                        QueueUrl=poller.url,
                        MaxNumberOfMessages=granted,
                        WaitTimeSeconds=self.config.wait_time_seconds,
                        VisibilityTimeout=self.config.visibility_timeout,
                        MessageAttributeNames=["All"],
                        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                    )
            except asyncio.CancelledError:
                self.limiter.release(granted)
                raise
            except Exception as exc:  # noqa: BLE001 - the poller must survive source errors
                self.limiter.release(granted)
                poller.stats.errors += 1
                poller.stats.last_error = f"receive: {exc}"
                if _error_code(exc) in GONE_CODES:
                    self._stop_poller(poller.url, "queue deleted")
                    return
                log.warning("SQS receive from %s failed (retry in %.0fs): %s", poller.name, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            messages: list[dict[str, Any]] = reply.get("Messages", [])
            self.limiter.release(granted - len(messages))
            if messages:
                self._track(poller, messages)
                task = asyncio.create_task(self._land(poller, messages))
                poller.batches.add(task)
                task.add_done_callback(poller.batches.discard)

    def _track(self, poller: QueuePoller, messages: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        stats = poller.stats
        stats.received += len(messages)
        stats.last_received_at = time.time()
        for message in messages:
            poller.in_flight[message["ReceiptHandle"]] = InFlight(str(message.get("MessageId", "")), now, now)
            if int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1:
                stats.redelivered += 1
        stats.in_flight = len(poller.in_flight)

    async def _land(self, poller: QueuePoller, messages: list[dict[str, Any]]) -> None:
        """Write one received batch to Kafka, then delete what Kafka acknowledged; release the rest."""
        handles = [m["ReceiptHandle"] for m in messages]
        try:
            received_at_ms = int(time.time() * 1000)
            landings: list[Landing] = [
                land_sqs(m, queue_url=poller.url, config=self.config.landing, received_at_ms=received_at_ms)
                for m in messages
            ]
            results = await self.sink.write(landings)
            dead = [isinstance(landing, DeadLetter) for landing in landings]
            durable, failed = poller.stats.record_writes(handles, dead, results)
            if durable:
                await self._delete(poller, durable)
            if failed:
                await self._change_visibility(
                    poller, failed, min(self.config.retry_delay, self.config.visibility_timeout)
                )
        except Exception as exc:  # noqa: BLE001 - never a task dying unseen; the messages come back
            poller.stats.errors += 1
            poller.stats.last_error = f"land: {exc!r}"
            log.exception(
                "SQS: landing a batch from %s failed; its messages will be received again", poller.name
            )
        finally:
            for handle in handles:
                poller.in_flight.pop(handle, None)
            poller.stats.in_flight = len(poller.in_flight)
            self.limiter.release(len(handles))

    async def _delete(self, poller: QueuePoller, handles: list[str]) -> None:
        """DeleteMessageBatch in chunks of 10; per-entry failures checked, transient ones retried once."""
        for chunk in _chunks(handles, SQS_BATCH):
            todo = list(chunk)
            for attempt in range(2):
                entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(todo)]
                try:
                    reply = await self._client.delete_message_batch(QueueUrl=poller.url, Entries=entries)
                except Exception as exc:  # noqa: BLE001 - messages come back and are landed again
                    poller.stats.errors += 1
                    poller.stats.last_error = f"delete: {exc}"
                    if attempt == 0:
                        continue
                    log.warning("SQS delete on %s failed: %s", poller.name, exc)
                    break
                poller.stats.acknowledged += len(reply.get("Successful", []))
                failures = reply.get("Failed", [])
                if failures:
                    poller.stats.errors += len(failures)
                    poller.stats.last_error = (
                        f"delete entry: {failures[0].get('Code')}: {failures[0].get('Message')}"
                    )
                retry = [todo[int(f["Id"])] for f in failures if not f.get("SenderFault")]
                if not retry:
                    break
                todo = retry

    async def _change_visibility(self, poller: QueuePoller, handles: list[str], seconds: int) -> None:
        """ChangeMessageVisibilityBatch in chunks of 10; failures counted (the old timeout then applies)."""
        for chunk in _chunks(handles, SQS_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds} for i, h in enumerate(chunk)
            ]
            try:
                reply = await self._client.change_message_visibility_batch(
                    QueueUrl=poller.url, Entries=entries
                )
            except Exception as exc:  # noqa: BLE001
                poller.stats.errors += 1
                poller.stats.last_error = f"visibility: {exc}"
                continue
            failures = reply.get("Failed", [])
            if failures:
                poller.stats.errors += len(failures)
                poller.stats.last_error = f"visibility entry: {failures[0].get('Code')}"

    async def _extend_loop(self) -> None:
        """Every quarter visibility timeout, extend messages in flight for half of it or longer."""
        timeout = self.config.visibility_timeout
        tick = max(0.5, timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            work = []
            for poller in list(self.pollers.values()):
                due = [h for h, f in poller.in_flight.items() if now - f.extended >= timeout / 2]
                if due:
                    for handle in due:
                        poller.in_flight[handle].extended = now
                    work.append(self._change_visibility(poller, due, timeout))
            if work:
                with contextlib.suppress(Exception):
                    await asyncio.gather(*work)
