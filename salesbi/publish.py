"""Publishing the report layer: ``rpt`` tables, Parquet folder, models and files switch together.

Readers (Power BI, the API) never see a half-written table: on PostgreSQL and
SQLite the replace is one transaction, so readers keep seeing the previous
version until it commits; on SQL Server the same transaction under
``READ_COMMITTED_SNAPSHOT`` (set by ``sql_server/00_database.sql``) gives the
same guarantee.

A publish is all or nothing, even if the process is killed at any instant:

1. everything that can fail is prepared aside first: the new Parquet set in
   ``<folder>.new`` (a copy of the current folder with this run's tables
   replaced), the models in ``<models_dir>.new``, and each file (``insights.md``)
   beside its final name;
2. a journal ``<folder>.publish.json`` names the run and every staged path
   (written atomically);
3. one warehouse transaction replaces the ``rpt`` tables, stores the
   ``ml.model_runs`` rows and inserts this attempt into ``audit.publishes``: that
   row is the commit point;
4. renames move the staged folder, models and files into place; the journal is
   removed last.

:func:`recover` (called by every run once connected, and by :func:`publish`
itself) reads a journal left by an interrupted publish and asks the warehouse
whether that attempt's ``audit.publishes`` row exists: if so it completes the
renames (roll forward), otherwise it deletes what was staged (roll back). So
after recovery the published state is entirely the old one or entirely the new
one, never a mix, and a run that fails before the commit leaves ``rpt`` as it
was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.fact_spill import SpilledTable
from salesbi.modelrun import MODEL_RUNS, ModelRun
from salesbi.modelstore import CARD, KEEP, Storable, save, versions
from salesbi.schema import Table
from salesbi.types import conform, to_arrow
from salesbi.warehouse.audit_tables import PUBLISHES
from salesbi.warehouse.load import bulk_insert

log = logging.getLogger(__name__)

#: the named instants of a publish, in order; a test hook can stop the process at each one
CHECKPOINTS: tuple[str, ...] = (
    "staged",  # Parquet, models and files written aside, journal not yet written
    "journal_written",
    "first_table_replaced",  # inside the warehouse transaction
    "before_commit",  # every table, model run and the publish row written, not committed
    "committed",
    "old_folder_moved",  # <folder> renamed to <folder>.old
    "new_folder_moved",  # <folder>.new renamed to <folder>
    "models_moved",
    "files_moved",
)

_checkpoint_hook: Callable[[str], None] | None = None


def set_checkpoint_hook(hook: Callable[[str], None] | None) -> None:
    """Install ``hook(name)``, called at each of :data:`CHECKPOINTS` (fault injection); None removes it."""
    global _checkpoint_hook
    _checkpoint_hook = hook


def _checkpoint(name: str) -> None:
    if _checkpoint_hook is not None:
        _checkpoint_hook(name)


# ---------------------------------------------------------------------------------------------
# warehouse side


def _matches(conn: sa.Connection, table: sa.Table) -> bool:
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return False
    existing = [c["name"] for c in inspector.get_columns(table.name, schema=table.schema)]
    return existing == [c.name for c in table.columns]


def _emptied(conn: sa.Connection, table: sa.Table) -> None:
    """Empty ``table``, or re-create it when its stored columns differ from its definition."""
    if _matches(conn, table):
        conn.execute(table.delete())
    else:
        table.drop(conn, checkfirst=True)
        table.create(conn)


def _replace_in(
    conn: sa.Connection,
    metadata: sa.MetaData,
    frames: Mapping[str, pd.DataFrame],
    definitions: Sequence[Table],
    spilled: Sequence[SpilledTable] = (),
) -> dict[str, int]:
    written: dict[str, int] = {}
    files = {s.name: s for s in spilled}
    for spec in definitions:
        if spec.name not in frames and spec.name not in files:
            continue
        table = metadata.tables[spec.qualified_name]
        _emptied(conn, table)
        if spec.name in frames:
            written[spec.name] = bulk_insert(conn, table, conform(frames[spec.name], spec))
        else:  # from its Parquet file, a batch of lines at a time, in the frame's order
            written[spec.name] = sum(bulk_insert(conn, table, part) for part in files[spec.name].batches())
        if len(written) == 1:
            _checkpoint("first_table_replaced")
    return written


@dataclass(frozen=True)
class InDatabase:
    """An ``rpt`` table that the warehouse fills itself inside the publish transaction (push-down).

    ``fill(conn, table)`` inserts the rows into the emptied ``table`` (``INSERT … SELECT``) and
    returns their count; ``export(conn, table, path)`` writes its Parquet file from the rows on
    the same connection (so before the commit, in bounded batches). Its rows never need to be
    a frame of the flow.
    """

    spec: Table
    fill: Callable[[sa.Connection, sa.Table], int]
    export: Callable[[sa.Connection, sa.Table, Path], object]


def _fill_in(
    conn: sa.Connection, metadata: sa.MetaData, in_database: Sequence[InDatabase], staged: Path
) -> dict[str, int]:
    """Fill each :class:`InDatabase` table and write its Parquet file into the staged folder."""
    written: dict[str, int] = {}
    for item in in_database:
        table = metadata.tables[item.spec.qualified_name]
        _emptied(conn, table)
        written[item.spec.name] = item.fill(conn, table)
        tmp = staged / f"{item.spec.name}.parquet.tmp"
        item.export(conn, table, tmp)
        os.replace(tmp, staged / f"{item.spec.name}.parquet")  # over the carried-over link, if any
    return written


def replace_tables(
    engine: Engine,
    metadata: sa.MetaData,
    frames: Mapping[str, pd.DataFrame],
    definitions: Sequence[Table],
) -> dict[str, int]:
    """Replace each defined table that has a frame, all in one transaction; return rows written per table.

    A table whose stored columns differ from its definition (the code was
    upgraded) is dropped and re-created inside the same transaction. This is
    the warehouse half only; :func:`publish` also switches the Parquet folder.
    """
    with engine.begin() as conn:
        return _replace_in(conn, metadata, frames, definitions)


def _model_runs_in(conn: sa.Connection, metadata: sa.MetaData, run_id: str, runs: Sequence[ModelRun]) -> int:
    from salesbi.runlog import utcnow

    table = metadata.tables[MODEL_RUNS.qualified_name]
    created = utcnow()
    rows = pd.DataFrame([r.as_row(run_id, created) for r in runs], columns=MODEL_RUNS.column_names)
    conn.execute(table.delete().where(table.c.run_id == run_id))
    if len(rows):
        bulk_insert(conn, table, conform(rows, MODEL_RUNS))
    return len(rows)


def record_model_runs(engine: Engine, metadata: sa.MetaData, run_id: str, runs: Sequence[ModelRun]) -> int:
    """Store one ``ml.model_runs`` row per model (replacing this run's earlier rows); return the count."""
    with engine.begin() as conn:
        return _model_runs_in(conn, metadata, run_id, runs)


def _publishes_table() -> sa.Table:
    from salesbi.warehouse.ddl import add_plain_table

    return add_plain_table(sa.MetaData(), PUBLISHES)


def is_published(engine: Engine, publish_id: str) -> bool:
    """Return whether ``audit.publishes`` holds ``publish_id``, i.e. that publish's transaction committed."""
    table = _publishes_table()
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name, schema=table.schema):
            return False
        query = sa.select(table.c.publish_id).where(table.c.publish_id == publish_id)
        found = conn.execute(query).first()
    return found is not None


