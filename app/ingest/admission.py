"""Staging admission: a tenant with a backlog waits in its own queue, not in staging in front of everyone.

Ingestion can land far faster than normalize consumes (a 50 000-message Pub/Sub backlog landed at ~1 400/s
against ~550/s normalized on one worker, ``bench/noisy_bench.py``). Whatever is landed beyond what
normalize keeps up with queues in staging, and every tenant's next event waits behind it. So ingestion
admits into staging only what keeps the staging backlog near a target of ``target_seconds`` of normalize's
measured consumption:

* **light sources** — whose rate over the last ``window`` seconds is at most their fair share of that
  consumption (consumption / sources active in the window, at least ``light_rate``) — are always admitted:
  a trickling tenant never waits for admission;
* **heavy sources** share what is left below the target: each receive is admitted for at most
  ``target - estimated backlog`` messages (the target is at least ``min_target`` records, so that a
  consumption measured while normalize was partly idle grows back quickly); at or above it they are
  *held* (the next turn comes after ``HOLD_SECONDS``), and their messages stay in their queue or
  subscription, where the source keeps them.

The estimate: the last sample of staging's end offsets minus normalize's committed offsets (summed over
partitions), less what normalize consumed since its last commit (Faust commits every ~2.8 s, so committed
offsets trail the real position by up to that), plus what this worker admitted since the sample.

Until normalize's consumption is measured (two commits seen: a worker starting), the target is the
smallest, ``min_target`` records, so that a backlog is not landed at full speed in the first seconds. The
gate is **open** (admits everyone, holds no one) when it has no basis: no sample yet or the last one is
older than ``stale_seconds`` (staging offsets cannot be read), the app's group never committed on staging
(no normalize worker ever ran: an ingest-only deployment or test), or normalize made no progress for
``stale_seconds`` while staging has a backlog (normalize is down or stuck: holding the sources then would
only move the backlog, so the data is taken off the sources as before and the lag page shows the stall).
Several ingesting workers each run their own gate on the same samples; each one's admissions between two
samples are unknown to the others, so the backlog may overshoot the target by up to one sample interval of
their admissions.

Pure: time is passed in; the service feeds samples (:class:`StagingProgress`) and the driver asks
:meth:`AdmissionGate.allowance` before each receive.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

HOLD_SECONDS = 0.05
"""A held source's next turn comes after this. Short: the check is local and cheap, and the estimate falls
between samples as normalize consumes, so a held source refills staging before normalize runs dry."""
SAMPLE_SECONDS = 0.25
"""How often the ingest service samples staging's offsets for the gate."""


@dataclass(frozen=True)
class StagingProgress:
    """One sample: staging's end offsets and normalize's committed offsets, summed over partitions."""

    at: float  # monotonic seconds
    end: int
    committed: int
    consumed: bool = True  # False: the group has no committed offset on staging (normalize never ran)

    @property
    def backlog(self) -> int:
        """Staging records not yet committed by normalize."""
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class GateState:
    """What the gate believes now (for logs, the sources view and tests)."""

    open: bool
    why: str
    backlog: float | None  # estimated staging backlog (records)
    target: float | None  # records
    consumption: float | None  # normalize's records/s


