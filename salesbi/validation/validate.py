"""The validation step between staging and core: GX suites, reader faults, references, quarantine.

``validate_staged`` returns which rows may go to core, the quarantined rows
(``audit.rejected_rows``), warnings and per-table counts with
read = loaded + rejected. Table-level failures raise ``ValidationFailed``.

Order of work:

1. table-level rules (schema, zero rows, shrink) — raise before anything else;
2. per table, Great Expectations evaluates the generated suite (pandas datasource,
   ``COMPLETE`` result format → failing row positions);
3. cells the reader could not type/map (``faults``) become issues with the fault's rule;
4. duplicate keys: conflicting copies are all rejected (``duplicate_key``); exact copies
   keep the first and quarantine the rest (``duplicate_identical``); keys equal only once case,
   spaces and Unicode form are ignored are all rejected (``key_collision``, see ``limits``);
5. foreign keys and the cascade, in contract load order (see ``references``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

from salesbi import contract
from salesbi.errors import ValidationFailed
from salesbi.reading.csvfile import BROKEN_RULES
from salesbi.reading.reader import empty_faults
from salesbi.reading.spilled import SpilledFrame, SpilledRows
from salesbi.runlog import TableCounts
from salesbi.schema import SOURCE_FILE, SOURCE_LINE, Table
from salesbi.validation.blocks import (
    BLOCKED_TABLES,
    add_duplicates,
    block_bounds,
    cross_block_duplicates,
    merge_results,
)
from salesbi.validation.config import ValidationConfig, load_config
from salesbi.validation.issues import (
    empty_issues,
    empty_rejected_rows,
    issues_at,
    to_rejected_rows,
)
from salesbi.validation.keycodes import KeyDictionaries
from salesbi.validation.limits import key_collisions
from salesbi.validation.references import check_references
from salesbi.validation.returns import RETURN_COLUMNS, return_line_issues
from salesbi.validation.rules import EARLIEST_DATE, LATEST_DATE, READER_RULES, derived_columns
from salesbi.validation.suites import suite_dict
from salesbi.validation.table_checks import check_counts, check_schema

LINE_COLUMN = "<line>"  # groups line faults (no column) in _fault_issues

#: a table's accepted rows: a frame, or a spilled table without its rejected rows
Accepted: TypeAlias = pd.DataFrame | SpilledRows

__all__ = ["StagedTable", "StagedTableData", "TableCounts", "ValidationOutcome", "validate_staged"]

#: hooks called with a label at points of the validation while its temporaries are alive (``gx
#: <table>`` inside each GX block, ``checks`` after the whole-table checks, ``validated`` at the
#: end): the tests take a census of the live frames there (``tests/test_stream_ingest.py``)
checkpoints: list[Callable[[str], None]] = []


def _checkpoint(label: str) -> None:
    for hook in checkpoints:
        hook(label)


def shared_key_columns() -> frozenset[tuple[str, str]]:
    """Return the (table, column) pairs whose dictionary a validation run builds once and shares.

    Every table's text key columns: the cross-block duplicate codes, the key-collision folding and
    the references to the table (or from it: the order lines' order ids) all compare them.
    """
    return frozenset(
        (spec.name, k) for spec in contract.TABLES for k in spec.key if spec.column(k).spec.family == "text"
    )


class StagedTable(Protocol):
    """What validation needs from a staged table (``salesbi.reading.reader.SourceTable`` fits)."""

    table: Table
    frame: pd.DataFrame | SpilledFrame
    faults: pd.DataFrame
    files: tuple[Any, ...]


@dataclass
class StagedTableData:
    """A plain StagedTable, for callers (and tests) that build frames themselves."""

    table: Table
    frame: pd.DataFrame
    faults: pd.DataFrame = field(default_factory=empty_faults)  # FAULT_COLUMNS, as the reader's
    files: tuple[Any, ...] = ()


@dataclass
class ValidationOutcome:
    """Result of validation: accepted rows per table, quarantined rows, warnings, counts, GX results."""

    accepted: dict[str, Accepted]  # a spilled table's: SpilledRows
    rejected_rows: pd.DataFrame
    warnings: pd.DataFrame
    counts: dict[str, TableCounts]
    suite_results: dict[str, Any]
    run_id: str = ""
    today: date | None = None
    suite_docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the suites as run


def checked_columns(spec: Table) -> list[str]:
    """Return the columns of ``spec`` the whole-table checks compare: key, references, the returns rule's.

    A spilled table (:class:`~salesbi.reading.spilled.SpilledFrame`) is held by these columns only
    while validation runs; every other check reads it block by block.
    """
    wanted = {*spec.key, *(col for col, _, _ in spec.foreign_keys)}
    if spec.name == "order_items":
        wanted |= set(RETURN_COLUMNS)
    return [c for c in spec.column_names if c in wanted]


def _gx_frame(spec: Table, frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[spec.column_names].reset_index(drop=True)
    for name, (column, op, operand) in derived_columns(spec.name).items():
        if op == "add_days":
            out[name] = out[column] + pd.Timedelta(days=operand)
        else:
            out[name] = out[column] * operand
    return out


def _gx_issues(
    spec: Table, frame: pd.DataFrame, findings: list[Any]
) -> tuple[list[pd.DataFrame], np.ndarray | None]:
    """Return issue frames of the row-level findings and the positions of duplicated keys."""
    parts: list[pd.DataFrame] = []
    duplicates: np.ndarray | None = None
    for f in findings:
        meta = f.meta
        rule = str(meta.get("rule"))
        if f.error:
            raise ValidationFailed(
                f"{spec.name}: Great Expectations could not evaluate rule {rule!r} "
                f"(column {meta.get('column')}): {f.error}",
                hint="fix the rule in expectations/business_rules.yaml, regenerate the suites "
                "(python -m salesbi.validation.suites) and re-run",
            )
        if meta.get("level") == "table":
            if not f.success:
                raise ValidationFailed(
                    f"{spec.name}: table-level rule {rule!r} failed (column {meta.get('column')}, "
                    f"observed {f.observed!r})",
                    hint="the staged frame does not match the contract; core was not changed",
                )
            continue
        if rule == "duplicate_key":
            duplicates = f.positions
            continue
        if f.success or not len(f.positions):
            continue
        parts.append(
            issues_at(
                frame,
                f.positions,
                rule=rule,
                column=meta.get("column"),
                template=str(meta.get("message", rule)),
                other_column=meta.get("other_column"),
            )
        )
    return parts, duplicates


def _suite_issues(
    runner: Any,
    spec: Table,
    frame: pd.DataFrame | SpilledFrame,
    doc: dict[str, Any],
    parameters: Mapping[str, Any],
    block_rows: int | None,
    keys: pd.DataFrame | None = None,
    on_block: Callable[[int, pd.DataFrame], None] | None = None,
    dictionaries: KeyDictionaries | None = None,
) -> tuple[Any, list[pd.DataFrame], np.ndarray | None]:
    """Return GX's result for ``frame``, its row issues and the duplicated-key positions, block by block.

    Each block of at most ``block_rows`` rows is validated alone (its GX copy and temporaries
    freed before the next); positions are shifted to the whole frame's, and keys repeated in two
    blocks are added to the duplicates (see :mod:`salesbi.validation.blocks`). A
    :class:`~salesbi.reading.spilled.SpilledFrame` is read from its file a block at a time; its
    key columns ``keys`` (the whole table's) find the keys repeated across blocks, and
    ``on_block(start, block)`` sees each block as it is read. ``dictionaries``: the run's shared
    key dictionaries (the cross-block codes read them).
    """
    if spec.name not in BLOCKED_TABLES:
        block_rows = None
    bounds = block_bounds(len(frame), block_rows)
    results: list[tuple[int, Any]] = []
    parts: list[pd.DataFrame] = []
    dup_parts: list[np.ndarray] = []
    dup_index: int | None = None
    for start, block in _blocks(frame, bounds):
        if on_block is not None:
            on_block(start, block)
        gx_frame = _gx_frame(spec, block)
        del block
        result, findings = runner.run(spec.name, gx_frame, doc, parameters)
        _checkpoint(f"gx {spec.name}")
        found, duplicates = _gx_issues(spec, gx_frame, findings)  # same positions, plus derived columns
        del gx_frame
        for part in found:
            part["pos"] = part["pos"] + start
        parts.extend(found)
        if duplicates is not None:
            dup_parts.append(duplicates + start)
            dup_index = next(i for i, f in enumerate(findings) if f.meta.get("rule") == "duplicate_key")
        results.append((start, result))
    if len(bounds) == 1:
        return results[0][1], parts, dup_parts[0] if dup_parts else None
    merged = merge_results(results)
    if dup_index is None:
        return merged, parts, None
    assert block_rows is not None  # more than one block
    key_frame = keys if keys is not None else frame
    assert isinstance(key_frame, pd.DataFrame)
    shared = dictionaries.table(spec.name, key_frame) if dictionaries is not None else None
    across = cross_block_duplicates(key_frame, spec.key, block_rows, shared)
    duplicates = np.union1d(np.concatenate(dup_parts), across).astype("int64")
    add_duplicates(merged, dup_index, duplicates, key_frame[list(spec.key)].iloc[duplicates])
    return merged, parts, duplicates


def _blocks(
    frame: pd.DataFrame | SpilledFrame, bounds: list[tuple[int, int]]
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(start, block)`` of ``frame`` over ``bounds`` (a spilled frame read from its file)."""
    if isinstance(frame, SpilledFrame):
        rows = bounds[0][1] - bounds[0][0]
        if not len(frame):
            yield 0, frame.frame()
            return
        for block in frame.blocks(max(rows, 1)):
            yield int(block.index[0]), block.reset_index(drop=True)
        return
    for start, stop in bounds:
        yield start, frame if len(bounds) == 1 else frame.iloc[start:stop]


def _fault_lines(faults: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return the faults with their line as ``Int64`` (None when there are none)."""
    if faults is None or not len(faults):
        return None
    f = faults.reset_index(drop=True).copy()
    f["line"] = f["line"].astype("Int64")
    return f


def _fault_rows(frame: pd.DataFrame, f: pd.DataFrame, start: int = 0) -> pd.DataFrame:
    """Return (file, line, pos) of the rows of ``frame`` on a line some fault names (``pos`` + ``start``)."""
    # only the rows on a line some fault names are matched (not a Python object per row of the table)
    lines = frame[SOURCE_LINE].astype("Int64")
    near = lines.isin(f["line"].dropna().unique()).to_numpy(dtype=bool)
    if f["line"].isna().any():
        near |= lines.isna().to_numpy(dtype=bool)
    candidates = np.flatnonzero(near).astype("int64")
    return pd.DataFrame(
        {
            "file": frame[SOURCE_FILE].iloc[candidates].to_numpy(),
            "line": lines.iloc[candidates].to_numpy(),
            "pos": candidates + start,
        }
    )


def _fault_issues(
    spec: Table, frame: pd.DataFrame, faults: pd.DataFrame | None, rows: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return issues for the reader's cell faults, located by source file and line.

    ``rows``: the (file, line, pos) of the rows on a faulty line, found block by block
    (:func:`_fault_rows`) when ``frame`` is not at hand.
    """
    f = _fault_lines(faults)
    if f is None:
        return empty_issues()
    if rows is None:
        rows = _fault_rows(frame, f)
    m = f.merge(rows, on=["file", "line"], how="left")
    unmatched = m[m["pos"].isna()]
    if len(unmatched):
        first = unmatched.iloc[0]
        raise ValidationFailed(
            f"{spec.name}: the reader reported a fault on line {first['line']} which is not a staged row",
            file=str(first["file"]),
            column=str(first["column"]),
            hint="this is a bug in the reader; please report it",
        )
    parts = []
    m["column"] = m["column"].astype("string").fillna(LINE_COLUMN)
    for rule, sub in m.groupby("rule", sort=True):
        text = READER_RULES.get(str(rule), "could not read {value}")
        for column, cell in sub.groupby("column", sort=True):
            line_rule = column == LINE_COLUMN
            parts.append(
                issues_at(
                    frame,
                    cell["pos"].to_numpy(dtype="int64"),
                    rule=str(rule),
                    column=None if line_rule else str(column),
                    template=text if line_rule else f"{column}: {text}",
                    values=cell["value"],
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else empty_issues()


def _only_line_faults(issues: pd.DataFrame) -> pd.DataFrame:
    """Return ``issues`` without the findings on broken records other than their line fault.

    A record that could not be split into cells is all-null; its null key and columns say nothing.
    """
    broken = issues["rule"].isin(BROKEN_RULES).to_numpy(dtype=bool)
    if not broken.any():
        return issues
    positions = issues["pos"].to_numpy(dtype="int64")
    on_broken = np.isin(positions, positions[broken])
    return issues[~on_broken | broken].reset_index(drop=True)


def _duplicate_issues(
    spec: Table, frame: pd.DataFrame | SpilledFrame, positions: np.ndarray | None
) -> pd.DataFrame:
    """Return issues for repeated keys: every conflicting copy, and the extra exact copies."""
    if positions is None or not len(positions):
        return empty_issues()
    key = list(spec.key)
    if isinstance(frame, SpilledFrame):  # only the repeated rows are read back
        sub = frame.take(positions, list(spec.column_names))
    else:
        sub = frame[spec.column_names].iloc[positions].copy()
    sub["_pos"] = positions
    distinct = sub.drop_duplicates(subset=spec.column_names)
    versions = distinct.groupby(key, dropna=False, sort=False).size()
    conflicting_keys = versions[versions > 1].index
    keyed = sub.set_index(key).index
    conflicting = keyed.isin(conflicting_keys)
    label = ", ".join(key)
    parts = [
        issues_at(
            sub,
            sub["_pos"].to_numpy()[conflicting],
            rule="duplicate_key",
            column=key[0] if len(key) == 1 else None,
            template=f"key ({label}) appears more than once with different values; every copy is "
            "rejected — keep one version in the source",
            values=_key_text(sub[conflicting], key),
        )
    ]
    extra = ~conflicting & sub.duplicated(subset=spec.column_names, keep="first").to_numpy()
    parts.append(
        issues_at(
            sub,
            sub["_pos"].to_numpy()[extra],
            rule="duplicate_identical",
            column=key[0] if len(key) == 1 else None,
            template=f"exact copy of an earlier row with the same key ({label}); the first copy is loaded",
            values=_key_text(sub[extra], key),
        )
    )
    return pd.concat(parts, ignore_index=True)


def _key_text(sub: pd.DataFrame, key: list[str]) -> pd.Series:
    out: pd.Series | None = None
    for k in key:
        part = sub[k].astype("string").fillna("<empty>").reset_index(drop=True)
        out = part if out is None else out + "|" + part
    return out if out is not None else pd.Series([], dtype="string")


def validate_staged(
    tables: Mapping[str, StagedTable],
    *,
    run_id: str,
    config: ValidationConfig | None = None,
    previous_counts: Mapping[str, int] | None = None,
    known_keys: Mapping[str, pd.DataFrame] | None = None,
    today: date | None = None,
    block_rows: int | None = None,
) -> ValidationOutcome:
    """Return the ValidationOutcome of the seven staged tables; raise ValidationFailed on table-level faults.

    ``previous_counts``: rows read per table by the last good run (shrink rule).
    ``known_keys``: per parent table, a frame of key columns already in core, so references resolve
    against rows loaded by earlier runs. ``today`` fixes "in the future" (default: the current date).
    ``block_rows``: ``orders`` and ``order_items`` longer than this are checked by GX in blocks of that
    many rows, with the blocks' findings and results merged (:mod:`salesbi.validation.blocks`); the outcome is
    the same as one pass, GX's transient memory is bounded by the block.
    """
    config = config or load_config()
    today = today or date.today()
    check_schema(tables)
    check_counts(tables, config, previous_counts)

    from salesbi.validation.gxrun import SuiteRunner

    runner = SuiteRunner()
    parameters = {
        "today": pd.Timestamp(today),
        "min_order_date": pd.Timestamp(config.min_order_date),
        "earliest_date": pd.Timestamp(EARLIEST_DATE),
        "latest_date": pd.Timestamp(LATEST_DATE),
    }
    issues: dict[str, pd.DataFrame] = {}
    # the key columns' dictionaries, each built once and read by every check that compares them
    dictionaries = KeyDictionaries(shared_key_columns())
    suite_results: dict[str, Any] = {}
    suite_docs: dict[str, dict[str, Any]] = {}
    frames: dict[str, pd.DataFrame] = {}  # the tables, a spilled one by its checked columns only
    for spec in contract.TABLES:
        staged = tables[spec.name]
        frame = staged.frame
        doc = suite_docs[spec.name] = suite_dict(spec.name, config)
        faults = getattr(staged, "faults", None)
        if isinstance(frame, SpilledFrame):
            # the whole-table checks read the columns they compare, never the whole table
            keys = frames[spec.name] = frame.frame(checked_columns(spec))
            f = _fault_lines(faults)
            fault_rows: list[pd.DataFrame] = []

            def near_faults(start: int, block: pd.DataFrame, f: Any = f, out: Any = fault_rows) -> None:
                if f is not None:
                    out.append(_fault_rows(block, f, start))

            result, parts, duplicates = _suite_issues(
                runner,
                spec,
                frame,
                doc,
                parameters,
                block_rows or max(len(frame), 1),
                keys,
                near_faults,
                dictionaries,
            )
            rows = pd.concat(fault_rows, ignore_index=True) if fault_rows else None
            parts.append(_fault_issues(spec, rows if rows is not None else keys, faults, rows))
        else:
            frames[spec.name] = frame
            result, parts, duplicates = _suite_issues(
                runner, spec, frame, doc, parameters, block_rows, dictionaries=dictionaries
            )
            parts.append(_fault_issues(spec, frame, faults))
        suite_results[spec.name] = result
        parts.append(_duplicate_issues(spec, frame, duplicates))
        parts.append(
            key_collisions(spec, frames[spec.name], dictionaries.table(spec.name, frames[spec.name]))
        )
        found = pd.concat([p for p in parts if len(p)] or [empty_issues()], ignore_index=True)
        issues[spec.name] = _only_line_faults(found)

    returns = return_line_issues(frames["order_items"], frames["orders"])
    if len(returns):
        issues["order_items"] = pd.concat([issues["order_items"], returns], ignore_index=True)
    issues = check_references(frames, issues, config, known_keys or {}, dictionaries)
    _checkpoint("checks")
    del dictionaries
    accounting = {
        name: (getattr(t, "lines", None), int(getattr(t, "skipped", 0) or 0)) for name, t in tables.items()
    }
    staged_frames = {name: tables[name].frame for name in contract.TABLES_BY_NAME}
    del frames  # the spilled tables' checked columns
    outcome = _assemble(staged_frames, issues, config, run_id, suite_results, today, accounting)
    outcome.suite_docs = suite_docs
    _checkpoint("validated")
    return outcome


def _assemble(
    frames: Mapping[str, pd.DataFrame | SpilledFrame],
    issues: Mapping[str, pd.DataFrame],
    config: ValidationConfig,
    run_id: str,
    suite_results: dict[str, Any],
    today: date,
    accounting: Mapping[str, tuple[int | None, int]],
) -> ValidationOutcome:
    accepted: dict[str, Accepted] = {}
    counts: dict[str, TableCounts] = {}
    rejected_parts: list[pd.DataFrame] = []
    warning_parts: list[pd.DataFrame] = []
    for spec in contract.TABLES:
        frame = frames[spec.name]
        found = issues[spec.name]
        severity = found["rule"].map(config.severity_of).astype("string")
        is_reject = (severity == "reject").to_numpy(dtype=bool)
        positions = found["pos"].to_numpy(dtype="int64")
        rejected_pos = np.unique(positions[is_reject])
        keep = np.ones(len(frame), dtype=bool)
        keep[rejected_pos] = False
        if isinstance(frame, SpilledFrame):
            # the spill and the rejected positions; the issues' rows are read back by position
            accepted[spec.name] = SpilledRows(frame, rejected_pos)
            found, frame = _located(found, frame, spec)
        else:
            # nothing rejected: a shallow copy (copy-on-write: no row is copied until one side changes)
            accepted[spec.name] = frame.copy(deep=False) if keep.all() else frame[keep]
        counts[spec.name] = TableCounts(
            read=len(keep),
            loaded=int(keep.sum()),
            rejected=len(rejected_pos),
            lines=accounting.get(spec.name, (None, 0))[0],
            skipped=accounting.get(spec.name, (None, 0))[1],
        )
        rej = found[is_reject]
        if len(rej):
            rejected_parts.append(
                to_rejected_rows(
                    rej, frame, table=spec.name, key=spec.key, run_id=run_id, severity=severity[is_reject]
                )
            )
        warn_mask = ~is_reject & keep[positions]
        if warn_mask.any():
            warning_parts.append(
                to_rejected_rows(
                    found[warn_mask],
                    frame,
                    table=spec.name,
                    key=spec.key,
                    run_id=run_id,
                    severity=severity[warn_mask],
                )
            )
    rejected = _concat(rejected_parts)
    warnings = _concat(warning_parts)
    rejected["reject_id"] = pd.array(np.arange(1, len(rejected) + 1), dtype="Int64")
    warnings["reject_id"] = pd.array(
        np.arange(len(rejected) + 1, len(rejected) + len(warnings) + 1), dtype="Int64"
    )
    for name, c in counts.items():
        c.check(name)
    return ValidationOutcome(
        accepted=accepted,
        rejected_rows=rejected,
        warnings=warnings,
        counts=counts,
        suite_results=suite_results,
        run_id=run_id,
        today=today,
    )


def _located(found: pd.DataFrame, spill: SpilledFrame, spec: Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``found`` with ``pos`` renumbered into the rows they name, and those rows of ``spill``.

    Only the lineage and key columns :func:`to_rejected_rows` reads are read back, for the rows an
    issue names (few): what ``frame.iloc[pos]`` gives on the whole-frame path.
    """
    positions = found["pos"].to_numpy(dtype="int64")
    named = np.unique(positions)
    rows = spill.take(named, [SOURCE_FILE, SOURCE_LINE, *spec.key])
    local = found.copy()
    local["pos"] = np.searchsorted(named, positions).astype("int64")
    return local, rows


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Return the parts (one per table, contract order) each sorted by file, line and rule."""
    if not parts:
        return empty_rejected_rows()
    order = ["source_file", "source_line", "rule", "column_name"]
    return pd.concat([p.sort_values(order, kind="stable") for p in parts], ignore_index=True)
