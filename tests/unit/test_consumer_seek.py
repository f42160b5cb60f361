"""The seek Faust makes after a rebalance or recovery ("seek stream partitions to committed offsets") also
moves the partitions that have no committed offset, back to their beginning.

Faust drops records it fetched while its flow was stopped or the generation changed, and relies on that seek
to read them again; aiokafka's ``seek_to_committed`` skipped partitions without a committed offset, so a
worker that died before its first commit had its successor skip records (the archive's crash test caught it
1 run in 3). The fault, Faust dropping a fetched batch, cannot be produced on demand by the real client: the
consumer thread is replaced by one that records the seeks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from app.faust_app import CarryoverConsumer

EVENTS = "t.carryover.state.conversation-events.v1"
CHANGELOG = "app-state-conversations-changelog"


class RecordingThread:
    """A consumer thread with fixed committed offsets; records the partitions sought to their beginning."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TP] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: TP) -> None:
        self.to_beginning.extend(partitions)


def consumer_with(thread: RecordingThread) -> Any:
    consumer: Any = CarryoverConsumer.__new__(CarryoverConsumer)
    consumer._thread = thread
    consumer.app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={CHANGELOG}))
    return consumer


async def test_stream_partitions_without_a_committed_offset_are_read_from_their_beginning() -> None:
    thread = RecordingThread(
        {
            TP(EVENTS, 0): 170,  # committed: aiokafka seeks it there
            TP(EVENTS, 1): None,  # never committed: the fetcher may be past records Faust dropped
            TP(EVENTS, 2): 0,  # committed at 0: aiokafka skips it too
            TP(CHANGELOG, 1): None,  # Faust's recovery seeks changelogs itself
        }
    )
    committed = await consumer_with(thread).seek_to_committed()
    assert sorted(thread.to_beginning) == [TP(EVENTS, 1), TP(EVENTS, 2)]
    assert committed[TP(EVENTS, 0)] == 170  # what Faust records as committed is unchanged


async def test_nothing_is_sought_when_every_stream_partition_has_a_committed_offset() -> None:
    thread = RecordingThread({TP(EVENTS, 0): 12, TP(EVENTS, 1): 3, TP(CHANGELOG, 0): None})
    await consumer_with(thread).seek_to_committed()
    assert thread.to_beginning == []
