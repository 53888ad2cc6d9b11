"""How complete a run's data is: per table, rows read, loaded, rejected and the rejected share.

Each table's rejected share (rejected / read) is compared with two thresholds:
above ``warn`` the run ends ``succeeded_with_warnings``; above ``fail`` it fails before
core changes (``CompletenessFailed``), so no report is built on the remnant. Defaults:
warn above 2 %, fail above 20 %, for every table; a profile (``completeness:`` at the top
level or per table) and the CLI (``--warn-rejected-share`` / ``--max-rejected-share``)
override them — the CLI wins. See docs/validation.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from salesbi import contract
from salesbi.errors import ValidationFailed

DEFAULT_WARN = 0.02
DEFAULT_FAIL = 0.20
TOP_REASONS = 3

Level = Literal["ok", "warn", "fail", "absent", "empty"]


class CompletenessFailed(ValidationFailed):
    """Too large a share of a table's rows was rejected: the run fails before core changes."""


@dataclass(frozen=True)
class Threshold:
    """Warn above ``warn``, fail above ``fail`` (shares of the rows read, 0..1)."""

    warn: float = DEFAULT_WARN
    fail: float = DEFAULT_FAIL


@dataclass
class Reason:
    """One reject reason of a table: rule, column and how many rows it rejected."""

    rule: str
    column: str | None
    rows: int
    example: str | None = None

    def text(self) -> str:
        """Return e.g. ``foreign_key on order_id: 9,997 rows``."""
        where = f" on {self.column}" if self.column else ""
        return f"{self.rule}{where}: {self.rows:,} row{'s' if self.rows != 1 else ''}"


@dataclass
class TableCompleteness:
    """Completeness of one table in one run."""

    table: str
    read: int
    loaded: int
    rejected: int
    share: float | None  # rejected / read; None when nothing was read
    warn_above: float
    fail_above: float
    level: Level
    reasons: list[Reason] = field(default_factory=list)
    absent: str | None = None  # why the source has no such table

    def sentence(self) -> str:
        """Return one plain sentence on this table (for messages, warnings and insights)."""
        if self.level == "absent":
            return f"{self.table}: not in this source ({self.absent})"
        if self.share is None:
            return f"{self.table}: no rows read"
        text = (
            f"{self.table}: {self.loaded:,} of {self.read:,} rows loaded, {self.rejected:,} rejected "
            f"({self.share:.1%})"
        )
        if self.reasons:
            text += "; top reasons: " + "; ".join(r.text() for r in self.reasons)
        return text


