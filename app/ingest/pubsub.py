"""Pub/Sub adapter: many tenant subscriptions served by one bounded pool of pull tasks.

* Discovery lists the project's subscriptions itself (the REST API answers ``{}`` for an empty list, on
  which the client's ``list_subscriptions`` raises KeyError) and keeps those whose name starts with the
  prefix, every ``discovery_interval``; vanished ones are dropped.
* A fixed pool of ``pull_tasks`` tasks takes subscriptions in turn from a ready queue. Each pull returns
  at once (``returnImmediately``), so an idle subscription never holds a task; an empty pull puts the
  subscription back after an idle back-off (50 ms doubling to ``idle_backoff_max``), an HTTP error after
  an error back-off (1 s doubling to 30 s) — the adapter never stops on a pull error.
* Pulled messages are landed in their own task; those Kafka acknowledged are acknowledged, the others
  nacked (modifyAckDeadline 0) so they come back. Deadlines of messages still in flight are extended at
  half of their current deadline (the subscription's own one first, then ``ack_deadline``).

The client is gcloud-aio-pubsub's :class:`SubscriberClient` (acknowledge, modify_ack_deadline), with two
small additions in :class:`PullClient` for what it lacks: pull with ``returnImmediately`` and a list
call that tolerates ``{}``. Its ``subscribe()`` helper is not used: it extends no deadline and stops on
the first pull error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from gcloud.aio.pubsub import SubscriberClient, SubscriberMessage

from app.ingest.flow import InFlightLimiter
from app.ingest.landing import (
    DeadLetter,
    Landing,
    LandingConfig,
    TenantSource,
    land_pubsub,
    strip_prefix,
    subscription_name_from_path,
)
from app.ingest.sink import Sink
from app.ingest.stats import IngestStats, SourceStats, registry
from app.settings import Settings

log = logging.getLogger(__name__)

ACK_CHUNK = 500
SEEN_CAPACITY = 200_000


class PullClient(SubscriberClient):
    """gcloud-aio-pubsub's SubscriberClient plus an immediate pull and an empty-safe subscription list."""

    async def pull_now(
        self, subscription: str, max_messages: int, http_timeout: int = 15
    ) -> list[SubscriberMessage]:
        """Pull up to ``max_messages``; returns at once (possibly empty) instead of holding the request."""
        body = json.dumps({"maxMessages": max_messages, "returnImmediately": True}).encode()
        resp = await self.session.post(
            f"{self._api_root}/{subscription}:pull",
            data=body,
            headers=await self._headers(),
            timeout=http_timeout,
        )
        data: dict[str, Any] = await resp.json()
        return [SubscriberMessage.from_repr(m) for m in data.get("receivedMessages", [])]

    async def list_project_subscriptions(self, project: str, http_timeout: int = 15) -> list[dict[str, Any]]:
        """Every subscription of ``project`` (all pages); an empty project answers ``{}``."""
        found: list[dict[str, Any]] = []
        params: dict[str, str] = {"pageSize": "1000"}
        while True:
            resp = await self.session.get(
                f"{self._api_root}/projects/{project}/subscriptions",
                headers=await self._headers(),
                params=params,
                timeout=http_timeout,
            )
            page: dict[str, Any] = await resp.json()
            found.extend(page.get("subscriptions", []))
            token = page.get("nextPageToken")
            if not token:
                return found
            params["pageToken"] = token


@dataclass(frozen=True)
class PubSubConfig:
    """How the Pub/Sub adapter runs."""

    landing: LandingConfig
    project: str
    emulator_host: str | None = None
    discovery_interval: float = 30.0
    ack_deadline: int = 30
    pull_tasks: int = 16
    max_messages: int = 50
    idle_backoff_max: float = 1.0
    error_backoff_max: float = 30.0
    shutdown_grace: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PubSubConfig:
        """The adapter's configuration from carryover's settings."""
        tenant_source: TenantSource = settings.tenant_source  # type: ignore[assignment]
        return cls(
            landing=LandingConfig(
                settings.pubsub_subscription_prefix,
                tenant_source,
                settings.tenant_attribute,
                settings.max_message_bytes,
            ),
            project=settings.pubsub_project,
            emulator_host=settings.pubsub_emulator_host or None,
            discovery_interval=settings.discovery_interval,
            ack_deadline=settings.pubsub_ack_deadline,
        )

    @property
    def api_root(self) -> str | None:
        """The emulator's REST root, or None for Google's."""
        return f"http://{self.emulator_host}/v1" if self.emulator_host else None


@dataclass
class Pulled:
    """A pulled message not yet acknowledged or nacked."""

    message_id: str
    deadline: float  # seconds granted at the last pull/extension
    extended: float  # monotonic time of the last pull/extension


