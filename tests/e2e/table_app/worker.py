"""Launch ``tests.e2e.table_app.counting`` as a real worker process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.support.worker import Worker

APP_MODULE = "tests.e2e.table_app.counting"


@dataclass
class TableWorker(Worker):
    """A worker running the counting app instead of carryover's app."""

    app_module: str = APP_MODULE

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
