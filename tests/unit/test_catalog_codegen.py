"""Generated code: fresh, reproducible, importable as models.canonical..., and --check catches staleness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.catalog import codegen
from app.catalog.paths import GENERATED_DIR, PROTO_DIR, REPO_ROOT


def test_committed_code_is_fresh_and_check_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.catalog.codegen", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_generation_is_byte_identical_twice(tmp_path: Path) -> None:
    codegen.generate(tmp_path / "a")
    codegen.generate(tmp_path / "b")
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert a == b
    assert Path("carryover/identity/v1/user_event_pb2.pyi") in a
    assert Path("carryover/common/v1/__init__.py") in a


def test_generated_imports_are_rewritten_to_the_package() -> None:
    text = (GENERATED_DIR / "carryover/collaboration/v1/message_sent_pb2.py").read_text()
    assert "from models.canonical.carryover.common.v1 import mention_pb2" in text
    assert "\nfrom carryover." not in text
    stub = (GENERATED_DIR / "carryover/collaboration/v1/message_sent_pb2.pyi").read_text()
    assert "from models.canonical.carryover.common.v1 import" in stub


def test_check_reports_stale_missing_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protos = tmp_path / "proto"
    shutil.copytree(PROTO_DIR, protos)
    generated = tmp_path / "canonical"
    codegen.write(generated, protos)
    assert codegen.run(check=True, generated_dir=generated, proto_root=protos) == 0
    link = protos / "carryover/common/v1/link.proto"
    link.write_text(link.read_text().replace("string text = 2;", "string text = 2;\n  string title = 3;"))
    (generated / "carryover/leftover_pb2.py").write_text("")
    (generated / "carryover/identity/v1/user_event_pb2.pyi").unlink()
    problems = codegen.stale_files(generated, protos)
    assert sorted(problems) == [
        f"missing: {generated / 'carryover/identity/v1/user_event_pb2.pyi'}",
        f"not generated from the catalog (delete it): {generated / 'carryover/leftover_pb2.py'}",
        f"out of date: {generated / 'carryover/common/v1/link_pb2.py'}",
        f"out of date: {generated / 'carryover/common/v1/link_pb2.pyi'}",
    ]
    assert codegen.run(check=True, generated_dir=generated, proto_root=protos) == 1
    assert "run `python -m app.catalog.codegen`" in capsys.readouterr().err