@dataclass
class Subscription:
    """The state of one subscription in rotation."""

    path: str
    name: str
    stats: SourceStats
    ack_deadline: int
    generation: int
    in_flight: dict[str, Pulled] = field(default_factory=dict)  # by ack id
    idle: float = 0.0
    error_backoff: float = 0.0
    scheduled: bool = True  # a turn token for it is queued or on a timer
    batches: set[asyncio.Task[None]] = field(default_factory=set)


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class PubSubIngester:
    """Pulls every tenant subscription matching the prefix and lands its messages in staging."""

    def __init__(
        self, config: PubSubConfig, sink: Sink, limiter: InFlightLimiter, stats: IngestStats = registry
    ) -> None:
        self.config = config
        self.sink = sink
        self.limiter = limiter
        self.stats = stats
        self.subscriptions: dict[str, Subscription] = {}
        self._ready: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._generation = 0
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._client: PullClient | None = None

    @property
    def client(self) -> PullClient:
        """The client of the running adapter."""
        if self._client is None:
            raise RuntimeError("the Pub/Sub adapter is not running")
        return self._client

    # --- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Discover and pull until cancelled; on cancellation finish in-flight batches (bounded) and stop."""
        connector = aiohttp.TCPConnector(limit=self.config.pull_tasks * 2 + 32)
        async with aiohttp.ClientSession(connector=connector) as http:
            self._client = PullClient(session=http, api_root=self.config.api_root)  # type: ignore[arg-type]
            pullers = [
                asyncio.create_task(self._puller(), name=f"pubsub-pull-{i}")
                for i in range(self.config.pull_tasks)
            ]
            extender = asyncio.create_task(self._extend_loop(), name="pubsub-deadlines")
            try:
                while True:
                    try:
                        await self.discover()
                    except Exception as exc:  # noqa: BLE001 - keep the current set, try again later
                        log.warning("Pub/Sub discovery failed: %s", exc)
                    await asyncio.sleep(self.config.discovery_interval)
            finally:
                for task in pullers:
                    task.cancel()
                await asyncio.gather(*pullers, return_exceptions=True)
                await self._finish_batches()
                extender.cancel()
                await asyncio.gather(extender, return_exceptions=True)
                self._client = None

    async def _finish_batches(self) -> None:
        batches = [task for sub in self.subscriptions.values() for task in sub.batches]
        if not batches:
            return
        _done, pending = await asyncio.wait(batches, timeout=self.config.shutdown_grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*batches, return_exceptions=True)

    # --- discovery ---------------------------------------------------------------------------------
    async def discover(self) -> set[str]:
        """Put new subscriptions in rotation, drop vanished ones."""
        listed = await self.client.list_project_subscriptions(self.config.project)
        found: dict[str, int] = {}
        for item in listed:
            path = str(item.get("name", ""))
            if subscription_name_from_path(path).startswith(self.config.landing.name_prefix):
                found[path] = int(item.get("ackDeadlineSeconds", 10) or 10)
        for path in set(found) - set(self.subscriptions):
            self._add(path, found[path])
        for path in set(self.subscriptions) - set(found):
            self._drop(path, "subscription no longer listed")
        for path, deadline in found.items():
            self.subscriptions[path].ack_deadline = deadline
        return set(found)

    def _add(self, path: str, ack_deadline: int) -> None:
        self._generation += 1
        name = subscription_name_from_path(path)
        stats = self.stats.source("pubsub", path, name, strip_prefix(name, self.config.landing.name_prefix))
        self.subscriptions[path] = Subscription(path, name, stats, ack_deadline, self._generation)
        self._ready.put_nowait((path, self._generation))
        log.info("Pub/Sub: pulling %s", name)

    def _drop(self, path: str, why: str) -> None:
        sub = self.subscriptions.pop(path, None)
        if sub is not None:
            self.stats.retire("pubsub", path)
            log.info("Pub/Sub: stopped pulling %s (%s)", sub.name, why)

    def _reschedule(self, sub: Subscription, delay: float) -> None:
        sub.scheduled = True
        token = (sub.path, sub.generation)
        if delay <= 0:
            self._ready.put_nowait(token)
        else:
            asyncio.get_running_loop().call_later(delay, self._ready.put_nowait, token)

    # --- pulling -----------------------------------------------------------------------------------
    async def _puller(self) -> None:
        """One of the bounded pool: take the next subscription whose turn it is, pull once, put it back."""
        while True:
            path, generation = await self._ready.get()
            sub = self.subscriptions.get(path)
            if sub is None or sub.generation != generation:
                continue  # dropped (or re-added under a new token) meanwhile
            sub.scheduled = False
            try:
                await self._pull_turn(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                sub.stats.errors += 1
                sub.stats.last_error = f"puller: {exc!r}"
                log.exception("Pub/Sub turn for %s failed; next turn in 1 s", sub.name)
                if not sub.scheduled and self.subscriptions.get(path) is sub:
                    self._reschedule(sub, 1.0)

    async def _pull_turn(self, sub: Subscription) -> None:
        """Pull once; land what came; reschedule (at once, after idle or error back-off) or drop."""
        path = sub.path
        granted = await self.limiter.acquire(self.config.max_messages)
        try:
            messages = await self.client.pull_now(path, granted)
        except asyncio.CancelledError:
            self.limiter.release(granted)
            raise
        except Exception as exc:  # noqa: BLE001 - never stop on a pull error: back off and retry
            self.limiter.release(granted)
            sub.stats.errors += 1
            sub.stats.last_error = f"pull: {exc!r}"
            if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 404:
                self._drop(path, "subscription deleted")
                return
            sub.error_backoff = min(max(1.0, sub.error_backoff * 2), self.config.error_backoff_max)
            log.warning("Pub/Sub pull from %s failed (retry in %.0fs): %r", sub.name, sub.error_backoff, exc)
            self._reschedule(sub, sub.error_backoff)
            return
        sub.error_backoff = 0.0
        self.limiter.release(granted - len(messages))
        if messages:
            sub.idle = 0.0
            self._reschedule(sub, 0)
            self._track(sub, messages)
            task = asyncio.create_task(self._land(sub, messages))
            sub.batches.add(task)
            task.add_done_callback(sub.batches.discard)
        else:
            sub.idle = min(max(0.05, sub.idle * 2), self.config.idle_backoff_max)
            self._reschedule(sub, sub.idle)

    def _seen_before(self, path: str, message_id: str) -> bool:
        key = (path, message_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)
        return False

    def _track(self, sub: Subscription, messages: list[SubscriberMessage]) -> None:
        now = time.monotonic()
        sub.stats.received += len(messages)
        sub.stats.last_received_at = time.time()
        for message in messages:
            sub.in_flight[message.ack_id] = Pulled(message.message_id, float(sub.ack_deadline), now)
            seen = self._seen_before(sub.path, message.message_id)
            if seen or (message.delivery_attempt or 0) > 1:
                sub.stats.redelivered += 1
        sub.stats.in_flight = len(sub.in_flight)

    async def _land(self, sub: Subscription, messages: list[SubscriberMessage]) -> None:
        """Write one pulled batch to Kafka, then ack what Kafka acknowledged and nack the rest."""
        ack_ids = [m.ack_id for m in messages]
        try:
            received_at_ms = int(time.time() * 1000)
            landings: list[Landing] = [
                land_pubsub(
                    subscription_path=sub.path,
                    message_id=m.message_id,
                    data=m.data,
                    attributes=m.attributes,
                    config=self.config.landing,
                    received_at_ms=received_at_ms,
                )
                for m in messages
            ]
            results = await self.sink.write(landings)
            dead = [isinstance(landing, DeadLetter) for landing in landings]
            durable, failed = sub.stats.record_writes(ack_ids, dead, results)
            for chunk in _chunks(durable, ACK_CHUNK):
                try:
                    await self.client.acknowledge(sub.path, chunk)
                    sub.stats.acknowledged += len(chunk)
                except Exception as exc:  # noqa: BLE001 - they come back and are landed again
                    sub.stats.errors += 1
                    sub.stats.last_error = f"ack: {exc}"
            await self._modify(sub, failed, 0)
        except Exception as exc:  # noqa: BLE001 - never a task dying unseen; the messages come back
            sub.stats.errors += 1
            sub.stats.last_error = f"land: {exc!r}"
            log.exception(
                "Pub/Sub: landing a batch from %s failed; its messages will be pulled again", sub.name
            )
        finally:
            for ack_id in ack_ids:
                sub.in_flight.pop(ack_id, None)
            sub.stats.in_flight = len(sub.in_flight)
            self.limiter.release(len(ack_ids))

    async def _modify(self, sub: Subscription, ack_ids: list[str], seconds: int) -> None:
        """modifyAckDeadline in chunks (0 = nack); failures counted (the old deadline then applies)."""
        for chunk in _chunks(ack_ids, ACK_CHUNK):
            try:
                await self.client.modify_ack_deadline(sub.path, chunk, seconds)
            except Exception as exc:  # noqa: BLE001
                sub.stats.errors += 1
                sub.stats.last_error = f"modifyAckDeadline: {exc}"

    async def _extend_loop(self) -> None:
        """Every second, extend messages in flight for half of their current deadline or longer."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            work = []
            for sub in list(self.subscriptions.values()):
                due = [a for a, p in sub.in_flight.items() if now - p.extended >= p.deadline / 2]
                if due:
                    for ack_id in due:
                        pulled = sub.in_flight[ack_id]
                        pulled.extended, pulled.deadline = now, float(self.config.ack_deadline)
                    work.append(self._modify(sub, due, self.config.ack_deadline))
            if work:
                with contextlib.suppress(Exception):
                    await asyncio.gather(*work)
