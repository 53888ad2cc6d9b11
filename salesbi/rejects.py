"""Rejected rows people can fix: the whole raw line kept, exported for editing, replayed, pruned.

* At load time every rejected record gets its whole physical source line (or
  lines, for a record with a quoted line break) re-read from the source file by
  file and line into ``audit.rejected_rows.raw_line``.
* :func:`export_rejects` writes one CSV row per rejected record of a run, with
  every reason, the original line and an editable copy; spreadsheet cells that
  start with ``= + - @``, a tab or a carriage return are neutralised with a
  leading ``'`` (OWASP CSV-injection guidance).
* :func:`patch_source` copies the run's source folder and puts each corrected
  line in place of the original one (an emptied line removes the record), so
  that the corrected rows go through exactly the same read and validation as
  any other run (:func:`replay` runs the ingest step on the copy).
* :func:`prune_rejects` keeps the rejected rows of the newest N runs only.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.validation.tables import REJECTED_ROWS

#: default number of runs whose rejected rows are kept in ``audit.rejected_rows``
KEEP_RUNS = 30
#: a record with an unclosed quote would swallow the rest of its file: stop collecting there
MAX_RECORD_LINES = 50
MAX_RECORD_CHARS = 20_000
#: first characters a spreadsheet reads as a formula (OWASP CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "run_id",
    "table_name",
    "source_file",
    "source_line",
    "natural_key",
    "reasons",
    "original_line",
    "corrected_line",
)


# ------------------------------------------------------------------------------ source lines


@dataclass
class SourceText:
    """A source file decoded: its physical lines, encoding and line ending."""

    lines: list[str]
    encoding: str
    newline: str


def decode_source(data: bytes) -> SourceText:
    """Return ``data`` decoded (BOM, else strict UTF-8, else cp1252, else Latin-1) and split into lines."""
    boms = (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    )
    encoding = next((enc for bom, enc in boms if data.startswith(bom)), "")
    candidates = [encoding] if encoding else ["utf-8", "cp1252", "latin-1"]
    for enc in candidates:
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line ending ends a line, it does not start one
    return SourceText([line.removesuffix("\r") for line in lines], enc, newline)


def record_span(lines: list[str], line: int) -> int:
    """Return how many physical lines the record starting at 1-based ``line`` spans (quotes balanced)."""
    quotes, count, chars = 0, 0, 0
    for text in lines[line - 1 : line - 1 + MAX_RECORD_LINES]:
        count += 1
        chars += len(text)
        quotes += text.count('"')
        if quotes % 2 == 0 or chars > MAX_RECORD_CHARS:
            break
    return max(count, 1)


def record_text(lines: list[str], line: int) -> str | None:
    """Return the whole record starting at 1-based ``line`` (its lines joined by newlines), or None."""
    if not 1 <= line <= len(lines):
        return None
    return "\n".join(lines[line - 1 : line - 1 + record_span(lines, line)])


def inside(folder: Path, name: str) -> Path | None:
    """Return ``folder / name`` when it resolves inside ``folder``, else None."""
    root = Path(folder).resolve()
    path = (root / name).resolve()
    return path if path.is_relative_to(root) else None


def raw_lines(source: Path, wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Return the whole raw record for each (file relative to ``source``, line) that can be read."""
    by_file: dict[str, set[int]] = {}
    for name, line in wanted:
        by_file.setdefault(name, set()).add(int(line))
    found: dict[tuple[str, int], str] = {}
    for name, numbers in by_file.items():
        path = inside(source, name)
        if path is None or not path.is_file():
            continue
        lines = decode_source(path.read_bytes()).lines
        for line in numbers:
            text = record_text(lines, line)
            if text is not None:
                found[(name, line)] = text
    return found


