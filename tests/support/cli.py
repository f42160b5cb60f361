"""Run the `carryover` command line as an operator would."""

from __future__ import annotations

import subprocess
import sys


def carryover(
    args: list[str], env: dict[str, str], timeout: float = 120.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``carryover ARGS`` with ``env`` (and ``stdin``): its exit code and output (never raises on a non-zero
    exit)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