@dataclass
class Completeness:
    """Completeness of every table of a run, and the run's verdict."""

    tables: dict[str, TableCompleteness]

    @property
    def level(self) -> Level:
        """Return ``fail`` if any table fails, else ``warn`` if any warns, else ``ok``."""
        levels = {t.level for t in self.tables.values()}
        return "fail" if "fail" in levels else ("warn" if "warn" in levels else "ok")

    def flagged(self, level: Level) -> list[TableCompleteness]:
        """Return the tables at ``level``, in contract order."""
        return [t for t in self.tables.values() if t.level == level]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (run_summary.json ``completeness``)."""
        return {
            "level": self.level,
            "tables": {name: asdict(t) for name, t in self.tables.items()},
        }

    def frame(self) -> pd.DataFrame:
        """Return one row per table: read, loaded, rejected, share, thresholds, level, top reasons."""
        rows = [
            {
                "table_name": t.table,
                "rows_read": t.read,
                "rows_loaded": t.loaded,
                "rows_rejected": t.rejected,
                "rejected_share": t.share,
                "warn_above": t.warn_above,
                "fail_above": t.fail_above,
                "level": t.level,
                "top_reasons": "; ".join(r.text() for r in t.reasons),
                "absent_reason": t.absent,
            }
            for t in self.tables.values()
        ]
        return pd.DataFrame(rows)


def from_dict(doc: Mapping[str, Any]) -> Completeness | None:
    """Return the Completeness stored by :meth:`Completeness.as_dict` (None when ``doc`` holds none)."""
    tables = doc.get("tables") if doc else None
    if not isinstance(tables, dict) or not tables:
        return None
    out: dict[str, TableCompleteness] = {}
    for name, t in tables.items():
        reasons = [Reason(**r) for r in t.get("reasons") or []]
        out[name] = TableCompleteness(**{**t, "reasons": reasons})
    return Completeness(out)


def resolve_thresholds(
    profile: Any = None,
    *,
    warn: float | None = None,
    fail: float | None = None,
) -> dict[str, Threshold]:
    """Return per-table thresholds: defaults < profile top level < profile table < ``warn``/``fail``."""
    out: dict[str, Threshold] = {}
    top = getattr(profile, "completeness", None)
    for spec in contract.TABLES:
        w, f = DEFAULT_WARN, DEFAULT_FAIL
        table_spec = profile.spec(spec.name) if profile is not None else None
        for level in (top, getattr(table_spec, "completeness", None)):
            if level is not None:
                w = level.warn if level.warn is not None else w
                f = level.fail if level.fail is not None else f
        w = warn if warn is not None else w
        f = fail if fail is not None else f
        out[spec.name] = Threshold(warn=min(w, f), fail=f)
    return out


def _reasons(rejected_rows: pd.DataFrame, table: str) -> list[Reason]:
    """Return the top reject reasons of ``table``: rows rejected per (rule, column), most first."""
    if rejected_rows is None or not len(rejected_rows):
        return []
    sub = rejected_rows[rejected_rows["table_name"] == table]
    if not len(sub):
        return []
    sub = sub.assign(
        col_=sub["column_name"].astype("string").fillna(""),
        row_=sub["source_file"].astype("string").fillna("")
        + ":"
        + sub["source_line"].astype("string").fillna(""),
    )
    grouped = (
        sub.groupby(["rule", "col_"], sort=True)
        .agg(rows=("row_", "nunique"), example=("value", "first"))
        .reset_index()
        .sort_values(["rows", "rule", "col_"], ascending=[False, True, True], kind="stable")
    )
    return [
        Reason(
            str(r.rule),
            str(r.col_) or None,
            int(r.rows),
            None if pd.isna(r.example) else str(r.example)[:80],
        )
        for r in grouped.head(TOP_REASONS).itertuples()
    ]


def assess(
    counts: Mapping[str, Any],
    rejected_rows: pd.DataFrame,
    thresholds: Mapping[str, Threshold],
    absent_tables: Mapping[str, str] | None = None,
) -> Completeness:
    """Return the completeness of each table from its counts (``read``/``loaded``/``rejected``)."""
    absent_tables = absent_tables or {}
    tables: dict[str, TableCompleteness] = {}
    for spec in contract.TABLES:
        name = spec.name
        c = counts.get(name)
        read = int(getattr(c, "read", 0) or 0)
        loaded = int(getattr(c, "loaded", 0) or 0)
        rejected = int(getattr(c, "rejected", 0) or 0)
        th = thresholds.get(name, Threshold())
        share = rejected / read if read else None
        level: Level
        if name in absent_tables:
            level = "absent"
        elif share is None:
            level = "empty"
        elif share > th.fail:
            level = "fail"
        elif share > th.warn:
            level = "warn"
        else:
            level = "ok"
        tables[name] = TableCompleteness(
            name,
            read,
            loaded,
            rejected,
            share,
            th.warn,
            th.fail,
            level,
            _reasons(rejected_rows, name) if rejected else [],
            absent_tables.get(name),
        )
    return Completeness(tables)


def failure(result: Completeness) -> CompletenessFailed:
    """Return the user-facing error for a run whose completeness fails."""
    failing = result.flagged("fail")
    first = failing[0]
    return CompletenessFailed(
        "too much of the source was rejected, core was not changed and no report was built: "
        + "; ".join(f"{t.sentence()} (limit {t.fail_above:.0%})" for t in failing),
        hint=(
            "see validation.md for every rejected row and fix the source; if this extract is partial on "
            f"purpose, raise the limit (profile completeness.fail, or --max-rejected-share; {first.table} "
            f"needs at least {first.share:.2f})"
        ),
    )


def check_run(outcome: Any, source: Any, params: Any, summary: Any) -> Completeness:
    """Return a run's completeness (also recorded in ``summary``); warn or raise above the shares.

    ``outcome`` is the run's ValidationOutcome (counts, rejected rows), ``source`` its
    SourceData (profile, absent tables), ``params`` its PipelineParams (CLI limits) and
    ``summary`` its RunSummary (completeness and warnings are written there). On
    failure ``validation.md`` is written first, so the rejected rows can be read, and
    nothing is loaded.
    """
    from salesbi.validation import report as vreport

    thresholds = resolve_thresholds(
        getattr(source, "profile", None),
        warn=params.warn_rejected_share,
        fail=params.max_rejected_share,
    )
    result = assess(
        outcome.counts,
        outcome.rejected_rows,
        thresholds,
        getattr(source, "absent_tables", None),
    )
    summary.completeness = result.as_dict()
    for t in result.flagged("warn"):
        summary.warn("ingest", f"{t.sentence()} (warn above {t.warn_above:.0%})", kind="completeness")
    if result.level == "fail":
        out = params.out_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.md").write_text(vreport.render_validation_summary(outcome), encoding="utf-8")
        summary.outputs["validation_summary"] = str((out / "validation.md").resolve())
        summary.tables = dict(outcome.counts)
        raise failure(result)
    return result


def completeness_frame(result: Completeness | None, engine: Any = None) -> pd.DataFrame | None:
    """Return the completeness rows insights open with: this run's ``result``, else the last loading run's."""
    if result is None and engine is not None:
        from salesbi.runlog import last_completeness

        result = from_dict(last_completeness(engine))
    return result.frame() if result is not None else None
