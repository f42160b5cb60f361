"""`make run`: the local stack, demo tenants and keys, a faust worker and legacy traffic, until Ctrl-C.

Ctrl-C (or SIGTERM) stops the traffic generator, then the worker, then the parts of the stack this
command started (a stack that was already up is left up).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.dev.stack import Stack, StackError
from app.settings import Settings

BANNER = """
carryover is running on the local stack.
  worker web / lag page : http://{web_host}:{web_port}/lag/     (JSON: /lag.json, Prometheus: /metrics)
  ingestion stats       : http://{web_host}:{web_port}/sources/
  staging topic         : legacy.staging.v1       dead letters: carryover.dlq.v1
  canonical topics      : collaboration.conversations.v1, collaboration.messages.v1,
                          identity.users.v1, compliance.actions.v1
  read a topic          : source {env_file} && .venv/bin/carryover tail collaboration.messages.v1
  conversation state    : export CARRYOVER_ADMIN_TOKEN=$(cat {token_file})
                          .venv/bin/carryover state conversation TENANT CONVERSATION_ID
                          (ids: {log_dir}/ground-truth.jsonl)
  logs                  : {log_dir}  (worker.log, simulator.log, and one log per stack part)
Ctrl-C stops everything this command started.
"""


def _prepare(settings: Settings, tenants: list[str]) -> None:
    """Demo tenants on both clouds (SNS->SQS, Pub/Sub topic + subscription) and their keys."""
    from app.dev.simulate.commands import ensure_keys  # noqa: PLC0415
    from app.dev.stack.resources import create_demo_tenants  # noqa: PLC0415

    ensure_keys(settings.key_file, tenants)
    asyncio.run(create_demo_tenants(tenants, project=settings.pubsub_project))
    print(f"demo tenants on SNS/SQS and Pub/Sub, keys in {settings.key_file}: {', '.join(tenants)}")


def _spawn(argv: list[str], env: dict[str, str], log: Path, tee: bool) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    if tee:
        # the worker's log goes to the terminal too, so a newcomer sees events flowing
        return subprocess.Popen(  # noqa: S603
            ["bash", "-c", f'"$@" 2>&1 | tee -a {log}', "_", *argv], env=env, start_new_session=True
        )
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603


def _stop(proc: subprocess.Popen[bytes], name: str, grace: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(f"stopped {name}")


def _demo_admin_token(path: Path) -> str:
    """A fresh admin token for the demo's worker, written to ``path`` (mode 0600), never printed."""
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token)
    return token


def run_demo(settings: Settings, *, tenants: int, rate: float) -> int:
    """Run the demo until interrupted; returns the exit code."""
    stack = Stack(
        settings.stack_dir, settings.stack_kafka_port, settings.stack_moto_port, settings.stack_pubsub_port
    )
    was_up = {name for name, row in stack.status().items() if row["up"]}
    try:
        stack.up()
    except StackError as exc:
        print(f"carryover run: {exc}", file=sys.stderr)
        return 2
    env_file = stack.write_env_file()
    token_file = settings.stack_dir / "admin-token"
    env = {
        **os.environ,
        **stack.environment(),
        "PYTHONUNBUFFERED": "1",
        "CARRYOVER_ADMIN_TOKEN": settings.admin_token or _demo_admin_token(token_file),
    }
    os.environ.update(stack.environment())
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def interrupt(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        from app.settings import load  # noqa: PLC0415 - settings now point at the stack

        demo_settings = load(env)
        from app.dev.simulate.commands import tenant_names  # noqa: PLC0415

        names = tenant_names(tenants, "tenant-")
        _prepare(demo_settings, names)
        log_dir = settings.stack_dir
        worker = [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"]
        procs.append(("worker", _spawn(worker, env, log_dir / "worker.log", tee=True)))
        simulator = [
            sys.executable,
            "-m",
            "app.cli",
            "simulate",
            "--tenants",
            str(tenants),
            "--conversations",
            "3",
            "--rate",
            str(rate),
            "--duration",
            "0",
            "--bad-fraction",
            "0.02",
            "--ground-truth",
            str(log_dir / "ground-truth.jsonl"),
        ]
        procs.append(("simulator", _spawn(simulator, env, log_dir / "simulator.log", tee=False)))
        print(
            BANNER.format(
                web_host=settings.web_host,
                web_port=settings.web_port,
                env_file=env_file,
                log_dir=log_dir,
                token_file=token_file,
            )
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(
                        f"{name} exited with code {proc.returncode}; see {log_dir}/{name}.log",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        for name, proc in reversed(procs):
            _stop(proc, name)
        for part in reversed(stack.parts):
            if part.name not in was_up:
                stack.stop_part(part)  # only the parts this command started
                print(f"stopped {part.name}")
    return 0
