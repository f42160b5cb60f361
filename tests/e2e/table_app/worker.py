"""Launch ``tests.e2e.table_app.counting`` as a real worker process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tests.support.worker import REPO, Worker

APP_MODULE = "tests.e2e.table_app.counting"


class TableWorker(Worker):
    """A worker running the counting app instead of carryover's app."""

    def start(self, ready_timeout: float = 90.0) -> TableWorker:
        """Start ``faust -A tests.e2e.table_app.counting worker`` and wait until it is ready."""
        self.env["CARRYOVER_WEB_PORT"] = str(self.web_port)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "faust", "-A", APP_MODULE, "worker", "-l", "info"],
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

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) of ``GET path``; HTTP errors included, status 0 if unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=10) as resp:
                return int(resp.status), resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers.get("Content-Type", ""), exc.read().decode()
        except OSError as exc:  # not listening (yet)
            return 0, "", repr(exc)

    def get_json(self, path: str) -> Any:
        """``GET path`` parsed as JSON (any status)."""
        return json.loads(self.get(path)[2])

    def counts(self) -> dict[str, object]:
        """The worker's ``/counts/`` answer."""
        answer: dict[str, object] = self.get_json("/counts/")
        return answer
