"""Pure parts of the web layer: query parsing, the lag page's HTML, readiness decisions."""

from __future__ import annotations

import pytest

from app.ops.health_views import WorkerState, readiness_failures
from app.ops.lag_monitor import AgentRow, LagSnapshot, PartitionRow
from app.ops.lag_status import Status
from app.ops.lag_views import refused_query, render_html, snapshot_to_json


def snapshot() -> LagSnapshot:
    rows = (
        PartitionRow(
            "<g>", "t&1", 1, 5, 12, 7, 42.0, Status.STALL, "lag 7; committed offset unchanged", (3, 7)
        ),
        PartitionRow("<g>", "t&1", 0, None, 2, 2, None, Status.OK, "lag 2, evaluating", (2,)),
    )
    agents = (
        AgentRow("a<b", "staging → normalize", ("t&1",), 9, 42.0, Status.STALL, "t&1[1]: stuck", (5, 9)),
    )
    return LagSnapshot(1_700_000_000.0, 60.0, 2, agents, rows)


def test_only_the_apps_own_group_is_shown() -> None:
    assert refused_query({}) is None
    for query in ({"group": "other"}, {"topics": "a"}, {"group": "g", "topics": "a,b"}):
        assert "refused" in (refused_query(query) or "")


def test_lag_page_shows_status_time_lag_and_sparkline_and_escapes_names() -> None:
    page = render_html(snapshot(), refresh_seconds=5)
    assert "<meta http-equiv='refresh' content='5'>" in page
    assert "Total lag <b>9</b>" in page and "group members 2" in page
    assert ">STALL</span>" in page and "<td class='l'>a&lt;b</td>" in page and "42.0 s" in page
    assert "<td class='l'>t&amp;1</td><td>1</td><td>5</td><td>12</td><td>7</td>" in page
    assert "<td>—</td><td>2</td><td>2</td>" in page  # never committed
    assert page.count("<svg class='spark'") == 3
    assert "<g>" not in page and "a<b" not in page
    assert page.index(">STALL</span><", page.index("Partitions")) < page.index(
        ">OK</span>", page.index("Partitions")
    )


def test_lag_page_without_agents_or_sample_says_so() -> None:
    assert "runs no stream agents" in render_html(LagSnapshot(0.0, 60.0, None, (), ()))
    assert "Waiting for the first sample" in render_html(None)


def test_lag_page_says_when_and_why_the_worker_is_not_ready() -> None:
    assert "This worker is ready." in render_html(snapshot())
    page = render_html(snapshot(), not_ready=["tables recovering", "user directory catching up <1>"])
    assert "not ready:</b> tables recovering; user directory catching up &lt;1&gt;." in page
    assert "This worker is ready." not in page


def test_lag_json_shape() -> None:
    answer = snapshot_to_json(snapshot())
    assert answer["total_lag"] == 9 and answer["agents"][0]["status"] == "STALL"
    assert answer["partitions"][0] == {
        "group": "<g>",
        "topic": "t&1",
        "partition": 1,
        "committed": 5,
        "end": 12,
        "lag": 7,
        "time_lag_seconds": 42.0,
        "status": "STALL",
        "reason": "lag 7; committed offset unchanged",
        "history": [3, 7],
    }


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
