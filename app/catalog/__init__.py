"""The event catalog: contract in catalog/, generated code, wire format, registry, lint, docs, topics."""
