"""Stable identifiers: lineage tags and object names derived from names, never random."""

from __future__ import annotations

import uuid

# A fixed namespace so every build of the same model yields the same tags.
NAMESPACE = uuid.UUID("5a1e5b1a-7d0c-4c6e-9b1f-2f6a3c8e4d10")


def lineage_tag(*parts: str) -> str:
    """Return a UUID string derived from ``parts`` (stable across builds and machines)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))
