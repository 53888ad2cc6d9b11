"""Accuracy benchmark: the project's published champions against the published baselines.

Three data sets, in one run:

* ``cdnow``: CDNOW (23,570 customers who first bought in Q1 1997, 69,659 purchases to June
  1998), the data set of the customer-lifetime literature, as shipped in the ``lifetimes``
  package (``lifetimes/datasets/CDNOW_master.txt``);
* ``bikes``: the bike-sales transactions shipped in ``pytimetk`` (``bike_sales_sample.csv``:
  2,466 order lines, 30 bike shops, 2011–2015);
* ``generated``: a company from ``salesbi generate`` (``generate_company``) over 78 weeks, the
  generator's planted personas being the truth.

Both real data sets install from ``bench/requirements.lock`` (``make bench``); nothing is
downloaded at run time.

**Forecast** (total and sub-series per data set): ``R`` rolling evaluation origins, each the
start of one of the last ``R`` horizons.  At each origin the engine (``run_engine``: backtest,
champion per series, conformal intervals) sees only the data before it and publishes its
champion; statsforecast's AutoETS, AutoARIMA, AutoTheta, SeasonalNaive, Naive and WindowAverage
are fitted on exactly the same data, and every model is scored on the same next ``H`` periods:
WAPE pooled over series, origins and steps; MASE (mean over series and origins, scale = in-sample
MAE of the seasonal naive, naive below two seasons); empirical coverage of the 80 % / 95 %
intervals.  Our own baselines (the engine's naive, window average, seasonal naive, Theta,
damped ETS, LightGBM) are scored beside them, with the fit times: this is the measurement of
the statsforecast-vs-statsmodels decision (issue 17, deliverable 2).

**Customer prediction** with the classic split: ``predict_customer_sales`` with a 273-day
(39-week) horizon on 78 weeks of history (one calibration window: features from the
calibration period, targets in the holdout window, scored on the half of the customers that
LightGBM did not learn from).  The published champion is compared with every candidate the
project scores (BG/NBD + Gamma-Gamma, naive baselines, LightGBM); ``lifetimes``' own
BG/NBD + Gamma-Gamma is fitted on the same calibration period and scored on the same customers
as an outside reference implementation.

    .venv/bin/python bench/accuracy.py                     # all three, 3 evaluation origins
    .venv/bin/python bench/accuracy.py --only cdnow --origins 2
    .venv/bin/python bench/accuracy.py --only bikes --skip customers --coverage-origins 4
    .venv/bin/python bench/accuracy.py --cap-share 0.2 --cap-seeds 3   # LightGBM caps at 20 % of the rows
    .venv/bin/python bench/accuracy.py --cap-source /work/bench-data/gen1m --cap-seeds 2   # its own cap
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesbi.forecasting.engine import MODELS, run_engine
from salesbi.forecasting.evaluate import naive_mae
from salesbi.forecasting.series import SEASON, SeriesPanel, choose_frequency, choose_horizon

LEVELS = (80, 95)
#: the classic split: 39 weeks of calibration, 39 weeks of holdout
SPLIT_DAYS = 273


@dataclass
class Dataset:
    """One benchmark data set: order lines and customers in the shapes the project reads."""

    name: str
    source: str
    fact: pd.DataFrame  # customer_id, order_id, order_date, net_sales, is_cancelled, product_line_id, ...
    customers: pd.DataFrame  # customer_id, customer_name, sales_rep_id
    series_keys: dict[str, str]  # series level → column of ``fact`` splitting the total
    as_of: date  # end (exclusive) of the customer-prediction holdout


def _package_file(package: str, relative: str) -> Path:
    """Return the path of a data file shipped inside an installed package (without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: run `make bench` (bench/requirements.lock)")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _customers(ids: pd.Series) -> pd.DataFrame:
    unique = pd.Series(ids.astype("string").unique(), dtype="string")
    return pd.DataFrame(
        {"customer_id": unique, "customer_name": unique, "sales_rep_id": pd.Series([None] * len(unique))}
    )


def _fact(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` (customer_id, order_id, order_date, net_sales, extra keys) with the fact columns."""
    out = frame.copy()
    out["customer_id"] = out["customer_id"].astype("string")
    out["order_id"] = out["order_id"].astype("string")
    out["order_date"] = pd.to_datetime(out["order_date"]).astype("datetime64[s]")
    out["is_cancelled"] = False
    if "product_line_id" not in out.columns:
        out["product_line_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["employee_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out


def cdnow() -> Dataset:
    """Return CDNOW_master (lifetimes): one line per customer and day, amounts in dollars."""
    path = _package_file("lifetimes", "datasets/CDNOW_master.txt")
    raw = pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "cds", "dollars"])
    raw = raw[raw["dollars"] > 0]
    frame = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "order_id": [f"{c}-{d}" for c, d in zip(raw["customer_id"], raw["date"], strict=True)],
            "order_date": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
            "net_sales": raw["dollars"].astype("float64"),
            # customers' size band: 1 CD, 2–3, 4+ per purchase (no product data in CDNOW)
            "basket": pd.cut(raw["cds"], [0, 1, 3, 10_000], labels=["1 cd", "2-3 cds", "4+ cds"]).astype(str),
        }
    )
    # orders on the same day by the same customer are one order (as in the literature)
    frame = frame.groupby(["customer_id", "order_id", "order_date"], as_index=False).agg(
        net_sales=("net_sales", "sum"), basket=("basket", "first")
    )
    fact = _fact(frame)
    return Dataset(
        "cdnow",
        f"lifetimes 0.11.3 `datasets/CDNOW_master.txt`: {frame['customer_id'].nunique():,} customers, "
        f"{len(frame):,} orders (same-day purchases merged), 1997-01-01 … 1998-06-30",
        fact,
        _customers(fact["customer_id"]),
        {"basket": "basket"},
        date(1998, 7, 1),
    )


def bikes() -> Dataset:
    """Return pytimetk's bike-sales sample: bike shops' orders of bicycles, 2011–2015."""
    raw = pd.read_csv(_package_file("pytimetk", "datasets/bike_sales_sample.csv"))
    frame = pd.DataFrame(
        {
            "customer_id": raw["bikeshop_name"].astype(str),
            "order_id": raw["order_id"].astype(str),
            "order_date": pd.to_datetime(raw["order_date"]),
            "net_sales": raw["total_price"].astype("float64"),
            "category": raw["category_2"].astype(str),
            "product_line_id": raw["category_1"].astype(str),
        }
    )
    fact = _fact(frame)
    last = pd.Timestamp(fact["order_date"].max()).date()
    return Dataset(
        "bikes",
        f"pytimetk 2.5.3 `datasets/bike_sales_sample.csv`: {len(raw):,} order lines, "
        f"{raw['order_id'].nunique():,} orders, {raw['bikeshop_name'].nunique()} bike shops, "
        f"{raw['order_date'].min()} … {raw['order_date'].max()}",
        fact,
        _customers(fact["customer_id"]),
        {"category_1": "product_line_id", "category_2": "category"},
        date.fromordinal(last.toordinal() + 1),
    )


def generated(order_lines: int, seed: int) -> Dataset:
    """Return a generated company over 78 weeks (the classic split's span)."""
    from salesbi.generate import generate_company
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.reports.fact import build_fact_order_lines

    with tempfile.TemporaryDirectory() as tmp:
        generate_company(Path(tmp), order_lines, seed, years=1.5)
        core = core_frames(read_source(Path(tmp), "canonical"))
    fact = build_fact_order_lines(core)
    last = pd.Timestamp(fact["order_date"].max()).date()
    customers = core["customers"]
    return Dataset(
        "generated",
        f"generate_company(order_lines={order_lines:,}, seed={seed}, years=1.5): "
        f"{fact['customer_id'].nunique():,} customers, {fact['order_id'].nunique():,} orders",
        fact,
        customers,
        {"product_line": "product_line_id"},
        date.fromordinal(last.toordinal() + 1),
    )


# ---------------------------------------------------------------- forecast


def period_start(dates: pd.Series, frequency: str) -> pd.Series:
    """Return the first day of each date's period (weeks start on Monday)."""
    d = pd.to_datetime(dates).dt.normalize()
    if frequency == "D":
        return d
    if frequency == "W":
        return d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    return d.dt.to_period("M").dt.start_time


def panel_of(data: Dataset, frequency: str) -> SeriesPanel:
    """Return the total and per-key series of net sales (complete periods only, gaps as 0)."""
    fact = data.fact[~data.fact["is_cancelled"]].copy()
    fact["period"] = period_start(fact["order_date"], frequency)
    step = {"D": "D", "W": "W-MON", "M": "MS"}[frequency]
    calendar = pd.date_range(fact["period"].min(), fact["period"].max(), freq=step)
    last_day = pd.Timestamp(fact["order_date"].max()).normalize()
    end = {
        "D": calendar[-1],
        "W": calendar[-1] + pd.Timedelta(days=6),
        "M": calendar[-1] + pd.offsets.MonthEnd(0),
    }
    if last_day < end[frequency]:  # the last period is not covered to its end
        calendar = calendar[:-1]
    rows: list[np.ndarray] = []
    meta: list[dict[str, Any]] = []
    total = fact.groupby("period")["net_sales"].sum().reindex(calendar, fill_value=0.0)
    rows.append(total.to_numpy(dtype="float64"))
    meta.append({"series_id": "total", "series_level": "total", "series_name": "All sales"})
    for level, column in data.series_keys.items():
        by = fact.groupby([column, "period"])["net_sales"].sum()
        for key in sorted(fact[column].dropna().unique()):
            rows.append(by.loc[key].reindex(calendar, fill_value=0.0).to_numpy(dtype="float64"))
            meta.append({"series_id": f"{level}:{key}", "series_level": level, "series_name": str(key)})
    frame = pd.DataFrame(meta)
    frame["country_code"] = None
    return SeriesPanel(frequency, pd.DatetimeIndex(calendar), np.vstack(rows), frame)


def statsforecast_run(
    panel: SeriesPanel, horizon: int
) -> tuple[dict[str, np.ndarray], dict[str, dict[int, tuple[np.ndarray, np.ndarray]]], float]:
    """Return (forecasts {model: (n, H)}, intervals {model: {level: (lo, hi)}}, seconds) of statsforecast.

    Seasonal models get the season when two seasons are known (else none); SeasonalNaive only
    with a full season; WindowAverage over one season (or the history); a failed fit → Naive.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive, WindowAverage

    season = SEASON[panel.frequency]
    m = season if panel.n_periods >= 2 * season else 1
    models: list[Any] = [AutoETS(season_length=m), AutoARIMA(season_length=m), AutoTheta(season_length=m)]
    models += [Naive(), WindowAverage(window_size=min(season, panel.n_periods))]
    if panel.n_periods >= season:
        models.append(SeasonalNaive(season_length=season))
    n, t = panel.n_series, panel.n_periods
    df = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:05d}" for i in range(n)], t),
            "ds": np.tile(panel.dates.to_numpy(), n),
            "y": panel.values.ravel(),
        }
    )
    freq = {"D": "D", "W": "7D", "M": "MS"}[panel.frequency]
    # WindowAverage has no intervals: asked for levels, statsforecast would replace it by the
    # fallback (Naive) silently, so it runs in a call of its own without levels
    window = [mod for mod in models if isinstance(mod, WindowAverage)]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_levels = StatsForecast(
            models=[mod for mod in models if mod not in window], freq=freq, n_jobs=1, fallback_model=Naive()
        ).forecast(h=horizon, df=df, level=list(LEVELS))
        plain = StatsForecast(models=window, freq=freq, n_jobs=1).forecast(h=horizon, df=df)
    seconds = time.perf_counter() - t0
    fc = with_levels.merge(plain, on=["unique_id", "ds"], how="left", validate="one_to_one")
    fc = fc.sort_values(["unique_id", "ds"], kind="stable")

    def grid(col: str) -> np.ndarray:
        return np.clip(fc[col].to_numpy(dtype="float64").reshape(n, horizon), 0.0, None)

    points: dict[str, np.ndarray] = {}
    bounds: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for model in models:
        name = repr(model)
        if name not in fc.columns:
            continue
        points[name] = grid(name)
        if all(f"{name}-lo-{lv}" in fc.columns for lv in LEVELS):
            bounds[name] = {lv: (grid(f"{name}-lo-{lv}"), grid(f"{name}-hi-{lv}")) for lv in LEVELS}
    return points, bounds, seconds


@dataclass
class Score:
    """Accumulated errors of one model over evaluation origins."""

    abs_error: float = 0.0
    abs_actual: float = 0.0
    mase: list[float] | None = None
    inside: dict[int, int] | None = None
    points: int = 0
    bounded_points: int = 0
    partial: bool = False

    def add(
        self,
        truth: np.ndarray,
        fc: np.ndarray,
        history: np.ndarray,
        season: int,
        bounds: dict[int, tuple[np.ndarray, np.ndarray]] | None,
    ) -> None:
        """Add one origin's forecasts (n, H) against the truth (n, H)."""
        self.abs_error += float(np.abs(truth - fc).sum())
        self.abs_actual += float(np.abs(truth).sum())
        self.mase = self.mase or []
        for i in range(truth.shape[0]):
            scale = naive_mae(history[i], season)
            if scale and np.isfinite(scale):
                self.mase.append(float(np.abs(truth[i] - fc[i]).mean()) / scale)
        if bounds is not None:
            self.inside = self.inside or dict.fromkeys(LEVELS, 0)
            for lv, (lo, hi) in bounds.items():
                self.inside[lv] += int(((truth >= lo) & (truth <= hi)).sum())
            self.bounded_points += truth.size
        self.points += truth.size

    def row(self, name: str) -> tuple[str, float, float, float, float]:
        """Return (name, WAPE, MASE, coverage 80, coverage 95); coverage over the points with intervals."""
        cov = {lv: (self.inside[lv] / self.bounded_points if self.inside else float("nan")) for lv in LEVELS}
        name += " *" if self.partial else ""
        wape = self.abs_error / self.abs_actual if self.abs_actual else float("nan")
        mase = float(np.mean(self.mase)) if self.mase else float("nan")
        return name, wape, mase, cov[80], cov[95]


CHAMPION = "champion (published)"


def forecast_benchmark(data: Dataset, origins: int, jobs: int, coverage_origins: int = 0) -> str:
    """Return the markdown forecast table of one data set (rolling evaluation origins).

    WAPE, MASE and the table's coverage are over the last ``origins`` horizons (the literature's
    split); with ``coverage_origins`` > ``origins`` every model (ours and statsforecast alike) is
    also run at the earlier origins (those where the engine has a backtest to calibrate on) and a
    second table gives the coverage over all of them.
    """
    orders = data.fact.drop_duplicates("order_id")
    frequency = choose_frequency(orders["order_date"])
    panel = panel_of(data, frequency)
    horizon = choose_horizon(frequency, panel.n_periods - origins * 3, 3)
    season = SEASON[frequency]
    scores: dict[str, Score] = {}
    every: dict[str, Score] = {}  # all ``coverage_origins`` origins (coverage only)
    every_origins: list[int] = []
    seconds = {"engine": 0.0, "lightgbm": 0.0, "baselines": 0.0, "statsforecast": 0.0}
    champions: dict[str, int] = {}
    sf_per_origin: list[float] = []
    for r in range(max(origins, coverage_origins), 0, -1):
        cut = panel.n_periods - r * horizon
        seen = SeriesPanel(frequency, panel.dates[:cut], panel.values[:, :cut], panel.meta)
        truth = panel.values[:, cut : cut + horizon]
        headline = r <= origins
        t0 = time.perf_counter()
        out = run_engine(seen, horizon, 3, 0, n_jobs=jobs)
        if not headline and not out.origins:
            continue  # an earlier origin without a backtest has no intervals: no coverage for anyone
        if headline:
            seconds["engine"] += time.perf_counter() - t0
            seconds["lightgbm"] += out.seconds.get("lightgbm", 0.0)
            seconds["baselines"] += out.seconds.get("baselines", 0.0)
        n = panel.n_series
        champ = np.stack([out.future[out.champion[i]][i] for i in range(n)])
        champ_bounds = {
            lv: tuple(
                np.stack([out.future_bounds[out.champion[i]][lv / 100][side][i] for i in range(n)])
                for side in (0, 1)
            )
            for lv in LEVELS
        }
        for c in out.champion if headline else []:
            champions[c] = champions.get(c, 0) + 1
        candidates: dict[str, tuple[np.ndarray, Any]] = {CHAMPION: (champ, champ_bounds)}
        for m in MODELS:
            fb = out.future_bounds.get(m)
            candidates[f"ours: {m}"] = (out.future[m], {lv: fb[lv / 100] for lv in LEVELS} if fb else None)
        every_origins.append(cut)
        points, bounds, sf_s = statsforecast_run(seen, horizon)
        if headline:
            seconds["statsforecast"] += sf_s
            sf_per_origin.append(sf_s)
        for name, fc in points.items():
            candidates[f"statsforecast {name}"] = (fc, bounds.get(name))
        for name, (fc, bd) in candidates.items():
            partial = bool(np.isnan(fc).any())
            if partial:  # a model with no forecast for some series (not a candidate there)
                fc = np.where(np.isnan(fc), champ, fc)
            if bd is not None and any(np.isnan(b).any() for pair in bd.values() for b in pair):
                bd = None  # intervals missing for some series at this origin: coverage from the others
            for book in (scores, every) if headline else (every,):
                score = book.setdefault(name, Score())
                score.partial |= partial
                score.add(truth, fc, seen.values, season, bd)
    rows = [s.row(name) for name, s in scores.items()]
    best_base = min((r for r in rows if r[0].startswith("statsforecast")), key=lambda r: r[1])
    best_ours = min((r for r in rows if r[0].startswith("ours")), key=lambda r: r[1])
    lines = [
        f"### Forecast — {data.name}",
        "",
        f"{panel.n_series} series ({', '.join(['total', *data.series_keys])}), frequency {frequency} "
        f"(chosen from the data), horizon {horizon}, {origins} evaluation origins "
        f"(the last {origins} horizons of {panel.n_periods} periods).",
        "",
        "| model | WAPE | MASE | coverage 80 | coverage 95 |",
        "|---|---:|---:|---:|---:|",
    ]

    def fmt(v: float) -> str:
        return "—" if not np.isfinite(v) else f"{v:.3f}"

    for name, wape, mase, c80, c95 in rows:
        mark = "**" if name in (CHAMPION, best_base[0]) else ""
        lines.append(f"| {mark}{name}{mark} | {fmt(wape)} | {fmt(mase)} | {fmt(c80)} | {fmt(c95)} |")
    champ_row = next(r for r in rows if r[0] == CHAMPION)
    inside = scores[CHAMPION].inside
    covered = (
        "champion interval coverage "
        + ", ".join(f"{lv} %: {inside[lv]}/{scores[CHAMPION].bounded_points}" for lv in LEVELS)
        + " points; "
        if inside
        else "no champion intervals; "
    )
    verdict = (
        "beats"
        if champ_row[1] < best_base[1] * 0.99
        else ("matches" if champ_row[1] <= best_base[1] * 1.01 else "loses to")
    )
    lines += [
        "",
        f"Champion WAPE {champ_row[1]:.3f} {verdict} the best statsforecast baseline "
        f"({best_base[0]}, {best_base[1]:.3f}); {covered}champions chosen: "
        + ", ".join(f"{m} {k}" for m, k in sorted(champions.items(), key=lambda kv: -kv[1]))
        + f". Time over the last {origins} origins: engine {seconds['engine']:.1f} s "
        f"(LightGBM {seconds['lightgbm']:.1f} s, "
        f"statsmodels baselines {seconds['baselines']:.1f} s); "
        f"statsforecast {seconds['statsforecast']:.1f} s for {len(points)} models "
        f"(per origin {', '.join(f'{x:.1f}' for x in sf_per_origin)} s: "
        + (
            "numba's compilation at the first, earlier origin). "
            if len(every_origins) > origins
            else "the first includes numba's compilation). "
        )
        + f"Best single model of ours: {best_ours[0]} {best_ours[1]:.3f}. "
        "`*`: a model without a forecast for some series at some origin (not a candidate there), "
        "the champion's forecast used there; coverage only where the model has intervals.",
        "",
    ]
    if coverage_origins > origins:
        lines += [
            f"Coverage over the last {coverage_origins} evaluation origins where the engine has a "
            f"backtest ({len(every_origins)} origins; the same split for every model):",
            "",
            "| model | coverage 80 | coverage 95 | points with intervals |",
            "|---|---:|---:|---:|",
        ]
        for name, sc in every.items():
            _, _, _, c80, c95 = sc.row(name)
            if sc.inside:
                lines.append(f"| {name} | {fmt(c80)} | {fmt(c95)} | {sc.bounded_points} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- customer prediction


def lifetimes_reference(
    data: Dataset, as_of: pd.Timestamp, horizon_days: int
) -> dict[str, np.ndarray] | None:
    """Return lifetimes' BG/NBD + Gamma-Gamma on the project's holdout customers, with their targets.

    Calibration = orders before ``as_of − horizon``; the customers scored are those the project
    scores (its seeded half of the customers known at the calibration end).
    """
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from salesbi.prediction.features import prepare
    from salesbi.prediction.predict import _folds, training_frame
    from salesbi.segmentation.history import lines_from_fact

    lines = lines_from_fact(data.fact)
    lines = lines[lines["order_date"] < as_of]
    e = as_of - pd.Timedelta(days=horizon_days)
    at_e = training_frame(prepare(lines), [e], horizon_days)
    holdout = at_e[~(_folds(len(at_e), 0) == 1)]
    ids = (
        holdout.index.get_level_values("customer_id")
        if "customer_id" in holdout.index.names
        else holdout.index
    )
    cal = lines[(lines["order_date"] < e) & ~lines["is_cancelled"]]
    days = cal.groupby(["customer_id", "order_date"], observed=True)["net_sales"].sum().reset_index()
    g = days.groupby("customer_id", observed=True)
    first, last, n = g["order_date"].min(), g["order_date"].max(), g.size()
    value = g["net_sales"].sum()
    first_value = days.sort_values("order_date").groupby("customer_id", observed=True)["net_sales"].first()
    summary = pd.DataFrame(
        {
            "frequency": (n - 1).astype(float),
            "recency": (last - first).dt.days.astype(float),
            "T": (e - first).dt.days.astype(float),
            "monetary": ((value - first_value) / (n - 1).where(n > 1)).fillna(0.0),
        }
    )
    from lifetimes.utils import ConvergenceError

    bgf = BetaGeoFitter(penalizer_coef=0.0)
    try:
        bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    except ConvergenceError:  # lifetimes' own advice: a small penalizer
        bgf = BetaGeoFitter(penalizer_coef=0.001)
        try:
            bgf.fit(summary["frequency"], summary["recency"], summary["T"])
        except ConvergenceError:
            return None
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary"])
    s = summary.reindex(pd.Index(ids.astype(str)))
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon_days, s["frequency"], s["recency"], s["T"]
    ).to_numpy(dtype="float64")
    spend = ggf.conditional_expected_average_profit(s["frequency"], s["monetary"]).to_numpy(dtype="float64")
    # P(at least one purchase in the window) = P(alive) · (1 − P(0 purchases | alive)) is not in
    # lifetimes' API; its probability of n purchases in a window is for a new customer only, so the
    # reference reports sales metrics only.
    # a customer whose calibration orders were all cancelled has no summary: 0 expected
    return {
        "sales": np.clip(np.nan_to_num(purchases * spend, nan=0.0), 0.0, None),
        "target_sales": holdout["target_sales"].to_numpy(dtype="float64"),
    }


def customer_benchmark(data: Dataset) -> str:
    """Return the markdown customer-prediction table of one data set (the classic 39 + 39 weeks split)."""
    from salesbi.prediction import predict_customer_sales
    from salesbi.prediction.predict import _errors, _spearman, top_decile_share

    as_of = pd.Timestamp(data.as_of)
    start = as_of - pd.Timedelta(days=2 * SPLIT_DAYS)
    first = pd.Timestamp(data.fact["order_date"].min())
    if first > start + pd.Timedelta(days=SPLIT_DAYS // 2):
        n = data.fact["customer_id"].nunique()
        return (
            f"### Customer prediction — {data.name}\n\nNot run: {n} customers over "
            f"{(as_of - first).days} days cannot hold the 39 + 39 weeks split "
            "(`predict_customer_sales` returns `too_thin` and the naive baseline there).\n"
        )
    fact = data.fact[data.fact["order_date"] >= start]
    t0 = time.perf_counter()
    result = predict_customer_sales(fact, data.customers, as_of=data.as_of, horizon_days=SPLIT_DAYS)
    seconds = time.perf_counter() - t0
    sales = next(r for r in result.model_runs if r.model_name == "customer_sales").metrics
    order = next(r for r in result.model_runs if r.model_name == "customer_order_probability").metrics
    window = sales.get("eval_window", ["?", "?"])
    lines = [
        f"### Customer prediction — {data.name}",
        "",
        f"Calibration {start.date()} … {(as_of - pd.Timedelta(days=SPLIT_DAYS + 1)).date()}, holdout "
        f"{window[0]} … {window[1]} (39 + 39 weeks), design `{sales.get('design')}`, "
        f"{sales.get('eval_customers', 0):,} customers scored, status `{result.model_runs[0].status}`, "
        f"{seconds:.1f} s.",
        "",
        "| sales model | MAE | RMSE | Spearman | top-decile share | total error |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def cell(v: Any, fmt: str = ".3f") -> str:
        return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    champion = sales.get("sales_method")
    for m in sales.get("rmse", {}):
        label = f"**{m} (champion)**" if m == champion else m
        lines.append(
            f"| {label} | {cell(sales['mae'][m], '.2f')} | {cell(sales['rmse'][m], '.2f')} "
            f"| {cell(sales['spearman'].get(m))} | {cell(sales['top_decile_share'].get(m))} "
            f"| {cell(sales['total_error'].get(m), '+.3f')} |"
        )
    if data.name != "bikes" and sales.get("rmse"):
        # the same 78 weeks the project saw: its seeded half of the same customers is scored
        ref = lifetimes_reference(replace(data, fact=fact), as_of, SPLIT_DAYS)
        if ref is None:
            lines.append("| lifetimes BG/NBD + Gamma-Gamma (reference) | did not converge | | | | |")
        else:
            y, p = ref["target_sales"], ref["sales"]
            if abs(float(y.sum()) - float(sales["eval_actual_sales"])) > 0.01 * max(1.0, float(y.sum())):
                raise SystemExit(f"{data.name}: the reference scored other customers than the project")
            mae, rmse = _errors(y, p)
            total = float(y.sum())
            lines.append(
                f"| lifetimes BG/NBD + Gamma-Gamma (reference) | {mae:.2f} | {rmse:.2f} | "
                f"{cell(_spearman(y, p))} | {cell(top_decile_share(y, p))} "
                f"| {cell(float(p.sum()) / total - 1.0 if total else None, '+.3f')} |"
            )
    lines += ["", "| order-probability model | Brier | log-loss | ROC AUC |", "|---|---:|---:|---:|"]
    p_champion = order.get("probability_method")
    for m in order.get("brier", {}):
        label = f"**{m} (champion)**" if m == p_champion else m
        lines.append(
            f"| {label} | {cell(order['brier'][m], '.4f')} | {cell(order.get('log_loss', {}).get(m), '.4f')} "
            f"| {cell(order.get('roc_auc', {}).get(m))} |"
        )
    lines += [
        "",
        f"Ordering customers in the holdout: {order.get('eval_ordering_customers', '?')} of "
        f"{order.get('eval_customers', '?')}; sales champion `{champion}` (runner-up "
        f"`{sales.get('sales_runner_up')}`, best baseline `{sales.get('sales_baseline')}`); probability "
        f"champion `{p_champion}`. {result.model_runs[0].notes or ''}".rstrip(),
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- training caps (issue 18)

#: the forecast's ways of drawing the rows above its cap, and "uncapped" (every row)
FORECAST_SAMPLINGS = ("uncapped", "uniform", "stratified", "recent")
#: the customer prediction's: its stratified sample (origin × ordered), a uniform one, every row
PREDICTION_SAMPLINGS = ("uncapped", "uniform", "stratified")


def _lgbm_fit_cpu() -> tuple[dict[str, float], Any]:
    """Return (a counter of the forecast LightGBM fits' CPU seconds, the engine's timed fit function).

    The fits run in the caller's thread (one LightGBM thread, ``workers`` 1), so the thread's CPU
    time around ``fit_models`` is theirs alone, whatever the machine's load.
    """
    from salesbi.forecasting import engine

    counter = {"cpu": 0.0}
    original = engine.fit_models

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            counter["cpu"] += time.thread_time() - t0

    return counter, timed


def _spread(values: list[float], fmt: str) -> str:
    """Return the mean of ``values``, with their range when there are several."""
    mean = format(float(np.mean(values)), fmt)
    if len(values) < 2:
        return mean
    return f"{mean} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def forecast_caps_benchmark(data: Dataset, origins: int, jobs: int, share: float, seeds: int = 1) -> str:
    """Return the markdown table of the forecast LightGBM's cap forced to ``share`` of its rows.

    The same split and evaluation origins as :func:`forecast_benchmark`; at each origin the cap is
    ``share`` × the candidate rows of the engine's final fit (the cap bites on every fit as it does
    in production on long histories), and the engine runs once per way of drawing the rows
    (:data:`FORECAST_SAMPLINGS`) and per seed (``random_state`` 0 … ``seeds`` − 1: the sample's
    and LightGBM's bagging, so "uncapped" runs per seed too).  LightGBM alone and the published
    champion are scored; each cell is the mean over the seeds (their range in brackets).
    """
    orders = data.fact.drop_duplicates("order_id")
    panel = panel_of(data, choose_frequency(orders["order_date"]))
    title = f"Forecast LightGBM capped at {share:.0%} of its rows — {data.name}"
    return _forecast_caps(panel, origins, jobs, seeds, lambda rows: max(10, round(share * rows)), title)


def production_cap_benchmark(source: Path, origins: int, jobs: int, seeds: int = 1) -> str:
    """Return the markdown table of the forecast LightGBM at its own cap on a canonical source folder.

    The series are the pipeline's (``build_series`` of the fact: total, product lines, top 5
    countries, offices; the frequency it chooses, weeks from Monday) and the cap is
    ``MAX_TRAIN_ROWS``, so it bites only where it does in ``salesbi run`` (e.g. 1M daily lines).
    """
    from salesbi.forecasting.lgbm import MAX_TRAIN_ROWS
    from salesbi.forecasting.series import build_series, frequency_choice, order_dates
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.reports.fact import build_fact_order_lines

    core = core_frames(read_source(source, "canonical"))
    fact = build_fact_order_lines(core)
    frequency, _ = frequency_choice(order_dates(fact), 0)
    panel = build_series(fact, core["customers"], core["product_lines"], core["offices"], frequency, 5, 0)
    del core, fact
    title = f"Forecast LightGBM at its cap ({MAX_TRAIN_ROWS:,} rows) — {source.name}"
    return _forecast_caps(panel, origins, jobs, seeds, lambda rows: MAX_TRAIN_ROWS, title, ".4f")


def _forecast_caps(
    panel: SeriesPanel,
    origins: int,
    jobs: int,
    seeds: int,
    cap_of: Any,
    title: str,
    fmt: str = ".3f",
) -> str:
    """Return the markdown table of the engine on ``panel`` with its LightGBM cap ``cap_of(rows)``.

    ``rows``: the candidate rows of the engine's final fit at each evaluation origin.  See
    :func:`forecast_caps_benchmark` for the origins, the seeds and the scores.
    """
    from salesbi.forecasting import engine
    from salesbi.forecasting.lgbm import LightGBMConfig, candidate_rows

    frequency = panel.frequency
    horizon = choose_horizon(frequency, panel.n_periods - origins * 3, 3)
    season = SEASON[frequency]
    counter, timed = _lgbm_fit_cpu()
    scores: dict[tuple[str, str, int], Score] = {}
    cpu = {(how, seed): 0.0 for how in FORECAST_SAMPLINGS for seed in range(seeds)}
    caps: list[tuple[int, int]] = []
    engine.fit_models, original = timed, engine.fit_models
    try:
        for r in range(origins, 0, -1):
            cut = panel.n_periods - r * horizon
            seen = SeriesPanel(frequency, panel.dates[:cut], panel.values[:, :cut], panel.meta)
            truth = panel.values[:, cut : cut + horizon]
            candidates = candidate_rows(seen.n_series, seen.n_periods - 1, horizon, frequency)
            cap = int(cap_of(candidates))
            caps.append((candidates, cap))
            for how in FORECAST_SAMPLINGS:
                for seed in range(seeds):
                    config = LightGBMConfig(
                        max_train_rows=10**12 if how == "uncapped" else cap,
                        sampling="uniform" if how == "uncapped" else how,
                        random_state=seed,
                    )
                    counter["cpu"] = 0.0
                    out = run_engine(seen, horizon, 3, seed, n_jobs=jobs, lgbm_config=config)
                    cpu[(how, seed)] += counter["cpu"]
                    champ = np.stack([out.future[out.champion[i]][i] for i in range(seen.n_series)])
                    lgbm = out.future["lightgbm"]
                    lgbm = np.where(np.isnan(lgbm), champ, lgbm)
                    for model, fc in (("champion", champ), ("lightgbm", lgbm)):
                        book = scores.setdefault((how, model, seed), Score())
                        book.add(truth, fc, seen.values, season, None)
    finally:
        engine.fit_models = original
    lines = [
        f"### {title}",
        "",
        f"{panel.n_series} series, frequency {frequency}, horizon {horizon}, {origins} evaluation origins, "
        f"{seeds} seed(s); "
        "final fit's candidate rows → cap per origin: " + ", ".join(f"{c:,} → {k:,}" for c, k in caps) + ".",
        "",
        "| rows drawn | LightGBM WAPE | LightGBM MASE | champion WAPE | champion MASE "
        "| LightGBM fits CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for how in FORECAST_SAMPLINGS:
        per_seed = [
            (scores[(how, "lightgbm", k)].row(how), scores[(how, "champion", k)].row(how))
            for k in range(seeds)
        ]
        cells = [
            _spread([float(x[j][i]) for x in per_seed], fmt) for j, i in ((0, 1), (0, 2), (1, 1), (1, 2))
        ]
        fit = _spread([cpu[(how, k)] for k in range(seeds)], ".1f")
        lines.append(f"| {how} | {' | '.join(cells)} | {fit} |")
    return "\n".join([*lines, ""])


def prediction_caps_benchmark(data: Dataset, share: float, seeds: int = 1) -> str:
    """Return the markdown table of the customer prediction's LightGBM cap forced to ``share`` of its rows.

    The classic 39 + 39 weeks split of :func:`customer_benchmark`; every LightGBM fit reads
    ``share`` of its training rows, drawn as the project draws them above ``MAX_TRAIN_ROWS``
    (stratified by origin × ordered), uniformly, or not at all (uncapped).  The holdout scores
    of LightGBM itself and of the published champions.  The samples are drawn with seeds 0 …
    ``seeds`` − 1 (the customers' split and LightGBM's own seed stay the run's): each capped
    cell is the mean over the seeds (their range in brackets).
    """
    from salesbi.prediction import predict, predict_customer_sales

    as_of = pd.Timestamp(data.as_of)
    start = as_of - pd.Timedelta(days=2 * SPLIT_DAYS)
    if pd.Timestamp(data.fact["order_date"].min()) > start + pd.Timedelta(days=SPLIT_DAYS // 2):
        return f"### Customer prediction capped — {data.name}\n\nNot run: too short for the split.\n"
    fact = data.fact[data.fact["order_date"] >= start]
    original_cap, original_max = predict._cap, predict.MAX_TRAIN_ROWS
    used: list[tuple[int, int]] = []

    def capper(how: str, seed: int) -> Any:
        def cap(frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
            k = max(10, round(share * len(frame)))
            used.append((len(frame), k))
            if how == "uncapped":
                return frame
            if how == "uniform":
                rng = np.random.default_rng(seed)
                return frame.iloc[np.sort(rng.choice(len(frame), size=k, replace=False))]
            predict.MAX_TRAIN_ROWS = k  # the project's own stratified sample at this cap
            try:
                return original_cap(frame, seed)
            finally:
                predict.MAX_TRAIN_ROWS = original_max

        return cap

    lines = [
        f"### Customer prediction LightGBM capped at {share:.0%} of its rows — {data.name}",
        "",
        "| rows drawn | fit rows → cap | LightGBM RMSE | LightGBM MAE | Spearman | LightGBM AUC "
        "| calibrated Brier | champions (sales / probability) | fit + score CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]

    for how in PREDICTION_SAMPLINGS:
        got: list[list[Any]] = []
        for seed in range(1 if how == "uncapped" else seeds):
            used.clear()
            predict._cap = capper(how, seed)
            try:
                t0 = time.process_time()
                result = predict_customer_sales(
                    fact, data.customers, as_of=data.as_of, horizon_days=SPLIT_DAYS
                )
                seconds = time.process_time() - t0
            finally:
                predict._cap = original_cap
            sales = next(r for r in result.model_runs if r.model_name == "customer_sales").metrics
            order = next(r for r in result.model_runs if r.model_name == "customer_order_probability").metrics
            got.append(
                [
                    sales.get("rmse", {}).get("lightgbm"),
                    sales.get("mae", {}).get("lightgbm"),
                    sales.get("spearman", {}).get("lightgbm"),
                    order.get("roc_auc", {}).get("lightgbm"),
                    order.get("brier", {}).get("lightgbm_calibrated"),
                    f"{sales.get('sales_method')} / {order.get('probability_method')}",
                    seconds,
                ]
            )
        rows = used[0] if used else (0, 0)
        cells = []
        for j, fmt in enumerate((".2f", ".2f", ".3f", ".3f", ".4f")):
            values = [g[j] for g in got]
            cells.append("—" if any(v is None for v in values) else _spread([float(v) for v in values], fmt))
        champions = ", ".join(sorted({str(g[5]) for g in got}))
        lines.append(
            f"| {how} | {rows[0]:,} → {rows[1]:,} | {' | '.join(cells)} | {champions} "
            f"| {_spread([float(g[6]) for g in got], '.1f')} |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", choices=("cdnow", "bikes", "generated"), action="append")
    ap.add_argument("--origins", type=int, default=3, help="rolling evaluation origins of the forecast")
    ap.add_argument(
        "--coverage-origins",
        type=int,
        default=0,
        help="also report interval coverage over this many evaluation origins (more than --origins)",
    )
    ap.add_argument("--order-lines", type=int, default=40_000, help="order lines of the generated company")
    ap.add_argument("--jobs", type=int, default=1, help="processes for the engine's baselines")
    ap.add_argument("--skip", choices=("forecast", "customers"), action="append", default=[])
    ap.add_argument(
        "--cap-share",
        type=float,
        default=None,
        help="instead of the tables above: the LightGBM training caps forced to this share of the rows "
        "(uncapped vs uniform vs stratified samples, same split and origins)",
    )
    ap.add_argument("--cap-seeds", type=int, default=1, help="with --cap-share: samples drawn per way")
    ap.add_argument(
        "--cap-source",
        type=Path,
        default=None,
        help="only this: the forecast LightGBM at its own cap on the pipeline's series of a canonical "
        "source folder (e.g. /work/bench-data/gen1m), per way of drawing the rows and seed",
    )
    args = ap.parse_args(argv)
    which = args.only or ["cdnow", "bikes", "generated"]
    if args.cap_source is not None:
        print("## Accuracy benchmark\n\n`" + " ".join(["bench/accuracy.py", *(argv or sys.argv[1:])]) + "`\n")
        print(production_cap_benchmark(args.cap_source, args.origins, args.jobs, args.cap_seeds), flush=True)
        return
    print("## Accuracy benchmark\n\n`" + " ".join(["bench/accuracy.py", *(argv or sys.argv[1:])]) + "`\n")
    loaders = {"cdnow": cdnow, "bikes": bikes, "generated": lambda: generated(args.order_lines, 7)}
    for name in which:
        data = loaders[name]()
        print(f"**{name}**: {data.source}\n", flush=True)
        if args.cap_share is not None:
            if "forecast" not in args.skip:
                print(
                    forecast_caps_benchmark(data, args.origins, args.jobs, args.cap_share, args.cap_seeds),
                    flush=True,
                )
            if "customers" not in args.skip:
                print(prediction_caps_benchmark(data, args.cap_share, args.cap_seeds), flush=True)
            continue
        if "forecast" not in args.skip:
            print(forecast_benchmark(data, args.origins, args.jobs, args.coverage_origins), flush=True)
        if "customers" not in args.skip:
            print(customer_benchmark(data), flush=True)


if __name__ == "__main__":
    main()
