"""Per-conversation state on real workers: answers equal the reference, the read path is guarded.

The canonical records come from the real normalizer over the simulator's traffic and are written straight to
the canonical topics (the state stage alone is under test); the reference is the pure core's state of the
same records (tests/support/state.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from app import topics as topic_names
from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from tests.support.cli import carryover
from tests.support.stack import RunningStack
from tests.support.state import (
    WORKER_ONLY_FIELDS,
    canonical_traffic,
    compare_answers,
    conversation_path,
    get_json,
    produce_canonical,
    wait_until_caught_up,
)
from tests.support.worker import Worker, worker_env
from tests.unit.test_web_surface import GUARDED, OPEN

pytestmark = pytest.mark.e2e

TOKEN = "test-admin-token-" + uuid.uuid4().hex
WINDOW = 256


def state_env(stack: RunningStack, tmp_path: Path, key_file: Path, **extra: str) -> dict[str, str]:
    """A worker running only the state role."""
    return worker_env(
        stack,
        tmp_path,
        CARRYOVER_ROLES="state",
        CARRYOVER_KEY_FILE=str(key_file),
        CARRYOVER_ADMIN_TOKEN=TOKEN,
        CARRYOVER_RECOVERY_DELAY_SECONDS="0.5",
        **extra,
    )


def source_topics(prefix: str) -> list[str]:
    """The topics whose committed offsets say the state stage is done."""
    return [prefix + t for t in (*topic_names.CONVERSATION_SOURCES, topic_names.CONVERSATION_EVENTS)]


def test_one_worker_answers_every_conversation_like_the_reference(
    stack: RunningStack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    key_file, traffic = canonical_traffic(
        tmp_path, [f"st{tag}-{i}" for i in range(3)], 1500, seed=3, window=WINDOW
    )
    env = state_env(stack, tmp_path, key_file)
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    assert asyncio.run(apply_topics(stack.bootstrap, default_catalog(), dry_run=False, prefix=prefix)).ok
    worker = Worker(env=dict(env), log_path=tmp_path / "worker.log").start()
    try:
        asyncio.run(produce_canonical(stack.bootstrap, prefix, traffic.records))
        asyncio.run(wait_until_caught_up(stack.bootstrap, group, source_topics(prefix)))
        report = compare_answers([worker.web_port], TOKEN, traffic.answers())
        assert report["mismatched"] == [], report["mismatched"][:5]
        assert report["lost"] == 0 and report["applied"] == traffic.expected_facts() > 1000, report

        some = next(iter(sorted(traffic.states)))
        guarded = {  # every guarded view of tests/unit/test_web_surface.py, with a real path
            "/state/conversations/{tenant}/{conversation_id}": conversation_path(*some),
            "/state/stats": "/state/stats",
        }
        assert set(guarded) == {view for view in GUARDED if view.startswith("/state/")}
        for path in guarded.values():
            assert get_json(worker.web_port, path, None)[0] == 401, path
            assert get_json(worker.web_port, path, "wrong")[0] == 401, path
            assert get_json(worker.web_port, path, TOKEN)[0] == 200, path
        for path in OPEN - {"/sources/", "/hooks/{hook_id}"}:  # open GET views answer without a token
            assert get_json(worker.web_port, path, None)[0] == 200, path
        for path in ("/table/", "/router/"):  # Faust's table and router views stay off
            assert get_json(worker.web_port, path, None)[0] == 404, path
        status, body = get_json(worker.web_port, conversation_path(some[0], "no-such-conversation"), TOKEN)
        assert status == 404 and "no state" in body["error"]
        status, stats = get_json(worker.web_port, "/state/stats", TOKEN)
        assert status == 200 and stats["forwarded"] == traffic.forwards and stats["dead_lettered"] == 0, stats
        assert stats["directory_caught_up"] is True and stats["directory_users"] == len(
            traffic.directory.records
        )
        assert get_json(worker.web_port, "/readyz", None)[0] == 200

        url = ["--url", f"http://127.0.0.1:{worker.web_port}"]
        shown = carryover(["state", "conversation", *some, *url], env)
        assert shown.returncode == 0, shown.stderr
        assert {k: v for k, v in json.loads(shown.stdout).items() if k not in WORKER_ONLY_FIELDS} == (
            traffic.answers()[some]
        )
        unknown = carryover(["state", "conversation", some[0], "no-such-conversation", *url], env)
        assert unknown.returncode == 1 and "404" in unknown.stderr
        refused = carryover(["state", "conversation", *some, *url], {**env, "CARRYOVER_ADMIN_TOKEN": "wrong"})
        assert refused.returncode == 2 and "401" in refused.stderr and "wrong admin token" in refused.stderr
    finally:
        worker.kill()
    assert TOKEN not in (tmp_path / "worker.log").read_text()
