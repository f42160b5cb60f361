"""``carryover state conversation TENANT ID``: ask a worker for one conversation's state.

Any worker will do (it forwards to the owner); the admin token is read from ``CARRYOVER_ADMIN_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from app.settings import Settings


def cmd_state_conversation(args: argparse.Namespace, settings: Settings) -> int:
    """Print the conversation's state as JSON; 0 when found, 1 when unknown, 2 on any other answer."""
    if not settings.admin_token:
        print("carryover state: set CARRYOVER_ADMIN_TOKEN to the workers' admin token", file=sys.stderr)
        return 2
    base = (args.url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
    quote = urllib.parse.quote
    url = f"{base}/state/conversations/{quote(args.tenant, safe='')}/{quote(args.conversation_id, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {settings.admin_token}"})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310 - operator's URL
            print(json.dumps(json.loads(response.read()), indent=2, sort_keys=True))
            return 0
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            message = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            message = body
        print(f"carryover state: {base} answered {exc.code}: {message}", file=sys.stderr)
        return 1 if exc.code == 404 else 2
    except OSError as exc:
        print(f"carryover state: cannot reach a worker at {base} ({exc}); pass --url", file=sys.stderr)
        return 2


def add_state_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carryover state ...`` to the CLI."""
    state = sub.add_parser("state", help="read per-conversation state from the workers (admin token)")
    state_sub = state.add_subparsers(dest="state_command", required=True)
    conversation = state_sub.add_parser("conversation", help="one conversation's state as JSON")
    conversation.add_argument("tenant")
    conversation.add_argument("conversation_id")
    conversation.add_argument(
        "--url", help="any worker's web URL (default: http://127.0.0.1:CARRYOVER_WEB_PORT)"
    )
    conversation.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    conversation.set_defaults(handler=cmd_state_conversation)
