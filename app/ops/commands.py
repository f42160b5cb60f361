"""``carryover lag``: the lag page in a terminal — agents and partitions with status, worst first.

It reads ``/lag.json`` of any worker (``--url``, default this machine's ``CARRYOVER_WEB_PORT``); ``--json``
prints that answer; ``--watch`` redraws it in place every ``--interval`` seconds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from app.settings import Settings

CLEAR = "\x1b[H\x1b[2J"
COLOURS = {"OK": "\x1b[32m", "WARN": "\x1b[33m", "STALL": "\x1b[31m", "STOP": "\x1b[35m", "ERR": "\x1b[90m"}
RESET = "\x1b[0m"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    return [line, *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)]


def _coloured(line: str) -> str:
    """The line with its leading status word coloured (rows of the tables start with their status)."""
    word = line.split(" ", 1)[0]
    return f"{COLOURS[word]}{word}{RESET}{line[len(word) :]}" if word in COLOURS else line


def render_lag(answer: dict[str, Any], *, colour: bool = False) -> str:
    """The terminal view of a ``/lag.json`` answer (agents, then partitions; the answer is worst first)."""

    worker = answer.get("worker", {})
    ready = "ready" if worker.get("ready") else "NOT READY: " + "; ".join(worker.get("not_ready", []))
    lines = [
        f"total lag {answer['total_lag']}  window {answer['window_seconds']:.0f}s  "
        f"group members {answer.get('group_members')}  worker {ready}"
    ]
    if answer.get("error"):
        lines.append(f"ERR: {answer['error']}")
    agent_rows = [
        [a["status"], a["agent"], a["stage"], str(a["lag"]), _age(a["time_lag_seconds"]), a["reason"]]
        for a in answer["agents"]
    ]
    lines += ["", *_table(["STATUS", "AGENT", "STAGE", "LAG", "TIME LAG", "WHY"], agent_rows)]
    partition_rows = [
        [
            p["status"],
            p["topic"],
            str(p["partition"]),
            "-" if p["committed"] is None else str(p["committed"]),
            str(p["end"]),
            str(p["lag"]),
            _age(p["time_lag_seconds"]),
        ]
        for p in answer["partitions"]
    ]
    lines += ["", *_table(["STATUS", "TOPIC", "PART", "COMMITTED", "END", "LAG", "TIME LAG"], partition_rows)]
    if colour:
        lines = [_coloured(line) for line in lines]
    return "\n".join(lines)


def fetch_lag(base: str, timeout: float) -> dict[str, Any]:
    """The worker's ``/lag.json`` answer; OSError / ValueError when it cannot be had."""
    with urllib.request.urlopen(f"{base}/lag.json", timeout=timeout) as response:  # noqa: S310 - operator URL
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def cmd_lag(args: argparse.Namespace, settings: Settings) -> int:
    """Print the lag view once, as JSON, or refreshed in place."""
    base = (args.url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
    while True:
        try:
            answer = fetch_lag(base, args.timeout)
        except urllib.error.HTTPError as exc:
            print(
                f"carryover lag: {base} answered {exc.code}: {exc.read().decode(errors='replace')}",
                file=sys.stderr,
            )
            if not args.watch:
                return 2
        except (OSError, ValueError) as exc:
            print(f"carryover lag: cannot read {base}/lag.json ({exc}); pass --url", file=sys.stderr)
            if not args.watch:
                return 2
        else:
            if args.json:
                print(json.dumps(answer, indent=2, sort_keys=True))
            else:
                text = render_lag(answer, colour=args.watch and sys.stdout.isatty())
                print((CLEAR if args.watch else "") + text, flush=True)
            if not args.watch:
                return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def add_lag_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carryover lag`` to the CLI."""
    lag = sub.add_parser("lag", help="consumer lag and status per agent and partition, worst first")
    lag.add_argument("--url", help="any worker's web URL (default: http://127.0.0.1:CARRYOVER_WEB_PORT)")
    lag.add_argument("--json", action="store_true", help="print the /lag.json answer")
    lag.add_argument("--watch", action="store_true", help="redraw in place until Ctrl-C")
    lag.add_argument("--interval", type=float, default=2.0, help="seconds between redraws with --watch")
    lag.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the worker")
    lag.set_defaults(handler=cmd_lag)
