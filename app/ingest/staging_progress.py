"""Reads staging's progress for the admission gate: end offsets and the app's committed offsets, summed.

The Kafka side of :mod:`app.ingest.admission` (which is pure): long-lived aiokafka clients opened once by
the ingest service, one read every :data:`~app.ingest.admission.SAMPLE_SECONDS`. The committed offsets are
the app's own consumer group's (normalize runs in the same Faust app, whichever worker it runs on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.ingest.admission import SAMPLE_SECONDS, AdmissionGate, StagingProgress

log = logging.getLogger(__name__)
REPORT_SECONDS = 5.0
"""While the gate holds sources, one log line this often says how many and why."""


class StagingProgressReader:
    """Samples ``topic``'s end offsets and ``group``'s committed offsets into an :class:`AdmissionGate`."""

    def __init__(self, gate: AdmissionGate, topic: str, group: str, client_options: dict[str, Any]) -> None:
        self.gate = gate
        self.topic = topic
        self.group = group
        self._options = client_options
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._partitions: list[TopicPartition] = []
        self._failing = False
        self._reported = 0.0

    async def read(self) -> StagingProgress:
        """One sample (opens the clients on first use)."""
        if self._consumer is None or self._admin is None:
            self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **self._options)
            self._admin = AIOKafkaAdminClient(**self._options)
            await self._consumer.start()
            await self._admin.start()
        if not self._partitions:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if not partitions:
                await self._consumer.topics()  # refresh metadata
                partitions = self._consumer.partitions_for_topic(self.topic) or set()
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            if not self._partitions:
                raise LookupError(f"topic {self.topic} has no partitions yet")
        ends = await self._consumer.end_offsets(self._partitions)
        starts = await self._consumer.beginning_offsets(self._partitions)
        answer = await self._admin.list_consumer_group_offsets(self.group, partitions=self._partitions)
        committed = 0
        consumed = False
        for tp in self._partitions:
            meta = answer.get(tp)
            if meta is not None and meta.offset >= 0:
                consumed = True
                offset = meta.offset
            else:
                offset = starts[tp]
            committed += min(max(offset, starts[tp]), ends[tp])
        return StagingProgress(time.monotonic(), sum(ends.values()), committed, consumed)

    async def run(self) -> None:
        """Sample forever (until cancelled); a failed read is logged once and the gate opens when stale."""
        try:
            while True:
                try:
                    self.gate.observe(await self.read())
                    self._report()
                    if self._failing:
                        log.info("staging admission: reading %s offsets again", self.topic)
                    self._failing = False
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the gate opens when its samples age
                    if not self._failing:
                        log.warning(
                            "staging admission: cannot read %s offsets (%r); admitting every source until "
                            "it can",
                            self.topic,
                            exc,
                        )
                    self._failing = True
                await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            await self.close()

    def _report(self) -> None:
        """Every REPORT_SECONDS while some source is above its share: who is held, and the figures."""
        now = time.monotonic()
        if now - self._reported < REPORT_SECONDS:
            return
        state = self.gate.state(now)
        heavy = self.gate.heavy(now)
        if state.open or not heavy or state.backlog is None or state.target is None:
            return
        self._reported = now
        log.info(
            "staging admission: %d source(s) above their share (%s); staging backlog ~%.0f of a %.0f-record "
            "target, normalize %s",
            len(heavy),
            ", ".join(heavy[:3]) + (", ..." if len(heavy) > 3 else ""),
            state.backlog,
            state.target,
            f"{state.consumption:.0f}/s" if state.consumption else "not measured yet",
        )

    async def close(self) -> None:
        """Close the clients."""
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        self._consumer = self._admin = None
