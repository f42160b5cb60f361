"""Webhook definitions: who may post into which room, how they sign, how fast (pure).

A :class:`HookDefinition` names its hook (``hook_id``, the last segment of ``POST /hooks/{hook_id}``), the
tenant and conversation it posts into, the bot user that appears as the sender, the template that turns a
delivery into a chat message (a shipped template's name or the template's own text, see
:mod:`app.webhooks.templates`), the authentication scheme with one or two active secrets (two while a secret
is rotated), whether it is enabled, and its rate (``rate_per_second`` refill, ``rate_burst`` tokens).

Authentication schemes (:class:`AuthScheme`), verified by :mod:`app.webhooks.verify`:

* ``github``: ``X-Hub-Signature-256``, HMAC-SHA256 of the raw body; a secret is any printable text.
* ``standard``: Standard Webhooks (``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``); a secret
  is ``whsec_`` plus base64 of 24 to 64 random bytes (the prefix may be left out).
* ``shared_secret``: the legacy platform's scheme, kept for migration: the secret itself in a request
  header (``secret_header``, ``X-Webhook-Secret`` unless set). It has no timestamp and no signature over
  the body, so it offers no replay window: prefer the other two.

:meth:`HookDefinition.to_json` / :meth:`HookDefinition.from_json` are the round trip of the
``carryover.config.webhooks`` value (secrets included: whoever writes it encrypts them with the tenant key
first); :meth:`HookDefinition.to_public_json` is what an admin API may show. Secrets never appear in
``repr``, in the public JSON or in an error message (:class:`HookDefinitionError` names the field and what is
wrong with it, never a secret's value).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.webhooks.templates import SHIPPED_TEMPLATES, TemplateRejected, check_template_source

FORMAT_VERSION = 1
"""``version`` written by :meth:`HookDefinition.to_json`; a definition of another version is refused."""
MAX_SECRETS = 2
"""Active secrets at most: the current one and the one it replaces while senders switch."""
DEFAULT_SECRET_HEADER = "X-Webhook-Secret"
MAX_RATE_PER_SECOND = 1000.0
MAX_RATE_BURST = 10_000
MAX_TEMPLATE_SOURCE_CHARS = 32_768
STANDARD_SECRET_PREFIX = "whsec_"

_HOOK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "authorization", "cookie", "transfer-encoding", "connection"}
)
_PRINTABLE_SECRET = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_NAME_MAX_CHARS = 256


class AuthScheme(StrEnum):
    """How a hook's sender proves it knows the secret."""

    GITHUB = "github"
    STANDARD = "standard"
    SHARED_SECRET = "shared_secret"


class HookDefinitionError(ValueError):
    """A hook definition that cannot be used: which field, and what is wrong (never a secret's value)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem


@dataclass(frozen=True)
class HookSecret:
    """One secret of a hook; shown as ``HookSecret(***)`` wherever it is printed or logged."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "HookSecret(***)"

    __str__ = __repr__

    def standard_key(self) -> bytes:
        """The HMAC key of a Standard Webhooks secret: the base64 after the optional ``whsec_`` prefix.

        Raises ValueError (without the secret) when it is not base64.
        """
        text = self.value.removeprefix(STANDARD_SECRET_PREFIX)
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64 after the whsec_ prefix") from None


