"""The semantic model as data: tables from the registry plus declared measures, relationships, sorts.

Everything that needs a table or column is *declared* with the names it needs;
:func:`plan_model` keeps what the given tables can support and lists what it
had to leave out (``ModelPlan.skipped``), so nothing disappears silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from salesbi.schema import Column, Table

# ``table[column]`` or ``'table name'[column]``; then bare ``[measure]``.
_COLUMN_REF = re.compile(r"(?:'((?:[^']|'')+)'|([A-Za-z_][A-Za-z0-9_]*))\[([^\]]+)\]")
_MEASURE_REF = re.compile(r"(?<![\]\w'])\[([^\]]+)\]")


@dataclass(frozen=True)
class MeasureSpec:
    """A DAX measure: home table, expression, format string, display folder and description."""

    name: str
    table: str
    expression: str
    format_string: str
    folder: str
    description: str


@dataclass(frozen=True)
class RelationshipSpec:
    """A many-to-one, single-direction relationship ``from_table[from_column] -> to_table[to_column]``."""

    from_table: str
    from_column: str
    to_table: str
    to_column: str

    @property
    def name(self) -> str:
        """Return a readable identity used for the lineage of the relationship."""
        return f"{self.from_table}.{self.from_column}->{self.to_table}.{self.to_column}"


@dataclass(frozen=True)
class SortSpec:
    """Sort ``table[column]`` by ``table[by]`` (e.g. month names by month number)."""

    table: str
    column: str
    by: str


@dataclass(frozen=True)
class RoleSpec:
    """A row-level security role: read permission, and a DAX row filter per table.

    A filter of ``FALSE()`` hides every row of a table (company-wide aggregates a restricted
    role must not see).
    """

    name: str
    description: str
    filters: tuple[tuple[str, str], ...]


@dataclass
class ModelPlan:
    """What the semantic model will contain, and what was declared but could not be emitted."""

    tables: tuple[Table, ...]
    measures: list[MeasureSpec] = field(default_factory=list)
    relationships: list[RelationshipSpec] = field(default_factory=list)
    sorts: list[SortSpec] = field(default_factory=list)
    roles: list[RoleSpec] = field(default_factory=list)
    date_table: str | None = None
    date_key: str | None = None
    skipped: list[str] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        """Return the table called ``name`` or None."""
        return next((t for t in self.tables if t.name == name), None)

    def has_column(self, table: str, column: str) -> bool:
        """Return whether ``table[column]`` exists in the model."""
        t = self.table(table)
        return t is not None and column in t.column_names

    def measure(self, name: str) -> MeasureSpec | None:
        """Return the emitted measure called ``name`` or None."""
        return next((m for m in self.measures if m.name == name), None)

    def hidden_columns(self, table: str) -> set[str]:
        """Return the columns of ``table`` hidden from report authors (keys on the many side)."""
        t = self.table(table)
        if t is None:
            return set()
        hidden = {r.from_column for r in self.relationships if r.from_table == table}
        hidden |= {c.name for c in t.columns if c.name.endswith("_key")}
        if not table.startswith("dim_"):
            hidden |= {c.name for c in t.columns if c.spec.identifier and c.name in t.key}
        return hidden


def dax_references(expression: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return ``([(table, column)], [measure])`` referenced by a DAX expression (string literals ignored)."""
    code = re.sub(r'"(?:[^"]|"")*"', '""', expression)
    columns = [((q or b).replace("''", "'"), c) for q, b, c in _COLUMN_REF.findall(code)]
    bare = _COLUMN_REF.sub("", code)
    # ``[@name]`` is a column of a table variable (ADDCOLUMNS), not a measure.
    return columns, [m for m in _MEASURE_REF.findall(bare) if not m.startswith("@")]


def _date_key(table: Table) -> str | None:
    if len(table.key) == 1 and table.column(table.key[0]).spec.family == "temporal":
        return table.key[0]
    dates = [c.name for c in table.columns if c.spec.date_only]
    return "date" if "date" in dates else None


