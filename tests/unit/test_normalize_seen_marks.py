"""The normalize stage's dedupe window (:class:`app.normalize.dedupe.SeenMarks`): same guarantee as the
windowed table it replaced, persisted in batches."""

from __future__ import annotations

from app.normalize.batch_stage import latest_batches
from app.normalize.dedupe import SeenMarks, decode_batch, key_partition


def test_redelivery_at_another_offset_is_a_duplicate_the_same_offset_is_not() -> None:
    marks = SeenMarks(window=60)
    marks.load(0, [])
    assert not marks.is_duplicate(0, "m-1", 11, 100.0)
    marks.remember(0, "m-1", 11, 100.0)
    assert marks.is_duplicate(0, "m-1", 42, 130.0)  # landed again, 30 s later
    assert not marks.is_duplicate(0, "m-1", 11, 130.0)  # the same staging record re-read: processed again
    assert not marks.is_duplicate(0, "m-1", 42, 161.0)  # older than the window


def test_batches_rebuild_the_marks_after_a_restart() -> None:
    first = SeenMarks(window=60)
    first.load(3, [])
    for i in range(5):
        first.remember(3, f"m-{i}", i + 1, 100.0 + i)
    batches = first.take_batches()
    assert [(p, key_partition(k)) for p, k, _ in batches] == [(3, 3)]
    assert first.take_batches() == []  # taken once
    assert [e[0] for e in decode_batch(batches[0][2])] == [f"m-{i}" for i in range(5)]

    second = SeenMarks(window=60)
    second.load(3, [(k, v) for _, k, v in batches])
    assert second.is_duplicate(3, "m-2", 99, 110.0)
    assert not second.is_duplicate(3, "m-2", 3, 110.0)


def test_pending_marks_survive_a_forget_until_taken() -> None:
    marks = SeenMarks(window=60)
    marks.load(1, [])
    marks.remember(1, "m-1", 5, 10.0)
    marks.forget(1)  # revoked or reassigned before the flush
    marks.load(1, [])
    assert marks.is_duplicate(1, "m-1", 6, 11.0)
    assert len(marks.take_batches()) == 1


def test_batch_limit_asks_for_a_write() -> None:
    marks = SeenMarks(window=60, batch_limit=3)
    marks.load(0, [])
    assert not marks.remember(0, "a", 1, 1.0)
    assert not marks.remember(0, "b", 2, 1.0)
    assert marks.remember(0, "c", 3, 1.0)


def test_expiry_forgets_old_marks_and_deletes_old_batches() -> None:
    marks = SeenMarks(window=60)
    marks.load(0, [])
    marks.remember(0, "old", 1, 100.0)
    ((_, old_key, _),) = marks.take_batches()
    marks.remember(0, "new", 2, 200.0)
    marks.take_batches()
    assert marks.expire() == [(0, old_key)]
    assert len(marks) == 1
    assert not marks.is_duplicate(0, "old", 9, 200.0)
    assert marks.is_duplicate(0, "new", 9, 200.0)


def test_garbage_batch_values_are_ignored() -> None:
    assert decode_batch(b"") == []
    assert decode_batch(b"not json") == []
    assert decode_batch(b'[["a", 1, 2.0], "x", [1]]') == [("a", 1, 2.0)]
    assert decode_batch([["a", 1, 2.0]]) == [("a", 1, 2.0)]  # as Faust's JSON codec hands it back
    assert key_partition("7:1-9") == 7
    assert key_partition("nope") is None
    assert key_partition(b"7:1-9") is None


def test_the_batch_stage_reads_back_what_compaction_would_leave() -> None:
    """The batch stage rebuilds a partition's marks from its changelog records in log order: the last value
    per key wins, a tombstone deletes, a key that is not a JSON string is skipped."""
    records = [
        (b'"0:1-2"', b'[["a", 1, 10.0]]'),
        (b'"0:3-3"', b'[["b", 3, 11.0]]'),
        (b'"0:1-2"', None),  # expired: tombstone
        (b"not json", b'[["x", 9, 1.0]]'),
        (b"7", b'[["y", 9, 1.0]]'),  # a JSON key, not a string
        (b'"0:4-4"', b'[["c", 4, 12.0]]'),
        (b'"0:3-3"', b'[["b", 3, 11.5]]'),  # rewritten: the later value, at its later place
    ]
    assert latest_batches(records) == [("0:4-4", b'[["c", 4, 12.0]]'), ("0:3-3", b'[["b", 3, 11.5]]')]
    marks = SeenMarks(3600)
    marks.load(0, latest_batches(records))
    assert marks.is_duplicate(0, "b", 99, 12.0) and marks.is_duplicate(0, "c", 99, 12.0)
    assert not marks.is_duplicate(0, "a", 99, 12.0)  # its batch was deleted
