"""Every hook definition in every worker: a full replica of ``carryover.config.webhooks``, in memory.

The same pattern as :class:`app.state.directory_replica.DirectoryReplica` (and for the same reason: a Faust
``GlobalTable`` misses updates with several workers, faust #283): a group-less consumer reads every
partition of the compacted config topic from the beginning and keeps the latest record of each hook. A
record is opened (its secrets unsealed with the tenant's key, :func:`app.webhooks.config.open_hook`) when it
is read; one that cannot be opened is logged (hook id and why, never a secret) and leaves the hook out, so
its deliveries are answered 404 rather than verified against a stale secret. A null value deletes a hook.

The worker is not ready until the replica has read up to the end offsets it found at start.
:meth:`HookReplica.wait_for` lets the admin API answer only once this worker's replica shows its own write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from app.crypto.keyring import KeyLookup
from app.webhooks.config import ConfigRecordError, StoredHook, open_hook
from app.webhooks.hooks import HookDefinition

log = logging.getLogger(__name__)


@dataclass
class HookReplicaStats:
    """What the replica read so far."""

    records: int = 0
    unreadable: int = 0
    caught_up: bool = False


class HookReplica(Service):
    """The latest :class:`StoredHook` of every hook id, followed from the config topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        keys: Callable[[], Awaitable[KeyLookup]],
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._keys_factory = keys
        self._keys: KeyLookup | None = None
        self.stats = HookReplicaStats()
        self._hooks: dict[str, StoredHook] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._targets: dict[TopicPartition, int] = {}
        self._changed = asyncio.Event()

    # -- lookups -------------------------------------------------------------------------------------

    def hook(self, hook_id: str) -> HookDefinition | None:
        """The hook's definition, None when unknown (or not readable)."""
        stored = self._hooks.get(hook_id)
        return stored.hook if stored is not None else None

    def stored(self, hook_id: str) -> StoredHook | None:
        """The hook with its revision and last change."""
        return self._hooks.get(hook_id)

    def all(self) -> list[StoredHook]:
        """Every known hook, by hook id."""
        return [self._hooks[hook_id] for hook_id in sorted(self._hooks)]

    def __len__(self) -> int:
        return len(self._hooks)

    @property
    def caught_up(self) -> bool:
        """True once the replica read up to the end offsets it found at start."""
        return self.stats.caught_up

    async def wait_caught_up(self) -> None:
        """Return once the replica has read up to the end offsets it found at start."""
        while not self.stats.caught_up:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.1)
            except TimeoutError:
                pass

    async def wait_for(self, hook_id: str, revision: int | None, within: float = 10.0) -> bool:
        """Wait until the replica holds ``hook_id`` at ``revision`` or later (None: until it is gone)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            stored = self._hooks.get(hook_id)
            if (revision is None and stored is None) or (
                revision is not None and stored is not None and stored.revision >= revision
            ):
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    # -- service -------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Load the tenant keys, assign every partition of the config topic from the beginning."""
        self._keys = await self._keys_factory()
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
        log.info("webhooks: reading hook definitions from %s (%d records)", self.topic, sum(ends.values()))

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
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
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            for tp, messages in batches.items():
                for message in messages:
                    self.apply((message.key or b"").decode(errors="replace"), message.value)
                if not self.stats.caught_up and tp in self._targets and messages:
                    if messages[-1].offset + 1 >= self._targets[tp]:
                        del self._targets[tp]
            if batches:
                self._changed.set()
            if not self.stats.caught_up and not self._targets:
                self.stats.caught_up = True
                log.info("webhooks: caught up, %d hooks", len(self._hooks))

    def apply(self, hook_id: str, value: bytes | None) -> None:
        """Take one config record (None: the hook was deleted)."""
        self.stats.records += 1
        if value is None:
            self._hooks.pop(hook_id, None)
            return
        assert self._keys is not None  # on_start ran
        try:
            stored = open_hook(value, self._keys, hook_id=hook_id)
        except ConfigRecordError as exc:
            self.stats.unreadable += 1
            self._hooks.pop(hook_id, None)
            log.error("webhooks: hook definition left out: %s", exc)
            return
        if stored.hook.hook_id != hook_id:
            self.stats.unreadable += 1
            log.error(
                "webhooks: config record keyed %r holds hook %r; left out", hook_id, stored.hook.hook_id
            )
            return
        previous = self._hooks.get(hook_id)
        if previous is None or stored.revision >= previous.revision:
            self._hooks[hook_id] = stored