def with_raw_lines(rejected: pd.DataFrame, source: Path | None) -> pd.DataFrame:
    """Return ``rejected`` (``audit.rejected_rows`` columns) with ``raw_line`` read from the source files."""
    out = rejected.copy()
    out["raw_line"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if source is None or out.empty:
        return out
    has = out["source_file"].notna() & out["source_line"].notna()
    keys = list(
        zip(out.loc[has, "source_file"].astype(str), out.loc[has, "source_line"].astype(int), strict=True)
    )
    found = raw_lines(Path(source), keys)
    out.loc[has, "raw_line"] = [found.get(k, pd.NA) for k in keys]
    # PostgreSQL refuses NUL in text: shown as \x00, like the other audit texts
    out["raw_line"] = out["raw_line"].str.replace("\x00", "\\x00", regex=False)
    return out


def ensure_raw_line_column(engine: Engine) -> None:
    """Add ``raw_line`` to an ``audit.rejected_rows`` created before it existed (no-op otherwise)."""
    from salesbi.warehouse.ddl import add_missing_column

    add_missing_column(engine, REJECTED_ROWS, "raw_line")


# ------------------------------------------------------------------------------ retention


def prune_rejects(conn: sa.Connection, metadata: sa.MetaData, keep_runs: int = KEEP_RUNS) -> int:
    """Delete the rejected rows of every run older than the newest ``keep_runs``; return rows deleted.

    Runs are ordered by ``audit.runs.started_at``; rows of a run_id unknown to
    ``audit.runs`` are left alone.
    """
    if keep_runs < 1:
        raise ConfigurationError(f"the rejects retention must keep at least 1 run, got {keep_runs}")
    runs = metadata.tables["audit.runs"]
    rejected = metadata.tables["audit.rejected_rows"]
    ordered = [r[0] for r in conn.execute(sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()))]
    old = ordered[keep_runs:]
    deleted = 0
    for start in range(0, len(old), 500):  # well under SQL Server's 2,100 parameters
        chunk = old[start : start + 500]
        deleted += conn.execute(rejected.delete().where(rejected.c.run_id.in_(chunk))).rowcount or 0
    return deleted


# ------------------------------------------------------------------------------ export


def neutralise(value: Any) -> Any:
    """Return ``value`` with a leading ``'`` when a spreadsheet would read it as a formula.

    A value that already starts with quotes before a formula character gets one more, so that
    :func:`unneutralise` gives every value back exactly.
    """
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def unneutralise(value: str) -> str:
    """Return a cell as it was before :func:`neutralise` (its exact inverse)."""
    if value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _reason(row: Mapping[str, Any]) -> str:
    where = row["column_name"] if isinstance(row["column_name"], str) else "row"
    value = row["value"]
    shown = f" {value!r}" if isinstance(value, str) else ""
    return f"{where}: {row['rule']}{shown}: {row['message']}"


def rejects_of_run(engine: Engine, run_id: str) -> pd.DataFrame:
    """Return one row per rejected record of ``run_id`` (``EXPORT_COLUMNS``), in source order.

    Raises SalesBIError when the warehouse knows no such run.
    """
    from salesbi.warehouse.ddl import warehouse_metadata

    md = warehouse_metadata()
    runs, table = md.tables["audit.runs"], md.tables["audit.rejected_rows"]
    with engine.connect() as conn:
        known = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
        query = (
            sa.select(table)
            .where(table.c.run_id == run_id, table.c.severity == "reject")
            .order_by(table.c.reject_id)
        )
        result = conn.execute(query)
        rows = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if known is None and rows.empty:
        raise SalesBIError(
            f"the warehouse has no run {run_id!r}", hint="run ids are in run_summary.json and audit.runs"
        )
    out: list[dict[str, Any]] = []
    if rows.empty:
        return pd.DataFrame(columns=list(EXPORT_COLUMNS))
    line_key = rows["source_line"].astype("Int64").astype("string").fillna("")
    file_key = rows["source_file"].astype("string").fillna("")
    # records without a line (derived tables) stay one per reason: nothing groups them
    record = (
        rows["table_name"]
        + "|"
        + file_key
        + "|"
        + line_key.where(line_key != "", "#" + rows["reject_id"].astype(str))
    )
    for _key, group in rows.groupby(record, sort=False):
        first = group.iloc[0]
        raw = first.get("raw_line")
        raw = raw if isinstance(raw, str) else ""
        line = first["source_line"]
        out.append(
            {
                "run_id": run_id,
                "table_name": first["table_name"],
                "source_file": first["source_file"] if isinstance(first["source_file"], str) else "",
                "source_line": "" if pd.isna(line) else str(int(line)),
                "natural_key": first["natural_key"] if isinstance(first["natural_key"], str) else "",
                "reasons": "\n".join(_reason(r) for r in group.to_dict("records")),  # one per line
                "original_line": raw,
                "corrected_line": raw,
            }
        )
    return pd.DataFrame(out, columns=list(EXPORT_COLUMNS))