def _mark_published(conn: sa.Connection, publish_id: str, run_id: str) -> None:
    from salesbi.runlog import utcnow

    table = _publishes_table()
    table.create(conn, checkfirst=True)
    conn.execute(table.insert().values(publish_id=publish_id, run_id=run_id, published_at=utcnow()))


# ---------------------------------------------------------------------------------------------
# file side: staging, journal, roll forward / back


def stage_parquet(
    frames: Mapping[str, pd.DataFrame],
    definitions: Sequence[Table],
    folder: Path,
    spilled: Sequence[SpilledTable] = (),
) -> Path:
    """Write the new Parquet set beside ``folder`` (``<folder>.new``) and return that staging folder.

    Each table with a frame in this run is written once, straight into the staging folder; each
    spilled table's file (:mod:`salesbi.fact_spill`: the schema, rows and values this function
    would write, in row groups of the report step's blocks) is put there as it is (a hard link
    where the filesystem allows, else a copy);
    every other entry of the current folder is carried over (a hard link where the filesystem
    allows: published files are only ever replaced, never rewritten in place), so tables without
    a frame keep their previous file. Nothing a reader sees changes yet.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(folder.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    files = {s.name: s for s in spilled if s.name not in frames}
    rewritten = {f"{spec.name}.parquet" for spec in definitions if spec.name in frames or spec.name in files}
    if folder.exists():
        for entry in sorted(folder.iterdir()):
            if entry.name not in rewritten:
                _carry_over(entry, staging / entry.name)
    for spec in definitions:
        if spec.name in frames:
            tmp = staging / f"{spec.name}.parquet.tmp"
            write_parquet(frames[spec.name], spec, tmp)
            os.replace(tmp, staging / f"{spec.name}.parquet")
        elif spec.name in files:
            tmp = staging / f"{spec.name}.parquet.tmp"
            _link_or_copy(str(files[spec.name].path), str(tmp))
            os.replace(tmp, staging / f"{spec.name}.parquet")
    return staging


#: rows per Parquet row group: pyarrow's default (``pq.write_table``), so the files keep their layout
PARQUET_ROW_GROUP = 1024 * 1024


def write_parquet(frame: pd.DataFrame, spec: Table, path: Path, row_group: int = PARQUET_ROW_GROUP) -> Path:
    """Write ``frame`` as ``spec``'s Parquet file at ``path`` (zstd) and return ``path``.

    Row groups of ``row_group`` rows, each converted to Arrow from its slice of the frame and
    written before the next: no Arrow copy of the whole frame (which grows with the rows: +169 MB
    for the fact of 3M order lines). The file is byte for byte the one ``pq.write_table`` of the
    whole frame writes (same schema and metadata, same row groups).
    """
    frame = conform(frame, spec)
    if len(frame) <= row_group:
        pq.write_table(to_arrow(frame, spec), path, compression="zstd")
        return path
    first = to_arrow(frame.iloc[:row_group], spec)
    with pq.ParquetWriter(path, first.schema, compression="zstd") as writer:
        writer.write_table(first, row_group_size=row_group)
        del first
        for start in range(row_group, len(frame), row_group):
            writer.write_table(
                to_arrow(frame.iloc[start : start + row_group], spec), row_group_size=row_group
            )
    return path


def _carry_over(source: Path, target: Path) -> None:
    """Put ``source`` (a file or folder of the published set) at ``target``: hard link, else copy."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: a copy
        shutil.copy2(source, target)
    return target


