"""Catalog governance: buf lint, our own rules, and buf breaking against a git ref."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.catalog.lint import buf_breaking, lint
from app.catalog.paths import CATALOG_DIR

COLLAB = "proto/carryover/collaboration/v1"


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    """A private copy of the catalog to break."""
    shutil.copytree(CATALOG_DIR, tmp_path / "catalog")
    return tmp_path / "catalog"


def edit(path: Path, old: str, new: str) -> None:
    """Replaces ``old`` (which must be present) with ``new`` in ``path``."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_repository_catalog_is_clean() -> None:
    assert [str(p) for p in lint()] == []


def test_common_attributes_and_string_ids_are_enforced(catalog_copy: Path) -> None:
    member_left = catalog_copy / COLLAB / "member_left.proto"
    edit(member_left, "string tenant_id = 1;", "string tenant = 1;")
    edit(member_left, "string conversation_id = 5;", "int64 conversation_id = 5;")
    lines = [str(p) for p in lint(catalog_copy)]
    file = str(member_left)
    assert any(
        line.startswith(f"{file}:11: MemberLeft: field 1 must be `string tenant_id`") for line in lines
    ), lines
    assert any(
        line.startswith(f"{file}:19: MemberLeft.conversation_id is an id and must be a string")
        for line in lines
    )


def test_one_type_per_file_and_envelope_membership(catalog_copy: Path) -> None:
    (catalog_copy / COLLAB / "reaction_removed.proto").write_text(
        (catalog_copy / COLLAB / "reaction_removed.proto").read_text()
        + "\nmessage Extra {\n  string a = 1;\n}\n"
    )
    edit(catalog_copy / COLLAB / "message_event.proto", "    ReactionAdded reaction_added = 3;\n", "")
    lines = [str(p) for p in lint(catalog_copy)]
    text = "\n".join(lines)
    assert "2 top-level types (ReactionRemoved, Extra)" in text
    assert "event carryover.collaboration.v1.ReactionAdded is in 0 envelopes (none)" in text
    # metadata now disagrees with the envelope too, reported at the events.yaml line
    assert any(
        line.startswith(f"{catalog_copy / 'events.yaml'}:")
        and "ReactionAdded is on collaboration.messages.v1 but carryover.collaboration.v1.MessageEvent"
        in line
        for line in lines
    ), text


def test_metadata_must_name_real_protos(catalog_copy: Path) -> None:
    edit(
        catalog_copy / "events.yaml",
        "type: carryover.identity.v1.UserDeactivated",
        "type: carryover.identity.v1.UserRemoved",
    )
    edit(
        catalog_copy / "events.yaml",
        "sensitive_fields: [username, display_name, email]",
        "sensitive_fields: [mail]",
    )
    edit(catalog_copy / "events.yaml", "[text, mentions.display_name,", "[text, mentions.nick,")
    text = "\n".join(str(p) for p in lint(catalog_copy))
    assert "sensitive field 'mail' of carryover.identity.v1.UserCreated is not a field of the event" in text
    assert "sensitive field 'mentions.nick' of carryover.collaboration.v1.MessageSent is not a field" in text
    assert "event carryover.identity.v1.UserRemoved has no .proto" in text
    assert "event carryover.identity.v1.UserDeactivated is not in events.yaml" in text


def test_buf_lint_findings_are_reported(catalog_copy: Path) -> None:
    edit(catalog_copy / COLLAB / "reaction_added.proto", "string emoji = 8;", "string Emoji = 8;")
    text = "\n".join(str(p) for p in lint(catalog_copy))
    assert "reaction_added.proto:" in text and "FIELD_LOWER_SNAKE_CASE" in text


def _git(repo: Path, *args: str) -> None:
    """Runs git in ``repo`` quietly."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture
def released_repo(tmp_path: Path) -> Path:
    """A git repository whose commit tagged v1 holds today's catalog."""
    repo = tmp_path / "repo"
    shutil.copytree(CATALOG_DIR, repo / "catalog")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "release")
    _git(repo, "tag", "v1")
    return repo


def test_breaking_change_against_release_is_caught(released_repo: Path) -> None:
    edit(released_repo / "catalog" / COLLAB / "message_sent.proto", "string parent_message_id = 12;", "")
    edit(released_repo / "catalog" / COLLAB / "reaction_added.proto", "string emoji = 8;", "bytes emoji = 8;")
    problems = buf_breaking("v1", repo_root=released_repo)
    text = "\n".join(str(p) for p in problems)
    assert (
        'Previously present field "12" with name "parent_message_id" on message "MessageSent" was deleted'
        in text
    )
    assert 'changed type from "string" to "bytes"' in text
    assert f"{released_repo / 'catalog' / COLLAB / 'reaction_added.proto'}:" in text


def test_additive_change_passes_breaking(released_repo: Path) -> None:
    edit(
        released_repo / "catalog" / COLLAB / "message_sent.proto",
        "string parent_message_id = 12;",
        "string parent_message_id = 12;\n  // Thread root.\n  string thread_id = 13;",
    )
    assert buf_breaking("v1", repo_root=released_repo) == []
    assert lint(released_repo / "catalog") == []


def test_unknown_ref_is_a_clear_error(released_repo: Path) -> None:
    [problem] = buf_breaking("v9", repo_root=released_repo)
    assert "git ref 'v9' not found" in str(problem)
