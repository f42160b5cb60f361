"""Importing any module of the package builds nothing and reads no environment: no Faust app exists until
``create_app`` (or ``faust -A app``) asks for one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import importlib, json, os, pkgutil
import faust
built = []
original = faust.App.__init__
def spy(self, *args, **kwargs):
    built.append(args[0] if args else "?")
    original(self, *args, **kwargs)
faust.App.__init__ = spy
read = []
class Environ(dict):
    def get(self, key, default=None):
        if key.startswith("CARRYOVER_"):
            read.append(key)
        return super().get(key, default)
    def __getitem__(self, key):
        if key.startswith("CARRYOVER_"):
            read.append(key)
        return super().__getitem__(key)
os.environ = Environ(os.environ)
import app, agents
names = []
for package in (app, agents):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        names.append(module.name)
print(json.dumps({"modules": names, "built": built, "read": sorted(set(read))}))
"""


def test_importing_every_module_builds_no_app_and_reads_no_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARRYOVER_")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(probe["modules"]) > 60, probe["modules"]
    assert {"app.faust_app", "app.ingest.sqs", "app.normalize.normalizer", "agents.normalize"} <= set(
        probe["modules"]
    )
    assert probe["built"] == [] and probe["read"] == [], probe
