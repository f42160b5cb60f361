"""The user directory: every worker keeps a full replica of ``identity.users.v1``, in memory.

Why not a Faust ``GlobalTable``: with more than one worker, a GlobalTable's other replicas miss updates
(faust-streaming/faust#283, robinhood/faust#716 and #751, open), and a directory that is silently stale on
some workers would put a member in the wrong business unit in the archive. The identity topic is already
the directory's changelog (kept forever, keyed by tenant), so each worker reads all of its partitions with
a plain, group-less consumer from the beginning and applies every user fact to a
:class:`app.state.directory.UserRecord` (idempotent and order-insensitive, so re-reading is harmless).

A worker is not ready (``/readyz`` 503, the lag page says "catching up") until the replica has read up to
the end offsets it found at start. After that it follows the topic with a lag of one fetch (~0.1 s).
Size: ~0.5 KB per user in memory (1 M users ~0.5 GB); a worker restart re-reads the topic (about 100k user
events/s here, bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from app import topics as topic_names
from app.state.directory import UserRecord
from app.state.facts import USER_KINDS, user_key
from app.state.routing import StateInputError, decode_fact

log = logging.getLogger(__name__)


@dataclass
class ReplicaStats:
    """What the replica read so far."""

    records: int = 0
    user_facts: int = 0
    unreadable: int = 0
    caught_up: bool = False


class DirectoryReplica(Service):
    """Every user of every tenant, followed from ``identity.users.v1``; a :class:`app.state.Directory`."""

    def __init__(self, bootstrap_servers: str, topic: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.stats = ReplicaStats()
        self._records: dict[str, UserRecord] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._targets: dict[TopicPartition, int] = {}

    # -- Directory -------------------------------------------------------------------------------

    def user(self, tenant: str, user_id: str) -> UserRecord | None:
        """The user's record, None when no fact about them was read (yet)."""
        return self._records.get(user_key(tenant, user_id))

    def __len__(self) -> int:
        return len(self._records)

    @property
    def caught_up(self) -> bool:
        """True once the replica read up to the end offsets it found at start."""
        return self.stats.caught_up

    # -- service ---------------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Assign every partition of the identity topic, from the beginning."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        self._targets = {tp: end for tp, end in ends.items() if end > 0}
        self.stats.caught_up = not self._targets
        log.info(
            "directory: reading %s (%d partitions, %d records)",
            self.topic,
            len(partitions),
            sum(ends.values()),
        )

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The identity topic's partitions (waits while the topic is being created at first start)."""
        for _ in range(600):
            numbers = consumer.partitions_for_topic(self.topic)
            if numbers:
                return [TopicPartition(self.topic, p) for p in sorted(numbers)]
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {self.topic} does not exist: run `carryover topics apply`")

    async def on_stop(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()

    @Service.task
    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # on_start ran
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    self._apply(message.value or b"")
                if not self.stats.caught_up and tp in self._targets and messages:
                    if messages[-1].offset + 1 >= self._targets[tp]:
                        del self._targets[tp]
            if not self.stats.caught_up and not self._targets:
                self.stats.caught_up = True
                log.info(
                    "directory: caught up, %d users from %d records", len(self._records), self.stats.records
                )

    def _apply(self, value: bytes) -> None:
        self.stats.records += 1
        try:
            fact = decode_fact(topic_names.USERS, value)
        except StateInputError as exc:
            self.stats.unreadable += 1
            log.warning(
                "directory: unreadable %s record skipped (%d so far): %s",
                self.topic,
                self.stats.unreadable,
                exc,
            )
            return
        if fact is None or fact.kind not in USER_KINDS:
            return
        key = user_key(fact.tenant, fact.user_id)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = UserRecord(fact.tenant, fact.user_id)
        if record.apply(fact):
            self.stats.user_facts += 1