@dataclass
class AdmissionGate:
    """Admits receives into staging so that its backlog stays near ``target_seconds`` of consumption."""

    target_seconds: float = 1.0
    window: float = 10.0
    light_rate: float = 5.0
    min_target: int = 500
    stale_seconds: float = 10.0
    _last: StagingProgress | None = None
    _last_commit_at: float | None = None  # when the committed sum last moved
    _last_commit: int | None = None
    _rate: float | None = None  # records/s between the last two commit moves (smoothed)
    _progress_at: float | None = None  # last time committed moved or the backlog was 0
    _admitted_since_sample: int = 0
    _recent: dict[str, collections.deque[tuple[float, int]]] = field(default_factory=dict)
    _sums: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def enabled(self) -> bool:
        """False when ``target_seconds`` is 0: every receive is admitted."""
        return self.target_seconds > 0

    # --- feeding -----------------------------------------------------------------------------------
    def observe(self, sample: StagingProgress) -> None:
        """Take a new sample of staging's offsets."""
        previous = self._last
        self._last = sample
        self._admitted_since_sample = 0
        for source_id in list(self._recent):
            self._prune(source_id, sample.at)
        if sample.backlog == 0:
            self._progress_at = sample.at
        if self._last_commit is None or previous is None:
            self._last_commit, self._last_commit_at = sample.committed, sample.at
            self._progress_at = self._progress_at or sample.at
            return
        if sample.committed > self._last_commit:
            assert self._last_commit_at is not None
            elapsed = sample.at - self._last_commit_at
            if elapsed > 0:
                rate = (sample.committed - self._last_commit) / elapsed
                self._rate = rate if self._rate is None else 0.5 * self._rate + 0.5 * rate
            self._last_commit, self._last_commit_at = sample.committed, sample.at
            self._progress_at = sample.at
        elif sample.committed < self._last_commit:  # offsets reset (topic recreated): start over
            self._last_commit, self._last_commit_at, self._rate = sample.committed, sample.at, None

    def admitted(self, source_id: str, count: int, now: float) -> None:
        """``count`` messages of ``source_id`` were received (they will land in staging)."""
        if count <= 0:
            return
        self._admitted_since_sample += count
        self._recent.setdefault(source_id, collections.deque()).append((now, count))
        self._sums[source_id] += count
        self._prune(source_id, now)

    # --- deciding ----------------------------------------------------------------------------------
    def state(self, now: float) -> GateState:
        """Open or closed, and the figures behind it."""
        last, rate = self._last, self._rate
        if not self.enabled:
            return GateState(
                True, "admission control is off (CARRYOVER_STAGING_ADMISSION_SECONDS=0)", None, None, None
            )
        if last is None or now - last.at > self.stale_seconds:
            return GateState(True, "no recent sample of staging's offsets", None, None, rate)
        if not last.consumed:
            return GateState(True, "normalize has not committed on staging yet", last.backlog, None, rate)
        if (
            last.backlog > 0
            and self._progress_at is not None
            and now - self._progress_at > self.stale_seconds
        ):
            return GateState(True, "normalize is not consuming staging", last.backlog, None, rate)
        if rate is None or rate <= 0:  # not measured yet (a worker starting): the smallest target
            estimate = float(last.backlog + self._admitted_since_sample)
            why = "normalize's consumption not measured yet"
            return GateState(False, why, estimate, float(self.min_target), rate)
        since_commit = now - (self._last_commit_at or last.at)
        estimate = max(0.0, last.backlog - rate * since_commit) + self._admitted_since_sample
        target = max(float(self.min_target), rate * self.target_seconds)
        return GateState(False, "keeping staging's backlog near the target", estimate, target, rate)

    def heavy(self, now: float) -> list[str]:
        """Sources above their fair share of normalize's consumption now (held at the target)."""
        fair = self._fair_rate()
        return sorted(s for s in list(self._recent) if self._rate_of(s, now) > fair)

    def allowance(self, source_id: str, wanted: int, now: float) -> int:
        """How many messages ``source_id`` may receive now (0: held; its next turn after HOLD_SECONDS)."""
        gate = self.state(now)
        if gate.open or gate.backlog is None or gate.target is None:
            return wanted
        if self._rate_of(source_id, now) <= self._fair_rate():
            return wanted
        return max(0, min(wanted, round(gate.target - gate.backlog)))

    def _fair_rate(self) -> float:
        """Normalize's consumption shared by the sources that received in the window (pruned at samples)."""
        return max(self.light_rate, (self._rate or 0.0) / max(1, len(self._recent)))

    def _rate_of(self, source_id: str, now: float) -> float:
        self._prune(source_id, now)
        return self._sums.get(source_id, 0) / self.window

    def _prune(self, source_id: str, now: float) -> None:
        recent = self._recent.get(source_id)
        if recent is None:
            return
        while recent and now - recent[0][0] > self.window:
            self._sums[source_id] -= recent.popleft()[1]
        if not recent:
            del self._recent[source_id]
            self._sums.pop(source_id, None)
