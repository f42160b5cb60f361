"""Consumer lag from committed offsets and end offsets (pure: no Kafka, no HTTP).

Lag of a partition is what its consumer group still has to read: ``end - committed``.  A partition the
group never committed counts from the log start (carryover consumes with ``auto_offset_reset=earliest``),
so its lag is ``end - start``.  A committed offset beyond a (stale) end offset counts as lag 0.
Partitions without a known end offset are left out: a figure we cannot compute is not shown as 0.

The web layer (``app/ops/lag_views.py``) gathers the offsets; this module turns them into per-partition,
per-topic, per-group and per-agent figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


class Partition(NamedTuple):
    """A topic partition (same shape as aiokafka's TopicPartition, so either works as a key)."""

    topic: str
    partition: int


@dataclass(frozen=True)
class PartitionLag:
    """One consumer group's position on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True)
class TopicLag:
    """One consumer group's lag on one topic: the sum over its partitions."""

    group: str
    topic: str
    lag: int
    partitions: tuple[PartitionLag, ...]


@dataclass(frozen=True)
class GroupLag:
    """One consumer group's lag over every topic it reads."""

    group: str
    lag: int
    topics: tuple[TopicLag, ...]


@dataclass(frozen=True)
class AgentSubscription:
    """Which topics an agent reads, and in which consumer group (a Faust app's agents share its group)."""

    agent: str
    group: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class AgentLag:
    """An agent's lag: the sum of its group's lag over the agent's topics."""

    agent: str
    group: str
    topics: tuple[str, ...]
    lag: int


@dataclass(frozen=True)
class LagReport:
    """Lag of every group, and of every agent that was described."""

    groups: tuple[GroupLag, ...]
    agents: tuple[AgentLag, ...] = ()

    @property
    def total(self) -> int:
        """Lag summed over every group."""
        return sum(group.lag for group in self.groups)

    def partitions(self) -> Iterable[PartitionLag]:
        """Every partition row, ordered by group, topic, partition."""
        for group in self.groups:
            for topic in group.topics:
                yield from topic.partitions

    def group(self, name: str) -> GroupLag | None:
        """The named group's lag, or None when it is not in the report."""
        return next((group for group in self.groups if group.group == name), None)


def partition_lag(committed: int | None, end: int, start: int = 0) -> int:
    """Records still to read on one partition: ``end - committed`` (from ``start`` if never committed)."""
    position = start if committed is None or committed < 0 else committed
    return max(0, end - position)


def compute_lag(
    committed: Mapping[str, Mapping[tuple[str, int], int | None]],
    end_offsets: Mapping[tuple[str, int], int],
    start_offsets: Mapping[tuple[str, int], int] | None = None,
    agents: Sequence[AgentSubscription] = (),
) -> LagReport:
    """Lag per partition, topic, group and agent.

    ``committed`` maps group -> partition -> committed offset (None or -1: never committed) and lists every
    partition the group reads; ``end_offsets`` and ``start_offsets`` map partition -> offset.
    """
    starts = start_offsets or {}
    groups: list[GroupLag] = []
    for group_name in sorted(committed):
        by_topic: dict[str, list[PartitionLag]] = {}
        for key, offset in sorted(committed[group_name].items()):
            tp = Partition(*key)
            if tp not in end_offsets:
                continue
            end = end_offsets[tp]
            row_committed = None if offset is None or offset < 0 else offset
            lag = partition_lag(row_committed, end, starts.get(tp, 0))
            by_topic.setdefault(tp.topic, []).append(
                PartitionLag(group_name, tp.topic, tp.partition, row_committed, end, lag)
            )
        topics = tuple(
            TopicLag(group_name, topic, sum(row.lag for row in rows), tuple(rows))
            for topic, rows in sorted(by_topic.items())
        )
        groups.append(GroupLag(group_name, sum(topic.lag for topic in topics), topics))
    report = LagReport(tuple(groups))
    return LagReport(report.groups, tuple(agent_lag(report, agent) for agent in agents))


def agent_lag(report: LagReport, agent: AgentSubscription) -> AgentLag:
    """The agent's lag: its group's lag summed over the agent's topics (0 for topics not in the report)."""
    group = report.group(agent.group)
    topics = {topic.topic: topic.lag for topic in group.topics} if group else {}
    return AgentLag(agent.agent, agent.group, agent.topics, sum(topics.get(t, 0) for t in agent.topics))


def report_to_json(report: LagReport) -> dict[str, Any]:
    """The report as JSON-ready data (what ``/lag.json`` answers)."""
    return {
        "total_lag": report.total,
        "groups": [
            {
                "group": group.group,
                "lag": group.lag,
                "topics": [
                    {
                        "topic": topic.topic,
                        "lag": topic.lag,
                        "partitions": [
                            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
                            for p in topic.partitions
                        ],
                    }
                    for topic in group.topics
                ],
            }
            for group in report.groups
        ],
        "agents": [
            {"agent": a.agent, "group": a.group, "topics": list(a.topics), "lag": a.lag}
            for a in report.agents
        ],
    }
