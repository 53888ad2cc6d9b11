"""Generator mechanics: byte-identical output for a seed, exact line counts, chunking, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from salesbi.errors import ConfigurationError
from salesbi.generate import GenerationSummary, generate_company


def digests(folder: Path) -> dict[str, str]:
    """Return relative path → sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_whatever_the_chunk_size(tmp_path: Path) -> None:
    a = generate_company(tmp_path / "a", order_lines=5_000, seed=3)
    b = generate_company(tmp_path / "b", order_lines=5_000, seed=3, chunk_lines=1_000)
    da, db = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(da) == 12  # seven tables + five ground truth files
    assert da == db
    assert a.rows == b.rows


def test_chunks_really_split_the_lines(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate_company(
        tmp_path / "c",
        order_lines=250_000,
        seed=5,
        chunk_lines=100_000,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert len(calls) >= 2
    assert [t for _, t in calls] == [250_000] * len(calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 250_000


def test_another_seed_gives_another_company(tmp_path: Path) -> None:
    generate_company(tmp_path / "a", order_lines=5_000, seed=3)
    generate_company(tmp_path / "b", order_lines=5_000, seed=4)
    da, db = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert da["order_items.csv"] != db["order_items.csv"]
    assert da["offices.csv"] == db["offices.csv"]  # the offices are fixed


@pytest.mark.parametrize("lines", [1, 7, 100, 4_999, 12_345])
def test_exactly_the_requested_number_of_lines(tmp_path: Path, lines: int) -> None:
    summary = generate_company(tmp_path, order_lines=lines, seed=11)
    items = pd.read_csv(tmp_path / "order_items.csv", dtype=str)
    orders = pd.read_csv(tmp_path / "orders.csv", dtype=str)
    assert len(items) == lines == summary.rows["order_items"]
    assert len(orders) == summary.rows["orders"] == items["order_id"].nunique()
    assert set(items["order_id"]) == set(orders["order_id"])
    assert summary.rows["customers"] == max(50, lines // 40)


def test_summary_and_default_window(tmp_path: Path) -> None:
    summary = generate_company(tmp_path, order_lines=2_000, seed=1)
    assert isinstance(summary, GenerationSummary)
    assert summary.end == dt.date(2025, 12, 31)
    assert summary.start == dt.date(2023, 1, 1)  # 1,096 days
    assert summary.start <= summary.first_order_date <= summary.last_order_date <= summary.end
    assert set(summary.paths) == {
        "offices", "employees", "customers", "product_lines", "products", "orders", "order_items"
    }  # fmt: skip
    assert all(p.exists() for p in summary.paths.values())
    assert set(summary.ground_truth) == {"customers", "employees", "product_lines", "products", "meta"}
    meta = json.loads(summary.ground_truth["meta"].read_text())
    assert meta["seed"] == 1 and meta["arguments"]["order_lines"] == 2_000
    assert meta["date_range"] == {"start": "2023-01-01", "end": "2025-12-31", "days": 1096}
    assert meta["yearly"]["peak_day_of_year"] == 335
    assert "2,000 order lines" in str(summary)


def test_start_and_years_move_the_window(tmp_path: Path) -> None:
    summary = generate_company(tmp_path, order_lines=3_000, seed=2, start=dt.date(2020, 3, 1), years=1.0)
    assert summary.start == dt.date(2020, 3, 1)
    assert summary.end == dt.date(2021, 2, 28)  # 365 days
    dates = pd.to_datetime(pd.read_csv(tmp_path / "orders.csv", usecols=["order_date"])["order_date"])
    assert dates.min() >= pd.Timestamp("2020-03-01") and dates.max() <= pd.Timestamp("2021-02-28")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"order_lines": 0}, "order_lines"),
        ({"seed": -1}, "seed"),
        ({"years": 0.0}, "years"),
        ({"chunk_lines": 0}, "chunk_lines"),
    ],
)
def test_bad_arguments_are_configuration_errors(
    tmp_path: Path, kwargs: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        generate_company(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.csv"
    target.write_text("x")
    with pytest.raises(ConfigurationError, match="not a folder"):
        generate_company(target, order_lines=100)
