"""Per-hook token buckets: allowed / retry-after, refill, clock going back, bounded memory."""

from __future__ import annotations

import pytest

from app.webhooks.ratelimit import HookRateLimiter, RateDecision, TokenBucket


@pytest.mark.parametrize(
    ("rate", "burst", "times", "expected"),
    [
        # burst of 3 at once, the 4th waits 1/rate
        (2.0, 3, [0, 0, 0, 0], [True, True, True, False]),
        # refill: one token every 0.5 s
        (2.0, 1, [0, 0.25, 0.5, 0.75, 1.0], [True, False, True, False, True]),
        # idle time never banks more than the burst
        (1.0, 2, [0, 100, 100, 100], [True, True, True, False]),
        # a clock going backwards earns nothing
        (1.0, 1, [10, 5, 10.5, 11], [True, False, False, True]),
    ],
)
def test_bucket_table(rate: float, burst: int, times: list[float], expected: list[bool]) -> None:
    bucket = TokenBucket.full(rate, burst, now=times[0])
    assert [bucket.take(t).allowed for t in times] == expected


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")],
)
def test_retry_after_header(seconds: float, header: str) -> None:
    assert RateDecision(False, seconds).retry_after_header == header


def test_retry_after_is_time_to_the_next_token() -> None:
    bucket = TokenBucket.full(0.5, 1, now=0)
    assert bucket.take(0).allowed
    refused = bucket.take(0.5)
    assert not refused.allowed and refused.retry_after_seconds == pytest.approx(1.5)
    assert refused.retry_after_header == "2"


def test_bad_rates() -> None:
    for rate, burst in ((0.0, 1), (-1.0, 1), (float("inf"), 1), (1.0, 0)):
        with pytest.raises(ValueError):
            TokenBucket.full(rate, burst, now=0)


def test_limiter_changes_rate_keeping_tokens() -> None:
    limiter = HookRateLimiter()
    assert limiter.take("h", 1.0, 3, now=0).allowed  # 2 left
    assert limiter.take("h", 1.0, 1, now=0).allowed  # burst cut to 1: 1 left, taken
    assert not limiter.take("h", 1.0, 1, now=0).allowed


def test_limiter_memory_is_bounded() -> None:
    limiter = HookRateLimiter(max_buckets=3)
    for index in range(3):
        assert limiter.take(f"busy-{index}", 1.0, 1, now=0).allowed  # all three now empty
    assert limiter.take("new", 1.0, 1, now=0).allowed
    assert len(limiter) == 3  # the least recently used (busy-0) forgotten
    assert limiter.take("busy-0", 1.0, 1, now=0).allowed  # forgotten: a new, full bucket
    # refilled buckets go first, whatever their use
    limiter = HookRateLimiter(max_buckets=2)
    limiter.take("idle", 1.0, 1, now=0)  # full again by t=10
    limiter.take("busy", 1.0, 5, now=9.9)  # 4.1 tokens at t=10
    limiter.take("other", 1.0, 1, now=10)
    assert len(limiter) == 2
    assert [limiter.take("busy", 1.0, 5, now=10).allowed for _ in range(5)] == [True] * 4 + [False]
    limiter.forget("busy")
    assert len(limiter) == 1
