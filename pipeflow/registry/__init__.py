"""The model registry inside the repository: models declared in the spec, aliases
(one mechanism with tags), notes, export, serving, environments (docs/registry.md)."""
