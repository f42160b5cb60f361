"""Pub/Sub adapter: tenant subscriptions as :class:`~app.ingest.port.SourcePort` sources.

* Discovery lists the project's subscriptions itself (the REST API answers ``{}`` for an empty list, on
  which the client's ``list_subscriptions`` raises KeyError) and keeps those whose name starts with the
  prefix; a subscription's own ack deadline is the first deadline of the messages pulled from it.
* Each pull returns at once (``returnImmediately``), so the driver serves every subscription from one
  bounded pool of ``pull_tasks`` tasks (``Schedule.pullers``): an empty pull puts the subscription back
  after an idle back-off (50 ms doubling to ``active_backoff_max`` while the subscription brought messages
  within ``active_seconds``, to ``idle_backoff_max`` after: a publishing tenant's next message waits at
  most the former, a quiet one costs few pulls), an HTTP error after an error back-off (1 s doubling to
  30 s). The emulator answers a pull at once even without ``returnImmediately`` (measured), so a held
  pull would not lower latency there. A 404 on pull is :class:`SourceGone`.
* Acknowledge is ``acknowledge``; release is modifyAckDeadline 0 (nack), extension modifyAckDeadline
  ``ack_deadline``. Pub/Sub counts delivery attempts only under a dead-letter policy, so a message id
  pulled before (of the last 200,000) counts as a second receive.

The client is gcloud-aio-pubsub's :class:`SubscriberClient` (acknowledge, modify_ack_deadline), with two
small additions in :class:`PullClient` for what it lacks: pull with ``returnImmediately`` and a list
call that tolerates ``{}``. Its ``subscribe()`` helper is not used: it extends no deadline and stops on
the first pull error.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from gcloud.aio.pubsub import SubscriberClient, SubscriberMessage

from app.ingest.landing import Landing, LandingConfig, land_pubsub, strip_prefix, subscription_name_from_path
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
    max_messages_backlogged: int = 500  # a subscription whose pulls come back full: up to this per pull
    idle_backoff_max: float = 1.0
    active_backoff_max: float = 0.2
    active_seconds: float = 60.0
    error_backoff_max: float = 30.0
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE  # settings.shutdown_grace_seconds

    @property
    def api_root(self) -> str | None:
        """The emulator's REST root, or None for Google's."""
        return f"http://{self.emulator_host}/v1" if self.emulator_host else None

    @classmethod
    def from_settings(cls, settings: Settings) -> PubSubConfig:
        """The adapter's configuration from carryover's settings."""
        return cls(
            landing=landing_config(settings, settings.pubsub_subscription_prefix),
            project=settings.pubsub_project,
            emulator_host=settings.pubsub_emulator_host or None,
            discovery_interval=settings.discovery_interval,
            ack_deadline=settings.pubsub_ack_deadline,
            idle_backoff_max=settings.pubsub_idle_backoff_seconds,
            active_backoff_max=settings.pubsub_active_backoff_seconds,
            active_seconds=settings.pubsub_active_seconds,
            shutdown_grace=settings.shutdown_grace_seconds,
        )


class SeenIds:
    """The last ``capacity`` (subscription, message id) pairs pulled, least recently seen dropped first."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def seen_before(self, path: str, message_id: str) -> bool:
        """Whether this message was pulled before; remembers it either way."""
        key = (path, message_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False


class PubSubAdapter:
    """Every tenant subscription matching the prefix, as a source of the ingestion driver."""

    kind = "pubsub"
    label = "Pub/Sub"

    def __init__(self, config: PubSubConfig) -> None:
        self.config = config
        self._client: PullClient | None = None
        self._seen = SeenIds()

    @property
    def client(self) -> PullClient:
        """The client of the connected adapter."""
        if self._client is None:
            raise RuntimeError("the Pub/Sub adapter is not connected")
        return self._client

    @property
    def schedule(self) -> Schedule:
        """A pool of ``pull_tasks`` pullers taking subscriptions in turn; deadlines checked every second."""
        return Schedule(
            max_messages=self.config.max_messages,
            max_messages_backlogged=self.config.max_messages_backlogged,
            pullers=self.config.pull_tasks,
            receive_slots=self.config.pull_tasks,
            idle_backoff_max=self.config.idle_backoff_max,
            active_backoff_max=self.config.active_backoff_max,
            active_seconds=self.config.active_seconds,
            error_backoff_max=self.config.error_backoff_max,
            discovery_interval=self.config.discovery_interval,
            deadline=self.config.ack_deadline,
            extend_every=1.0,
            retry_delay=0,
            batch_limit=ACK_CHUNK,
            shutdown_grace=self.config.shutdown_grace,
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        """One HTTP session (its pool sized for the pullers and the settle calls) and its client."""
        connector = aiohttp.TCPConnector(limit=self.config.pull_tasks * 2 + 32)
        async with aiohttp.ClientSession(connector=connector) as http:
            self._client = PullClient(session=http, api_root=self.config.api_root)  # type: ignore[arg-type]
            try:
                yield
            finally:
                self._client = None

    async def discover(self) -> list[Source]:
        """Every subscription of the project whose name starts with the prefix."""
        prefix = self.config.landing.name_prefix
        found: list[Source] = []
        for item in await self.client.list_project_subscriptions(self.config.project):
            path = str(item.get("name", ""))
            name = subscription_name_from_path(path)
            if name.startswith(prefix):
                deadline = int(item.get("ackDeadlineSeconds", 10) or 10)
                found.append(Source(path, name, strip_prefix(name, prefix), deadline))
        return found

    async def depth(self, source: Source) -> int | None:
        """Pub/Sub's pull API does not say."""
        return None

    async def receive(self, source: Source, max_messages: int) -> list[Received[SubscriberMessage]]:
        """One immediate pull (possibly empty)."""
        try:
            messages = await self.client.pull_now(source.source_id, max_messages)
        except aiohttp.ClientResponseError as exc:
            if exc.status == 404:
                raise SourceGone(source.name) from exc
            raise
        received: list[Received[SubscriberMessage]] = []
        for m in messages:
            attempt = m.delivery_attempt or 1
            if self._seen.seen_before(source.source_id, m.message_id):
                attempt = max(attempt, 2)
            received.append(Received(m.ack_id, m.message_id, attempt, m))
        return received

    async def acknowledge(self, source: Source, handles: list[str]) -> Report:
        """acknowledge."""
        report = Report()
        try:
            await self.client.acknowledge(source.source_id, handles)
        except Exception as exc:  # noqa: BLE001 - they come back and are landed again
            report.failed(f"ack: {exc}")
        else:
            report.done = len(handles)
        return report

    async def release(self, source: Source, handles: list[str], seconds: int) -> Report:
        """modifyAckDeadline: 0 nacks, otherwise (release later or extension) due ``seconds`` from now.

        A failure is counted; the old deadline then applies.
        """
        report = Report()
        try:
            await self.client.modify_ack_deadline(source.source_id, handles, seconds)
        except Exception as exc:  # noqa: BLE001
            report.failed(f"modifyAckDeadline: {exc}")
        else:
            report.done = len(handles)
        return report

    extend = release  # the same call: the ack deadline set to ``seconds`` from now

    def land(self, source: Source, message: Received[SubscriberMessage], received_at_ms: int) -> Landing:
        """:func:`~app.ingest.landing.land_pubsub`."""
        return land_pubsub(
            subscription_path=source.source_id,
            message_id=message.message_id,
            data=message.message.data,
            attributes=message.message.attributes,
            config=self.config.landing,
            received_at_ms=received_at_ms,
        )
