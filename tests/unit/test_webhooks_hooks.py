"""Hook definitions: JSON round trip, validation with clear errors, secrets never shown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.webhooks.hooks import AuthScheme, HookDefinition, HookDefinitionError, HookSecret

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITHUB_SECRET = "It's a Secret to Everybody"


def definition(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "hook_id": "gh-acme-1",
        "tenant": "acme",
        "conversation_id": "room-42",
        "bot_user_id": "9001",
        "auth_scheme": "github",
        "secrets": [GITHUB_SECRET],
        "template_name": "github",
    }
    raw.update(changes)
    return {key: value for key, value in raw.items() if value is not None}


def test_round_trip_keeps_every_field() -> None:
    hook = HookDefinition.from_dict(
        definition(
            auth_scheme="standard",
            secrets=[STANDARD_SECRET, "whsec_" + "A" * 32],
            template_name=None,
            template_source="<b>{{ payload.title }}</b>",
            enabled=False,
            rate_per_second=2,
            rate_burst=7,
        )
    )
    again = HookDefinition.from_json(hook.to_json())
    assert again == hook
    assert again.rate_per_second == 2.0 and isinstance(again.rate_per_second, float)
    assert again.auth_scheme is AuthScheme.STANDARD
    assert json.loads(hook.to_json())["secrets"] == [STANDARD_SECRET, "whsec_" + "A" * 32]


def test_defaults() -> None:
    hook = HookDefinition.from_dict(definition())
    assert (hook.enabled, hook.rate_per_second, hook.rate_burst, hook.secret_header) == (
        True,
        5.0,
        20,
        "X-Webhook-Secret",
    )


def test_secrets_never_shown() -> None:
    hook = HookDefinition.from_dict(definition(secrets=[GITHUB_SECRET, "older secret 123"]))
    shown = [repr(hook), str(hook), repr(hook.secrets), str(hook.secrets[0]), hook.to_public_json().decode()]
    for text in shown:
        assert GITHUB_SECRET not in text and "older secret 123" not in text
    public = json.loads(hook.to_public_json())
    assert public["secret_count"] == 2 and "secrets" not in public
    assert "<2 hidden>" in repr(hook)


@pytest.mark.parametrize(
    ("changes", "field_name", "words"),
    [
        ({"hook_id": "a"}, "hook_id", "3 to 64"),
        ({"hook_id": "has/slash"}, "hook_id", "letters"),
        ({"tenant": ""}, "tenant", "non-empty"),
        ({"tenant": " acme"}, "tenant", "surrounding spaces"),
        ({"conversation_id": 42}, "conversation_id", "non-empty string"),
        ({"auth_scheme": "basic"}, "auth_scheme", "github, standard, shared_secret"),
        ({"secrets": []}, "secrets", "1 to 2"),
        ({"secrets": ["a" * 10, "b" * 10, "c" * 10]}, "secrets", "1 to 2"),
        ({"secrets": ["same-secret", "same-secret"]}, "secrets", "twice"),
        ({"secrets": "a-single-secret"}, "secrets", "list of strings"),
        ({"secrets": ["short"]}, "secrets[0]", "8 to 512"),
        ({"auth_scheme": "standard", "secrets": ["whsec_not base64!"]}, "secrets[0]", "not base64"),
        ({"auth_scheme": "standard", "secrets": ["whsec_c2hvcnQ="]}, "secrets[0]", "24 to 64 bytes"),
        ({"template_name": None}, "template_name", "exactly one"),
        ({"template_source": "x"}, "template_name", "exactly one"),
        ({"template_name": "nope"}, "template_name", "is not one of"),
        ({"template_name": None, "template_source": "{% if %}"}, "template_source", "syntax: line 1"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"rate_per_second": 0}, "rate_per_second", "above 0"),
        ({"rate_per_second": float("nan")}, "rate_per_second", "above 0"),
        ({"rate_per_second": True}, "rate_per_second", "above 0"),
        ({"rate_burst": 1.5}, "rate_burst", "whole number"),
        ({"rate_burst": 0}, "rate_burst", "whole number"),
        ({"secret_header": "Content-Type", "auth_scheme": "shared_secret"}, "secret_header", "reserved"),
        ({"secret_header": "X Token"}, "secret_header", "header name"),
        ({"version": 2}, "version", "must be 1"),
        ({"colour": "red"}, "(document)", "unknown field(s): colour"),
        ({"bot_user_id": None}, "bot_user_id", "required"),
    ],
)
def test_invalid_definitions_name_the_field(changes: dict[str, Any], field_name: str, words: str) -> None:
    with pytest.raises(HookDefinitionError) as caught:
        HookDefinition.from_dict(definition(**changes))
    assert caught.value.field_name == field_name
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "secrets",
    [["whsec_not base64 at all but secret-ish"], ["only-\x01-control"], ["  padded secret  "]],
)
def test_errors_never_repeat_a_secret(secrets: list[str]) -> None:
    scheme = "standard" if secrets[0].startswith("whsec_") else "github"
    with pytest.raises(HookDefinitionError) as caught:
        HookDefinition.from_dict(definition(auth_scheme=scheme, secrets=secrets))
    assert secrets[0].strip() not in str(caught.value)
    assert secrets[0].removeprefix("whsec_") not in str(caught.value)


@pytest.mark.parametrize("document", [b"{", b"[]", b'"hook"', b"\xff"])
def test_documents_that_are_not_definitions(document: bytes) -> None:
    with pytest.raises(HookDefinitionError) as caught:
        HookDefinition.from_json(document)
    assert caught.value.field_name == "(document)"


def test_rotation_keeps_two_newest_first() -> None:
    hook = HookDefinition.from_dict(definition())
    rotated = hook.with_new_secret("second secret 2")
    assert [s.value for s in rotated.secrets] == ["second secret 2", GITHUB_SECRET]
    again = rotated.with_new_secret("third secret 3")
    assert [s.value for s in again.secrets] == ["third secret 3", "second secret 2"]
    assert [s.value for s in again.with_only_newest_secret().secrets] == ["third secret 3"]
    with pytest.raises(HookDefinitionError):
        hook.with_new_secret("short")


def test_direct_construction_validates_too() -> None:
    with pytest.raises(HookDefinitionError):
        HookDefinition("gh-1", "acme", "room", "9001", AuthScheme.GITHUB, (HookSecret("x" * 10),))
    assert HookDefinition(
        "gh-1", "acme", "room", "9001", AuthScheme.GITHUB, (HookSecret("x" * 10),), template_name="github"
    ).enabled
