"""The real local stack for tests: started once per session on free ports, stopped at the end."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.dev.stack import Stack


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningStack:
    """Where the session's stack listens, and the environment that points clients at it."""

    stack: Stack
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        """host:port of the broker."""
        return self.env["CARRYOVER_BROKER"].split("://", 1)[1]

    @property
    def aws_endpoint(self) -> str:
        """moto's server URL."""
        return self.env["AWS_ENDPOINT_URL"]

    @property
    def pubsub_host(self) -> str:
        """host:port of the Pub/Sub emulator."""
        return self.env["PUBSUB_EMULATOR_HOST"]


def running_stack(state_dir: Path) -> Iterator[RunningStack]:
    """Start the stack, export its environment into os.environ, yield it, stop it."""
    stack = Stack(state_dir, free_port(), free_port(), free_port())
    stack.up(timeout=90, say=lambda _m: None)
    env = stack.environment()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield RunningStack(stack, env)
    finally:
        stack.down(say=lambda _m: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
