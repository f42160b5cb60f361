"""Helpers the benchmarks share: a private local stack, free ports, percentiles, process memory."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.dev.stack import Stack


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) or None without values."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _status_mb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of ``pid`` (default: this process) now, in MiB."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of ``pid``, in MiB."""
    return _status_mb(pid, "VmHWM")


@contextmanager
def private_stack(name: str, *, broker_only: bool = False) -> Iterator[tuple[Path, dict[str, str]]]:
    """A local stack of our own on free ports for one benchmark: (work directory, its environment).

    ``broker_only`` stops moto and the Pub/Sub emulator's JVM once up, so they cost no CPU. The stack is
    stopped on exit, on Ctrl-C and on SIGTERM.
    """
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as state:
        work = Path(state)
        stack = Stack(work / "stack", free_port(), free_port(), free_port())
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        stack.up(timeout=90, say=lambda _m: None)
        try:
            if broker_only:
                for part in stack.parts[1:]:
                    stack.stop_part(part)
            env = stack.environment()
            env["BENCH_BROKER_PID"] = str(stack.pid(stack.parts[0]) or 0)  # the broker, for CPU readings
            print(
                f"{name} on a private {'broker' if broker_only else 'stack'} ({os.cpu_count()} CPUs), "
                f"python {sys.version.split()[0]}",
                flush=True,
            )
            yield work, env
        finally:
            stack.down(say=lambda _m: None)
