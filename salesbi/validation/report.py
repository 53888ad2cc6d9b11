"""Reports for people: the markdown validation summary and GX Data Docs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from salesbi import contract

TOP_VALUES = 5


def _md(text: object) -> str:
    """Return ``text`` safe inside a markdown table cell (pipes escaped, newlines flattened, shortened)."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    if s is pd.NA:
        s = ""
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return s if len(s) <= 60 else s[:57] + "..."


def render_validation_summary(outcome: Any) -> str:
    """Return the markdown summary: rows read/loaded/rejected per table, rejects by rule, top values."""
    lines = [f"# Validation summary — run {outcome.run_id or '(no run id)'}", ""]
    rejected: pd.DataFrame = outcome.rejected_rows
    warnings: pd.DataFrame = outcome.warnings
    total_read = sum(c.read for c in outcome.counts.values())
    total_rej = sum(c.rejected for c in outcome.counts.values())
    lines.append(
        f"{total_read} rows read, {total_read - total_rej} loaded, {total_rej} rejected "
        f"({len(rejected)} reasons), {len(warnings)} warnings. read = loaded + rejected for every table."
    )
    lines += [
        "",
        "Lines: physical lines of the table's files after the header = loaded + rejected + unchanged + "
        "skipped (skipped: blank or padding lines, and continuation lines of records spanning lines; "
        "unchanged: rows identical to what core holds, not validated again).",
        "",
        "| table | lines | skipped | read | unchanged | loaded | rejected | warnings |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in outcome.counts.items():
        n_warn = int((warnings["table_name"] == name).sum()) if len(warnings) else 0
        n_lines = "" if getattr(c, "lines", None) is None else c.lines
        skipped = getattr(c, "skipped", 0)
        unchanged = getattr(c, "unchanged", 0)
        cells = (name, n_lines, skipped, c.read, unchanged, c.loaded, c.rejected, n_warn)
        lines.append("| " + " | ".join(str(v) for v in cells) + " |")
    lines += cascade_section(rejected)
    for title, frame in (("Rejects", rejected), ("Warnings", warnings)):
        if not len(frame):
            continue
        lines += ["", f"## {title} by rule", "", "| table | rule | column | rows | top values |"]
        lines.append("|---|---|---|---:|---|")
        order = {t.name: i for i, t in enumerate(contract.TABLES)}
        grouped = frame.groupby(["table_name", "rule", "column_name"], dropna=False, sort=False)
        rows = []
        for (table, rule, column), sub in grouped:
            top = sub["value"].fillna("<empty>").value_counts().head(TOP_VALUES)
            tops = ", ".join(f"`{_md(v)}` ×{n}" for v, n in top.items())
            rows.append((order.get(str(table), 99), str(table), str(rule), column, len(sub), tops))
        for _, table, rule, column, n, tops in sorted(rows, key=lambda r: (r[0], -r[4], r[2])):
            col = "" if column is None or column is pd.NA else _md(column)
            lines.append(f"| {table} | {rule} | {col} | {n} | {tops} |")
    if len(rejected):
        lines += ["", "## First rejected rows", "", "| table | file:line | key | rule | message |"]
        lines.append("|---|---|---|---|---|")
        for r in rejected.head(20).itertuples(index=False):
            where = f"{_md(r.source_file)}:{'' if pd.isna(r.source_line) else r.source_line}"
            lines.append(f"| {r.table_name} | {where} | {_md(r.natural_key)} | {r.rule} | {_md(r.message)} |")
        lines += [
            "",
            "All rejected rows are in `audit.rejected_rows` (filter by run_id); fix them in the source "
            "and re-run — accepted rows are upserted, so nothing is loaded twice.",
        ]
    return "\n".join(lines) + "\n"


def cascade(rejected: pd.DataFrame) -> pd.DataFrame:
    """Return the rows rejected only because a parent was rejected, counted per parent.

    Columns: ``table_name``, ``column_name`` (the reference), ``parent`` (the message's parent key),
    ``rows``. A row with any reason of its own besides ``parent_rejected`` is not counted.
    """
    if not len(rejected):
        return pd.DataFrame({"table_name": [], "column_name": [], "parent": [], "rows": []})
    record = ["table_name", "source_file", "source_line"]
    own = rejected[rejected["rule"] != "parent_rejected"][record].drop_duplicates()
    mine = rejected[rejected["rule"] == "parent_rejected"]
    only = mine.merge(own.assign(_own=True), on=record, how="left")
    only = only[only["_own"].isna()]
    parent = only["message"].str.extract(r"parent rejected: (\S+ \S+)")[0]
    out = (
        only.assign(parent=parent)
        .groupby(["table_name", "column_name", "parent"], dropna=False, sort=False)
        .size()
        .reset_index(name="rows")
    )
    return out.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def cascade_section(rejected: pd.DataFrame) -> list[str]:
    """Return markdown lines saying how many rows the cascade rejected and because of which parent."""
    found = cascade(rejected)
    if not len(found):
        return []
    total = int(found["rows"].sum())
    lines = [
        "",
        "## Rejected only because a parent row was rejected (cascade)",
        "",
        f"{total} row(s) have no fault of their own: they reference a row rejected in this run "
        "(rule `parent_rejected`; a rejected customer takes its orders, an order its lines). "
        "Fix the parent's own reason and they load too.",
        "",
        "| table | reference | rejected parent | rows |",
        "|---|---|---|---:|",
    ]
    for r in found.head(20).itertuples(index=False):
        lines.append(f"| {r.table_name} | {_md(r.column_name)} | {_md(r.parent)} | {r.rows} |")
    return lines


def build_data_docs(outcome: Any, out_dir: Path) -> Path:
    """Build GX Data Docs of the run's suites and validation results into ``out_dir``; return index.html.

    ``out_dir`` is the docs folder itself (the pipeline passes ``<out>/data_docs``); it is replaced.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from salesbi.validation.gxcontext import ephemeral_context
    from salesbi.validation.suites import gx_suite

    out = Path(out_dir).resolve()  # GX wants an absolute base_directory
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    context = ephemeral_context()
    site = "salesbi"
    context.add_data_docs_site(
        site_name=site,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    for doc in getattr(outcome, "suite_docs", {}).values():
        context.suites.add(gx_suite(doc))  # expectation-suite pages beside the result pages
    run_id = RunIdentifier(run_name=outcome.run_id or "validation")
    for name, result in outcome.suite_results.items():
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
            run_id=run_id,
            batch_identifier=name,
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[site])
    index = out / "index.html"
    if not index.exists():
        raise FileNotFoundError(f"GX did not write {index}")
    return index
