"""`carryover stack up | status | down` on its own ports, as a user runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.dev.stack import port_open
from tests.support.cli import carryover
from tests.support.stack import free_port


def test_up_is_idempotent_status_reports_and_down_stops_everything(tmp_path: Path) -> None:
    ports = {"KAFKA": free_port(), "MOTO": free_port(), "PUBSUB": free_port()}
    env = {**os.environ, "CARRYOVER_STACK_DIR": str(tmp_path / "stack")}
    env.update({f"CARRYOVER_STACK_{k}_PORT": str(v) for k, v in ports.items()})
    try:
        first = carryover(["stack", "up"], env)
        assert first.returncode == 0, first.stderr
        assert all(port_open(p) for p in ports.values())
        second = carryover(["stack", "up"], env)
        assert second.returncode == 0 and second.stdout.count("already up") == 3
        status = carryover(["stack", "status", "--json"], env)
        report = json.loads(status.stdout)
        assert status.returncode == 0
        assert {name: row["up"] for name, row in report.items()} == {
            "kafka": True,
            "moto": True,
            "pubsub": True,
        }
        assert report["kafka"]["address"] == f"127.0.0.1:{ports['KAFKA']}"
        assert "CARRYOVER_LOCAL_BROKER=true" in (tmp_path / "stack" / "stack.env").read_text()
    finally:
        down = carryover(["stack", "down"], env)
    assert down.returncode == 0
    assert not any(port_open(p) for p in ports.values())
    after = carryover(["stack", "status"], env)
    assert after.returncode == 3 and after.stdout.count("down") == 3


def test_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            **os.environ,
            "CARRYOVER_STACK_DIR": str(tmp_path / "s"),
            "CARRYOVER_STACK_KAFKA_PORT": str(port),
        }
        result = carryover(["stack", "up"], env)
    assert result.returncode == 2
    assert f"port {port} for kafka is taken" in result.stderr
    assert "CARRYOVER_STACK_KAFKA_PORT" in result.stderr


def test_missing_java_is_a_one_line_error_with_the_fix(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": "/nonexistent",
        "CARRYOVER_STACK_DIR": str(tmp_path / "s"),
        "CARRYOVER_STACK_KAFKA_PORT": str(free_port()),
        "CARRYOVER_STACK_MOTO_PORT": str(free_port()),
        "CARRYOVER_STACK_PUBSUB_PORT": str(free_port()),
    }
    result = carryover(["stack", "up"], env)
    try:
        assert result.returncode == 2
        assert "Java is not installed: `apt-get install -y openjdk-17-jre-headless`" in result.stderr
    finally:
        carryover(["stack", "down"], env)
