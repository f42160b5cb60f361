"""Staging admission (pure): who is admitted into staging, and how much, as tables of scenarios."""

from __future__ import annotations

import pytest

from app.ingest.admission import AdmissionGate, StagingProgress


def gate_measuring(
    rate: float,
    backlog: int,
    *,
    at: float = 10.0,
    target_seconds: float = 1.0,
    recent: dict[str, float] | None = None,
) -> AdmissionGate:
    """A gate whose last two samples (``at`` - 2 s, ``at``) saw normalize commit ``rate`` records/s, the
    second with ``backlog``; ``recent``: source -> messages/s it received over the 10 s before ``at``."""
    gate = AdmissionGate(target_seconds=target_seconds)
    committed = 100_000
    gate.observe(StagingProgress(at - 2.0, committed + backlog, committed))
    for source, per_second in (recent or {}).items():
        receive(gate, source, per_second, 10, at)
    moved = int(rate * 2.0)
    gate.observe(StagingProgress(at, committed + moved + backlog, committed + moved))
    return gate


def receive(gate: AdmissionGate, source: str, per_second: float, seconds: float, now: float) -> None:
    """``source`` received ``per_second`` messages each second for the ``seconds`` before ``now``."""
    for i in range(int(seconds)):
        gate.admitted(source, int(per_second), now - seconds + i + 0.5)


@pytest.mark.parametrize(
    ("scenario", "backlog", "hot_rate", "expected_hot", "expected_trickle"),
    [
        # normalize consumes 500/s; target = max(500 records, 1 s x 500/s) = 500
        ("staging nearly empty: everyone admitted in full", 0, 800.0, 50, 50),
        ("below the target: the heavy source gets what is left", 480, 800.0, 20, 50),
        ("at the target: the heavy source is held, the trickle is not", 500, 800.0, 0, 50),
        ("far above the target: same", 40_000, 800.0, 0, 50),
        ("a source at its fair share is light: admitted however large the backlog", 40_000, 9.0, 50, 50),
    ],
)
def test_heavy_sources_wait_at_the_target_light_ones_never(
    scenario: str, backlog: int, hot_rate: float, expected_hot: int, expected_trickle: int
) -> None:
    now = 10.0
    recent = {"hot": hot_rate} | {f"trickle-{i}": 1.0 for i in range(50)}
    gate = gate_measuring(500.0, backlog, at=now, recent=recent)
    # fair share = 500/s over 51 active sources ~ 9.8/s
    assert gate.allowance("hot", 50, now) == expected_hot, scenario
    assert gate.allowance("trickle-7", 50, now) == expected_trickle, scenario
    assert gate.allowance("newcomer", 50, now) == 50, "a source that received nothing lately is light"


def test_the_estimate_counts_what_normalize_consumed_since_its_commit_and_what_was_admitted_since() -> None:
    # committed moved at t=10: backlog 1000 then
    gate = gate_measuring(500.0, 1_000, at=10.0, recent={"hot": 800.0})
    assert gate.allowance("hot", 50, 10.0) == 0  # 1000 >= target 500
    # 1.2 s later without a new commit: normalize consumed ~600 of it, the estimate is 400
    state = gate.state(11.2)
    assert state.backlog == pytest.approx(400.0) and state.target == pytest.approx(500.0)
    assert gate.allowance("hot", 50, 11.2) == 50
    gate.admitted("hot", 80, 11.2)  # landed since the sample: counted at once
    assert gate.allowance("hot", 50, 11.2) == 20


@pytest.mark.parametrize(
    ("scenario", "samples", "now", "why"),
    [
        ("no sample yet", [], 10.0, "no recent sample of staging's offsets"),
        (
            "last sample too old (offsets cannot be read)",
            [(0.0, 50_000, 100), (1.0, 51_000, 600)],
            20.0,
            "no recent sample of staging's offsets",
        ),
        (
            "the group never committed on staging (ingest only)",
            [(0.0, 5_000, 0, False), (1.0, 6_000, 0, False)],
            1.5,
            "normalize has not committed on staging yet",
        ),
        (
            "normalize stopped committing with a backlog",
            [(0.0, 50_000, 100), (1.0, 51_000, 600), (12.0, 60_000, 600), (13.0, 60_500, 600)],
            13.0,
            "normalize is not consuming staging",
        ),
    ],
)
def test_the_gate_is_open_without_a_basis(
    scenario: str, samples: list[tuple[float, int, int] | tuple[float, int, int, bool]], now: float, why: str
) -> None:
    gate = AdmissionGate()
    for sample in samples:
        gate.observe(StagingProgress(*sample))
    receive(gate, "hot", 2_000.0, 5, now)
    state = gate.state(now)
    assert state.open and state.why == why, scenario
    assert gate.allowance("hot", 50, now) == 50, scenario


def test_off_when_the_target_is_zero() -> None:
    gate = gate_measuring(500.0, 90_000, target_seconds=0.0, recent={"hot": 2_000.0})
    assert not gate.enabled and gate.state(10.0).open
    assert gate.allowance("hot", 50, 10.0) == 50


def test_fair_share_follows_how_many_sources_are_active_and_forgets_old_receives() -> None:
    now = 10.0
    gate = gate_measuring(100.0, 5_000, at=now, recent={"a": 30.0, "b": 30.0})
    # 100/s over 2 active sources = 50/s each: both light
    assert gate.allowance("a", 10, now) == 10 and gate.allowance("b", 10, now) == 10
    gate = gate_measuring(100.0, 5_000, at=now, recent={"a": 30.0, "b": 30.0, "c": 30.0, "d": 30.0})
    # 4 sources: 25/s each, all four at 30/s are heavy and held above the target
    assert gate.heavy(now) == ["a", "b", "c", "d"]
    assert gate.allowance("a", 10, now) == 0
    # 11 s later with no receives, nothing is remembered: everyone light again
    gate.observe(StagingProgress(now + 11.0, 200_000, 100_000 + 1_300))
    assert gate.heavy(now + 11.0) == []


def test_a_larger_target_follows_a_faster_normalize() -> None:
    gate = gate_measuring(2_000.0, 1_500, at=10.0, recent={"hot": 5_000.0})
    state = gate.state(10.0)
    assert state.target == pytest.approx(2_000.0)
    assert gate.allowance("hot", 1_000, 10.0) == 500


def test_until_consumption_is_measured_heavy_sources_keep_staging_under_the_smallest_target() -> None:
    gate = AdmissionGate()
    gate.observe(StagingProgress(9.0, 100_400, 100_000))  # a worker starting: one sample, 400 behind
    state = gate.state(10.0)
    assert not state.open and state.why == "normalize's consumption not measured yet"
    assert state.target == gate.min_target == 500
    assert gate.allowance("hot", 50, 10.0) == 50  # nothing received lately: light
    gate.admitted("hot", 80, 10.0)  # 80 / 10 s = 8/s: above the 5/s floor, heavy now
    assert gate.allowance("hot", 100, 10.0) == 20  # 500 - (400 + 80)
    gate.admitted("hot", 20, 10.0)
    assert gate.allowance("hot", 100, 10.0) == 0
    assert gate.allowance("trickle", 1, 10.0) == 1
