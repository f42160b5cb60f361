"""The dedupe decision of the normalize agent: redelivered elsewhere vs the same record read again."""

from __future__ import annotations

import pytest

from app.normalize.normalizer import is_redelivery


@pytest.mark.parametrize(
    ("previous", "marker", "dropped"),
    [
        (0, 8, False),  # never seen: process
        (8, 8, False),  # the same staging record read again after a crash: process again
        (8, 13, True),  # the same source message landed again at another offset: a redelivery
        (13, 8, True),  # ... in whichever order
    ],
)
def test_is_redelivery(previous: int, marker: int, dropped: bool) -> None:
    assert is_redelivery(previous, marker) is dropped
