"""Generates models/canonical/ (protobuf Python + .pyi stubs) from catalog/proto with the pinned protoc.

``python -m app.catalog.codegen`` rewrites the generated tree; ``--check`` exits 1 when it is stale.
Output is reproducible: files are compiled in sorted order by the pinned grpcio-tools protoc, imports are
rewritten to ``models.canonical.carryover...`` and every package directory gets a fixed ``__init__.py``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from app.catalog.paths import GENERATED_DIR, GENERATED_PACKAGE, PROTO_DIR

STUB_HEADER = "# mypy: ignore-errors\n# Generated from catalog/proto by `python -m app.catalog.codegen`.\n"
INIT_TEXT = '"""Generated from catalog/proto by `python -m app.catalog.codegen`; do not edit."""\n'
_IMPORT_RE = re.compile(r"^(from|import) carryover(\.| )", re.MULTILINE)
_MODULE_NAME_RE = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')carryover\.")


class CodegenError(RuntimeError):
    """protoc failed to compile the catalog."""


def proto_files(proto_root: Path = PROTO_DIR) -> list[Path]:
    """Every .proto file of the catalog, relative to the module root, sorted."""
    return sorted(p.relative_to(proto_root) for p in proto_root.rglob("*.proto"))


def well_known_include() -> Path:
    """Directory of Google's well-known .proto files shipped inside grpcio-tools."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


def _rewrite_imports(text: str) -> str:
    """Turns ``from carryover.x import y`` into ``from models.canonical.carryover.x import y``.

    The module name protoc passes to the builder is rewritten too, so classes report their real module.
    """
    text = _IMPORT_RE.sub(lambda m: f"{m.group(1)} {GENERATED_PACKAGE}.carryover{m.group(2)}", text)
    return _MODULE_NAME_RE.sub(lambda m: f"{m.group(1)}{GENERATED_PACKAGE}.carryover.", text)


def generate(out_dir: Path, proto_root: Path = PROTO_DIR) -> list[Path]:
    """Compiles every catalog proto into the empty ``out_dir``; returns the files written, sorted."""
    from grpc_tools import protoc  # imported here: heavy, only needed for generation

    files = proto_files(proto_root)
    if not files:
        raise CodegenError(f"no .proto files under {proto_root}")
    with tempfile.TemporaryDirectory(prefix="carryover-codegen-") as raw:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known_include()}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            *[str(f) for f in files],
        ]
        status = protoc.main(args)
        if status != 0:
            raise CodegenError(f"protoc exited {status} compiling {proto_root} (errors printed above)")
        raw_root = Path(raw)
        for src in sorted(raw_root.rglob("*")):
            if src.is_file():
                dst = out_dir / src.relative_to(raw_root)
                dst.parent.mkdir(parents=True, exist_ok=True)
                text = _rewrite_imports(src.read_text())
                if dst.suffix == ".pyi":  # protoc's stubs use bare generics; strict mypy must not judge them
                    text = STUB_HEADER + text
                dst.write_text(text)
    for package_dir in sorted({out_dir, *(p.parent for p in out_dir.rglob("*.py*"))}):
        cur = package_dir
        while True:
            (cur / "__init__.py").write_text(INIT_TEXT)
            if cur == out_dir:
                break
            cur = cur.parent
    return sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.is_file())


def _tree(root: Path) -> dict[Path, bytes]:
    """Relative path -> content of every file under root, ignoring caches."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def stale_files(generated_dir: Path = GENERATED_DIR, proto_root: Path = PROTO_DIR) -> list[str]:
    """Differences between the committed tree and a fresh generation, one per line; empty = fresh."""
    with tempfile.TemporaryDirectory(prefix="carryover-codegen-check-") as tmp:
        generate(Path(tmp), proto_root)
        fresh, current = _tree(Path(tmp)), _tree(generated_dir)
    problems = []
    for rel in sorted(fresh.keys() | current.keys()):
        if rel not in current:
            problems.append(f"missing: {generated_dir / rel}")
        elif rel not in fresh:
            problems.append(f"not generated from the catalog (delete it): {generated_dir / rel}")
        elif fresh[rel] != current[rel]:
            problems.append(f"out of date: {generated_dir / rel}")
    return problems


def write(generated_dir: Path = GENERATED_DIR, proto_root: Path = PROTO_DIR) -> list[Path]:
    """Replaces ``generated_dir`` with a fresh generation; returns the files written."""
    with tempfile.TemporaryDirectory(prefix="carryover-codegen-") as tmp:
        written = generate(Path(tmp), proto_root)
        if generated_dir.exists():
            shutil.rmtree(generated_dir)
        shutil.copytree(tmp, generated_dir)
    return written


def run(check: bool, generated_dir: Path = GENERATED_DIR, proto_root: Path = PROTO_DIR) -> int:
    """CLI body: regenerate, or with ``check`` report staleness; returns the exit code."""
    if check:
        problems = stale_files(generated_dir, proto_root)
        if problems:
            print(f"{generated_dir} is stale compared to {proto_root}:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            print("fix: run `python -m app.catalog.codegen` and commit the result", file=sys.stderr)
            return 1
        print(f"{generated_dir} is up to date with {proto_root}")
        return 0
    written = write(generated_dir, proto_root)
    print(f"wrote {len(written)} files to {generated_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m app.catalog.codegen [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m app.catalog.codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if models/canonical is stale")
    args = parser.parse_args(argv)
    return run(args.check)


if __name__ == "__main__":
    sys.exit(main())
