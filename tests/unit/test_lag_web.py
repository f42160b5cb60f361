"""Pure parts of the web layer: query parsing, the lag page's HTML, readiness decisions."""

from __future__ import annotations

import pytest

from app.ops.health_views import WorkerState, readiness_failures
from app.ops.lag import AgentSubscription, compute_lag
from app.ops.lag_views import render_html, requested_groups


@pytest.mark.parametrize(
    ("query", "groups"),
    [
        ({}, {}),
        ({"topics": "a"}, {}),
        ({"group": "g", "topics": "a,b"}, {"g": ("a", "b")}),
        ({"group": "g1, g2", "topics": " a ,"}, {"g1": ("a",), "g2": ("a",)}),
    ],
)
def test_requested_groups(query: dict[str, str], groups: dict[str, tuple[str, ...]]) -> None:
    assert requested_groups(query) == groups


def test_a_group_without_topics_is_refused() -> None:
    with pytest.raises(ValueError, match="topics"):
        requested_groups({"group": "g"})


def test_lag_page_has_a_row_per_partition_and_escapes_names() -> None:
    committed: dict[str, dict[tuple[str, int], int | None]] = {"<g>": {("t&1", 0): 3, ("t&1", 1): None}}
    report = compute_lag(
        committed, {("t&1", 0): 5, ("t&1", 1): 2}, agents=[AgentSubscription("a<b", "<g>", ("t&1",))]
    )
    page = render_html(report, refresh_seconds=5)
    assert "<meta http-equiv='refresh' content='5'>" in page
    assert "Group <code>&lt;g&gt;</code>: lag 4" in page
    assert "<tr class='lagging'><td>t&amp;1</td><td>0</td><td>3</td><td>5</td><td>2</td></tr>" in page
    assert "<tr class='lagging'><td>t&amp;1</td><td>1</td><td>—</td><td>2</td><td>2</td></tr>" in page
    assert "<td>a&lt;b</td>" in page and "<g>" not in page and "a<b" not in page


def test_lag_page_without_groups_says_so() -> None:
    assert "runs no stream agents" in render_html(compute_lag({}, {}))


def test_lag_page_says_when_and_why_the_worker_is_not_ready() -> None:
    report = compute_lag({}, {})
    assert "This worker is ready." in render_html(report)
    page = render_html(report, not_ready=["tables recovering", "user directory catching up <1>"])
    assert "not ready:</b> tables recovering; user directory catching up &lt;1&gt;." in page
    assert "This worker is ready." not in page


READY = WorkerState(producer_started=True, assigned=True, rebalancing=False, recovering=False)


@pytest.mark.parametrize(
    ("changes", "failures"),
    [
        ({}, []),
        ({"producer_started": False}, ["producer not started"]),
        ({"assigned": False}, ["consumer not assigned yet"]),
        ({"rebalancing": True}, ["consumer group rebalancing"]),
        ({"recovering": True}, ["tables recovering"]),
        (
            {"producer_started": False, "assigned": False},
            ["producer not started", "consumer not assigned yet"],
        ),
    ],
)
def test_readiness(changes: dict[str, bool], failures: list[str]) -> None:
    state = WorkerState(**{**READY.__dict__, **changes})
    assert readiness_failures(state) == failures
