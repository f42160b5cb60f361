"""The source port: what the ingestion driver needs from a cloud queue service, and nothing more.

An adapter (:mod:`app.ingest.sqs`, :mod:`app.ingest.pubsub`) implements :class:`SourcePort` with the
cloud's API calls and error codes only; :class:`app.ingest.driver.IngestDriver` owns everything else
(discovery loop, scheduling, in-flight tracking, landing, the Kafka write, acknowledge-after-ack, release,
extension, stats, shutdown). A new source (Azure Service Bus, Kafka, ...) is one more adapter file.

Contract of the calls:

* ``discover`` lists every source to ingest now; the driver adds new ones and drops vanished ones.
* ``receive`` pulls once from one source, at most ``max_messages``; it raises :class:`SourceGone` when
  the source no longer exists, anything else counts as a receive error and is retried with back-off.
* ``acknowledge`` / ``release`` / ``extend`` take at most ``schedule.batch_limit`` handles, never raise
  (a failure is reported in the returned :class:`Report`): the message then simply comes back.
* ``land`` is pure and never raises (``land_sqs`` / ``land_pubsub``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from app.ingest.landing import Landing, LandingConfig, TenantSource

if TYPE_CHECKING:
    from app.settings import Settings

M = TypeVar("M")
DEFAULT_SHUTDOWN_GRACE = 20.0
"""Seconds batches in flight may take to land on shutdown (setting ``CARRYOVER_SHUTDOWN_GRACE_SECONDS``)."""


@dataclass(frozen=True)
class Source:
    """One queue / subscription the adapter found."""

    source_id: str  # queue URL / subscription path
    name: str  # queue / subscription name
    tenant: str | None  # the name without the discovery prefix
    ack_deadline: int  # seconds a received message stays invisible before the first extension


@dataclass(frozen=True)
class Received(Generic[M]):
    """One received message: its settle handle, its id at the source and how often it was delivered."""

    handle: str  # SQS receipt handle / Pub/Sub ack id
    message_id: str
    receive_count: int  # 1 on first delivery; above 1 when the source delivers it again
    message: M  # the source's own message, for ``land``


@dataclass
class Report:
    """What one acknowledge / release / extend call did: handles the source confirmed, errors it met."""

    done: int = 0
    errors: int = 0
    last_error: str = ""

    def failed(self, error: str, count: int = 1) -> None:
        """Count ``count`` errors, the last described by ``error``."""
        self.errors += count
        self.last_error = error


class SourceGone(Exception):
    """The source was deleted: the driver stops receiving from it."""


@dataclass(frozen=True)
class Schedule:
    """How the driver runs one adapter's sources."""

    max_messages: int  # per receive
    max_messages_backlogged: int = 0  # a receive that came back full asks for twice as many next, up to this
    pullers: int = 0  # 0: one task per source (long polls); N: a pool of N tasks taking sources in turn
    receive_slots: int = 1024  # receives running at once
    idle_backoff_max: float = 0.0  # an empty receive waits 50 ms doubling up to this (0: at once)
    active_backoff_max: float | None = None  # the cap instead, within active_seconds of messages (None: same)
    active_seconds: float = 60.0
    error_backoff_max: float = 30.0  # a failed receive waits 1 s doubling up to this
    discovery_interval: float = 30.0
    deadline: int = 30  # seconds one extension grants
    extend_every: float = 1.0  # how often messages in flight are checked for extension
    retry_delay: int = 0  # a message whose write failed comes back after this many seconds
    batch_limit: int = 10  # handles per acknowledge / release / extend call
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE  # how long batches in flight may land on shutdown


class SourcePort(Protocol[M]):
    """One kind of source, e.g. SQS queues or Pub/Sub subscriptions."""

    @property
    def kind(self) -> str:
        """The stats key (``sqs``, ``pubsub``)."""
        ...

    @property
    def label(self) -> str:
        """The name in log lines (``SQS``, ``Pub/Sub``)."""
        ...

    @property
    def schedule(self) -> Schedule:
        """How the driver should run these sources."""
        ...

    def connect(self) -> AbstractAsyncContextManager[None]:
        """Open the client for the other calls; closed on exit."""
        ...

    async def discover(self) -> list[Source]:
        """Every source to ingest now."""
        ...

    async def depth(self, source: Source) -> int | None:
        """Messages waiting at the source (None: the source does not say)."""
        ...

    async def receive(self, source: Source, max_messages: int) -> list[Received[M]]:
        """One receive; raises :class:`SourceGone` when the source no longer exists."""
        ...

    async def acknowledge(self, source: Source, handles: list[str]) -> Report:
        """Delete / ack: the messages are durable in Kafka."""
        ...

    async def release(self, source: Source, handles: list[str], seconds: int) -> Report:
        """Make the messages visible again after ``seconds`` (0: at once)."""
        ...

    async def extend(self, source: Source, handles: list[str], seconds: int) -> Report:
        """Keep the messages invisible for ``seconds`` more."""
        ...

    def land(self, source: Source, message: Received[M], received_at_ms: int) -> Landing:
        """The message as a staging record or dead letter; pure, never raises."""
        ...


def landing_config(settings: Settings, name_prefix: str) -> LandingConfig:
    """The landing configuration of sources whose names start with ``name_prefix``."""
    tenant_source: TenantSource = settings.tenant_source  # type: ignore[assignment]
    return LandingConfig(name_prefix, tenant_source, settings.tenant_attribute, settings.max_message_bytes)
