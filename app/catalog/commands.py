"""``carryover catalog ...`` and ``carryover topics apply``: the catalog's command-line entry points.

Every handler takes ``(args, settings)`` and returns the process exit code (0 ok, 1 findings, 2 error).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.catalog.paths import CATALOG_DIR, REPO_ROOT

if TYPE_CHECKING:
    from app.settings import Settings


def cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    """carryover catalog lint: buf lint plus the catalog's own rules."""
    from app.catalog.lint import lint

    problems = lint(Path(args.catalog))
    for problem in problems:
        print(problem)
    print(f"catalog lint: {len(problems)} problem(s)", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def cmd_breaking(args: argparse.Namespace, settings: Settings) -> int:
    """carryover catalog breaking --against REF: buf breaking (CSR) against a git ref."""
    from app.catalog.lint import buf_breaking

    problems = buf_breaking(args.against, repo_root=Path(args.repo))
    for problem in problems:
        print(problem)
    print(
        f"catalog breaking against {args.against}: {len(problems)} breaking change(s)",
        file=sys.stderr if problems else sys.stdout,
    )
    return 1 if problems else 0


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    """carryover catalog docs --out DIR: Markdown catalog and AsyncAPI 3.0 document."""
    from app.catalog.docs import write_docs

    for path in write_docs(Path(args.out), Path(args.catalog)):
        print(f"wrote {path}")
    return 0


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    """carryover catalog deploy --registry URL: register every schema, BACKWARD_TRANSITIVE."""
    from app.catalog.model import load_catalog
    from app.catalog.registry import DeployError, deploy, registry_client

    try:
        report = deploy(registry_client(args.registry), load_catalog(Path(args.catalog)))
    except DeployError as exc:
        print(f"catalog deploy: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def cmd_codegen(args: argparse.Namespace, settings: Settings) -> int:
    """carryover catalog codegen [--check]: regenerate models/canonical (or check it is fresh)."""
    from app.catalog.codegen import run

    return run(args.check)


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    """carryover topics apply: create missing catalog topics, report drift."""
    from app.catalog.model import load_catalog
    from app.catalog.provision import apply_topics

    bootstrap = args.bootstrap or settings.bootstrap_servers
    try:
        report = asyncio.run(
            apply_topics(
                bootstrap,
                load_catalog(Path(args.catalog)),
                dry_run=args.dry_run,
                prefix=settings.topic_prefix if args.prefix is None else args.prefix,
                replication_factor=args.replication_factor or settings.topic_replicas,
            )
        )
    except Exception as exc:  # connection refused, timeouts: one clear line, exit 2
        print(f"topics apply: cannot talk to {bootstrap}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


def add_catalog_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``catalog {lint,breaking,docs,deploy,codegen}`` and ``topics apply`` to the carryover CLI."""
    catalog = subparsers.add_parser(
        "catalog", help="the event catalog: lint, breaking, docs, deploy, codegen"
    )
    actions = catalog.add_subparsers(dest="catalog_command", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        """A catalog subcommand with the shared --catalog option."""
        parser = actions.add_parser(name, help=help_text)
        parser.add_argument(
            "--catalog", default=str(CATALOG_DIR), help="catalog directory (default: %(default)s)"
        )
        return parser

    action("lint", "buf lint + the catalog's own rules (file:line findings)").set_defaults(handler=cmd_lint)

    breaking = action("breaking", "buf breaking (category CSR) against a git ref, e.g. the last release tag")
    breaking.add_argument("--against", required=True, help="git ref: tag, branch or commit")
    breaking.add_argument("--repo", default=str(REPO_ROOT), help="git repository root (default: %(default)s)")
    breaking.set_defaults(handler=cmd_breaking)

    docs = action("docs", "write the Markdown catalog and the AsyncAPI 3.0 document")
    docs.add_argument("--out", default="docs/catalog", help="output directory (default: %(default)s)")
    docs.set_defaults(handler=cmd_docs)

    deploy = action("deploy", "register every schema in the Schema Registry (BACKWARD_TRANSITIVE)")
    deploy.add_argument("--registry", required=True, help="registry URL (mock://NAME = in-process)")
    deploy.set_defaults(handler=cmd_deploy)

    codegen = actions.add_parser("codegen", help="regenerate models/canonical from catalog/proto")
    codegen.add_argument("--check", action="store_true", help="exit 1 when models/canonical is stale")
    codegen.set_defaults(handler=cmd_codegen)

    topics = subparsers.add_parser("topics", help="Kafka topics of the catalog")
    topic_actions = topics.add_subparsers(dest="topics_command", required=True)
    apply = topic_actions.add_parser("apply", help="create missing topics, report partition/config drift")
    apply.add_argument("--bootstrap", help="host:port[,host:port] (default: from CARRYOVER_BROKER)")
    apply.add_argument("--dry-run", action="store_true", help="only report what would be created")
    apply.add_argument("--prefix", default=None, help="topic name prefix (default: CARRYOVER_TOPIC_PREFIX)")
    apply.add_argument(
        "--replication-factor", type=int, default=None, help="default: CARRYOVER_TOPIC_REPLICAS"
    )
    apply.add_argument("--catalog", default=str(CATALOG_DIR), help="catalog directory (default: %(default)s)")
    apply.set_defaults(handler=cmd_topics_apply)
