"""ed25519 signatures: who wrote a run record or moved an alias (docs/registry.md)."""
