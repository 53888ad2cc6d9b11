"""Declarative table definitions: the one description of every table we store.

A :class:`Table` is a list of :class:`Column` objects plus a key.  The same
objects drive the CSV readers' dtypes, the warehouse DDL (SQLite, PostgreSQL,
SQL Server), the Great Expectations suites, the Parquet export and the Power BI
semantic model, so a column is typed exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from salesbi import kinds
from salesbi.kinds import KIND_NAMES, Kind

ColumnKind = Literal[
    "id",  # natural key or reference, stored as text (sources mix ints and codes)
    "text",  # short text, NVARCHAR(255)
    "long_text",  # NVARCHAR(MAX)
    "int",  # 64-bit integer
    "money",  # DECIMAL(18,2)
    "fraction",  # DECIMAL(9,4), e.g. a discount of 0.05
    "float",  # double precision measure (ratios, scores, model outputs)
    "date",  # calendar date
    "datetime",  # timestamp without time zone (UTC by convention)
    "bool",
]
# Every representation of a kind lives in salesbi.kinds (the registry); a test checks that the
# Literal above and the registry name the same kinds.
KINDS: tuple[str, ...] = KIND_NAMES


@dataclass(frozen=True)
class Column:
    """One column: name, kind, nullability and optional constraints."""

    name: str
    kind: ColumnKind
    required: bool = False
    references: tuple[str, str] | None = None  # (table, column) in the same schema
    allowed: tuple[str, ...] | None = None  # closed set of values
    description: str = ""
    length: int | None = None  # override of the text length for id/text kinds

    def __post_init__(self) -> None:
        if self.kind not in kinds.KINDS:  # the registry, so a kind added there is accepted here
            raise ValueError(
                f"column {self.name!r}: unknown kind {self.kind!r}; use one of {tuple(kinds.KINDS)}"
            )

    @property
    def spec(self) -> Kind:
        """Return the registered :class:`~salesbi.kinds.Kind` of this column."""
        return kinds.kind(self.kind)


@dataclass(frozen=True)
class Table:
    """A table: ordered columns, a natural key, and a one-line purpose."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""
    schema: str = "core"
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(names) != len(set(names)):
            raise ValueError(f"table {self.name!r}: duplicate column names")
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"table {self.name!r}: key columns {missing} are not columns")

    @property
    def column_names(self) -> list[str]:
        """Return the column names in declared order."""
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Return the names of the columns that may not be null."""
        return [c.name for c in self.columns if c.required or c.name in self.key]

    def column(self, name: str) -> Column:
        """Return the column called ``name``; KeyError names the table if absent."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def foreign_keys(self) -> list[tuple[str, str, str]]:
        """Return ``(column, parent_table, parent_column)`` for each reference."""
        return [(c.name, c.references[0], c.references[1]) for c in self.columns if c.references]

    @property
    def qualified_name(self) -> str:
        """Return ``schema.table``."""
        return f"{self.schema}.{self.name}"


# The lineage columns: every staging row and every frame the readers return carries them.
RUN_ID = "_run_id"
SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
STATUS = "_status"
LINEAGE: tuple[Column, ...] = (
    Column(RUN_ID, "id", required=True, description="the run that staged the row"),
    Column(SOURCE_FILE, "text", length=400, description="file the row was read from"),
    Column(SOURCE_LINE, "int", description="physical line of the record in that file"),
    Column(STATUS, "text", required=True, length=16, description="accepted or rejected"),
)
LINEAGE_NAMES: tuple[str, ...] = tuple(c.name for c in LINEAGE)
