"""Generated from catalog/proto by `python -m app.catalog.codegen`; do not edit."""
