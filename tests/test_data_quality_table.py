"""rpt.data_quality from a run summary and its rejected rows."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from salesbi.reports.data_quality import build_data_quality
from salesbi.runlog import RunSummary, TableCounts


def test_one_row_per_table_with_shares_and_top_reasons() -> None:
    summary = RunSummary(run_id="r1", flow="test")
    summary.tables = {"orders": TableCounts(100, 90, 10, 90), "products": TableCounts(5, 5, 0, 5)}
    summary.warn("forecast", "history too short", kind="skipped")
    rejected = pd.DataFrame(
        {
            "table_name": ["orders"] * 10 + ["orders"],
            "rule": ["not_null"] * 6 + ["foreign_key"] * 3 + ["range", "range"],
            "severity": ["reject"] * 10 + ["warn"],
        }
    )
    frame = build_data_quality(summary, rejected, datetime(2026, 1, 2, 3, 4))
    assert list(frame["table_name"]) == ["orders", "products"]
    orders = frame.iloc[0]
    assert (orders["rows_read"], orders["rows_loaded"], orders["rows_rejected"]) == (100, 90, 10)
    assert orders["rejected_share"] == 0.1
    assert orders["top_reject_reasons"] == "not_null (6); foreign_key (3); range (1)"
    assert orders["run_status"] == "succeeded_with_warnings" and orders["run_warnings"] == 1
    assert "forecast: history too short" in orders["warning_notes"]
    assert pd.isna(frame.iloc[1]["top_reject_reasons"]) and frame.iloc[1]["rejected_share"] == 0
    assert frame["generated_at"].iloc[0] == pd.Timestamp("2026-01-02 03:04")
