"""``rpt`` and ``ml`` tables written by this package (filled in by its implementation)."""

from __future__ import annotations

from salesbi.schema import Table

TABLES: tuple[Table, ...] = ()