def _single_key_dimensions(tables: Sequence[Table]) -> dict[str, Table]:
    """Return ``key column -> dimension`` for every ``dim_*`` table with a one-column, non-date key."""
    dims: dict[str, Table] = {}
    for t in tables:
        if t.name.startswith("dim_") and len(t.key) == 1 and _date_key(t) != t.key[0]:
            dims.setdefault(t.key[0], t)
    return dims


def derive_relationships(
    tables: Sequence[Table], declared: Sequence[RelationshipSpec]
) -> tuple[list[RelationshipSpec], list[str]]:
    """Return the star relationships and the declared ones that cannot be made, with reasons.

    Derived: every fact column named like a dimension's single key and every
    ``Column.references`` into a dimension. Declared ones are added when their
    tables and columns exist.
    """
    by_name = {t.name: t for t in tables}
    dims = _single_key_dimensions(tables)
    out: dict[tuple[str, str], RelationshipSpec] = {}
    skipped: list[str] = []
    fact = by_name.get("fact_order_lines")
    if fact is not None:
        for col in fact.columns:
            if col.references and col.references[0] in by_name:
                out[(fact.name, col.name)] = RelationshipSpec(fact.name, col.name, *col.references)
            elif col.name in dims:
                out[(fact.name, col.name)] = RelationshipSpec(
                    fact.name, col.name, dims[col.name].name, col.name
                )
    for r in declared:
        if (r.from_table, r.from_column) in out:
            continue
        problems = [
            f"{t}[{c}]"
            for t, c in ((r.from_table, r.from_column), (r.to_table, r.to_column))
            if t not in by_name or c not in by_name[t].column_names
        ]
        if problems:
            skipped.append(f"relationship {r.name}: missing {', '.join(problems)}")
        else:
            out[(r.from_table, r.from_column)] = r
    return sorted(out.values(), key=lambda r: (r.from_table, r.from_column)), skipped


def plan_model(
    tables: Sequence[Table],
    measures: Sequence[MeasureSpec],
    relationships: Sequence[RelationshipSpec],
    sorts: Sequence[SortSpec],
    roles: Sequence[RoleSpec] = (),
) -> ModelPlan:
    """Return the :class:`ModelPlan` for ``tables`` keeping only the declarations they can support."""
    plan = ModelPlan(tables=tuple(tables))
    dim_date = plan.table("dim_date")
    if dim_date is not None and _date_key(dim_date) is not None:
        plan.date_table, plan.date_key = dim_date.name, _date_key(dim_date)
    plan.relationships, skipped = derive_relationships(tables, relationships)
    plan.skipped.extend(skipped)
    emitted: set[str] = set()
    for m in measures:
        if plan.table(m.table) is None:
            plan.skipped.append(f"measure [{m.name}]: home table {m.table} absent")
            continue
        columns, needed = dax_references(m.expression)
        missing = [f"{t}[{c}]" for t, c in columns if not plan.has_column(t, c)]
        missing += [f"[{n}]" for n in needed if n not in emitted]
        if missing:
            plan.skipped.append(f"measure [{m.name}]: missing {', '.join(missing)}")
            continue
        plan.measures.append(m)
        emitted.add(m.name)
    for s in sorts:
        if plan.has_column(s.table, s.column) and plan.has_column(s.table, s.by):
            plan.sorts.append(s)
        else:
            plan.skipped.append(f"sort {s.table}[{s.column}] by [{s.by}]: column missing")
    for role in roles:
        kept = []
        for table, expression in role.filters:
            if plan.table(table) is None:
                continue  # the table is not in this model: nothing to filter
            columns, _ = dax_references(expression)
            missing = [f"{t}[{c}]" for t, c in columns if not plan.has_column(t, c)]
            if missing:
                plan.skipped.append(f"role {role.name} on {table}: missing {', '.join(missing)}")
            else:
                kept.append((table, expression))
        plan.roles.append(RoleSpec(role.name, role.description, tuple(kept)))
    return plan


def column_of(plan: ModelPlan, table: str, column: str) -> Column:
    """Return the column ``table[column]`` of the plan (KeyError names it when absent)."""
    t = plan.table(table)
    if t is None:
        raise KeyError(f"no table {table!r} in the model")
    return t.column(column)
