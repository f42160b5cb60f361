"""``carryover hooks create / list / rotate-secret / disable / enable / history``: the admin API from a shell.

Any worker running the webhooks role will do; the admin token is read from ``CARRYOVER_ADMIN_TOKEN``. A
secret is never an argument (it would be in the shell history and the process list): ``create`` and
``rotate-secret`` generate one and print it once, or read it from standard input (``--secret-stdin``). The
API never answers a secret back.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from app.settings import Settings
from app.webhooks.hooks import STANDARD_SECRET_PREFIX, AuthScheme


def _call(
    args: argparse.Namespace, settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """(exit code, JSON answer): 0 on 2xx, 1 on 404, 2 on anything else (printed to stderr)."""
    if not settings.admin_token:
        print("carryover hooks: set CARRYOVER_ADMIN_TOKEN to the workers' admin token", file=sys.stderr)
        return 2, None
    base = (args.url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {settings.admin_token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310 - operator's URL
            return 0, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            message = text
        print(f"carryover hooks: {base} answered {exc.code}: {message}", file=sys.stderr)
        return (1 if exc.code == 404 else 2), None
    except OSError as exc:
        print(f"carryover hooks: cannot reach a worker at {base} ({exc}); pass --url", file=sys.stderr)
        return 2, None


def _quote(hook_id: str) -> str:
    return urllib.parse.quote(hook_id, safe="")


def _new_secret(scheme: str) -> str:
    if scheme == AuthScheme.STANDARD.value:
        return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(32)


def _secret(args: argparse.Namespace, scheme: str) -> tuple[str, bool]:
    """(secret, generated): read from stdin with --secret-stdin, else generated."""
    if args.secret_stdin:
        return sys.stdin.readline().strip(), False
    return _new_secret(scheme), True


def _print(answer: Any) -> None:
    print(json.dumps(answer, indent=2, sort_keys=True))


def cmd_hooks_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a hook; print it, and a generated secret once (the last line)."""
    secret, generated = _secret(args, args.scheme)
    definition: dict[str, Any] = {
        "hook_id": args.hook_id,
        "tenant": args.tenant,
        "conversation_id": args.conversation,
        "bot_user_id": args.bot,
        "auth_scheme": args.scheme,
        "secrets": [secret],
        "rate_per_second": args.rate,
        "rate_burst": args.burst,
    }
    if args.template_file:
        with open(args.template_file, encoding="utf-8") as source:
            definition["template_source"] = source.read()
    else:
        definition["template_name"] = args.template
    if args.secret_header:
        definition["secret_header"] = args.secret_header
    code, answer = _call(args, settings, "POST", "/webhooks/hooks", definition)
    if code == 0:
        _print(answer)
        if generated:
            print(f"secret (shown once, give it to the sender): {secret}")
    return code


def cmd_hooks_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every hook (of --tenant)."""
    query = f"?tenant={urllib.parse.quote(args.tenant)}" if args.tenant else ""
    code, answer = _call(args, settings, "GET", "/webhooks/hooks" + query)
    if code == 0:
        _print(answer)
    return code


def cmd_hooks_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Add a new secret (the previous one stays active), or drop the previous one."""
    body: dict[str, Any] = {}
    generated = ""
    if not args.drop_previous or args.secret_stdin or args.generate:
        code, current = _call(args, settings, "GET", f"/webhooks/hooks/{_quote(args.hook_id)}")
        if code != 0:
            return code
        secret, was_generated = _secret(args, current["auth_scheme"])
        body["secret"] = secret
        generated = secret if was_generated else ""
    if args.drop_previous:
        body["drop_previous"] = True
    code, answer = _call(
        args, settings, "POST", f"/webhooks/hooks/{_quote(args.hook_id)}/rotate-secret", body
    )
    if code == 0:
        _print(answer)
        if generated:
            print(f"new secret (shown once, give it to the sender): {generated}")
    return code


def _action(action: str) -> Any:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        code, answer = _call(args, settings, "POST", f"/webhooks/hooks/{_quote(args.hook_id)}/{action}", {})
        if code == 0:
            _print(answer)
        return code

    return run


def cmd_hooks_history(args: argparse.Namespace, settings: Settings) -> int:
    """Print the hook's recent delivery outcomes (no payload, no secret)."""
    code, answer = _call(args, settings, "GET", f"/webhooks/hooks/{_quote(args.hook_id)}/history")
    if code == 0:
        _print(answer)
    return code


def add_hooks_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carryover hooks ...`` to the CLI."""
    hooks = sub.add_parser("hooks", help="manage webhooks through a worker's admin API (admin token)")
    hooks_sub = hooks.add_subparsers(dest="hooks_command", required=True)

    def command(name: str, help_text: str, handler: Any, *, hook_id: bool = True) -> argparse.ArgumentParser:
        parser = hooks_sub.add_parser(name, help=help_text)
        if hook_id:
            parser.add_argument("hook_id")
        parser.add_argument(
            "--url", help="any worker's web URL (default: http://127.0.0.1:CARRYOVER_WEB_PORT)"
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
        parser.set_defaults(handler=handler)
        return parser

    create = command("create", "create a hook (a secret is generated and shown once)", cmd_hooks_create)
    create.add_argument("--tenant", required=True)
    create.add_argument("--conversation", required=True, help="the room's conversation id")
    create.add_argument("--bot", required=True, help="the bot user id the messages are sent as")
    create.add_argument("--scheme", choices=[s.value for s in AuthScheme], default=AuthScheme.STANDARD.value)
    create.add_argument("--template", default="generic_json", help="a shipped template's name")
    create.add_argument("--template-file", help="a file holding the hook's own template instead")
    create.add_argument("--rate", type=float, default=5.0, help="deliveries per second (refill)")
    create.add_argument("--burst", type=int, default=20, help="deliveries at once (bucket size)")
    create.add_argument("--secret-header", help="shared_secret scheme: the header holding the secret")
    create.add_argument("--secret-stdin", action="store_true", help="read the secret from standard input")
    command("list", "list hooks (no secrets)", cmd_hooks_list, hook_id=False).add_argument("--tenant")
    rotate = command("rotate-secret", "add a new secret; the previous one stays active", cmd_hooks_rotate)
    rotate.add_argument("--secret-stdin", action="store_true", help="read the new secret from standard input")
    rotate.add_argument("--generate", action="store_true", help="generate the new secret (the default)")
    rotate.add_argument(
        "--drop-previous", action="store_true", help="only the newest secret verifies from now on"
    )
    command("disable", "disable a hook (its deliveries are answered 410)", _action("disable"))
    command("enable", "enable a disabled hook", _action("enable"))
    command("history", "the hook's recent delivery outcomes", cmd_hooks_history)
