"""``carryover lag``'s terminal view of a /lag.json answer."""

from __future__ import annotations

from app.ops.commands import render_lag
from app.ops.lag_monitor import AgentRow, LagSnapshot, PartitionRow
from app.ops.lag_status import Status
from app.ops.lag_views import snapshot_to_json


def answer() -> dict[str, object]:
    rows = (
        PartitionRow("g", "legacy.staging.v1", 1, 5, 12, 7, 42.0, Status.STALL, "stuck", (7,)),
        PartitionRow("g", "legacy.staging.v1", 0, None, 0, 0, 0.0, Status.OK, "no lag", (0,)),
    )
    agents = (
        AgentRow(
            "agents.normalize.normalize",
            "staging → normalize",
            ("legacy.staging.v1",),
            7,
            42.0,
            Status.STALL,
            "legacy.staging.v1[1]: stuck",
            (7,),
        ),
    )
    return {
        **snapshot_to_json(LagSnapshot(0.0, 60.0, 1, agents, rows)),
        "worker": {"ready": False, "not_ready": ["tables recovering"]},
    }


def test_the_terminal_view_lists_agents_and_partitions_worst_first_with_status() -> None:
    text = render_lag(answer())
    lines = text.splitlines()
    assert lines[0].startswith(
        "total lag 7  window 60s  group members 1  worker NOT READY: tables recovering"
    )
    assert lines[2].split() == ["STATUS", "AGENT", "STAGE", "LAG", "TIME", "LAG", "WHY"]
    assert lines[3].split()[:2] == ["STALL", "agents.normalize.normalize"] and "42.0s" in lines[3]
    partitions = lines[lines.index(next(line for line in lines if line.startswith("STATUS  TOPIC"))) + 1 :]
    assert [row.split()[:3] for row in partitions] == [
        ["STALL", "legacy.staging.v1", "1"],
        ["OK", "legacy.staging.v1", "0"],
    ]
    assert partitions[1].split()[3] == "-"  # never committed


def test_colour_marks_only_the_status_word() -> None:
    text = render_lag(answer(), colour=True)
    assert "\x1b[31mSTALL\x1b[0m" in text and "\x1b[32mOK\x1b[0m" in text
    assert "\x1b" not in render_lag(answer())
