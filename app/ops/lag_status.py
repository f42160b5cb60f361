"""Is a consumer fine? A status per partition from its recent offsets, in the manner of Burrow (pure).

Every few seconds the lag monitor samples, per partition of the app's consumer group, the committed offset
and the fresh end offset. :func:`evaluate` turns the samples of the evaluation window (default 60 s) into:

* ``ERR``   — the offsets could not be read (the reason says why);
* ``OK``    — no lag; or lag, and the consumer is making progress;
* ``STOP``  — lag, and no member of the group owns the partition (the group is empty, or, where the broker
  reports assignments, nobody is assigned it): nothing will ever read it until a worker comes;
* ``STALL`` — lag, and the committed offset did not move over the whole window: a consumer owns the
  partition but does not get on (stuck, crash-looping, or paused);
* ``WARN``  — the lag grew over the whole window (every sample at least the one before, the last above the
  first) without being a STALL: the consumer falls behind (or has just started to stall, and becomes STALL
  once the committed offset stood still for a whole window with lag).

A partition with less than ``MIN_SAMPLES`` samples spanning at least ``MIN_SPAN`` of the window is judged only
on what is certain (ERR, STOP, no lag: OK) and is otherwise ``OK`` with the reason "evaluating".
Statuses order from worst to best as ERR, STOP, STALL, WARN, OK (:data:`SEVERITY`), which is how the page
sorts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """A partition's (or an agent's: its worst partition's) status."""

    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    ERR = "ERR"


SEVERITY = {Status.ERR: 4, Status.STOP: 3, Status.STALL: 2, Status.WARN: 1, Status.OK: 0}
"""Higher is worse."""
MIN_SAMPLES = 3
MIN_SPAN = 0.8
"""Fraction of the window the samples must span before STALL or WARN is decided."""


@dataclass(frozen=True)
class Sample:
    """One reading of one partition: when (monotonic seconds), committed offset (None: never), end, lag."""

    at: float
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True)
class Verdict:
    """A status and why, in words an operator reads on the page."""

    status: Status
    reason: str


def evaluate(
    samples: Sequence[Sample], window: float, *, owned: bool | None = None, error: str = ""
) -> Verdict:
    """The status of one partition from its samples (oldest first); see the module docstring.

    ``owned``: whether a member of the group owns the partition (None when the broker does not say).
    ``error``: why the latest reading failed ('' when it did not).
    """
    if error:
        return Verdict(Status.ERR, error)
    if not samples:
        return Verdict(Status.ERR, "no offsets read yet")
    latest = samples[-1]
    if latest.lag == 0:
        return Verdict(Status.OK, "no lag")
    if owned is False:
        return Verdict(Status.STOP, f"lag {latest.lag} and no member of the group owns the partition")
    recent = [s for s in samples if s.at >= latest.at - window]
    if len(recent) < MIN_SAMPLES or latest.at - recent[0].at < window * MIN_SPAN:
        return Verdict(Status.OK, f"lag {latest.lag}, evaluating")
    if all(s.lag > 0 for s in recent) and len({s.committed for s in recent}) == 1:
        return Verdict(Status.STALL, f"lag {latest.lag}; committed offset unchanged for {window:.0f} s")
    lags = [s.lag for s in recent]
    if all(b >= a for a, b in zip(lags, lags[1:], strict=False)) and lags[-1] > lags[0]:
        return Verdict(Status.WARN, f"lag grew from {lags[0]} to {lags[-1]} over {window:.0f} s")
    return Verdict(Status.OK, f"lag {latest.lag}, making progress")


def worst(statuses: Sequence[Status]) -> Status:
    """The worst of ``statuses`` (OK when empty)."""
    return max(statuses, key=SEVERITY.__getitem__, default=Status.OK)


def sparkline_svg(values: Sequence[int], width: int = 120, height: int = 24) -> str:
    """A small inline SVG polyline of ``values`` (lag over time), scaled to its own maximum."""
    if not values:
        return ""
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )
    return (
        f"<svg class='spark' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='lag over time, max {top}'><polyline fill='none' stroke='currentColor' "
        "stroke-width='1.5' "
        f"points='{points}'/></svg>"
    )
