"""CSV writing for the canonical tables: contract header, comma-delimited, UTF-8, ISO dates, empty = null.

Bodies are written with pyarrow's CSV writer without quoting (the generator's strings never
contain a delimiter, quote or newline); the header line is written by hand so it is exactly the
contract's column names, unquoted.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from salesbi.schema import Table
from salesbi.types import arrow_schema

_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def header_line(table: Table) -> bytes:
    """Return the CSV header of ``table``: its column names in contract order, then a newline."""
    return (",".join(table.column_names) + "\n").encode("utf-8")


class TableWriter:
    """Appends Arrow tables with ``table``'s schema to ``path`` (header first); use as a context manager."""

    def __init__(self, path: Path, table: Table) -> None:
        self.path = path
        self.table = table
        self.schema = arrow_schema(table)
        self.rows = 0
        self._file: BinaryIO = path.open("wb")
        self._file.write(header_line(table))

    def append(self, data: pa.Table) -> None:
        """Write ``data`` (columns in any order, cast to the contract's types) below what is there."""
        data = data.select(self.table.column_names).cast(self.schema)
        pacsv.write_csv(data, self._file, _OPTIONS)
        self.rows += data.num_rows

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_arrow(path: Path, data: pa.Table) -> int:
    """Write any Arrow table as CSV with an unquoted header of its column names; return its row count."""
    with path.open("wb") as handle:
        handle.write((",".join(data.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(data, handle, _OPTIONS)
    return data.num_rows


def write_frame(path: Path, frame: pd.DataFrame, table: Table) -> int:
    """Write a small table from a pandas frame with the contract's columns; return its row count."""
    data = pa.Table.from_pandas(frame[table.column_names], schema=arrow_schema(table), preserve_index=False)
    with TableWriter(path, table) as writer:
        writer.append(data)
    return writer.rows