def swap_in(staging: Path, folder: Path) -> Path:
    """Replace ``folder`` by ``staging`` with two renames; return ``folder``.

    Not crash-safe on its own (a kill between the renames leaves no ``folder``):
    :func:`publish` journals it so that :func:`recover` can finish it.
    """
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
        _checkpoint("old_folder_moved")
    os.replace(staging, folder)
    _checkpoint("new_folder_moved")
    if old.exists():
        shutil.rmtree(old)
    return folder


def export_parquet(frames: Mapping[str, pd.DataFrame], definitions: Sequence[Table], folder: Path) -> Path:
    """Write ``<folder>/<table>.parquet`` for every defined table with a frame, swapping the folder in.

    Tables without a frame in this run keep their previous file. Returns ``folder``.
    """
    return swap_in(stage_parquet(frames, definitions, folder), Path(folder))


def journal_path(folder: Path) -> Path:
    """Return the journal file of publishes into ``folder``: ``<folder>.publish.json``."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".publish.json")


@dataclass
class Journal:
    """What an interrupted publish needs to be finished or undone (stored as JSON)."""

    run_id: str
    publish_id: str  # this attempt's row in audit.publishes (a retried run publishes again)
    warehouse: str  # URL with the password masked
    folder: str
    staged: str
    old: str
    models_dir: str | None = None
    models_staged: str | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # (staged, final)
    phase: str = "staged"  # staged | committed


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_journal(path: Path, journal: Journal) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(journal), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_journal(folder: Path) -> Journal | None:
    """Return the journal of an interrupted publish into ``folder``, or None when there is none."""
    path = journal_path(folder)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["files"] = [tuple(pair) for pair in data.get("files", [])]
        return Journal(**data)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the publish journal is unreadable ({exc})",
            file=path,
            hint="compare the rpt tables with the Parquet folder, then delete the journal and re-run",
        ) from exc


def _rmtree(path: str | Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


MODELS_STAGING = ".publish-staging"


def _stage_models(models: Mapping[str, Storable], models_dir: Path) -> Path:
    # inside the store, so the final renames never cross a filesystem (the store is often its own volume);
    # the store's readers list only <name>/<version>/ folders holding a model card, never this one
    staging = models_dir / MODELS_STAGING
    _rmtree(staging)
    staging.mkdir(parents=True)
    for model in models.values():
        save(model, staging, keep=KEEP)
    return staging


def _move_models(staging: Path, models_dir: Path) -> None:
    if not staging.is_dir():
        return
    for name_dir in sorted(p for p in staging.iterdir() if p.is_dir()):
        root = models_dir / name_dir.name
        root.mkdir(parents=True, exist_ok=True)
        for version in sorted(p for p in name_dir.iterdir() if (p / CARD).is_file()):
            target = root / version.name
            if (target / CARD).is_file():
                continue  # the same version (same content) is already in place
            _rmtree(target)
            os.replace(version, target)
        for old in versions(models_dir, name_dir.name)[:-KEEP]:
            _rmtree(root / old)


def _roll_forward(journal: Journal) -> None:
    """Finish the renames of a committed publish (each step is safe to repeat)."""
    folder, staged, old = Path(journal.folder), Path(journal.staged), Path(journal.old)
    if staged.is_dir():
        if folder.exists():
            _rmtree(old)
            os.replace(folder, old)
            _checkpoint("old_folder_moved")
        os.replace(staged, folder)
        _checkpoint("new_folder_moved")
    if journal.models_staged and journal.models_dir:
        _move_models(Path(journal.models_staged), Path(journal.models_dir))
        _checkpoint("models_moved")
    for staged_file, final in journal.files:
        if Path(staged_file).exists():
            os.replace(staged_file, final)
    _checkpoint("files_moved")
    _rmtree(old)
    _rmtree(journal.models_staged)
    path = journal_path(folder)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _roll_back(journal: Journal) -> None:
    """Delete what an uncommitted publish staged; the published state stays the old one."""
    folder, old = Path(journal.folder), Path(journal.old)
    if not folder.exists() and old.is_dir():
        os.replace(old, folder)  # never happens before the commit, but never leave no folder
    _rmtree(journal.staged)
    _rmtree(journal.models_staged)
    for staged_file, _final in journal.files:
        Path(staged_file).unlink(missing_ok=True)
    path = journal_path(folder)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _warehouse_name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _legacy_leftovers(folder: Path) -> str | None:
    """Repair what a kill between the two renames of an unjournaled swap left (older versions)."""
    if folder.exists():
        return None
    staged = folder.with_name(folder.name + ".new")
    old = folder.with_name(folder.name + ".old")
    if old.is_dir():
        # the unjournaled swap renamed the folder aside only after its warehouse commit
        if staged.is_dir():
            os.replace(staged, folder)
            _rmtree(old)
        else:
            os.replace(old, folder)
        log.warning("publish recovery: restored %s from an interrupted folder swap", folder)
        return "completed"
    return None


def recover(engine: Engine, folder: Path) -> str | None:
    """Finish or undo an interrupted publish into ``folder``.

    Returns ``"completed"`` (the publish had committed: its renames are finished),
    ``"rolled back"`` (it had not: what it staged is deleted) or None (nothing
    to do). Raises ConfigurationError when the journal names another warehouse.
    """
    folder = Path(folder).resolve()
    journal = read_journal(folder)
    if journal is None:
        return _legacy_leftovers(folder)
    here = _warehouse_name(engine)
    if journal.warehouse != here:
        raise ConfigurationError(
            f"an interrupted publish of run {journal.run_id} into {journal.warehouse} is pending, "
            f"but this run uses {here}",
            file=journal_path(folder),
            hint="run once against that warehouse to finish it, or use another output folder",
        )
    if journal.phase == "committed" or is_published(engine, journal.publish_id):
        _roll_forward(journal)
        log.warning("publish recovery: completed the interrupted publish of run %s", journal.run_id)
        return "completed"
    _roll_back(journal)
    log.warning("publish recovery: rolled back the interrupted publish of run %s", journal.run_id)
    return "rolled back"


@dataclass
class Published:
    """What :func:`publish` switched in."""

    tables: dict[str, int]  # rows written per rpt table
    parquet: Path
    models: dict[str, Path]  # model name → version folder
    files: list[Path]


def publish(
    engine: Engine,
    metadata: sa.MetaData,
    *,
    run_id: str,
    frames: Mapping[str, pd.DataFrame],
    definitions: Sequence[Table],
    folder: Path,
    model_runs: Sequence[ModelRun] = (),
    models: Mapping[str, Storable] | None = None,
    models_dir: Path | None = None,
    files: Mapping[Path, str] | None = None,
    in_database: Sequence[InDatabase] = (),
    spilled: Sequence[SpilledTable] = (),
) -> Published:
    """Switch in this run's rpt tables, Parquet files, model runs, models and text files, all or nothing.

    ``in_database``: tables the warehouse fills itself in the same transaction (their Parquet
    files written from them before the commit, into the staged folder). ``spilled``: tables
    held as their Parquet file instead of a frame (:mod:`salesbi.fact_spill`): the file is
    published as it is and the rpt table filled from it in batches. Returns what was
    published. Any failure before the warehouse commit rolls
    everything back (the previous published state stays); a kill at any instant
    is repaired by :func:`recover`. Tables without a frame keep their previous
    Parquet file and rows.
    """
    folder = Path(folder).resolve()
    recover(engine, folder)  # an earlier interrupted publish is finished (or undone) first
    models = models or {}
    if models and models_dir is None:
        raise ConfigurationError("publishing models needs a models folder")
    _rmtree(folder.with_name(folder.name + ".old"))
    journal = Journal(
        run_id=run_id,
        publish_id=f"{run_id}:{uuid.uuid4().hex[:12]}",
        warehouse=_warehouse_name(engine),
        folder=str(folder),
        staged=str(folder.with_name(folder.name + ".new")),
        old=str(folder.with_name(folder.name + ".old")),
    )
    committing = False
    try:
        stage_parquet(frames, definitions, folder, spilled)
        if models and models_dir is not None:
            models_dir = Path(models_dir).resolve()
            journal.models_dir = str(models_dir)
            journal.models_staged = str(_stage_models(models, models_dir))
        for final, text in (files or {}).items():
            final = Path(final).resolve()
            final.parent.mkdir(parents=True, exist_ok=True)
            staged_file = final.with_name(final.name + ".new")
            staged_file.write_text(text, encoding="utf-8")
            journal.files.append((str(staged_file), str(final)))
        _checkpoint("staged")
        _write_journal(journal_path(folder), journal)
        _checkpoint("journal_written")
        with engine.begin() as conn:
            written = _replace_in(conn, metadata, frames, definitions, spilled)
            written.update(_fill_in(conn, metadata, in_database, Path(journal.staged)))
            if model_runs:
                _model_runs_in(conn, metadata, run_id, model_runs)
            _mark_published(conn, journal.publish_id, run_id)
            _checkpoint("before_commit")
            committing = True
    except BaseException:
        if committing:
            _abandon(engine, journal)  # the commit itself failed: did it happen?
        else:
            _roll_back(journal)
        raise
    _checkpoint("committed")
    journal.phase = "committed"
    try:
        _write_journal(journal_path(folder), journal)
        _roll_forward(journal)
    except OSError as exc:
        raise SalesBIError(
            f"run {run_id} is published in the warehouse but its files could not be switched in ({exc})",
            file=journal_path(folder),
            hint="fix the cause (disk space, permissions); the next run or `salesbi report` finishes it",
        ) from exc
    saved = {name: Path(journal.models_dir or "") / m.model_name / m.version for name, m in models.items()}
    return Published(tables=written, parquet=folder, models=saved, files=[Path(f) for _s, f in journal.files])


def _abandon(engine: Engine, journal: Journal) -> None:
    """After a failed commit: roll back unless the commit happened after all (then the journal stays)."""
    try:
        committed = is_published(engine, journal.publish_id)
    except sa.exc.SQLAlchemyError:  # cannot tell: keep the journal for recover()
        log.error("publish of run %s failed; the warehouse cannot say if it committed", journal.run_id)
        return
    if committed:
        log.error("publish of run %s committed before failing; recovery will finish it", journal.run_id)
        return
    _roll_back(journal)
