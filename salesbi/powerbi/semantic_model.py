"""Render a :class:`ModelPlan` as the TMDL files of ``<name>.SemanticModel/definition/``."""

from __future__ import annotations

from salesbi.powerbi.ids import lineage_tag
from salesbi.powerbi.model import MeasureSpec, ModelPlan, RoleSpec
from salesbi.powerbi.tmdl import description_lines, m_string, quote, summarize_by
from salesbi.schema import Column, Table

T1, T2, T3, T4 = "\t", "\t\t", "\t\t\t", "\t\t\t\t"

SOURCE_TYPES = ("Parquet", "SqlServer")
# Joins ParquetFolder and a file name with the folder's own separator: "/" for a POSIX folder,
# "\" for C:\... and \\server\share (a project built on Linux then works on Windows and back).
SEPARATOR = (
    r'(if Text.Contains(ParquetFolder, "/") and not Text.Contains(ParquetFolder, "\") then "/" else "\")'
)
DEFAULT_SQL_SERVER = "localhost"
DEFAULT_DATABASE = "salesbi"


def database_tmdl() -> str:
    """Return ``database.tmdl``."""
    return "database\n\tcompatibilityLevel: 1600\n"


def model_tmdl(plan: ModelPlan) -> str:
    """Return ``model.tmdl``: model options, query order and references to every table."""
    names = [t.name for t in plan.tables]
    query_order = ",".join(f'"{n}"' for n in [*PARAMETERS, *names])
    lines = [
        "model Model",
        f"{T1}culture: en-US",
        f"{T1}defaultPowerBIDataSourceVersion: powerBI_V3",
        f"{T1}discourageImplicitMeasures",
        f"{T1}sourceQueryCulture: en-US",
        f"{T1}dataAccessOptions",
        f"{T2}legacyRedirects",
        f"{T2}returnErrorValuesAsNull",
        "",
        "annotation __PBI_TimeIntelligenceEnabled = 0",
        "",
        f"annotation PBI_QueryOrder = [{query_order}]",
        "",
        'annotation PBI_ProTooling = ["DevMode"]',
        "",
    ]
    lines += [f"ref table {quote(n)}" for n in names]
    return "\n".join(lines) + "\n"


PARAMETERS = ("SourceType", "SqlServer", "Database", "ParquetFolder")


def expressions_tmdl(parquet_folder: str) -> str:
    """Return ``expressions.tmdl``: the four Power Query parameters that switch the data source."""
    meta = 'IsParameterQuery=true, Type="Text", IsParameterQueryRequired=true'
    choices = "{" + ", ".join(m_string(s) for s in SOURCE_TYPES) + "}"
    params = [
        (
            "SourceType",
            f"{m_string('Parquet')} meta [{meta}, List={choices}, DefaultValue={m_string('Parquet')}]",
            "Where the tables are read from: Parquet (files written by make run) or SqlServer (rpt schema).",
        ),
        (
            "SqlServer",
            f"{m_string(DEFAULT_SQL_SERVER)} meta [{meta}]",
            "SQL Server instance name, e.g. sql01.example.com.",
        ),
        ("Database", f"{m_string(DEFAULT_DATABASE)} meta [{meta}]", "Database that holds the rpt schema."),
        (
            "ParquetFolder",
            f"{m_string(parquet_folder)} meta [{meta}]",
            "Absolute folder of <table>.parquet files (<out>/powerbi/data).",
        ),
    ]
    lines: list[str] = []
    for name, value, description in params:
        lines += description_lines(description, "")
        lines += [
            f"expression {name} = {value}",
            f"{T1}lineageTag: {lineage_tag('expression', name)}",
            "",
            f"{T1}annotation PBI_ResultType = Text",
            "",
        ]
    return "\n".join(lines)


def relationships_tmdl(plan: ModelPlan) -> str:
    """Return ``relationships.tmdl``: many-to-one, single-direction relationships (TMDL defaults)."""
    lines: list[str] = []
    for r in plan.relationships:
        lines += [
            f"relationship {lineage_tag('relationship', r.name)}",
            f"{T1}fromColumn: {quote(r.from_table)}.{quote(r.from_column)}",
            f"{T1}toColumn: {quote(r.to_table)}.{quote(r.to_column)}",
            "",
        ]
    return "\n".join(lines)


