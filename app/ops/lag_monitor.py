"""The lag monitor: one long-lived set of Kafka clients per worker, sampling the app's own consumer group.

Every ``CARRYOVER_LAG_SAMPLE_SECONDS`` it reads, for every partition of the topics the app's agents read,
the group's committed offset and the fresh end offset (corrected on the local broker), whether a group
member owns the partition, and, for partitions with lag, the timestamp of the oldest unprocessed record
(the record at the committed offset): its age is the time lag. Each partition keeps the samples of the last
few minutes, which :func:`app.ops.lag_status.evaluate` turns into a status. Views read the latest
:class:`LagSnapshot`; no request opens a Kafka client.

What the broker tells about ownership: real Kafka's DescribeGroups returns each member's assignment, so a
partition nobody owns is STOP. The local broker (Tansu) lists members without assignments: there only an
empty group (no worker at all) is STOP.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol
from faust.types import AppT
from mode import Service

from app import topics as topic_names
from app.ops.lag import AgentSubscription, compute_lag
from app.ops.lag_status import SEVERITY, Sample, Status, evaluate, worst
from app.ops.worker_status import SourcesSum, WorkerStatus, sum_sources

log = logging.getLogger(__name__)

FLOW = (
    topic_names.STAGING,
    topic_names.CONVERSATIONS,
    topic_names.MESSAGES,
    topic_names.COMPLIANCE,
    topic_names.USERS,
    topic_names.CONVERSATION_EVENTS,
    topic_names.WEBHOOK_DELIVERIES,
)
"""Topics in the order of the data path: the page shows stages in this order."""
STAGES = {
    topic_names.STAGING: "staging → normalize",
    topic_names.CONVERSATIONS: "canonical → state",
    topic_names.MESSAGES: "canonical → state",
    topic_names.COMPLIANCE: "canonical → state",
    topic_names.USERS: "canonical → state",
    topic_names.CONVERSATION_EVENTS: "state",
    topic_names.WEBHOOK_DELIVERIES: "webhooks",
}
TIME_LAG_PEEKS = 64
"""At most this many lagging partitions get their oldest record's timestamp read per sample."""
SPARK_POINTS = 60


@dataclass(frozen=True)
class PartitionRow:
    """One partition of the app's group, as the page shows it."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    time_lag_seconds: float | None
    status: Status
    reason: str
    history: tuple[int, ...]


@dataclass(frozen=True)
class AgentRow:
    """One agent: its worst partition's status, summed lag, largest time lag, lag history."""

    agent: str
    stage: str
    topics: tuple[str, ...]
    lag: int
    time_lag_seconds: float | None
    status: Status
    reason: str
    history: tuple[int, ...]


@dataclass(frozen=True)
class LagSnapshot:
    """What the monitor saw at its last sample."""

    sampled_at: float
    """Wall-clock time of the sample (epoch seconds)."""
    window_seconds: float
    members: int | None
    agents: tuple[AgentRow, ...]
    partitions: tuple[PartitionRow, ...]
    error: str = ""
    sources: SourcesSum | None = None
    """Ingestion sources summed over every worker that reported lately (None: no status topic read yet)."""

    @property
    def total_lag(self) -> int:
        """Lag summed over every partition."""
        return sum(p.lag for p in self.partitions)


def bootstrap_servers(app: AppT) -> str:
    """The app's broker URLs as aiokafka's ``host:port,...``."""
    return ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)


