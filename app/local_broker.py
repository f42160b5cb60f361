"""Compatibility with the embedded local broker (Tansu 0.6.0). Everything broker-specific lives here.

Switched on by ``CARRYOVER_LOCAL_BROKER=true`` only; against real Kafka none of it applies.
What Tansu does differently, and what this module does about it:

* ListOffsets(LATEST) answers "base offset of the newest batch + 1", not the high watermark. Faust's
  table recovery (and any lag figure) then stops short of the real end: updates are lost after a
  failover (memory store) or recovery crashes (RocksDB, "persisted offset is higher").  A Fetch
  response does carry the true high watermark, so :func:`corrected_end_offsets` asks for it with a tiny
  Fetch from the (lower-bound) ListOffsets answer.  ``seek_to_end`` and ``auto_offset_reset=latest``
  remain wrong on Tansu; carryover never relies on them.
* No idempotent or transactional producer (InitProducerId fails): :func:`producer_options` turns
  idempotence off here and on for real Kafka.  carryover never uses Faust's ``exactly_once``.
* Every JoinGroup is held for session_timeout/2: :func:`consumer_timeouts` uses 8 s / 1 s locally.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest

EndOffsets = Callable[[AIOKafkaConsumer, Iterable[TopicPartition]], Awaitable[dict[TopicPartition, int]]]

_original_end_offsets: EndOffsets = AIOKafkaConsumer.end_offsets
FETCH_WAIT_MS = 100  # Tansu answers an empty topic list when max_wait is 0


async def corrected_end_offsets(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """End offsets (high watermarks) that are right on Tansu: ListOffsets, then a 1-byte Fetch."""
    partitions = list(partitions)
    lower_bounds: dict[TopicPartition, int] = await _original_end_offsets(consumer, partitions)
    client: Any = consumer._client  # noqa: SLF001 - the public API has no raw request
    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for tp in partitions:
        node = client.cluster.leader_for_partition(tp)
        if node is None or node < 0:
            continue
        by_node[node][tp.topic].append((tp.partition, lower_bounds[tp], 1))
    corrected = dict(lower_bounds)
    for node, topics in by_node.items():
        request = FetchRequest(FETCH_WAIT_MS, 0, 1, 0, list(topics.items()))
        response = await client.send(node, request)
        for topic, partition_rows in response.topics:
            for partition, error_code, highwater, *_ in partition_rows:
                tp = TopicPartition(topic, partition)
                if error_code == 0 and highwater is not None and highwater >= lower_bounds.get(tp, 0):
                    corrected[tp] = highwater
    return corrected


def install_end_offset_correction() -> None:
    """Make every AIOKafkaConsumer in this process (Faust's included) report true end offsets."""
    AIOKafkaConsumer.end_offsets = corrected_end_offsets


def remove_end_offset_correction() -> None:
    """Undo :func:`install_end_offset_correction` (tests)."""
    AIOKafkaConsumer.end_offsets = _original_end_offsets


def end_offset_correction_installed() -> bool:
    """True when end offsets are being corrected in this process."""
    return AIOKafkaConsumer.end_offsets is corrected_end_offsets


def producer_options(local_broker: bool) -> Mapping[str, Any]:
    """aiokafka producer options: acks=all always; idempotence on real Kafka only."""
    return {"acks": "all", "enable_idempotence": not local_broker}


def consumer_timeouts(local_broker: bool) -> Mapping[str, float]:
    """Faust session timeout / heartbeat (s): short locally, where every JoinGroup waits half of it."""
    if local_broker:
        return {"broker_session_timeout": 8.0, "broker_heartbeat_interval": 1.0}
    return {"broker_session_timeout": 60.0, "broker_heartbeat_interval": 3.0}
