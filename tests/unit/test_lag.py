"""app.ops.lag: lag per partition, topic, group and agent from committed and end offsets (tables of
examples)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ops.lag import (
    AgentSubscription,
    Partition,
    PartitionLag,
    compute_lag,
    partition_lag,
    report_to_json,
)


@pytest.mark.parametrize(
    ("committed", "end", "start", "lag"),
    [
        (10, 10, 0, 0),  # caught up
        (3, 10, 0, 7),  # behind
        (None, 10, 0, 10),  # never committed: reads from the log start
        (-1, 10, 0, 10),  # the admin API's "no offset" answer
        (None, 10, 4, 6),  # log start above 0
        (0, 0, 0, 0),  # empty partition
        (12, 10, 0, 0),  # committed beyond a stale end offset: not negative
        (0, 5, 0, 5),  # committed 0 is a real commit, not "none"
    ],
)
def test_partition_lag(committed: int | None, end: int, start: int, lag: int) -> None:
    assert partition_lag(committed, end, start) == lag


def test_lag_per_partition_topic_and_group() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {
        "billing": {("orders", 0): 5, ("orders", 1): None, ("payments", 0): 7},
        "audit": {("orders", 0): 10, ("orders", 1): 2},
    }
    ends = {("orders", 0): 10, ("orders", 1): 4, ("payments", 0): 9}
    report = compute_lag(committed, ends)

    assert [(g.group, g.lag) for g in report.groups] == [("audit", 2), ("billing", 5 + 4 + 2)]
    billing = report.group("billing")
    assert billing is not None
    assert [(t.topic, t.lag) for t in billing.topics] == [("orders", 9), ("payments", 2)]
    assert billing.topics[0].partitions == (
        PartitionLag("billing", "orders", 0, 5, 10, 5),
        PartitionLag("billing", "orders", 1, None, 4, 4),
    )
    assert report.total == 13
    assert report.group("nobody") is None


def test_partitions_without_end_offset_are_left_out_not_zero() -> None:
    report = compute_lag({"g": {("t", 0): 1, ("t", 1): 1}}, {("t", 0): 3})
    assert [(p.topic, p.partition, p.lag) for p in report.partitions()] == [("t", 0, 2)]


def test_start_offsets_count_for_uncommitted_partitions_only() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {"g": {("t", 0): None, ("t", 1): 50}}
    report = compute_lag(committed, {("t", 0): 100, ("t", 1): 100}, {("t", 0): 90, ("t", 1): 90})
    assert [p.lag for p in report.partitions()] == [10, 50]


def test_keys_may_be_any_topic_partition_tuple() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {"g": {Partition("t", 0): 1}}
    assert compute_lag(committed, {("t", 0): 4}).total == 3


def test_agent_lag_sums_its_topics_in_its_group() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {
        "app": {("staging", 0): 0, ("staging", 1): 5, ("hooks", 0): 1},
        "other": {("staging", 0): 0},
    }
    ends = {("staging", 0): 10, ("staging", 1): 10, ("hooks", 0): 4}
    agents = [
        AgentSubscription("normalize", "app", ("staging",)),
        AgentSubscription("fan_in", "app", ("hooks",)),
        AgentSubscription("both", "app", ("staging", "hooks")),
        AgentSubscription("idle", "app", ("absent",)),
        AgentSubscription("elsewhere", "missing-group", ("staging",)),
    ]
    report = compute_lag(committed, ends, agents=agents)
    assert [(a.agent, a.lag) for a in report.agents] == [
        ("normalize", 15),
        ("fan_in", 3),
        ("both", 18),
        ("idle", 0),
        ("elsewhere", 0),
    ]


def test_json_shape() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {"g": {("t", 0): None}}
    report = compute_lag(committed, {("t", 0): 2}, agents=[AgentSubscription("a", "g", ("t",))])
    assert report_to_json(report) == {
        "total_lag": 2,
        "groups": [
            {
                "group": "g",
                "lag": 2,
                "topics": [
                    {
                        "topic": "t",
                        "lag": 2,
                        "partitions": [{"partition": 0, "committed": None, "end": 2, "lag": 2}],
                    }
                ],
            }
        ],
        "agents": [{"agent": "a", "group": "g", "topics": ["t"], "lag": 2}],
    }


offsets = st.integers(min_value=0, max_value=10**12)


@given(st.dictionaries(st.tuples(st.sampled_from("abc"), st.integers(0, 5)), st.tuples(offsets, offsets)))
def test_group_lag_is_sum_of_partition_lags_and_never_negative(
    rows: dict[tuple[str, int], tuple[int, int]],
) -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {"g": {tp: c for tp, (c, _e) in rows.items()}}
    ends = {tp: e for tp, (_c, e) in rows.items()}
    report = compute_lag(committed, ends)
    assert report.total == sum(max(0, e - c) for c, e in rows.values())
    assert all(p.lag >= 0 for p in report.partitions())
