"""Reading a source folder through a profile into the seven typed canonical tables.

``read_source`` first reads and checks every file (structural faults are all
collected and raised together, before anything else happens), then renames,
derives, maps values and types each column. Cells that cannot be typed or
mapped become null and are listed in the table's ``faults``; rows are never
dropped here — validation decides. Records the CSV reader could not split into
cells (an unclosed quote, a wrong field count) are all-null rows with a line
fault, so validation rejects them; ``lines``/``skipped`` account for every
physical line of a table's files.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from salesbi import contract
from salesbi.errors import ProfileError, StructuralError
from salesbi.memory import release_freed_memory
from salesbi.reading.coerce import RULE_UNMAPPED, Typed, type_column
from salesbi.reading.csvfile import CsvStream, RawFile, open_csv_stream, read_csv_file
from salesbi.reading.derive import LookupTable, derive, map_values, scalar_text
from salesbi.reading.profile import (
    MUST_HAVE_ROWS,
    CsvOptions,
    Profile,
    Scalar,
    TableSpec,
    load_profile,
    unsafe_path_reason,
)
from salesbi.reading.spilled import SpilledFrame, SpillPolicy, SpillWriter
from salesbi.schema import SOURCE_FILE, SOURCE_LINE, Column, Table

#: derivations computed from each row alone: a table deriving only these may be read in blocks
ROW_LOCAL_DERIVATIONS = frozenset(
    {"copy", "constant", "template", "concat", "if_present", "when", "abs", "replace"}
)
#: tables the reader may write to disk block by block (``PipelineParams.ingest_spill_rows``)
SPILLED_TABLES = frozenset({"order_items"})
BROKEN = "_broken"  # rows-frame only: the CSV record could not be split into cells
FAULT_COLUMNS = ("file", "line", "column", "rule", "value")


@dataclass
class SourceTable:
    """One canonical table as read from the source: typed frame, files, counts, cell faults and notes."""

    table: Table
    frame: pd.DataFrame | SpilledFrame  # a SpilledFrame: written to disk as read (salesbi.reading.spilled)
    files: tuple[Path, ...]
    read: int
    faults: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    lines: int | None = None  # physical data lines of its files (None: built from another table)
    skipped: int = 0  # blank/padding/continuation lines, and rows a profile's ``distinct`` collapsed


@dataclass
class SourceData:
    """All seven tables of a source, in contract order, plus the notes of the read."""

    profile_name: str
    source: Path
    tables: dict[str, SourceTable]
    notes: list[str]
    absent_tables: dict[str, str] = field(default_factory=dict)  # table → why the source lacks it
    allow_empty: frozenset[str] = frozenset()  # tables the profile lets have no rows
    profile: Profile | None = None


def empty_faults() -> pd.DataFrame:
    """Return an empty faults frame with the standard columns."""
    return pd.DataFrame(
        {
            "file": pd.Series([], dtype="string"),
            "line": pd.Series([], dtype="int64"),
            "column": pd.Series([], dtype="string"),
            "rule": pd.Series([], dtype="string"),
            "value": pd.Series([], dtype="string"),
        }
    )


@dataclass
class _Rows:
    """Raw rows of one table: renamed text columns plus _source_file/_source_line."""

    frame: pd.DataFrame
    files: tuple[Path, ...]
    file_label: str  # full paths, for messages
    header: list[str]
    short_label: str = ""  # names relative to the source, for notes
    lines: int | None = None
    skipped: int = 0
    line_faults: pd.DataFrame | None = None


class _SourceReader:
    """Reads one source through one profile; caches raw file reads; collects structural errors."""

    def __init__(
        self, source: Path, profile: Profile, block_bytes: int | None = None, spill: SpillPolicy | None = None
    ) -> None:
        self.source = source
        self.profile = profile
        self.block_bytes = block_bytes  # None: csvfile.READ_BLOCK_BYTES; 0: files read whole
        self.spill = spill  # long tables written to disk block by block (salesbi.reading.spilled)
        self.raw_cache: dict[Path, RawFile] = {}
        self.errors: list[StructuralError] = []
        self.notes: list[str] = list(profile.notes)

    # ------------------------------------------------------------------------------------ files

    def _key(self, table: str, key: str) -> str:
        return f"tables.{table}.{key}" + (f" in profile {self.profile.label}" if self.profile.path else "")

    def resolve_files(self, table: str, pattern: str) -> list[Path]:
        """Return the files matching ``pattern`` in the source (StructuralError when none).

        Every file must resolve inside the source folder (symlinks included): a profile naming
        anything else raises ProfileError.
        """
        problem = unsafe_path_reason(pattern)
        if problem:
            raise ProfileError(
                f"{table}: file {pattern!r} {problem}",
                file=self.profile.path,
                hint="name a file inside the source folder, relative to it",
            )
        if any(ch in pattern for ch in "*?["):
            found = sorted(p for p in self.source.glob(pattern) if p.is_file())
        else:
            exact = self.source / pattern
            found = [exact] if exact.is_file() else []
            if not found and self.source.is_dir():
                found = [
                    p for p in self.source.iterdir() if p.is_file() and p.name.lower() == pattern.lower()
                ]
        root = self.source.resolve()
        for p in found:
            if not p.resolve().is_relative_to(root):
                raise ProfileError(
                    f"{table}: {self.label(p)} resolves to {p.resolve()}, outside the source folder {root}",
                    file=self.profile.path,
                    hint="profiles may only read files inside the source folder; copy the file there "
                    "instead of linking to it",
                )
        if not found:
            present = (
                sorted(
                    p.name
                    for p in self.source.iterdir()
                    if p.is_file() and fnmatch.fnmatch(p.name.lower(), "*.csv")
                )
                if self.source.is_dir()
                else []
            )
            raise StructuralError(
                f"{table}: expected file {pattern!r} not found",
                file=self.source / pattern,
                hint=(
                    f"put {pattern} in {self.source}, or change {self._key(table, 'file')} "
                    f"to the file that holds {table} (CSV files there: {', '.join(present) or 'none'})"
                ),
            )
        return found

    def raw(self, path: Path, options: CsvOptions, stream: CsvStream | None = None) -> RawFile:
        """Return the cached raw read of ``path`` (``stream``: the file already opened for blocks)."""
        if path not in self.raw_cache:
            self.raw_cache[path] = read_csv_file(path, options, self.block_bytes, stream)
            self.notes.extend(self.raw_cache[path].notes)
        return self.raw_cache[path]

    def shares_files(self) -> bool:
        """Return True when a file may be read by more than one table.

        That is: a table built from another table's file (``from_table``), a lookup file, two
        tables naming the same file (case-insensitively), or a glob (it may match another's file).
        """
        specs = self.profile.tables.values()
        if any(spec.from_table is not None or any(d.files() for d in spec.derive.values()) for spec in specs):
            return True
        patterns = [p.lower() for t in contract.TABLES if (p := self.profile.file_pattern(t.name))]
        return len(set(patterns)) < len(patterns) or any(ch in "".join(patterns) for ch in "*?[")

    def forget(self, files: tuple[Path, ...]) -> None:
        """Drop the raw text of ``files`` once their table is typed (no other table reads them)."""
        if not self.shares_files():
            for path in files:
                self.raw_cache.pop(path, None)

    def label(self, path: Path) -> str:
        """Return the file name relative to the source folder."""
        try:
            return str(path.relative_to(self.source))
        except ValueError:
            return str(path)

    def rows_of_files(self, table: str, files: list[Path], options: CsvOptions) -> _Rows:
        """Return the concatenated raw rows of ``files`` with their source file and line."""
        frames = []
        header: list[str] = []
        lines = skipped = 0
        faults: list[tuple[str, int, str, str]] = []
        for path in files:
            raw = self.raw(path, options)
            f = raw.frame.copy()
            label = self.label(path)
            f[SOURCE_FILE] = pd.Series(label, index=f.index, dtype="string")
            f[SOURCE_LINE] = pd.Series(raw.lines, index=f.index, dtype="Int64")
            f[BROKEN] = raw.broken
            frames.append(f)
            header = header or raw.header
            lines += raw.data_lines
            skipped += raw.skipped
            faults.extend((label, line, rule, value) for line, rule, value in raw.line_faults)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        line_faults = pd.DataFrame(
            {
                "file": pd.Series([f[0] for f in faults], dtype="string"),
                "line": pd.Series([f[1] for f in faults], dtype="int64"),
                "column": pd.Series([pd.NA] * len(faults), dtype="string"),
                "rule": pd.Series([f[2] for f in faults], dtype="string"),
                "value": pd.Series([f[3] for f in faults], dtype="string"),
            }
        )
        return _Rows(
            frame,
            tuple(files),
            ", ".join(str(p) for p in files),
            header,
            ", ".join(self.label(p) for p in files),
            lines,
            skipped,
            line_faults,
        )

    # ------------------------------------------------------------------------------------ tables

    def source_rows(self, name: str, spec: TableSpec) -> _Rows:
        """Return the raw rows a table is built from (its own files, or another table's)."""
        if spec.from_table is not None:
            other = spec.from_table
            pattern = self.profile.file_pattern(other)
            if pattern is None:
                raise StructuralError(
                    f"{name}: from_table {other!r} has no file of its own "
                    "(it is derived, constant or absent)",
                    hint=(
                        f"derive {name} from a table that is read from a file "
                        f"({self._key(name, 'from_table')})"
                    ),
                )
            files = self.resolve_files(other, pattern)
            rows = self.rows_of_files(other, files, self.profile.csv_options(other))
            # the other table accounts for its lines and rejects its broken records
            frame = rows.frame[~rows.frame[BROKEN].to_numpy(dtype=bool)].reset_index(drop=True)
            return _Rows(frame, (), rows.file_label, rows.header, rows.short_label)
        pattern = self.profile.file_pattern(name)
        assert pattern is not None
        files = self.resolve_files(name, pattern)
        return self.rows_of_files(name, files, self.profile.csv_options(name))

    def lookup(self, table: str, options: CsvOptions) -> LookupTable:
        """Return a function reading (and caching) a lookup file's key → value mapping."""

        def fetch(file: str, key: str, value: str) -> pd.Series:
            path = self.resolve_files(table, file)[0]
            raw = self.raw(path, options)
            for col in (key, value):
                if col not in raw.frame.columns:
                    raise StructuralError(
                        f"{table}: lookup column {col!r} not found",
                        file=path,
                        column=col,
                        hint=(
                            f"columns there: {', '.join(raw.header)}; "
                            f"fix the lookup in {self._key(table, 'derive')}"
                        ),
                    )
            pairs = raw.frame[[key, value]].dropna(subset=[key]).drop_duplicates(subset=[key])
            return pd.Series(pairs[value].to_numpy(), index=pairs[key].to_numpy())

        return fetch

    def constant_rows(self, name: str, spec: TableSpec) -> _Rows:
        """Return the rows of a table the profile gives as constants (``rows:``), or declares absent."""
        table = contract.table(name)
        records: list[dict[str, Scalar | None]] = list(spec.rows or [])
        if spec.table_absent is not None and name == "product_lines":
            # products need a line: one placeholder line stands for "no product lines in the source"
            records = [{"product_line_id": NO_PRODUCT_LINE, "name": "(no product lines in the source)"}]
        data = {c: pd.Series([_cell(r.get(c)) for r in records], dtype="string") for c in table.column_names}
        frame = pd.DataFrame(data, index=pd.RangeIndex(len(records)))
        frame[SOURCE_FILE] = pd.Series(["(profile)"] * len(records), dtype="string")
        frame[SOURCE_LINE] = pd.Series(range(1, len(records) + 1), dtype="Int64")
        return _Rows(frame, (), "(profile rows)", list(table.column_names), "the profile")

    def build(self, table: Table) -> SourceTable:
        """Return the typed SourceTable for ``table`` (StructuralError for a structural fault).

        A table read from one file of its own, without derivations, is read and typed in blocks
        (:meth:`build_in_blocks`); the result is the one the whole-file path gives.
        """
        name = table.name
        spec = self.profile.spec(name)
        if self.streamable(name, spec):
            built = self.build_in_blocks(table, spec)
            if built is not None:
                return built
        options = self.profile.csv_options(name)
        notes: list[str] = []
        if spec.table_absent is not None:
            notes.append(f"{name}: not in this source ({spec.table_absent})")
            if name == "product_lines":
                notes.append(f"{name}: every product is put in the placeholder line {NO_PRODUCT_LINE!r}")
            rows = self.constant_rows(name, spec)
        elif spec.rows is not None:
            rows = self.constant_rows(name, spec)
        else:
            rows = self.source_rows(name, spec)
        work = self.renamed(name, spec, rows)

        fetch = self.lookup(name, options)
        # derivations of distinct columns run first (a key derived per row, e.g. a guest customer)
        early = [t for t in spec.derive if spec.distinct and t in spec.distinct]
        for target in early:
            work[target] = self._derive(name, target, spec, work, rows, fetch, notes)
        if spec.distinct:
            work = self._distinct(name, spec, work, rows, notes)
        for target in spec.derive:
            if target not in early:
                work[target] = self._derive(name, target, spec, work, rows, fetch, notes)
        if name == "products" and "product_lines" in self.profile.absent_tables():
            work["product_line_id"] = pd.Series(NO_PRODUCT_LINE, index=work.index, dtype="string")

        self.check_required(name, table, spec, work, rows)
        n = len(work)
        if n == 0 and name in MUST_HAVE_ROWS and not spec.allow_empty and spec.table_absent is None:
            raise StructuralError(
                f"{name}: the file has a header but no data rows",
                file=rows.file_label,
                hint=(
                    f"a source must have {name}; export the table with its rows, "
                    f"or point {self._key(name, 'file')} at the right file"
                ),
            )

        lines = work[SOURCE_LINE].to_numpy(dtype="int64", na_value=0)
        files = _Cells(work[SOURCE_FILE].astype("string"))  # a file name per fault, not per row
        out: dict[str, pd.Series] = {}
        fault_parts: list[pd.DataFrame] = []
        for col in table.columns:
            raw, work = self.raw_column(name, col, spec, work, rows, notes)
            typed = type_column(raw, col, options, spec.dates.get(col.name))
            notes.extend(f"{name}.{t}" for t in typed.notes)
            series, parts = self.finish_column(col, spec, options, raw, typed, files, lines)
            fault_parts.extend(parts)
            out[col.name] = series.reset_index(drop=True)
        frame = pd.DataFrame(out)
        # one code per row, not the file's name per row (issue 18 memory); its values are the names
        frame[SOURCE_FILE] = work[SOURCE_FILE].astype("string").astype("category").reset_index(drop=True)
        frame[SOURCE_LINE] = work[SOURCE_LINE].astype("Int64").reset_index(drop=True)
        if rows.line_faults is not None and len(rows.line_faults):
            fault_parts.insert(0, rows.line_faults)
        return SourceTable(
            table=table,
            frame=frame,
            files=rows.files,
            read=len(frame),
            faults=_sorted_faults(fault_parts),
            notes=notes,
            lines=rows.lines,
            skipped=rows.skipped,
        )

    def renamed(self, name: str, spec: TableSpec, rows: _Rows) -> pd.DataFrame:
        """Return the rows with the profile's renames applied (StructuralError: a renamed one is absent)."""
        work = rows.frame
        missing_src = [s for s in spec.rename if s not in work.columns]
        if missing_src:
            s = missing_src[0]
            raise StructuralError(
                f"{name}: column {s!r} named in the profile's rename is not in the file",
                file=rows.file_label,
                column=s,
                hint=(
                    f"columns there: {', '.join(rows.header)}; fix {self._key(name, 'rename')} "
                    f"(it maps {s!r} → {spec.rename[s]!r})"
                ),
            )
        canonical_targets = set(spec.rename.values())
        keep = [c for c in work.columns if c not in canonical_targets or c in spec.rename]
        return work[keep].rename(columns=spec.rename)

    def check_required(
        self, name: str, table: Table, spec: TableSpec, work: pd.DataFrame, rows: _Rows
    ) -> None:
        """Raise StructuralError when a required column is neither in ``work`` nor defaulted."""
        available = set(work.columns) | set(spec.defaults)
        missing_req = [c for c in table.required_columns if c not in available]
        if missing_req:
            req = missing_req[0]
            extra = f" (also missing: {', '.join(missing_req[1:])})" if len(missing_req) > 1 else ""
            unused = [h for h in rows.header if h not in spec.rename and h not in table.column_names]
            guess = difflib.get_close_matches(req, unused, n=1, cutoff=0.3)
            source_col = guess[0] if guess else "<source column>"
            raise StructuralError(
                f"{name}: required column {req!r} is missing{extra}",
                file=rows.file_label,
                column=req,
                hint=(
                    f"columns there: {', '.join(rows.header)}; "
                    f"add a rename under {self._key(name, 'rename')}, "
                    f"e.g. rename: {{{source_col}: {req}}}, or derive it"
                ),
            )

    def raw_column(
        self, name: str, col: Column, spec: TableSpec, work: pd.DataFrame, rows: _Rows, notes: list[str]
    ) -> tuple[pd.Series, pd.DataFrame]:
        """Return the text a column is typed from (values mapped) and ``work`` (less a column left null).

        The notes about the column (absent, left null) depend on the columns only, not the rows.
        """
        cname = col.name
        absent_tables = self.profile.absent_tables()
        parent = col.references[0] if col.references else None
        if parent in absent_tables and parent not in (name, "product_lines") and cname in work.columns:
            notes.append(f"{name}.{cname}: {parent} are not in this source; left null")
            work = work.drop(columns=[cname])
        if cname in work.columns:
            raw = work[cname].astype("string")
        else:
            raw = pd.Series(pd.NA, index=work.index, dtype="string")
            if cname in spec.absent_columns:
                notes.append(f"{name}.{cname}: {spec.absent_columns[cname]}")
            elif parent in absent_tables and parent != name and spec.table_absent is None:
                if not any(n.startswith(f"{name}.{cname}:") for n in notes):
                    notes.append(f"{name}.{cname}: {parent} are not in this source; left null")
            elif cname not in spec.defaults and spec.table_absent is None and spec.rows is None:
                notes.append(f"{name}.{cname}: not in {rows.short_label}; left null")
        if cname in spec.values:
            raw = map_values(raw, spec.values[cname])
        return raw, work

    def finish_column(
        self,
        col: Column,
        spec: TableSpec,
        options: CsvOptions,
        raw: pd.Series,
        typed: Typed,
        files: _Cells | _SameFile,
        lines: np.ndarray,
    ) -> tuple[pd.Series, list[pd.DataFrame]]:
        """Return the typed column (allowed values normalised, defaults filled) and its cell faults."""
        cname = col.name
        parts: list[pd.DataFrame] = []
        series = typed.series
        bad = typed.bad
        if bad.any():
            parts.append(_faults(files[bad], lines[bad], cname, typed.rule or "invalid", raw[bad]))
        for mask, rule in typed.more:
            parts.append(_faults(files[mask], lines[mask], cname, rule, raw[mask]))
            bad = bad | mask
        if col.allowed is not None:
            series = normalize_allowed(series, col.allowed)
            outside = series.notna().to_numpy() & ~series.isin(col.allowed).to_numpy()
            if outside.any():
                parts.append(_faults(files[outside], lines[outside], cname, RULE_UNMAPPED, raw[outside]))
                series = series.mask(outside)
                bad = bad | outside
        if cname in spec.defaults:
            fill = type_column(
                pd.Series([scalar_text(spec.defaults[cname])], dtype="string"), col, options
            ).series.iloc[0]
            fill_mask = series.isna().to_numpy() & ~bad
            if fill_mask.any():
                series = series.mask(fill_mask, fill)
        return series, parts

    # ------------------------------------------------------------------------------------ blocks

    def streamable(self, name: str, spec: TableSpec) -> bool:
        """Return True when ``name`` may be read and typed in blocks of records.

        That is: read from files of its own (no constant rows, no other table's file), with
        only derivations computed from each row alone (:data:`ROW_LOCAL_DERIVATIONS`; a row
        number or a lookup looks at other rows or files) and no ``distinct`` (it looks at the
        whole table), and no file shared with another table (its raw text would be read again).
        """
        return (
            (self.block_bytes is None or self.block_bytes > 0)
            and spec.table_absent is None
            and spec.rows is None
            and spec.from_table is None
            and all(d.kind in ROW_LOCAL_DERIVATIONS for d in spec.derive.values())
            and not spec.distinct
            and self.profile.file_pattern(name) is not None
            and not (name == "products" and "product_lines" in self.profile.absent_tables())
            and not self.shares_files()
        )

    def build_in_blocks(self, table: Table, spec: TableSpec) -> SourceTable | None:
        """Return the typed table read and typed a block of records at a time, or None: read it whole.

        The file's text exists for one block at a time (issue 18: the read step's memory). Date
        columns are typed once over the whole column (their formats are detected from all the
        column's values, as on the whole-file path); every other kind is typed cell by cell, so a
        block gives the same values and faults as the whole file. None (the caller reads the
        file whole) when the file has more than one part, no record, or does not take the CSV
        fast path (records spanning lines, broken records: the line-exact parser needs the file).
        """
        name = table.name
        options = self.profile.csv_options(name)
        pattern = self.profile.file_pattern(name)
        assert pattern is not None
        paths = self.resolve_files(name, pattern)
        if len(paths) != 1:
            return None
        path = paths[0]
        stream = open_csv_stream(path, options, self.block_bytes)
        if not stream.candidate:
            self.raw(path, options, stream)  # the whole-file path reads it from here
            return None
        label = self.label(path)
        header_rows = _Rows(
            pd.DataFrame(columns=[*stream.header, SOURCE_FILE, SOURCE_LINE, BROKEN]),
            (path,),
            str(path),
            stream.header,
            label,
        )
        try:
            header = self.with_derived(name, spec, self.renamed(name, spec, header_rows), header_rows)
            self.check_required(name, table, spec, header, header_rows)
        except StructuralError:
            # the whole-file path reads the records first (their faults are reported before a column's)
            self.raw(path, options, stream)
            return None
        column_notes: dict[str, list[str]] = {c.name: [] for c in table.columns}
        pieces: dict[str, list[pd.Series]] = {c.name: [] for c in table.columns}
        dates = {c.name for c in table.columns if c.spec.parser == "date"}
        date_text: dict[str, list[pd.Categorical]] = {c: [] for c in dates}
        fault_parts: list[pd.DataFrame] = []
        line_parts: list[np.ndarray] = []
        files = _SameFile(label)
        names = pd.Series([label], dtype="string").astype("category").dtype
        writer = self._spill_writer(name, dates)
        try:
            built = self._typed_blocks(
                name,
                table,
                spec,
                stream,
                header_rows,
                options,
                files,
                label,
                names,
                writer,
                column_notes,
                pieces,
                dates,
                date_text,
                fault_parts,
                line_parts,
            )
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if not built:
            if writer is not None:
                writer.abort()
            return None
        self.notes.extend(stream.notes)
        if writer is not None:
            return SourceTable(
                table=table,
                frame=writer.finish(),
                files=(path,),
                read=writer.rows,
                faults=_sorted_faults(fault_parts),
                notes=[n for c in table.columns for n in column_notes[c.name]],
                lines=stream.data_lines,
                skipped=stream.skipped,
            )
        lines = np.concatenate(line_parts)
        line_parts.clear()
        out: dict[str, pd.Series] = {}
        for col in table.columns:
            if col.name in dates:
                raw = _joined_codes(date_text.pop(col.name))
                typed = type_column(raw, col, options, spec.dates.get(col.name))
                column_notes[col.name].extend(f"{name}.{t}" for t in typed.notes)
                series, parts = self.finish_column(col, spec, options, raw, typed, files, lines)
                fault_parts.extend(parts)
                out[col.name] = series.reset_index(drop=True)
            else:
                out[col.name] = _joined(pieces.pop(col.name))
        frame = pd.DataFrame(out, copy=False)  # the joined columns as they are (no 2-D copy)
        del out
        frame[SOURCE_FILE] = pd.Series(
            pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), dtype=names)
        )
        frame[SOURCE_LINE] = pd.Series(lines, dtype="Int64")
        return SourceTable(
            table=table,
            frame=frame,
            files=(path,),
            read=len(frame),
            faults=_sorted_faults(fault_parts),
            notes=[n for c in table.columns for n in column_notes[c.name]],
            lines=stream.data_lines,
            skipped=stream.skipped,
        )

    def with_derived(self, name: str, spec: TableSpec, work: pd.DataFrame, rows: _Rows) -> pd.DataFrame:
        """Return ``work`` with the profile's row-local derived columns added (in the profile's order).

        They make no notes (only lookups do, and those are not row-local).
        """
        if not spec.derive:
            return work
        fetch = self.lookup(name, self.profile.csv_options(name))
        for target in spec.derive:
            work[target] = self._derive(name, target, spec, work, rows, fetch, [])
        return work

    def _spill_writer(self, name: str, dates: set[str]) -> SpillWriter | None:
        """Return the writer spilling table ``name`` block by block, or None: it is kept as a frame.

        Only the tables of :data:`SPILLED_TABLES` without date columns (a date column is typed once
        over the whole column, after the last block) are spilled, and only with a spill policy.
        """
        if self.spill is None or name not in SPILLED_TABLES or dates:
            return None
        return SpillWriter(self.spill.folder / f"{name}.arrow", keep_below=self.spill.rows)

    def _typed_blocks(
        self,
        name: str,
        table: Table,
        spec: TableSpec,
        stream: CsvStream,
        header_rows: _Rows,
        options: CsvOptions,
        files: _SameFile,
        label: str,
        names: pd.CategoricalDtype,
        writer: SpillWriter | None,
        column_notes: dict[str, list[str]],
        pieces: dict[str, list[pd.Series]],
        dates: set[str],
        date_text: dict[str, list[pd.Categorical]],
        fault_parts: list[pd.DataFrame],
        line_parts: list[np.ndarray],
    ) -> bool:
        """Read and type the stream's blocks into ``pieces`` (or ``writer``); return False: read it whole."""
        path = header_rows.files[0]
        for number, block in enumerate(stream):
            frame = block.frame
            frame[SOURCE_FILE] = pd.Series(label, index=frame.index, dtype="string")
            frame[SOURCE_LINE] = pd.Series(block.lines, index=frame.index, dtype="Int64")
            frame[BROKEN] = np.zeros(len(frame), dtype=bool)
            rows = _Rows(frame, (path,), str(path), stream.header, label)
            work = self.with_derived(name, spec, self.renamed(name, spec, rows), rows)
            del frame, rows
            for col in table.columns:
                notes = column_notes[col.name] if number == 0 else []
                raw, work = self.raw_column(name, col, spec, work, header_rows, notes)
                if col.name in dates:
                    date_text[col.name].append(_as_codes(raw))
                    continue
                typed = type_column(raw, col, options, spec.dates.get(col.name))
                notes.extend(f"{name}.{t}" for t in typed.notes)  # none for these kinds
                series, parts = self.finish_column(col, spec, options, raw, typed, files, block.lines)
                fault_parts.extend(parts)
                pieces[col.name].append(series.reset_index(drop=True))
            if writer is not None:  # the block's typed rows go to the spill file (no date column)
                typed_block = pd.DataFrame({c.name: pieces[c.name].pop() for c in table.columns}, copy=False)
                typed_block[SOURCE_FILE] = pd.Series(
                    pd.Categorical.from_codes(np.zeros(len(typed_block), dtype=np.int8), dtype=names)
                )
                typed_block[SOURCE_LINE] = pd.Series(block.lines, dtype="Int64")
                writer.append(typed_block)
                del typed_block
            line_parts.append(block.lines if writer is None else block.lines[:0])
            del work, block
        if not stream.complete:
            pieces.clear()
            date_text.clear()
            self.raw(path, options, stream)  # the whole-file path reads it from here
            return False
        rows_seen = writer.rows if writer is not None else sum(len(p) for p in line_parts)
        return bool(rows_seen)

    def _derive(
        self,
        name: str,
        target: str,
        spec: TableSpec,
        work: pd.DataFrame,
        rows: _Rows,
        fetch: LookupTable,
        notes: list[str],
    ) -> pd.Series:
        """Return the derived column ``target`` (StructuralError when an input column is missing)."""
        deriv = spec.derive[target]
        absent = [c for c in deriv.inputs() if c not in work.columns]
        if absent:
            raise StructuralError(
                f"{name}: column {absent[0]!r} used to derive {target!r} is not in the file",
                file=rows.file_label,
                column=absent[0],
                hint=f"columns there: {', '.join(rows.header)}; fix {self._key(name, 'derive.' + target)}",
            )
        result = derive(work, deriv, fetch, f"{name}.{target}")
        notes.extend(result.notes)
        return result.series

    def _distinct(
        self, name: str, spec: TableSpec, work: pd.DataFrame, rows: _Rows, notes: list[str]
    ) -> pd.DataFrame:
        """Return one row per distinct ``spec.distinct`` combination (first or last), noting variants."""
        assert spec.distinct
        absent = [c for c in spec.distinct if c not in work.columns]
        if absent:
            raise StructuralError(
                f"{name}: distinct column {absent[0]!r} is not in the rows",
                file=rows.file_label,
                column=absent[0],
                hint=f"columns there: {', '.join(rows.header)}; fix {self._key(name, 'distinct')}",
            )
        table = contract.table(name)
        inputs = {c for d in spec.derive.values() for c in d.inputs()}
        relevant = [
            c
            for c in work.columns
            if (c in table.column_names or c in inputs) and c not in spec.distinct and not c.startswith("_")
        ]
        if relevant:
            variants = work.drop_duplicates(subset=[*spec.distinct, *relevant])
            clash = variants[variants.duplicated(subset=spec.distinct, keep=False)]
            several = len(clash.drop_duplicates(subset=spec.distinct))
            if several:
                notes.append(
                    f"{name}: {several} of the distinct {', '.join(spec.distinct)} have rows that differ "
                    f"(in {', '.join(relevant)}); the {spec.keep} row in file order was kept"
                )
        before = len(work)
        broken = work[BROKEN].to_numpy(dtype=bool)  # broken records are each rejected, never collapsed
        kept = work[~broken].drop_duplicates(subset=spec.distinct, keep=spec.keep)
        work = pd.concat([kept, work[broken]]).sort_index(kind="stable").reset_index(drop=True)
        if rows.lines is not None and len(work) < before:
            rows.skipped += before - len(work)
            notes.append(f"{name}: {before - len(work)} row(s) collapsed by distinct {spec.distinct}")
        return work


