"""Where the catalog and its generated code live in the repository (pure)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = REPO_ROOT / "catalog"
PROTO_DIR = CATALOG_DIR / "proto"
GENERATED_DIR = REPO_ROOT / "models" / "canonical"
GENERATED_PACKAGE = "models.canonical"
