"""The record of a run: ``audit.runs``/``audit.run_tables`` rows and ``<out>/run_summary.json``.

DESIGN.md fixes the summary's shape::

    {"run_id", "status", "tables": {name: {"read", "loaded", "rejected", "warehouse_rows"}},
     "timings": {step: seconds}, "outputs": {...}}

Invariants, checked before the summary is written: read = loaded + rejected + unchanged per table,
and for a table read from its own files lines = loaded + rejected + unchanged + skipped (``lines``:
physical lines after the header; ``skipped``: blank/padding lines and continuation lines of records
spanning lines; ``unchanged``: rows of a snapshot drop identical to core, see salesbi.incremental).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.warehouse.ddl import warehouse_metadata


def new_run_id() -> str:
    """Return a new run id: UTC timestamp plus a short random suffix, sortable by start time."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def utcnow() -> datetime:
    """Return the current UTC time without tzinfo (the warehouse stores naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class TableCounts:
    """Rows of one table in one run."""

    read: int = 0
    loaded: int = 0
    rejected: int = 0
    warehouse_rows: int | None = None
    lines: int | None = None  # physical data lines of the table's files; None for derived tables
    skipped: int = 0
    #: rows of a snapshot drop identical to what core holds (same content hash): neither validated
    #: nor loaded again (salesbi.incremental)
    unchanged: int = 0

    def check(self, table: str) -> None:
        """Raise AssertionError naming the table when rows or physical lines do not add up."""
        if self.read != self.loaded + self.rejected + self.unchanged:
            raise AssertionError(
                f"{table}: read {self.read} != loaded {self.loaded} + rejected {self.rejected} + "
                f"unchanged {self.unchanged}; rows were lost — this is a bug, please report it"
            )
        accounted = self.loaded + self.rejected + self.unchanged + self.skipped
        if self.lines is not None and self.lines != accounted:
            raise AssertionError(
                f"{table}: {self.lines} lines != loaded {self.loaded} + rejected {self.rejected} + "
                f"unchanged {self.unchanged} + skipped {self.skipped}; lines were lost — this is a bug, "
                "please report it"
            )


@dataclass
class RunSummary:
    """What a run did; serialised to ``run_summary.json`` and ``audit.runs.summary_json``."""

    run_id: str
    flow: str
    status: str = "running"
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    failed_step: str | None = None
    error: str | None = None
    source: str | None = None
    profile: str | None = None
    warehouse: str | None = None
    tables: dict[str, TableCounts] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    completeness: dict[str, Any] = field(default_factory=dict)  # salesbi.completeness, as_dict()

    def warn(self, step: str, what: str, *, kind: str = "warning") -> None:
        """Record that ``step`` was skipped, lost data or fell back (``kind``), and why (``what``).

        A run with any warning ends ``succeeded_with_warnings``, never ``succeeded``.
        """
        self.warnings.append({"step": step, "kind": kind, "what": what})

    def final_status(self) -> str:
        """Return a finished run's status: ``succeeded``, or ``succeeded_with_warnings`` if any warning."""
        return "succeeded_with_warnings" if self.warnings else "succeeded"

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON document (DESIGN.md shape, plus context fields)."""
        return {
            "run_id": self.run_id,
            "flow": self.flow,
            "status": self.status,
            "started_at": self.started_at.isoformat() + "Z",
            "finished_at": self.finished_at.isoformat() + "Z" if self.finished_at else None,
            "failed_step": self.failed_step,
            "error": self.error,
            "source": self.source,
            "profile": self.profile,
            "warehouse": self.warehouse,
            "tables": {
                name: {
                    "read": c.read,
                    "loaded": c.loaded,
                    "rejected": c.rejected,
                    "warehouse_rows": c.warehouse_rows,
                    "lines": c.lines,
                    "skipped": c.skipped,
                    "unchanged": c.unchanged,
                }
                for name, c in self.tables.items()
            },
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "outputs": self.outputs,
            "kpis": self.kpis,
            "warnings": self.warnings,
            "completeness": self.completeness,
            "notes": self.notes,
        }

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time the enclosed block into ``timings[step]``; on error, record ``step`` as the failed step."""
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            if self.failed_step is None:
                self.failed_step = step
            raise
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start

    def write_json(self, out_dir: Path) -> Path:
        """Write ``<out_dir>/run_summary.json`` atomically and return its path."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "run_summary.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def _audit_tables() -> tuple[sa.Table, sa.Table]:
    md = warehouse_metadata()
    return md.tables["audit.runs"], md.tables["audit.run_tables"]


def this_process() -> dict[str, Any]:
    """Return what identifies the running process later: pid, hostname and its start time (epoch s)."""
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "host": socket.gethostname(), "process_started": round(me.create_time(), 3)}


def process_gone(owner: dict[str, Any]) -> bool:
    """Return True when ``owner`` (see :func:`this_process`) ran on this host and no longer runs.

    A process on another host cannot be checked from here: it counts as alive.
    A reused pid is told apart by its start time.
    """
    import psutil

    if owner.get("host") != socket.gethostname() or not owner.get("pid"):
        return False
    try:
        proc = psutil.Process(int(owner["pid"]))
        started = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.AccessDenied:
        return False
    wanted = owner.get("process_started")
    return wanted is not None and abs(started - float(wanted)) > 1.0


def record_start(engine: Engine, summary: RunSummary) -> None:
    """Insert the ``audit.runs`` row of a starting run (status running), with the owning process."""
    runs, _ = _audit_tables()
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                run_id=summary.run_id,
                flow=summary.flow,
                status="running",
                started_at=summary.started_at,
                source=summary.source,
                profile=summary.profile,
                warehouse=summary.warehouse,
                summary_json=json.dumps({"process": this_process()}),
            )
        )


def mark_crashed(engine: Engine) -> list[str]:
    """Mark ``crashed`` every ``running`` run whose process (same host) is gone; return their run ids."""
    runs, _ = _audit_tables()
    crashed: list[str] = []
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.summary_json).where(runs.c.status == "running")
        ).fetchall()
        for run_id, doc in rows:
            try:
                owner = (json.loads(doc) if doc else {}).get("process") or {}
            except (TypeError, ValueError):
                owner = {}
            if process_gone(owner):
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id)
                    .where(runs.c.status == "running")
                    .values(
                        status="crashed",
                        finished_at=utcnow(),
                        error=f"process {owner.get('pid')} on {owner.get('host')} ended without "
                        "finishing the run (killed, or the machine stopped)",
                    )
                )
                crashed.append(str(run_id))
    return crashed


def list_runs(engine: Engine, last: int = 10) -> list[dict[str, Any]]:
    """Return the ``last`` runs, newest first: run_id, flow, status, started/finished, failed_step, error."""
    runs, _ = _audit_tables()
    cols = [
        runs.c[n] for n in ("run_id", "flow", "status", "started_at", "finished_at", "failed_step", "error")
    ]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(last)
        ).fetchall()
    return [dict(row._mapping) for row in rows]


def record_end(engine: Engine, summary: RunSummary) -> None:
    """Update the run's ``audit.runs`` row with its end state and write its ``audit.run_tables`` rows."""
    runs, run_tables = _audit_tables()
    with engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == summary.run_id)
            .values(
                status=summary.status,
                finished_at=summary.finished_at,
                failed_step=summary.failed_step,
                error=summary.error,
                summary_json=json.dumps(summary.as_dict(), default=str),
            )
        )
        conn.execute(run_tables.delete().where(run_tables.c.run_id == summary.run_id))
        rows = [
            {
                "run_id": summary.run_id,
                "table_name": name,
                "read": c.read,
                "loaded": c.loaded,
                "rejected": c.rejected,
                "unchanged": c.unchanged,
                "warehouse_rows": c.warehouse_rows,
            }
            for name, c in summary.tables.items()
        ]
        if rows:
            conn.execute(run_tables.insert(), rows)