def client_options(app: AppT) -> dict[str, Any]:
    """Connection options (bootstrap, TLS/SASL) for extra aiokafka clients, as Faust's own clients use."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth  # noqa: PLC0415

    return {
        "bootstrap_servers": bootstrap_servers(app),
        "client_id": f"{app.conf.broker_client_id}-lag",
        **credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context),
    }


def flow_position(topic: str, prefix: str) -> int:
    """Where ``topic`` (with its environment prefix) sits in :data:`FLOW` (unknown topics last)."""
    name = topic.removeprefix(prefix)
    return FLOW.index(name) if name in FLOW else len(FLOW)


def stage_of(topics: tuple[str, ...], prefix: str) -> str:
    """The stage label of an agent reading ``topics``."""
    for topic in topics:
        name = topic.removeprefix(prefix)
        if name in STAGES:
            return STAGES[name]
    return "other"


def worst_first(rows: list[Any], prefix: str) -> list[Any]:
    """Rows sorted worst status first, then by lag, then in flow order."""

    def key(row: Any) -> tuple[int, int, int, str]:
        topic = row.topic if hasattr(row, "topic") else row.topics[0]
        return (-SEVERITY[row.status], -row.lag, flow_position(topic, prefix), str(row))

    return sorted(rows, key=key)


@dataclass
class _History:
    samples: collections.deque[Sample] = field(default_factory=lambda: collections.deque(maxlen=600))


class LagMonitor(Service):
    """Samples the app's consumer group every ``interval`` seconds; ``snapshot`` is the latest picture."""

    def __init__(
        self, app: AppT, *, interval: float, window: float, prefix: str, status_topic: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.status_topic = status_topic
        self.worker_statuses: dict[str, WorkerStatus] = {}
        self._statuses: AIOKafkaConsumer | None = None
        self._statuses_assigned = False
        self.app = app
        self.interval = interval
        self.window = window
        self.prefix = prefix
        self.snapshot: LagSnapshot | None = None
        self._histories: dict[tuple[str, str, int], _History] = collections.defaultdict(_History)
        self._agent_lags: dict[str, collections.deque[int]] = collections.defaultdict(
            lambda: collections.deque(maxlen=SPARK_POINTS)
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._peek: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    def subscriptions(self) -> list[AgentSubscription]:
        """The app's agents (and services reading in its group) and the topics each reads, in the app's own
        consumer group."""
        subs = []
        for agent in self.app.agents.values():
            topics = tuple(sorted(agent.get_topic_names()))
            if topics:
                subs.append(AgentSubscription(agent.name, self.app.conf.id, topics))
        for name, topics in getattr(self.app, "stage_readers", {}).items():  # services reading in the group
            subs.append(AgentSubscription(name, self.app.conf.id, tuple(sorted(topics))))
        return subs

    async def on_start(self) -> None:
        """Open the monitor's clients (they live as long as the worker)."""
        options = client_options(self.app)
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
        self._peek = AIOKafkaConsumer(enable_auto_commit=False, **options)
        self._admin = AIOKafkaAdminClient(**options)
        self._statuses = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", **options)
        await self._statuses.start()
        await self._consumer.start()
        await self._peek.start()
        await self._admin.start()

    async def on_stop(self) -> None:
        """Close the clients."""
        for client in (self._consumer, self._peek, self._statuses):
            if client is not None:
                await client.stop()
        if self._admin is not None:
            await self._admin.close()

    @Service.task
    async def _sample_forever(self) -> None:
        while not self.should_stop:
            with contextlib.suppress(asyncio.CancelledError):
                await self.sample()
            await self.sleep(self.interval)

    async def sample(self) -> LagSnapshot:
        """Read offsets once, update the histories and the snapshot."""
        subs = self.subscriptions()
        group = self.app.conf.id
        topics = sorted({t for sub in subs for t in sub.topics})
        now, wall = time.monotonic(), time.time()
        try:
            committed, ends, starts, members, owned = await self._read(group, topics)
            ages = await self._time_lags(committed, ends, starts, wall)
        except Exception as exc:  # noqa: BLE001 - shown as ERR on the page, the monitor goes on
            log.warning("lag monitor: cannot read offsets of %s: %r", group, exc)
            self.snapshot = self._errored(f"cannot read offsets from Kafka: {exc!r}", wall)
            return self.snapshot
        report = compute_lag({group: committed}, ends, starts, subs)
        rows: list[PartitionRow] = []
        for p in report.partitions():
            history = self._histories[(p.group, p.topic, p.partition)].samples
            history.append(Sample(now, p.committed, p.end, p.lag))
            verdict = evaluate(list(history), self.window, owned=owned.get((p.topic, p.partition)))
            lags = tuple(s.lag for s in list(history)[-SPARK_POINTS:])
            age = ages.get((p.topic, p.partition)) if p.lag else 0.0
            rows.append(
                PartitionRow(
                    p.group,
                    p.topic,
                    p.partition,
                    p.committed,
                    p.end,
                    p.lag,
                    age,
                    verdict.status,
                    verdict.reason,
                    lags,
                )
            )
        agents = []
        for sub in subs:
            mine = [r for r in rows if r.topic in sub.topics]
            status = worst([r.status for r in mine])
            lag = sum(r.lag for r in mine)
            self._agent_lags[sub.agent].append(lag)
            reasons = [
                f"{r.topic.removeprefix(self.prefix)}[{r.partition}]: {r.reason}"
                for r in mine
                if r.status == status
            ]
            ages_known = [r.time_lag_seconds for r in mine if r.time_lag_seconds is not None]
            agents.append(
                AgentRow(
                    sub.agent,
                    stage_of(sub.topics, self.prefix),
                    sub.topics,
                    lag,
                    max(ages_known) if ages_known else None,
                    status,
                    reasons[0]
                    if status != Status.OK and reasons
                    else ("no lag" if lag == 0 else f"lag {lag}"),
                    tuple(self._agent_lags[sub.agent]),
                )
            )
        self.snapshot = LagSnapshot(
            wall,
            self.window,
            members,
            tuple(worst_first(agents, self.prefix)),
            tuple(worst_first(rows, self.prefix)),
            sources=await self._sources(wall),
        )
        return self.snapshot

    async def _sources(self, wall: float) -> SourcesSum | None:
        """Read new worker statuses; the sum of the fresh ones (None while the topic cannot be read)."""
        consumer = self._statuses
        if consumer is None or not self.status_topic:
            return None
        try:
            if not self._statuses_assigned:
                if self.status_topic not in await consumer.topics():
                    return None
                tp = TopicPartition(self.status_topic, 0)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                self._statuses_assigned = True
            batches = await consumer.getmany(timeout_ms=50, max_records=10_000)
        except Exception as exc:  # noqa: BLE001 - the sources sum is missing from the page, lag is not
            log.warning("lag monitor: cannot read %s: %r", self.status_topic, exc)
            return None
        for records in batches.values():
            for record in records:
                try:
                    status = WorkerStatus.from_json(record.value or b"")
                except ValueError:
                    continue
                self.worker_statuses[status.worker] = status
        return sum_sources(self.worker_statuses.values(), wall, max_age=max(3 * self.interval, 15.0))

    def _errored(self, error: str, wall: float) -> LagSnapshot:
        previous = self.snapshot
        partitions = tuple(
            PartitionRow(
                p.group,
                p.topic,
                p.partition,
                p.committed,
                p.end,
                p.lag,
                p.time_lag_seconds,
                Status.ERR,
                error,
                p.history,
            )
            for p in (previous.partitions if previous else ())
        )
        agents = tuple(
            AgentRow(a.agent, a.stage, a.topics, a.lag, a.time_lag_seconds, Status.ERR, error, a.history)
            for a in (previous.agents if previous else ())
        )
        return LagSnapshot(wall, self.window, None, agents, partitions, error)

    async def _read(
        self, group: str, topics: list[str]
    ) -> tuple[
        dict[tuple[str, int], int | None],
        dict[tuple[str, int], int],
        dict[tuple[str, int], int],
        int | None,
        dict[tuple[str, int], bool | None],
    ]:
        consumer, admin = self._consumer, self._admin
        assert consumer is not None and admin is not None  # started
        existing = await consumer.topics()
        tps = [
            TopicPartition(t, p)
            for t in topics
            if t in existing
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            return {}, {}, {}, None, {}
        ends = dict(await consumer.end_offsets(tps))
        starts = dict(await consumer.beginning_offsets(tps))
        answer = await admin.list_consumer_group_offsets(group, partitions=tps)
        committed: dict[tuple[str, int], int | None] = {tp: None for tp in tps}
        for tp, meta in answer.items():
            committed[tp] = meta.offset if meta.offset >= 0 else None
        members, assigned = await self._membership(group)
        owned: dict[tuple[str, int], bool | None] = {}
        for tp in tps:
            if members == 0:
                owned[tp] = False
            elif assigned is not None:
                owned[tp] = (tp.topic, tp.partition) in assigned
            else:
                owned[tp] = None
        return committed, ends, starts, members, owned

    async def _membership(self, group: str) -> tuple[int | None, set[tuple[str, int]] | None]:
        """(members, assigned partitions) of the group; assignments None when the broker gives none."""
        assert self._admin is not None
        try:
            responses = await self._admin.describe_consumer_groups([group])
        except Exception as exc:  # noqa: BLE001 - ownership unknown, not an error of the lag figures
            log.debug("lag monitor: describe %s failed: %r", group, exc)
            return None, None
        members = 0
        assigned: set[tuple[str, int]] = set()
        any_assignment = False
        for response in responses:
            for described in response.groups:
                for member in described[5]:
                    members += 1
                    raw = member[-1]
                    if raw:
                        with contextlib.suppress(Exception):
                            decoded = ConsumerProtocol.ASSIGNMENT.decode(raw)
                            any_assignment = True
                            for topic, partitions in decoded.assignment:
                                assigned.update((topic, p) for p in partitions)
        return members, (assigned if any_assignment else None)

    async def _time_lags(
        self,
        committed: dict[tuple[str, int], int | None],
        ends: dict[tuple[str, int], int],
        starts: dict[tuple[str, int], int],
        wall: float,
    ) -> dict[tuple[str, int], float]:
        """Age (s) of the oldest unprocessed record of each lagging partition (at most TIME_LAG_PEEKS)."""
        peek = self._peek
        assert peek is not None
        lagging = [
            TopicPartition(*tp)
            for tp, end in ends.items()
            if end > (committed.get(tp) if committed.get(tp) is not None else starts.get(tp, 0))  # type: ignore[operator]
        ][:TIME_LAG_PEEKS]
        if not lagging:
            return {}
        peek.assign(lagging)
        for tp in lagging:
            position = committed.get((tp.topic, tp.partition))
            peek.seek(tp, position if position is not None else starts.get((tp.topic, tp.partition), 0))
        ages: dict[tuple[str, int], float] = {}
        deadline = time.monotonic() + 1.0
        while len(ages) < len(lagging) and time.monotonic() < deadline:
            batch = await peek.getmany(
                *[tp for tp in lagging if (tp.topic, tp.partition) not in ages],
                timeout_ms=200,
                max_records=len(lagging),
            )
            for tp, records in batch.items():
                if records and (tp.topic, tp.partition) not in ages:
                    ages[(tp.topic, tp.partition)] = max(0.0, wall - records[0].timestamp / 1000)
        return ages
