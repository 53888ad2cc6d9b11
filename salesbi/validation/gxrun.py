"""Run a generated suite over one in-memory frame with Great Expectations and collect failing rows.

Datasource choice: the **pandas** datasource. The reader hands us typed frames
in memory, so validating them where they are avoids writing every staged row
to a database first (and works the same for SQLite, PostgreSQL and SQL
Server); ``result_format="COMPLETE"`` gives ``unexpected_index_list``, i.e.
the positions of the failing rows, which is what quarantine needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesbi.validation.gxcontext import ephemeral_context
from salesbi.validation.suites import gx_suite

RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 20}


@dataclass
class Finding:
    """One expectation's outcome: its rule meta and the positions (0-based) of the rows it failed."""

    meta: dict[str, Any]
    success: bool
    positions: np.ndarray
    observed: Any = None
    error: str | None = None


def _positions(result: dict[str, Any]) -> np.ndarray:
    idx = result.get("unexpected_index_list") or []
    if idx and isinstance(idx[0], dict):  # with unexpected_index_column_names GX returns dicts
        idx = [next(iter(d.values())) for d in idx]
    return np.asarray(sorted({int(i) for i in idx}), dtype="int64")


def for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with its columns in the dtypes GX's range checks vectorise.

    GX's pandas engine compares values with vectorised code only for numpy int/float and
    nanosecond date columns; for anything else it calls a Python function per value (seconds
    per million rows). So second-resolution dates become datetime64[ns] (dates outside that
    range, before 1677 or after 2262, are clipped to it) and nullable Int64 columns without a
    null become int64. GX reports the same type names either way (see rules.gx_type_name).
    """
    converted = {}
    low = pd.Timestamp.min.ceil("s")
    high = pd.Timestamp.max.floor("s")
    for col in frame.columns:
        if str(frame[col].dtype) == "datetime64[s]":
            # dates outside the nanosecond range are clipped to its ends for GX only (1677 fails
            # every lower bound, 2262 every "not in the future"); the accepted rows keep the originals
            converted[col] = frame[col].clip(lower=low, upper=high).astype("datetime64[ns]")
        elif str(frame[col].dtype) == "Int64" and not frame[col].hasnans:
            converted[col] = frame[col].astype("int64")
    return frame.assign(**converted) if converted else frame


class SuiteRunner:
    """One ephemeral GX context with a pandas datasource; validates frames against suite documents."""

    def __init__(self) -> None:
        self.context = ephemeral_context()
        self.datasource = self.context.data_sources.add_pandas("staged")
        self._definitions: dict[str, Any] = {}  # one asset per table; its blocks are batches of it

    def release(self) -> None:
        """Drop the frames GX keeps in its execution engine's batch cache (it holds every batch it saw).

        The context outlives the validation (GX keeps the last one as its project context), so
        without this each table's validated frame stayed in memory for the rest of the run.
        """
        manager = self.datasource.get_execution_engine().batch_manager
        manager.batch_data_cache.clear()
        manager.reset_batch_cache()

    def run(
        self, name: str, frame: pd.DataFrame, suite_doc: dict[str, Any], parameters: Mapping[str, Any]
    ) -> tuple[Any, list[Finding]]:
        """Return the GX validation result of ``frame`` (0..n-1 index) and one Finding per expectation."""
        batch_definition = self._definitions.get(name)
        if batch_definition is None:
            asset = self.datasource.add_dataframe_asset(name)
            batch_definition = self._definitions[name] = asset.add_batch_definition_whole_dataframe(
                f"{name}_whole"
            )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": for_gx(frame)})
        suite = gx_suite(suite_doc)
        try:
            result = batch.validate(
                suite, result_format=RESULT_FORMAT, expectation_parameters=dict(parameters)
            )
        finally:
            self.release()
        findings = []
        for r in result.results:
            info = r.exception_info or {}
            error = info.get("exception_message") if info.get("raised_exception") else None
            res = dict(r.result or {})
            findings.append(
                Finding(
                    meta=dict(r.expectation_config.meta or {}),
                    success=bool(r.success),
                    positions=_positions(res),
                    observed=res.get("observed_value"),
                    error=error,
                )
            )
        return result, findings
