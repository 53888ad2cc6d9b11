"""Forecast benchmark: accuracy (WAPE/MASE per model) and fit time, LightGBM vs baselines vs Prophet.

Three data sets:

* ``generated``: a company from ``salesbi.generate.generate_company`` (falls back to synthetic
  orders when the generator is absent), all its series (total, product lines, countries, offices);
* ``classicmodels``: ``../shared/datasets/classicmodels`` (monthly, 3 months);
* ``scale``: 1,000 synthetic daily series × 3 years, fitted and backtested with 2 processes.

For each, the last horizon is held out entirely: the engine (backtest, champion choice,
intervals) sees only the data before it, and every model — plus Prophet and statsforecast's
AutoETS, AutoARIMA, AutoTheta, SeasonalNaive, Naive and WindowAverage, fitted per series on the
same data — is scored on the held-out periods.  The backtest table is printed too.

    .venv/bin/python bench/forecast.py            # all three
    .venv/bin/python bench/forecast.py --only scale --series 1000
    .venv/bin/python bench/forecast.py --only classicmodels --no-prophet   # statsforecast only
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from salesbi.forecasting.engine import MODELS, EngineOutput, run_engine
from salesbi.forecasting.evaluate import naive_mae
from salesbi.forecasting.series import SEASON, SeriesPanel, build_series, choose_frequency, choose_horizon
from salesbi.forecasting.synthetic import daily_panel, orders_fact

ROOT = Path(__file__).resolve().parents[1]
CLASSICMODELS = ROOT.parent / "shared" / "datasets" / "classicmodels"


def holdout(panel: SeriesPanel, horizon: int) -> tuple[SeriesPanel, np.ndarray]:
    """Return (the panel without its last ``horizon`` periods, the held-out values)."""
    t = panel.n_periods - horizon
    return SeriesPanel(panel.frequency, panel.dates[:t], panel.values[:, :t], panel.meta), panel.values[:, t:]


def prophet_forecasts(panel: SeriesPanel, horizon: int, rows: list[int]) -> tuple[np.ndarray, float]:
    """Return (Prophet forecasts (len(rows), horizon), seconds) fitted per series on ``panel``."""
    from prophet import Prophet

    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.ERROR)
    freq = {"D": "D", "W": "W-MON", "M": "MS"}[panel.frequency]
    out = np.zeros((len(rows), horizon))
    t0 = time.perf_counter()
    for j, i in enumerate(rows):
        df = pd.DataFrame({"ds": panel.dates, "y": panel.values[i]})
        model = Prophet(
            weekly_seasonality=panel.frequency == "D",
            yearly_seasonality=panel.n_periods * {"D": 1, "W": 7, "M": 30}[panel.frequency] >= 700,
            daily_seasonality=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(df)
        future = model.make_future_dataframe(periods=horizon, freq=freq, include_history=False)
        out[j] = np.clip(model.predict(future)["yhat"].to_numpy(), 0, None)
    return out, time.perf_counter() - t0


def statsforecast_forecasts(panel: SeriesPanel, horizon: int) -> tuple[dict[str, np.ndarray], float]:
    """Return ({model: forecasts (n_series, horizon)}, seconds) of statsforecast's models on ``panel``.

    Seasonal models get the season (7 days, 52 weeks, 12 months) when two seasons are known,
    else none; SeasonalNaive only with a full season; a series a model cannot fit gets Naive.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive, WindowAverage

    season = SEASON[panel.frequency]
    m = season if panel.n_periods >= 2 * season else 1
    models: list[object] = [
        AutoETS(season_length=m),
        AutoARIMA(season_length=m),
        AutoTheta(season_length=m),
        Naive(),
        WindowAverage(window_size=min(season, panel.n_periods)),
    ]
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
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = StatsForecast(models=models, freq=freq, n_jobs=1, fallback_model=Naive()).forecast(
            h=horizon, df=df
        )
    seconds = time.perf_counter() - t0
    fc = fc.sort_values(["unique_id", "ds"], kind="stable")
    out = {}
    for col in fc.columns:
        if col in ("unique_id", "ds"):
            continue
        out[f"sf_{col}"] = np.clip(fc[col].to_numpy(dtype="float64").reshape(n, horizon), 0.0, None)
    return out, seconds


def _wape(truth: np.ndarray, fc: np.ndarray) -> float:
    return float(np.abs(truth - fc).sum() / max(np.abs(truth).sum(), 1e-9))


