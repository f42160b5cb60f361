"""Run the `carryover` command line as an operator would."""

from __future__ import annotations

import subprocess
import sys


def carryover(
    args: list[str], env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``carryover ARGS`` with ``env``: its exit code and output (never raises on a non-zero exit)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
