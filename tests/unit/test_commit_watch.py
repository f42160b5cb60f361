"""A partition's commit stuck behind offsets Faust read past and never acknowledged is read again.

The fault (a record fetched before a rebalance's seek reaching the stream after it, which leaves Faust's read
offset past the committed one) depends on a race inside Faust's consumer thread that the real client does not
produce on demand, so the consumer's bookkeeping is set by hand here and the seek is recorded."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from weakref import WeakSet

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from app.commit_watch import Hole, StuckCommitWatch, hole
from app.faust_app import CarryoverConsumer

EVENTS = TP("t.carryover.state.conversation-events.v1", 2)


@pytest.mark.parametrize(
    ("committed", "acked", "in_processing", "expected"),
    [
        (172, [], [], None),  # nothing acknowledged: nothing to commit, no hole
        (172, [172, 173, 174], [], None),  # contiguous from the committed offset
        (172, [173, 174], [], None),  # one past: Faust commits it (its own rule)
        (172, [200, 201, 205], [], Hole(172, 199)),  # read past 172..199, never acknowledged
        (172, [201, 200], [], Hole(172, 199)),  # acked is not kept sorted by Faust
        (172, [200, 201], [180], None),  # a record of the hole is still being processed
        (172, [200, 201], [150, 201], Hole(172, 199)),  # in processing, outside it
        (None, [200], [], None),  # never committed: Faust commits from the lowest acknowledged
        (0, [200], [], None),  # Faust treats a commit at 0 as none
    ],
)
def test_hole(
    committed: int | None, acked: list[int], in_processing: list[int], expected: Hole | None
) -> None:
    assert hole(committed, acked, in_processing) == expected


def test_a_hole_is_read_again_once_it_has_stood_for_stuck_seconds() -> None:
    watch = StuckCommitWatch(stuck_seconds=10)
    stuck = Hole(172, 199)
    assert [watch.check("p2", stuck, t) for t in (0, 5, 9.9)] == [False, False, False]
    assert watch.check("p2", stuck, 10.0)
    # it starts over: a hole that stays is read again at most once per stuck_seconds
    assert [watch.check("p2", stuck, t) for t in (10.5, 19)] == [False, False]
    assert watch.check("p2", stuck, 20.5)


def test_a_hole_that_closes_or_moves_starts_the_clock_again() -> None:
    watch = StuckCommitWatch(stuck_seconds=10)
    watch.check("p2", Hole(172, 199), 0)
    assert not watch.check("p2", None, 8)  # closed (the records were acknowledged after all)
    assert not watch.check("p2", Hole(172, 199), 9)
    assert not watch.check("p2", Hole(230, 240), 15)  # committed moved on: a new hole
    assert not watch.check("p2", Hole(230, 240), 24)
    assert watch.check("p2", Hole(230, 240), 25)


def test_revoked_partitions_are_forgotten_and_partitions_are_watched_apart() -> None:
    watch = StuckCommitWatch(stuck_seconds=10)
    watch.check("p1", Hole(1, 5), 0)
    watch.check("p2", Hole(1, 5), 0)
    watch.forget(["p1"])
    assert not watch.check("p1", Hole(1, 5), 12)  # its clock starts again
    assert watch.check("p2", Hole(1, 5), 12)


class Delivered:
    """A record handed to a stream (Faust keeps them in a WeakSet until acknowledged)."""

    def __init__(self, tp: TP, offset: int) -> None:
        self.tp, self.offset = tp, offset


def consumer_stuck_at(committed: int, acked: list[int], in_processing: list[int]) -> tuple[Any, list[Any]]:
    """A consumer whose bookkeeping for EVENTS is as given; seeks are recorded."""
    consumer: Any = CarryoverConsumer.__new__(CarryoverConsumer)
    consumer._commit_watch = StuckCommitWatch(stuck_seconds=10)
    consumer._rereads = set()
    consumer._clock = lambda: 0.0
    consumer._acked = defaultdict(list, {EVENTS: list(acked)})
    consumer._acked_index = defaultdict(set, {EVENTS: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset = defaultdict(lambda: None, {EVENTS: committed})
    messages = [Delivered(EVENTS, o) for o in in_processing]
    consumer._unacked_messages = WeakSet()
    for message in messages:
        consumer._unacked_messages.add(message)
    seeks: list[Any] = [messages]  # keeps the messages alive (a WeakSet)

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    consumer.seek = seek
    return consumer, seeks


async def test_the_consumer_seeks_back_to_the_committed_offset_once_the_hole_stood() -> None:
    consumer, seeks = consumer_stuck_at(172, [200, 201, 202], [])
    clock = iter([100.0, 105.0, 110.5])
    consumer._clock = lambda: next(clock)
    assert consumer._new_offset(EVENTS) is None  # Faust commits nothing past the hole
    assert consumer._new_offset(EVENTS) is None
    await asyncio.sleep(0)
    assert seeks[1:] == []
    assert consumer._new_offset(EVENTS) is None
    await asyncio.gather(*consumer._rereads)
    assert seeks[1:] == [(EVENTS, 172)]


async def test_the_consumer_leaves_a_hole_alone_while_a_record_of_it_is_processed() -> None:
    consumer, seeks = consumer_stuck_at(172, [200, 201], [180])
    clock = iter([100.0, 200.0, 300.0])
    consumer._clock = lambda: next(clock)
    for _ in range(3):
        assert consumer._new_offset(EVENTS) is None
    await asyncio.sleep(0)
    assert seeks[1:] == []


def test_a_contiguous_run_is_committed_as_faust_does() -> None:
    consumer, seeks = consumer_stuck_at(172, [172, 173, 174], [])
    assert consumer._new_offset(EVENTS) == 175
    assert seeks[1:] == []
