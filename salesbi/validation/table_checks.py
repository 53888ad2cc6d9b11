"""Table-level rules: schema mismatch, zero rows, shrinking against the last good run.

Any failure raises :class:`salesbi.errors.ValidationFailed` before a row reaches core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salesbi import contract
from salesbi.errors import ValidationFailed
from salesbi.types import pandas_dtype
from salesbi.validation.config import ValidationConfig


def _file_of(staged: Any) -> str | None:
    files = tuple(getattr(staged, "files", ()) or ())
    return str(files[0]) if files else None


def check_schema(tables: Mapping[str, Any]) -> None:
    """Raise ValidationFailed when a table is missing or a column is missing or wrongly typed."""
    missing_tables = [t.name for t in contract.TABLES if t.name not in tables]
    if missing_tables:
        raise ValidationFailed(
            f"schema mismatch: table(s) {', '.join(missing_tables)} were not staged",
            hint="the reader must hand over all seven canonical tables; check the profile",
        )
    for spec in contract.TABLES:
        staged = tables[spec.name]
        frame = staged.frame
        for c in spec.columns:
            expected = pandas_dtype(c)
            if c.name not in frame.columns:
                raise ValidationFailed(
                    f"{spec.name}: schema mismatch (rule schema): column {c.name!r} is missing",
                    file=_file_of(staged),
                    column=c.name,
                    hint="map the column in the profile (rename/derive) or add it to the file",
                )
            actual = str(frame.dtypes[c.name])  # a spilled table's too (salesbi.reading.spilled)
            if actual != expected:
                raise ValidationFailed(
                    f"{spec.name}: schema mismatch (rule schema): column {c.name!r} is {actual}, "
                    f"the contract needs {expected} ({c.kind})",
                    file=_file_of(staged),
                    column=c.name,
                    hint="the reader must type the column per salesbi.types.pandas_dtype; this is a bug "
                    "in the reader or in the code that built the frame",
                )


def check_counts(
    tables: Mapping[str, Any], config: ValidationConfig, previous_counts: Mapping[str, int] | None
) -> None:
    """Raise ValidationFailed when a table has no rows or shrank beyond the configured fraction."""
    problems: list[str] = []
    hints: list[str] = []
    first_file: str | None = None
    for spec in contract.TABLES:
        staged = tables[spec.name]
        rows = len(staged.frame)
        if rows == 0 and spec.name not in config.allow_empty:
            problems.append(f"{spec.name}: 0 rows read (rule zero_rows)")
            hints.append(
                f"check the {spec.name} file; if it may be empty, add {spec.name} to tables.allow_empty "
                f"in {config.source}"
            )
            first_file = first_file or _file_of(staged)
            continue
        before = int((previous_counts or {}).get(spec.name, 0))
        if before <= 0 or spec.name in config.allow_shrink:
            continue
        limit = (1 - config.max_shrink_fraction) * before
        if rows < limit:
            drop = 1 - rows / before
            problems.append(
                f"{spec.name}: {rows} rows read, {drop:.0%} fewer than the {before} of the last good run "
                f"(rule table_shrank, limit {config.max_shrink_fraction:.0%})"
            )
            hints.append(
                f"if the source is complete and the drop is expected, add {spec.name} to "
                f"tables.allow_shrink (or raise tables.max_shrink_fraction) in {config.source} and re-run"
            )
            first_file = first_file or _file_of(staged)
    if problems:
        raise ValidationFailed(
            "table-level validation failed, core was not changed: " + "; ".join(problems),
            file=first_file,
            hint="; ".join(hints),
        )