NO_PRODUCT_LINE = "(none)"


def _joined(parts: list[pd.Series]) -> pd.Series:
    """Return the blocks' pieces of one column as one Series (index 0..n-1)."""
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _as_codes(raw: pd.Series) -> pd.Categorical:
    """Return a block's text of a date column as codes of its distinct texts, in order of appearance.

    A date column holds few distinct texts (days): kept as codes until the last block, its text
    costs a byte or two per row instead of the text itself (issue 18 memory).
    """
    codes, uniques = pd.factorize(raw.reset_index(drop=True), use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="string"))


def _joined_codes(parts: list[pd.Categorical]) -> pd.Series:
    """Return the blocks' codes of one date column as one categorical Series (index 0..n-1).

    The categories are the column's distinct texts in order of first appearance, as
    ``pd.factorize`` of the whole column's text gives them (what :func:`coerce.type_column` sees).
    """
    joined = parts[0] if len(parts) == 1 else union_categoricals(parts)
    return pd.Series(joined)


def _sorted_faults(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Return the faults in file, line, column order (line faults, with no column, first)."""
    faults = pd.concat(parts, ignore_index=True) if parts else empty_faults()
    if len(faults):
        faults = faults.sort_values(["file", "line", "column"], kind="stable", na_position="first")
        faults = faults.reset_index(drop=True)
    return faults


class _SameFile:
    """The file name of every row of a one-file table, read only at the rows asked for."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __getitem__(self, mask: np.ndarray) -> np.ndarray:
        return np.full(int(np.count_nonzero(mask)), self.label, dtype=object)


class _Cells:
    """A string column read only at the rows asked for (``cells[mask]``): no Python string per row."""

    def __init__(self, series: pd.Series) -> None:
        self.values = series.array

    def __getitem__(self, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.values[mask], dtype=object)


def _cell(value: Scalar | None) -> str | None:
    """Return a constant row's value as cell text (None stays null)."""
    return None if value is None else scalar_text(value)


def normalize_allowed(series: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    """Return ``series`` with values equal to an allowed value up to case, spaces and hyphens replaced by it.

    ``Shipped`` → ``shipped``, ``On Hold`` → ``on_hold``; anything else is left as it is.
    """
    known = {a.casefold(): a for a in allowed}
    folded = series.str.strip().str.casefold().str.replace(r"[\s-]+", "_", regex=True)
    mapped = pd.Series(folded.map(known), index=series.index, dtype="string")
    return mapped.fillna(series)


def _faults(files: np.ndarray, lines: np.ndarray, column: str, rule: str, values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series(files, dtype="string"),
            "line": pd.Series(lines, dtype="int64"),
            "column": pd.Series([column] * len(lines), dtype="string"),
            "rule": pd.Series([rule] * len(lines), dtype="string"),
            "value": pd.Series(values.to_numpy(), dtype="string"),
        }
    )


def combine_structural(errors: list[StructuralError]) -> StructuralError:
    """Return one error listing every structural problem (the single one itself when there is one)."""
    unique: dict[str, StructuralError] = {}
    for e in errors:
        unique.setdefault(e.message, e)
    errors = list(unique.values())
    if len(errors) == 1:
        return errors[0]
    listing = "; ".join(f"({i}) {e.message}" for i, e in enumerate(errors, 1))
    return StructuralError(
        f"{len(errors)} structural problems in the source: {listing}",
        hint="fix them all, then run again",
    )


def read_source(
    source: Path,
    profile: str | Path | Profile,
    block_bytes: int | None = None,
    spill: SpillPolicy | None = None,
) -> SourceData:
    """Return the seven canonical tables read from ``source`` through ``profile``.

    Tables that allow it are read and typed ``block_bytes`` of their file at a time (default
    ``csvfile.READ_BLOCK_BYTES``; 0: every file read and typed whole, the reference the blocks
    are tested against); the tables do not depend on it. ``spill``: the tables of
    :data:`SPILLED_TABLES` read in blocks are written to ``spill.folder`` block by block once
    they reach ``spill.rows`` rows, and their frame is a
    :class:`~salesbi.reading.spilled.SpilledFrame` (the same rows, on disk).

    Raises ProfileError for an unknown or malformed profile and StructuralError
    (one error listing every problem) for missing files/columns, empty files or
    unreadable encodings — before any table is returned.
    """
    prof = load_profile(profile)
    source = Path(source)
    if not source.is_dir():
        raise StructuralError(
            "source folder not found",
            file=source,
            hint="pass the folder that holds the CSV files (--source DIR)",
        )
    reader = _SourceReader(source, prof, block_bytes, spill)
    tables: dict[str, SourceTable] = {}
    for table in contract.TABLES:
        try:
            tables[table.name] = reader.build(table)
            reader.forget(tables[table.name].files)  # the typed table replaces its raw text
            release_freed_memory()  # what the table's read freed, before the next one is read
        except StructuralError as exc:
            reader.errors.append(exc)
    if reader.errors:
        raise combine_structural(reader.errors)
    notes = list(reader.notes)
    for st in tables.values():
        notes.extend(n for n in st.notes if n not in notes)
    return SourceData(
        profile_name=prof.name,
        source=source,
        tables=tables,
        notes=notes,
        absent_tables=prof.absent_tables(),
        allow_empty=prof.allowed_empty(),
        profile=prof,
    )


def core_frames(data: SourceData) -> dict[str, pd.DataFrame]:
    """Return canonical table name → frame with exactly the contract's columns (no ``_source_*``)."""
    return {name: _whole(st.frame)[st.table.column_names].copy() for name, st in data.tables.items()}


def _whole(frame: pd.DataFrame | SpilledFrame) -> pd.DataFrame:
    """Return ``frame``, a spilled one read back whole."""
    return frame.to_frame() if isinstance(frame, SpilledFrame) else frame