def widen_run_status(engine: Engine) -> None:
    """Widen ``audit.runs.status`` of a warehouse created when it was 16 characters (no-op otherwise).

    ``succeeded_with_warnings`` needs 23; SQLite does not enforce lengths, PostgreSQL and SQL Server do.
    """
    from salesbi.types import sql_type
    from salesbi.warehouse.audit_tables import RUNS

    if engine.dialect.name == "sqlite":
        return
    column = next(c for c in RUNS.columns if c.name == "status")
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table("runs", schema="audit"):
            return
        found = next(c for c in inspector.get_columns("runs", schema="audit") if c["name"] == "status")
        length = getattr(found["type"], "length", None)
        if length is None or length >= (column.length or 0):
            return
        quote = conn.dialect.identifier_preparer.quote
        type_sql = sql_type(column).compile(dialect=conn.dialect)
        table = f"{quote('audit')}.{quote('runs')}"
        if conn.dialect.name == "mssql":
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN status {type_sql} NOT NULL")
        else:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN status TYPE {type_sql}")


def _last_ingest(column: str) -> sa.Select[Any]:
    """Return the query of ``audit.runs.<column>`` of the newest finished run that read tables."""
    runs, run_tables = _audit_tables()
    return (
        sa.select(runs.c[column])
        .where(runs.c.status.in_(("succeeded", "succeeded_with_warnings")))
        .where(sa.exists().where(run_tables.c.run_id == runs.c.run_id))
        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        .limit(1)
    )


def last_completeness(engine: Engine) -> dict[str, Any]:
    """Return the ``completeness`` of the last finished run that ingested (``{}`` when none)."""
    with engine.connect() as conn:
        text = conn.execute(_last_ingest("summary_json")).scalar_one_or_none()
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    found = doc.get("completeness") if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else {}


def last_good_counts(engine: Engine, flow: str = "ingest") -> dict[str, int]:
    """Return per table the rows loaded into core by the last succeeded run that read tables."""
    _, run_tables = _audit_tables()
    with engine.connect() as conn:
        last = conn.execute(_last_ingest("run_id")).scalar_one_or_none()
        if last is None:
            return {}
        rows = conn.execute(
            sa.select(run_tables.c.table_name, run_tables.c.read).where(run_tables.c.run_id == last)
        ).fetchall()
    return {name: int(n) for name, n in rows}
