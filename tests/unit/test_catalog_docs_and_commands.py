"""Generated catalog docs and the catalog command line (exit codes and output)."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import pytest
import yaml

from app.catalog.commands import add_catalog_commands
from app.catalog.docs import write_docs
from app.catalog.model import load_catalog
from app.catalog.paths import CATALOG_DIR, REPO_ROOT
from app.settings import load


def run_cli(*argv: str) -> int:
    """Runs one catalog/topics command the way the carryover CLI does."""
    parser = argparse.ArgumentParser(prog="carryover")
    add_catalog_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args, load({}))
    return code


def test_markdown_and_asyncapi_cover_the_catalog(tmp_path: Path) -> None:
    markdown_path, asyncapi_path = write_docs(tmp_path)
    markdown = markdown_path.read_text()
    catalog = load_catalog()
    for topic in catalog.topics:
        assert f"| `{topic}` |" in markdown
    for header in catalog.headers:
        assert f"| `{header.name}` |" in markdown
    for event in catalog.events.values():
        assert f"### {event.name}\n" in markdown
    assert (
        "| 8 | `text` | `carryover.common.v1.EncryptedText` | Message text, encrypted with the tenant key. "
        "**sensitive** |" in markdown
    )
    assert (
        "| 9 | `mentions` | `repeated carryover.common.v1.Mention` | Users mentioned in the text. "
        in markdown
    )
    doc = yaml.safe_load(asyncapi_path.read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {t.name for t in catalog.canonical_topics()}
    sent = doc["components"]["messages"]["carryover.collaboration.v1.MessageSent"]
    assert sent["payload"]["schemaFormat"] == "application/vnd.google.protobuf;version=3"
    assert "message MessageSent {" in sent["payload"]["schema"]
    assert sent["x-sensitive-fields"][0] == "text"
    assert "ce_type" in doc["components"]["schemas"]["CloudEventsHeaders"]["required"]
    assert "ce_encryptionkeyid" not in doc["components"]["schemas"]["CloudEventsHeaders"]["required"]
    ops = doc["operations"]["publish-collaboration.messages.v1"]
    assert ops["action"] == "send" and len(ops["messages"]) == 4


def test_docs_are_deterministic(tmp_path: Path) -> None:
    first = [p.read_bytes() for p in write_docs(tmp_path / "a")]
    second = [p.read_bytes() for p in write_docs(tmp_path / "b")]
    assert first == second


def test_committed_docs_are_current(tmp_path: Path) -> None:
    for path in write_docs(tmp_path):
        assert (REPO_ROOT / "docs" / "catalog" / path.name).read_text() == path.read_text(), (
            "docs/catalog is stale: run `carryover catalog docs --out docs/catalog`"
        )


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("catalog", "lint") == 0
    assert run_cli("catalog", "codegen", "--check") == 0
    assert run_cli("catalog", "deploy", "--registry", f"mock://{uuid.uuid4().hex}") == 0
    assert "registered 26 of 26 subjects" in capsys.readouterr().out
    assert run_cli("catalog", "docs", "--out", str(tmp_path / "docs")) == 0
    assert (tmp_path / "docs" / "asyncapi.yaml").exists()
    assert run_cli("catalog", "breaking", "--against", "no-such-ref-anywhere") == 1
    assert "git ref 'no-such-ref-anywhere' not found" in capsys.readouterr().out
    assert run_cli("topics", "apply", "--dry-run", "--bootstrap", "127.0.0.1:1") == 2
    assert "cannot talk to 127.0.0.1:1" in capsys.readouterr().err


def test_cli_lint_fails_on_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    shutil.copytree(CATALOG_DIR, tmp_path / "catalog")
    events = tmp_path / "catalog" / "events.yaml"
    events.write_text(
        events.read_text().replace("topic: compliance.actions.v1", "topic: identity.users.v1", 1)
    )
    assert run_cli("catalog", "lint", "--catalog", str(tmp_path / "catalog")) == 1
    out = capsys.readouterr().out
    assert (
        "MessageSuppressed is on identity.users.v1 but carryover.identity.v1.UserEvent does not contain it"
        in out
    )
