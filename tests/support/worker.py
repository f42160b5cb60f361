"""A real `faust worker` process for tests, pointed at the session's stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.stack import RunningStack, free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    """One worker process; ``kill()`` is kill -9, ``stop()`` a graceful stop."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    web_port: int = field(default_factory=free_port)
    app_module: str = "app"  # what ``faust -A`` loads

    def start(self, ready_timeout: float = 90.0) -> Worker:
        """Start the worker and wait until its web server answers and it says it is ready."""
        self.env["CARRYOVER_WEB_PORT"] = str(self.web_port)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "faust", "-A", self.app_module, "worker", "-l", "info"]
            + (["--without-web"] if self.env.get("CARRYOVER_TEST_NO_WEB") else []),
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if "Ready" in self.log_path.read_text(errors="replace") and self.web_ok():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {ready_timeout}s:\n{self.log_tail()}")

    def web_ok(self) -> bool:
        """True when the worker's web root answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/", timeout=1) as resp:
                return int(resp.status) == 200
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the worker's log."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """kill -9 the worker's whole process group."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker gracefully (SIGTERM), kill it if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(stack: RunningStack, tmp: Path, **overrides: str) -> dict[str, str]:
    """Environment for a worker isolated from other tests: own app id, topic prefix and data dir."""
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        **stack.env,
        "CARRYOVER_APP_ID": f"carryover-test-{tag}",
        "CARRYOVER_TOPIC_PREFIX": f"t{tag}.",
        "CARRYOVER_DATA_DIR": str(tmp / f"worker-{tag}"),
        "CARRYOVER_STACK_DIR": str(tmp / "stack"),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env
