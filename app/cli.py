"""The `carryover` command: local stack, settings, catalog, simulator, dead letters, replays."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields

from app.settings import Settings, SettingsError, load, markdown_table

Handler = Callable[[argparse.Namespace, Settings], int]


def _stack(settings: Settings) -> object:
    from app.dev.stack import Stack  # noqa: PLC0415 - keeps `carryover --help` fast

    return Stack(
        settings.stack_dir, settings.stack_kafka_port, settings.stack_moto_port, settings.stack_pubsub_port
    )


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    """carryover stack up|down|status."""
    from app.dev.stack import Stack, StackError  # noqa: PLC0415

    stack = _stack(settings)
    assert isinstance(stack, Stack)
    try:
        if args.action == "up":
            stack.up()
            env_file = stack.write_env_file()
            print(f"stack ready; point a shell at it with: source {env_file}")
        elif args.action == "down":
            stack.down()
        else:
            report = stack.status()
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                for name, row in report.items():
                    state = "up" if row["up"] else "down"
                    print(f"{name:7} {state:5} {row['address']}  pid={row['pid']}  log={row['log']}")
            return 0 if all(row["up"] for row in report.values()) else 3
    except StackError as exc:
        print(f"carryover stack {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print the configuration table (markdown) or the effective values."""
    if args.effective:
        secret = {f.name for f in fields(settings) if not f.repr}
        for name, value in vars(settings).items():
            shown = ("(set)" if value else "(not set)") if name in secret else value
            print(f"{name} = {shown}")
    else:
        print(markdown_table())
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the whole local demo (what `make run` does)."""
    from app.dev.stack.run import run_demo  # noqa: PLC0415

    return run_demo(settings, tenants=args.tenants, rate=args.rate)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="carryover", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser(
        "stack", help="start, check or stop the local stack (Tansu, moto, Pub/Sub emulator)"
    )
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.set_defaults(handler=cmd_stack)

    conf = sub.add_parser("settings", help="print every setting (markdown table) or the effective values")
    conf.add_argument("--effective", action="store_true", help="print the values in force")
    conf.set_defaults(handler=cmd_settings)

    run = sub.add_parser(
        "run", help="local demo: stack, demo tenants, a worker and legacy traffic (Ctrl-C stops)"
    )
    run.add_argument("--tenants", type=int, default=4)
    run.add_argument("--rate", type=float, default=5.0, help="legacy events per second")
    run.set_defaults(handler=cmd_run)

    for register in _optional_command_sets():
        register(sub)
    return parser


def _optional_command_sets() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Command groups that live beside the code they drive (catalog, simulator, dead letters)."""
    from app.archive.commands import add_archive_commands  # noqa: PLC0415
    from app.catalog.commands import add_catalog_commands  # noqa: PLC0415
    from app.dev.simulate.commands import add_simulate_commands  # noqa: PLC0415
    from app.normalize.replay import add_replay_commands  # noqa: PLC0415
    from app.ops.commands import add_lag_commands  # noqa: PLC0415
    from app.state.commands import add_state_commands  # noqa: PLC0415
    from app.webhooks.commands import add_hooks_commands  # noqa: PLC0415

    return [
        add_catalog_commands,
        add_simulate_commands,
        add_replay_commands,
        add_state_commands,
        add_archive_commands,
        add_lag_commands,
        add_hooks_commands,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `carryover` console script."""
    try:
        settings = load()
    except SettingsError as exc:
        print(f"carryover: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
