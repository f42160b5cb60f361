"""The normalize stage's dedupe window: which source message went through at which staging position.

Pure (no Kafka): the agent (and the benchmark's raw loop) keep one :class:`SeenMarks`, look every staging
record up in it, remember what went through, and persist what they remembered as a few *batch* records —
one per staging partition and flush, not one per staging record — to a changelog they flush before they
commit staging offsets. After a restart or a rebalance a partition's marks are rebuilt from those batches.

The guarantee is the one of the windowed table this replaced:

* a source message landed twice at different staging offsets yields its events once while the first copy
  is younger than the window (staging record time);
* the same staging record read again (after a crash, before its offset was committed) is processed again:
  a mark remembers the staging position (``offset + 1``) that carried it, and only a *different* position
  is a duplicate;
* every mark of a record whose offset is committed has reached the changelog, because the batches are
  written and acknowledged before the commit (the agent does it in the producer's flush, which Faust
  awaits before every commit).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from app.normalize.normalizer import is_redelivery

Mark = tuple[int, float]
"""(staging position = offset + 1, staging record time in seconds)."""


def batch_key(partition: int, first_marker: int, last_marker: int) -> str:
    """The changelog key of a batch: ``partition:first-last`` (the partition first, for the rebuild)."""
    return f"{partition}:{first_marker}-{last_marker}"


def key_partition(key: object) -> int | None:
    """The staging partition a batch key belongs to (None for a key that is not one)."""
    head, sep, _ = key.partition(":") if isinstance(key, str) else ("", "", "")
    return int(head) if sep and head.isdigit() else None


def encode_batch(entries: Iterable[tuple[str, int, float]]) -> bytes:
    """A batch value: a JSON list of ``[source id, marker, time]``."""
    return orjson.dumps([list(e) for e in entries])


def decode_batch(value: object) -> list[tuple[str, int, float]]:
    """The entries of a batch value, as bytes or as already decoded JSON (nothing for a tombstone or a
    value that is not one)."""
    if not value:
        return []
    items = value
    if isinstance(value, bytes | str):
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    if not isinstance(items, list):
        return []
    return [(str(i[0]), int(i[1]), float(i[2])) for i in items if isinstance(i, list) and len(i) == 3]


@dataclass
class _Partition:
    marks: dict[str, Mark] = field(default_factory=dict)
    written: list[tuple[str, float]] = field(default_factory=list)  # batch key, newest time in it
    newest: float = 0.0


@dataclass
class SeenMarks:
    """Marks of the staging partitions this process owns, with the entries not yet persisted.

    ``window`` is in seconds of staging record time. ``batch_limit`` caps the entries of one batch record
    (a batch is also taken when the pending entries of a partition reach it, to keep records small).
    """

    window: float
    batch_limit: int = 2000
    _partitions: dict[int, _Partition] = field(default_factory=dict)
    _pending: dict[int, list[tuple[str, int, float]]] = field(default_factory=dict)

    def loaded(self, partition: int) -> bool:
        """Whether ``partition``'s marks are in memory (else :meth:`load` them first)."""
        return partition in self._partitions

    def load(self, partition: int, batches: Iterable[tuple[str, object]]) -> None:
        """Rebuild ``partition``'s marks from its persisted batches (key, value as bytes or decoded
        JSON) and its pending entries."""
        part = _Partition()
        for key, value in batches:
            newest = 0.0
            for source_id, marker, at in decode_batch(value):
                newest = max(newest, at)
                if source_id not in part.marks or part.marks[source_id][1] <= at:
                    part.marks[source_id] = (marker, at)
            part.written.append((key, newest))
            part.newest = max(part.newest, newest)
        for source_id, marker, at in self._pending.get(partition, ()):
            part.marks[source_id] = (marker, at)
            part.newest = max(part.newest, at)
        self._partitions[partition] = part

    def forget(self, partition: int) -> None:
        """Drop ``partition``'s marks from memory (revoked or newly assigned: rebuilt on next use).
        Pending entries stay until :meth:`take_batches` hands them out."""
        self._partitions.pop(partition, None)

    def is_duplicate(self, partition: int, source_id: str, marker: int, at: float) -> bool:
        """True when ``source_id`` went through at another position of ``partition`` within the window."""
        mark = self._partitions[partition].marks.get(source_id)  # same position: a re-read, processed again
        return mark is not None and is_redelivery(mark[0], marker) and at - mark[1] < self.window

    def remember(self, partition: int, source_id: str, marker: int, at: float) -> bool:
        """Remember that ``source_id`` went through at ``marker``; True when the partition's pending
        entries reached ``batch_limit`` (take the batches now)."""
        part = self._partitions[partition]
        part.marks[source_id] = (marker, at)
        if at > part.newest:
            part.newest = at
        pending = self._pending.setdefault(partition, [])
        pending.append((source_id, marker, at))
        return len(pending) >= self.batch_limit

    def take_batches(self) -> list[tuple[int, str, bytes]]:
        """The pending entries as batch records ``(partition, key, value)``, and forget them as pending.
        The caller must write them (and have them acknowledged) before it commits staging offsets."""
        out = []
        for partition, entries in self._pending.items():
            if not entries:
                continue
            key = batch_key(partition, entries[0][1], entries[-1][1])
            out.append((partition, key, encode_batch(entries)))
            part = self._partitions.get(partition)
            if part is not None:
                part.written.append((key, max(e[2] for e in entries)))
        self._pending = {}
        return out

    def expire(self) -> list[tuple[int, str]]:
        """Forget marks older than the window (by each partition's newest record time); the batch
        records wholly older than it, as ``(partition, key)``, to delete (tombstones) from the changelog."""
        tombstones = []
        for partition, part in self._partitions.items():
            horizon = part.newest - self.window
            old = [s for s, (_, at) in part.marks.items() if at < horizon]
            for source_id in old:
                del part.marks[source_id]
            keep = []
            for key, newest in part.written:
                if newest < horizon:
                    tombstones.append((partition, key))
                else:
                    keep.append((key, newest))
            part.written = keep
        return tombstones

    def __len__(self) -> int:
        return sum(len(p.marks) for p in self._partitions.values())
