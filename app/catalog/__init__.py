"""The event catalog: the contract in catalog/, its generated code, wire format, registry, lint, docs, topics."""
