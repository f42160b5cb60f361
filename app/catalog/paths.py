"""Where the catalog and its generated code live in the repository (pure)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = REPO_ROOT / "catalog"
PROTO_DIR = CATALOG_DIR / "proto"
GENERATED_DIR = REPO_ROOT / "models" / "canonical"
GENERATED_PACKAGE = "models.canonical"


def buf_executable() -> str:
    """Path of the pinned Buf CLI (PyPI buf-bin): next to this interpreter, else on PATH."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "buf"
    if beside.exists():
        return str(beside)
    found = shutil.which("buf")
    if found is None:
        raise FileNotFoundError("buf not found: install the dev extra (`pip install -e '.[dev]'`, buf-bin)")
    return found