def partition_source(table: Table) -> list[str]:
    """Return the M expression lines of ``table``'s partition: SQL Server or Parquet, typed per column."""
    types = ", ".join("{" + f"{m_string(c.name)}, {c.spec.m_type}" + "}" for c in table.columns)
    file_name = m_string(f"{table.name}.parquet")
    return [
        "let",
        "    Source =",
        f"        if SourceType = {m_string('SqlServer')} then",
        f"            Sql.Database(SqlServer, Database){{[Schema = {m_string(table.schema)}, "
        f"Item = {m_string(table.name)}]}}[Data]",
        "        else",
        f"            Parquet.Document(File.Contents(ParquetFolder & {SEPARATOR} & {file_name})),",
        f"    Typed = Table.TransformColumnTypes(Source, {{{types}}})",
        "in",
        "    Typed",
    ]


def _column_lines(plan: ModelPlan, table: Table, column: Column, hidden: set[str]) -> list[str]:
    is_key = column.name in table.key
    lines = description_lines(column.description, T1)
    lines.append(f"{T1}column {quote(column.name)}")
    lines.append(f"{T2}dataType: {column.spec.tmdl_data_type}")
    if plan.date_table == table.name and plan.date_key == column.name:
        lines.append(f"{T2}isKey")
    if column.name in hidden:
        lines.append(f"{T2}isHidden")
    fmt = column.spec.format_string
    if fmt is not None and (column.spec.format_on_key or not is_key):
        lines.append(f"{T2}formatString: {fmt}")
    lines.append(f"{T2}lineageTag: {lineage_tag('column', table.name, column.name)}")
    lines.append(f"{T2}summarizeBy: {summarize_by(column, is_key=is_key, table=table.name)}")
    if column.name == "country" or column.name.endswith("_country"):
        lines.append(f"{T2}dataCategory: Country")
    elif column.name == "city" or column.name.endswith("_city"):
        lines.append(f"{T2}dataCategory: City")
    lines.append(f"{T2}sourceColumn: {column.name}")
    sort = next((s for s in plan.sorts if s.table == table.name and s.column == column.name), None)
    if sort is not None:
        lines.append(f"{T2}sortByColumn: {quote(sort.by)}")
    lines.append("")
    lines.append(f"{T2}annotation SummarizationSetBy = Automatic")
    if column.spec.date_only:
        lines += ["", f"{T2}annotation UnderlyingDateTimeDataType = Date"]
    lines.append("")
    return lines


def _measure_lines(measure: MeasureSpec) -> list[str]:
    lines = description_lines(measure.description, T1)
    body = measure.expression.splitlines()
    if len(body) == 1:
        lines.append(f"{T1}measure {quote(measure.name)} = {body[0]}")
    else:
        lines.append(f"{T1}measure {quote(measure.name)} =")
        lines += [f"{T3}{line}".rstrip() for line in body]
    if measure.format_string:  # a text measure has none (TOM refuses an empty formatString)
        lines.append(f"{T2}formatString: {measure.format_string}")
    lines += [
        f"{T2}displayFolder: {measure.folder}",
        f"{T2}lineageTag: {lineage_tag('measure', measure.table, measure.name)}",
        "",
    ]
    return lines


def table_tmdl(plan: ModelPlan, table: Table) -> str:
    """Return ``tables/<table>.tmdl``: measures homed here, typed columns and the import partition."""
    lines = description_lines(table.description, "")
    lines.append(f"table {quote(table.name)}")
    if plan.date_table == table.name:
        lines.append(f"{T1}dataCategory: Time")
    lines += [f"{T1}lineageTag: {lineage_tag('table', table.name)}", ""]
    for m in plan.measures:
        if m.table == table.name:
            lines += _measure_lines(m)
    hidden = plan.hidden_columns(table.name)
    for column in table.columns:
        lines += _column_lines(plan, table, column, hidden)
    lines += [f"{T1}partition {quote(table.name)} = m", f"{T2}mode: import", f"{T2}source ="]
    lines += [f"{T4}{line}" for line in partition_source(table)]
    lines += ["", f"{T1}annotation PBI_ResultType = Table", ""]
    return "\n".join(lines)


def role_tmdl(role: RoleSpec) -> str:
    """Return ``roles/<role>.tmdl``: read permission and one row filter per table."""
    lines = description_lines(role.description, "")
    lines += [f"role {quote(role.name)}", f"{T1}modelPermission: read", ""]
    for table, expression in role.filters:
        lines += [f"{T1}tablePermission {quote(table)} = {expression}", ""]
    lines += [f"{T1}annotation PBI_Id = {lineage_tag('role', role.name).replace('-', '')}", ""]
    return "\n".join(lines)