def export_rejects(engine: Engine, run_id: str, out: Path) -> int:
    """Write the rejected records of ``run_id`` to the CSV ``out`` (UTF-8 with BOM); return the row count."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise ConfigurationError(f"rejects are exported as CSV, not {out.suffix or 'no extension'}", file=out)
    frame = rejects_of_run(engine, run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        for row in frame.itertuples(index=False):
            writer.writerow([neutralise(v) for v in row])
    return len(frame)


# ------------------------------------------------------------------------------ replay


@dataclass
class Correction:
    """One edited record of an export: where it was and what replaces it."""

    source_file: str
    source_line: int
    original: str
    corrected: str  # empty: remove the record


@dataclass
class ReplayPlan:
    """What an export file asks for."""

    run_id: str
    corrections: list[Correction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why rows could not be replayed


def read_corrections(path: Path) -> ReplayPlan:
    """Return the corrections of an edited export (cells un-neutralised); SalesBIError when malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError("the corrected rejects file does not exist", file=path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in EXPORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigurationError(
                f"not a rejects export: column {missing[0]!r} is missing",
                file=path,
                line=1,
                hint="start from `salesbi rejects export --run ID --out FILE.csv` and edit corrected_line",
            )
        rows = [({k: unneutralise(v or "") for k, v in row.items()}, reader.line_num) for row in reader]
    run_ids = {row["run_id"] for row, _ in rows}
    if len(run_ids) != 1:
        raise ConfigurationError(
            f"a replay file must hold the rejects of one run, found {len(run_ids)}",
            file=path,
            hint="export and replay one run at a time",
        )
    plan = ReplayPlan(run_id=run_ids.pop())
    for row, line in rows:
        if not row["source_file"] or not row["source_line"].isdigit():
            plan.skipped.append(f"line {line}: {row['table_name']} record has no source line (derived)")
            continue
        plan.corrections.append(
            Correction(
                row["source_file"], int(row["source_line"]), row["original_line"], row["corrected_line"]
            )
        )
    return plan


def patch_source(source: Path, corrections: Iterable[Correction], target: Path) -> list[Path]:
    """Copy ``source`` to ``target``, each corrected record in place of its original; return changed files.

    Raises SalesBIError when a file left the folder or its line no longer holds
    the exported original (the source changed since the run).
    """
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise ConfigurationError(
            "the source folder of the run is gone", file=source, hint="pass --source with the same files"
        )
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    by_file: dict[str, list[Correction]] = {}
    for c in corrections:
        by_file.setdefault(c.source_file, []).append(c)
    changed: list[Path] = []
    for name, items in sorted(by_file.items()):
        path = inside(target, name)
        if path is None or not path.is_file():
            raise SalesBIError(f"{name} is not a file of the source folder", file=source / name)
        text = decode_source(path.read_bytes())
        lines = text.lines
        # bottom up, so that a record of another length does not move the lines above
        for c in sorted(items, key=lambda c: -c.source_line):
            current = record_text(lines, c.source_line)
            if current != c.original:
                raise SalesBIError(
                    "the source changed since the run: this line no longer holds the exported original",
                    file=source / name,
                    line=c.source_line,
                    hint="export the rejects of the newest run and correct those",
                )
            span = record_span(lines, c.source_line)
            replacement = c.corrected.replace("\r\n", "\n").split("\n") if c.corrected.strip() else []
            lines[c.source_line - 1 : c.source_line - 1 + span] = replacement
        body = text.newline.join(lines) + text.newline
        path.write_bytes(body.encode(text.encoding))
        changed.append(path)
    return changed


def replay(
    engine: Engine,
    file: Path,
    *,
    warehouse_url: str | None,
    out_dir: Path,
    source: Path | None = None,
    profile: str | None = None,
) -> tuple[Any, list[str]]:
    """Re-ingest the corrected records of an edited export through the normal read and validation.

    The run's source folder is copied to ``<out_dir>/replay/<run_id>/source`` with the corrections
    in place, then the ingest step runs on the copy (unchanged rows upsert to nothing; records still
    wrong are rejected again, in the new run's rejects). Returns the new run's RunSummary and the
    export rows that could not be replayed (records without a source line), with why.
    """
    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline
    from salesbi.warehouse.ddl import warehouse_metadata

    plan = read_corrections(file)
    runs = warehouse_metadata().tables["audit.runs"]
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(runs.c.source, runs.c.profile).where(runs.c.run_id == plan.run_id)
        ).first()
    if row is None and (source is None or profile is None):
        raise SalesBIError(
            f"the warehouse has no run {plan.run_id!r} to take the source folder and profile from",
            file=file,
            hint="pass --source and --profile",
        )
    folder = Path(source) if source is not None else Path(row[0] or "") if row is not None else Path()
    chosen = profile if profile is not None else (row[1] if row is not None and row[1] else "canonical")
    target = Path(out_dir) / "replay" / plan.run_id / "source"
    patch_source(folder, plan.corrections, target)
    # the records not corrected are rejected again, as in the original run: they must not fail the
    # replay of the ones that were (completeness still warns about them)
    params = PipelineParams(
        source=target,
        profile=chosen,
        warehouse_url=warehouse_url,
        out_dir=out_dir,
        steps=("ingest",),
        max_rejected_share=1.0,
        # every record validated as in the original run (an incremental ingest would skip records
        # identical to core and so report fewer still-wrong records than the export holds)
        ingest_mode="full",
    )
    return run_pipeline(params, flow="rejects_replay"), plan.skipped
