"""Per-hook token buckets for the webhook receiver (pure: the clock is passed in).

Each hook has a bucket of ``burst`` tokens refilled at ``rate_per_second``; a delivery takes one token.
:meth:`HookRateLimiter.take` answers :class:`RateDecision`: allowed, or refused with the seconds after
which one token will be there (the receiver answers 429 with ``Retry-After``:
:attr:`RateDecision.retry_after_header`, whole seconds rounded up, at least 1).

Hooks have one bucket each, so a flood from one hook spends only its own tokens and never delays another
hook. Memory is bounded: past ``max_buckets`` the limiter first forgets buckets that have refilled (an idle
full bucket is the same as a new one), then the least recently used ones.

``now`` is any clock in seconds that does not jump (``time.monotonic()`` in the worker); a clock that goes
backwards is read as no time passing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    """Whether one delivery may go on now, and if not, when to come back."""

    allowed: bool
    retry_after_seconds: float = 0.0
    """Seconds until one token is there again (0.0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        """The ``Retry-After`` value for a refused delivery: whole seconds rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_seconds)))


@dataclass
class TokenBucket:
    """A token bucket: ``burst`` tokens at most, refilled continuously at ``rate_per_second``."""

    rate_per_second: float
    burst: int
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate_per_second: float, burst: int, now: float) -> TokenBucket:
        """A bucket holding all of its ``burst`` tokens at ``now``."""
        if not rate_per_second > 0 or not math.isfinite(rate_per_second):
            raise ValueError(f"rate_per_second must be a positive number, not {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        return cls(rate_per_second, burst, float(burst), now)

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update (none when the clock went backwards)."""
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_second)
        self.updated_at = max(self.updated_at, now)

    def take(self, now: float, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens if there are that many; otherwise take nothing and say when there will be."""
        self.refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return RateDecision(True)
        return RateDecision(False, (cost - self.tokens) / self.rate_per_second)

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled completely by ``now`` (then it can be forgotten)."""
        return self.tokens + max(0.0, now - self.updated_at) * self.rate_per_second >= self.burst


class HookRateLimiter:
    """One :class:`TokenBucket` per hook id, at most ``max_buckets`` of them."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, hook_id: str, rate_per_second: float, burst: int, now: float) -> RateDecision:
        """Take one token from ``hook_id``'s bucket (created full on first use).

        When the hook's rate or burst changed since its bucket was made, the bucket takes the new ones and
        keeps the tokens it has (at most the new burst).
        """
        bucket = self._buckets.get(hook_id)
        if bucket is None:
            bucket = TokenBucket.full(rate_per_second, burst, now)
            self._make_room(now)
            self._buckets[hook_id] = bucket
        elif bucket.rate_per_second != rate_per_second or bucket.burst != burst:
            bucket.refill(now)
            replacement = TokenBucket.full(rate_per_second, burst, now)
            replacement.tokens = min(bucket.tokens, float(burst))
            bucket = self._buckets[hook_id] = replacement
        self._buckets.move_to_end(hook_id)
        return bucket.take(now)

    def forget(self, hook_id: str) -> None:
        """Drop ``hook_id``'s bucket (the hook was deleted)."""
        self._buckets.pop(hook_id, None)

    def _make_room(self, now: float) -> None:
        """Room for one more bucket: refilled buckets forgotten first, then the least recently used."""
        if len(self._buckets) < self.max_buckets:
            return
        for hook_id in [key for key, bucket in self._buckets.items() if bucket.is_full(now)]:
            del self._buckets[hook_id]
        while len(self._buckets) >= self.max_buckets:
            self._buckets.popitem(last=False)
