"""Stuck commits: offsets Faust read past but will never acknowledge, so a partition's commit stands still.

Faust commits a partition only up to the first offset not acknowledged after its last commit. After a
rebalance it seeks each partition back to its committed offset and drops every record below its *read
offset* (the offset of the last record it handed to a stream) as already read. When a record fetched before
the seek reaches the stream after it (Tansu re-joins a group within the same generation, so Faust's
generation check does not stop it), the read offset is left past the committed one: the records in between
are fetched again, dropped as already read, and never acknowledged. The partition is still processed, but its
commit stays where it was for good: the lag page shows it stuck, and a restart reads the whole stretch again
(faust-streaming issues #221 and #606 describe the same family).

:class:`StuckCommitWatch` spots such a partition from what Faust knows: acknowledged offsets after a hole
that starts at the committed offset, where no record of the hole is still being processed, for
``stuck_seconds``. The consumer then seeks the partition to its committed offset again (its read offset
with it), so the hole is read, processed and acknowledged again: at least once, as after a crash. Pure:
time and Faust's bookkeeping are passed in.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

STUCK_SECONDS = 10.0
"""How long a hole must stand, with nothing of it in processing, before it is read again. Faust commits
every ~2.8 s: a few commits' worth."""


@dataclass(frozen=True)
class Hole:
    """Offsets ``first`` .. ``last`` of a partition: read past, never acknowledged."""

    first: int  # the committed offset (the next one to read)
    last: int  # the offset before the first acknowledged one


def hole(committed: int | None, acked: Iterable[int], in_processing: Iterable[int]) -> Hole | None:
    """The hole that keeps Faust from committing, when none of its records is being processed.

    ``committed``: the partition's committed offset (the next to read, Faust's ``_committed_offset``);
    ``acked``: offsets acknowledged since (``_acked``); ``in_processing``: offsets handed to a stream and not
    acknowledged yet. Faust commits nothing while the lowest acknowledged offset is more than one past the
    committed one (``Consumer._new_offset``); a hole with a record still in processing will close by itself.
    """
    lowest = min(acked, default=None)
    if not committed or lowest is None or lowest - committed <= 1:
        return None
    if any(committed <= offset < lowest for offset in in_processing):
        return None
    return Hole(committed, lowest - 1)


@dataclass
class StuckCommitWatch:
    """Per partition: since when the same hole has stood; says when to read it again."""

    stuck_seconds: float = STUCK_SECONDS
    _since: dict[Hashable, tuple[Hole, float]] = field(default_factory=dict)

    def check(self, partition: Hashable, found: Hole | None, now: float) -> bool:
        """True once ``found`` (the partition's hole now, or None) has stood for ``stuck_seconds``; the
        watch then starts over for that partition, so a hole that stays is read again at most once per
        ``stuck_seconds``."""
        if found is None:
            self._since.pop(partition, None)
            return False
        seen = self._since.get(partition)
        if seen is None or seen[0] != found:
            self._since[partition] = (found, now)
            return False
        if now - seen[1] < self.stuck_seconds:
            return False
        del self._since[partition]
        return True

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Partitions revoked: their holes are no longer this worker's."""
        for partition in partitions:
            self._since.pop(partition, None)