def _mase(truth: np.ndarray, fc: np.ndarray, history: np.ndarray, season: int) -> float:
    vals = []
    for i in range(truth.shape[0]):
        scale = naive_mae(history[i], season)
        if scale and np.isfinite(scale):
            vals.append(float(np.abs(truth[i] - fc[i]).mean()) / scale)
    return float(np.mean(vals)) if vals else float("nan")


def tables(
    name: str,
    out: EngineOutput,
    truth: np.ndarray,
    prophet: tuple[np.ndarray, float, list[int]] | None,
    extra: dict[str, np.ndarray] | None = None,
) -> str:
    """Return the markdown tables of one data set: held-out accuracy and backtest accuracy."""
    panel = out.panel
    season = SEASON[panel.frequency]
    champ = np.stack([out.future[out.champion[i]][i] for i in range(panel.n_series)])
    forecasts: dict[str, np.ndarray] = {m: out.future[m] for m in MODELS}
    forecasts["champion (published)"] = champ
    forecasts.update(extra or {})
    rows = list(range(panel.n_series)) if prophet is None else prophet[2]
    lines = [
        f"### {name}: held-out last {out.horizon} periods "
        f"({panel.n_series} series, frequency {panel.frequency})",
        "",
        "| model | WAPE (pooled) | mean WAPE per series | mean MASE |"
        + (f" WAPE on Prophet's {len(rows)} series |" if prophet is not None else ""),
        "|---|---:|---:|---:|" + ("---:|" if prophet is not None else ""),
    ]
    for m, fc in forecasts.items():
        per = [_wape(truth[i], fc[i]) for i in range(panel.n_series) if truth[i].sum() > 0]
        mase = _mase(truth, fc, panel.values, season)
        cells = f"| {m} | {_wape(truth, fc):.4f} | {np.mean(per):.4f} | {mase:.3f} |"
        if prophet is not None:
            cells += f" {_wape(truth[rows], fc[rows]):.4f} |"
        lines.append(cells)
    if prophet is not None:
        pf = prophet[0]
        per = [_wape(truth[i], pf[j]) for j, i in enumerate(rows) if truth[i].sum() > 0]
        lines.append(
            f"| prophet ({len(rows)} series) | — | {np.mean(per):.4f} | "
            f"{_mase(truth[rows], pf, panel.values[rows], season):.3f} | {_wape(truth[rows], pf):.4f} |"
        )
    lines += [
        "",
        f"Backtest ({len(out.origins)} origins × {out.horizon} periods), means over series:",
        "",
        "| model | WAPE | MASE | bias | coverage 80 | coverage 95 | champion of |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in MODELS:
        met = out.metrics[m]
        lines.append(
            f"| {m} | {np.nanmean(met['wape']):.4f} | {np.nanmean(met['mase']):.3f} "
            f"| {np.nanmean(met['bias']):+.3f} "
            f"| {np.nanmean(met['coverage_80']):.3f} | {np.nanmean(met['coverage_95']):.3f} "
            f"| {sum(c == m for c in out.champion)} |"
        )

    def bound(level: float, side: int) -> np.ndarray:
        return np.stack([out.future_bounds[out.champion[i]][level][side][i] for i in range(panel.n_series)])

    lo, hi, lo9, hi9 = bound(0.8, 0), bound(0.8, 1), bound(0.95, 0), bound(0.95, 1)
    cov80 = float(((truth >= lo) & (truth <= hi)).mean())
    cov95 = float(((truth >= lo9) & (truth <= hi9)).mean())
    lines += ["", f"Held-out coverage of the published intervals: 80 % → {cov80:.3f}, 95 % → {cov95:.3f}", ""]
    return "\n".join(lines)


def timing(
    name: str, seconds: dict[str, float], total: float, prophet_s: float | None, n_prophet: int
) -> str:
    """Return a one-line markdown timing summary."""
    parts = [f"engine total {total:.1f} s", f"LightGBM {seconds.get('lightgbm', 0):.1f} s"]
    parts.append(f"baselines {seconds.get('baselines', 0):.1f} s")
    if prophet_s is not None:
        parts.append(f"Prophet {prophet_s:.1f} s for {n_prophet} series (one fit each)")
    return f"**{name} fit time**: " + ", ".join(parts) + "\n"


def run_panel(
    name: str,
    panel: SeriesPanel,
    horizon: int,
    n_jobs: int,
    prophet_series: int,
    seed: int = 0,
    statsforecast: bool = True,
) -> str:
    """Return the report of one data set (hold out, run the engine, score every model and Prophet)."""
    seen, truth = holdout(panel, horizon)
    t0 = time.perf_counter()
    out = run_engine(seen, horizon, 3, seed, n_jobs=n_jobs)
    total = time.perf_counter() - t0
    prophet = None
    prophet_s = None
    rows: list[int] = []
    if prophet_series:
        rng = np.random.default_rng(seed)
        n = seen.n_series
        rows = sorted(rng.choice(n, size=min(n, prophet_series), replace=False).tolist())
        pf, prophet_s = prophet_forecasts(seen, horizon, rows)
        prophet = (pf, prophet_s, rows)
    extra, sf_s = statsforecast_forecasts(seen, horizon) if statsforecast else ({}, None)
    line = timing(name, out.seconds, total, prophet_s, len(rows))
    if sf_s is not None:
        line += f"statsforecast: {sf_s:.1f} s for {len(extra)} models × {seen.n_series} series\n"
    return tables(name, out, truth, prophet, extra) + "\n" + line


def generated_panel(order_lines: int, seed: int) -> tuple[SeriesPanel, str]:
    """Return the series of a generated company (synthetic orders if the generator is missing)."""
    try:
        from salesbi.generate import generate_company
        from salesbi.reading.reader import core_frames, read_source
        from salesbi.reports.fact import build_fact_order_lines
    except ImportError:
        fact, customers, product_lines, offices = orders_fact(3 * 364, 60.0, seed=seed, countries=6)
        source = "synthetic orders (salesbi.generate not available)"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generate_company(Path(tmp), order_lines, seed)
            core = core_frames(read_source(Path(tmp), "canonical"))
        fact = build_fact_order_lines(core)
        customers, product_lines, offices = core["customers"], core["product_lines"], core["offices"]
        source = f"generate_company(order_lines={order_lines}, seed={seed})"
    orders = fact.drop_duplicates("order_id")
    freq = choose_frequency(orders["order_date"])
    panel = build_series(fact, customers, product_lines, offices, freq)
    return panel, source


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", choices=("generated", "classicmodels", "scale"), action="append")
    ap.add_argument("--series", type=int, default=1000, help="series of the scale benchmark")
    ap.add_argument("--days", type=int, default=3 * 365, help="days of the scale benchmark")
    ap.add_argument("--order-lines", type=int, default=200_000, help="order lines of the generated company")
    ap.add_argument("--prophet-series", type=int, default=25, help="series Prophet is fitted on (scale)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-prophet", action="store_true", help="skip Prophet (statsforecast still runs)")
    args = ap.parse_args(argv)
    if args.no_prophet:
        args.prophet_series = 0
    which = args.only or ["generated", "classicmodels", "scale"]
    report: list[str] = [
        "## Forecast benchmark",
        "",
        "`" + " ".join(["bench/forecast.py", *(argv or [])]) + "`",
        "",
    ]
    if "generated" in which:
        t0 = time.perf_counter()
        panel, source = generated_panel(args.order_lines, 7)
        report.append(f"Generated data: {source}, built in {time.perf_counter() - t0:.1f} s.\n")
        h = choose_horizon(panel.frequency, panel.n_periods - 28, 3)
        report.append(
            run_panel("generated", panel, h, args.jobs, prophet_series=args.prophet_series and panel.n_series)
        )
        print("\n".join(report[-2:]), flush=True)
    if "classicmodels" in which and CLASSICMODELS.is_dir():
        from salesbi.reading.reader import core_frames, read_source
        from salesbi.reports.fact import build_fact_order_lines

        core = core_frames(read_source(CLASSICMODELS, "classicmodels"))
        fact = build_fact_order_lines(core)
        panel = build_series(fact, core["customers"], core["product_lines"], core["offices"], "M")
        report.append(
            run_panel("classicmodels", panel, 3, 1, prophet_series=args.prophet_series and panel.n_series)
        )
        print(report[-1], flush=True)
    if "scale" in which:
        panel = daily_panel(args.series, args.days + 28, seed=11)
        report.append(
            run_panel(
                f"scale ({args.series} daily series × {args.days} days)",
                panel,
                28,
                args.jobs,
                args.prophet_series,
            )
        )
        print(report[-1], flush=True)


if __name__ == "__main__":
    main()