@dataclass(frozen=True, repr=False)
class HookDefinition:
    """One webhook: target room, sender identity, template, authentication, enabled flag and rate.

    Exactly one of ``template_name`` (a shipped template, :data:`app.webhooks.templates.SHIPPED_TEMPLATES`)
    and ``template_source`` (the template's text) is set. Construction validates every field and raises
    :class:`HookDefinitionError`.
    """

    hook_id: str
    tenant: str
    conversation_id: str
    bot_user_id: str
    auth_scheme: AuthScheme
    secrets: tuple[HookSecret, ...]
    """Newest first; one or two."""
    template_name: str = ""
    template_source: str = ""
    enabled: bool = True
    rate_per_second: float = 5.0
    rate_burst: int = 20
    secret_header: str = DEFAULT_SECRET_HEADER
    """The request header holding the secret (``shared_secret`` only; compared without regard to case)."""

    def __post_init__(self) -> None:
        _check_hook_id(self.hook_id)
        for name in ("tenant", "conversation_id", "bot_user_id"):
            _check_name(name, getattr(self, name))
        try:
            object.__setattr__(self, "auth_scheme", AuthScheme(self.auth_scheme))
        except ValueError:
            raise HookDefinitionError(
                "auth_scheme", f"must be one of {', '.join(s.value for s in AuthScheme)}"
            ) from None
        _check_secrets(self.auth_scheme, self.secrets)
        _check_template(self.template_name, self.template_source)
        if not isinstance(self.enabled, bool):
            raise HookDefinitionError("enabled", "must be true or false")
        _check_rate(self.rate_per_second, self.rate_burst)
        object.__setattr__(self, "rate_per_second", float(self.rate_per_second))
        if not isinstance(self.secret_header, str) or not _HEADER_NAME.fullmatch(self.secret_header):
            raise HookDefinitionError("secret_header", "must be a header name (letters, digits, '-')")
        if self.secret_header.lower() in _RESERVED_HEADERS:
            raise HookDefinitionError("secret_header", f"{self.secret_header!r} is a reserved HTTP header")

    def __repr__(self) -> str:
        template = f"template_name={self.template_name!r}" if self.template_name else "template_source=..."
        return (
            f"HookDefinition(hook_id={self.hook_id!r}, tenant={self.tenant!r}, "
            f"conversation_id={self.conversation_id!r}, bot_user_id={self.bot_user_id!r}, "
            f"auth_scheme={self.auth_scheme.value!r}, secrets=<{len(self.secrets)} hidden>, {template}, "
            f"enabled={self.enabled!r}, rate_per_second={self.rate_per_second!r}, "
            f"rate_burst={self.rate_burst!r})"
        )

    # -- rotation and switches ------------------------------------------------------------------------

    def with_new_secret(self, secret: str) -> HookDefinition:
        """The hook with ``secret`` as its newest secret; the current newest stays active beside it (an
        older one, if there were two, is dropped)."""
        return replace(self, secrets=(HookSecret(secret), *self.secrets[: MAX_SECRETS - 1]))

    def with_only_newest_secret(self) -> HookDefinition:
        """The hook once every sender uses the newest secret: the older one no longer verifies."""
        return replace(self, secrets=self.secrets[:1])

    def with_enabled(self, enabled: bool) -> HookDefinition:
        """The hook enabled or disabled (a disabled hook is answered 410)."""
        return replace(self, enabled=enabled)

    # -- JSON -----------------------------------------------------------------------------------------

    def public_fields(self) -> dict[str, Any]:
        """Every field but the secrets, which are only counted (``secret_count``)."""
        return {
            "version": FORMAT_VERSION,
            "hook_id": self.hook_id,
            "tenant": self.tenant,
            "conversation_id": self.conversation_id,
            "bot_user_id": self.bot_user_id,
            "auth_scheme": self.auth_scheme.value,
            "secret_count": len(self.secrets),
            "secret_header": self.secret_header,
            "template_name": self.template_name,
            "template_source": self.template_source,
            "enabled": self.enabled,
            "rate_per_second": self.rate_per_second,
            "rate_burst": self.rate_burst,
        }

    def to_public_json(self) -> bytes:
        """What an admin API may show: :meth:`public_fields` as compact JSON, no secret."""
        return _compact_json(self.public_fields())

    def to_json(self) -> bytes:
        """The whole definition, secrets included (newest first), as compact JSON with sorted keys."""
        fields = self.public_fields()
        del fields["secret_count"]
        fields["secrets"] = [secret.value for secret in self.secrets]
        return _compact_json(fields)

    @classmethod
    def from_json(cls, data: bytes | str) -> HookDefinition:
        """The definition :meth:`to_json` wrote (or an admin API received); :class:`HookDefinitionError`
        when it is not valid JSON or not a valid definition."""
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            # json's message names only a position, never the document's text
            raise HookDefinitionError("(document)", f"not JSON: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: object) -> HookDefinition:
        """The definition held in a decoded JSON object; :class:`HookDefinitionError` when it is not one.

        ``version`` may be left out (then :data:`FORMAT_VERSION`); optional fields take their defaults;
        an unknown field is refused, so that a misspelt one is not silently ignored.
        """
        if not isinstance(raw, dict):
            raise HookDefinitionError("(document)", "must be a JSON object")
        unknown = sorted(str(key) for key in raw if key not in _JSON_FIELDS)
        if unknown:
            raise HookDefinitionError("(document)", f"unknown field(s): {', '.join(unknown)[:200]}")
        version = raw.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise HookDefinitionError("version", f"must be {FORMAT_VERSION}")
        for required in ("hook_id", "tenant", "conversation_id", "bot_user_id", "auth_scheme", "secrets"):
            if required not in raw:
                raise HookDefinitionError(required, "is required")
        secrets = raw["secrets"]
        if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
            raise HookDefinitionError("secrets", "must be a list of strings")
        kwargs = {key: raw[key] for key in _OPTIONAL_FIELDS if key in raw}
        for name in ("template_name", "template_source", "secret_header"):
            if name in kwargs and not isinstance(kwargs[name], str):
                raise HookDefinitionError(name, "must be a string")
        return cls(
            hook_id=raw["hook_id"],
            tenant=raw["tenant"],
            conversation_id=raw["conversation_id"],
            bot_user_id=raw["bot_user_id"],
            auth_scheme=raw["auth_scheme"],
            secrets=tuple(HookSecret(s) for s in secrets),
            **kwargs,
        )


_OPTIONAL_FIELDS = (
    "template_name",
    "template_source",
    "enabled",
    "rate_per_second",
    "rate_burst",
    "secret_header",
)
_JSON_FIELDS = frozenset(
    {"version", "hook_id", "tenant", "conversation_id", "bot_user_id", "auth_scheme", "secrets"}
    | set(_OPTIONAL_FIELDS)
)


def _compact_json(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _check_hook_id(hook_id: object) -> None:
    if not isinstance(hook_id, str) or not _HOOK_ID.fullmatch(hook_id):
        raise HookDefinitionError("hook_id", "must be 3 to 64 letters, digits, '_' or '-' (not first)")


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise HookDefinitionError(name, "must be a non-empty string")
    if len(value) > _NAME_MAX_CHARS or not value.isprintable() or value != value.strip():
        raise HookDefinitionError(
            name, f"must be at most {_NAME_MAX_CHARS} printable characters without surrounding spaces"
        )


def _check_secrets(scheme: AuthScheme, secrets: object) -> None:
    if not isinstance(secrets, tuple) or not all(isinstance(s, HookSecret) for s in secrets):
        raise HookDefinitionError("secrets", "must be a tuple of HookSecret")
    if not 1 <= len(secrets) <= MAX_SECRETS:
        raise HookDefinitionError("secrets", f"must hold 1 to {MAX_SECRETS} secrets, not {len(secrets)}")
    if len({s.value for s in secrets}) != len(secrets):
        raise HookDefinitionError("secrets", "must not hold the same secret twice")
    for index, secret in enumerate(secrets):
        where = f"secrets[{index}]"
        if not isinstance(secret.value, str):
            raise HookDefinitionError(where, "must be a string")
        if scheme is AuthScheme.STANDARD:
            try:
                key = secret.standard_key()
            except ValueError as exc:
                raise HookDefinitionError(where, str(exc)) from None
            if not 24 <= len(key) <= 64:
                raise HookDefinitionError(where, f"must decode to 24 to 64 bytes, not {len(key)}")
        elif not 8 <= len(secret.value) <= 512 or not _PRINTABLE_SECRET.fullmatch(secret.value):
            raise HookDefinitionError(
                where, "must be 8 to 512 printable ASCII characters without surrounding spaces"
            )


def _check_template(template_name: object, template_source: object) -> None:
    if not isinstance(template_name, str) or not isinstance(template_source, str):
        raise HookDefinitionError("template_name", "template_name and template_source must be strings")
    if bool(template_name) == bool(template_source):
        raise HookDefinitionError("template_name", "set exactly one of template_name and template_source")
    if template_name and template_name not in SHIPPED_TEMPLATES:
        raise HookDefinitionError(
            "template_name", f"{template_name[:80]!r} is not one of {', '.join(sorted(SHIPPED_TEMPLATES))}"
        )
    if template_source:
        if len(template_source) > MAX_TEMPLATE_SOURCE_CHARS:
            raise HookDefinitionError(
                "template_source", f"must be at most {MAX_TEMPLATE_SOURCE_CHARS} characters"
            )
        try:
            check_template_source(template_source)
        except TemplateRejected as exc:
            raise HookDefinitionError("template_source", str(exc)) from None


def _check_rate(rate_per_second: object, rate_burst: object) -> None:
    if (
        isinstance(rate_per_second, bool)
        or not isinstance(rate_per_second, int | float)
        or not math.isfinite(rate_per_second)
        or not 0 < rate_per_second <= MAX_RATE_PER_SECOND
    ):
        raise HookDefinitionError(
            "rate_per_second", f"must be a number above 0, at most {MAX_RATE_PER_SECOND}"
        )
    if (
        isinstance(rate_burst, bool)
        or not isinstance(rate_burst, int)
        or not 1 <= rate_burst <= MAX_RATE_BURST
    ):
        raise HookDefinitionError("rate_burst", f"must be a whole number from 1 to {MAX_RATE_BURST}")
