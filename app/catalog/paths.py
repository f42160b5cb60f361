"""Where the catalog and its generated code live (pure).

The catalog ships inside the installed package (``catalog`` is a package of data files), so it is found
with :mod:`importlib.resources` whether carryover is installed from a wheel or from a checkout. Code
generation and ``buf breaking`` against git work on a checkout only (:data:`REPO_ROOT`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CATALOG_DIR = Path(str(files("catalog")))
PROTO_DIR = CATALOG_DIR / "proto"
REPO_ROOT = CATALOG_DIR.parent
"""The checkout the catalog sits in (meaningful for development commands only)."""
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
