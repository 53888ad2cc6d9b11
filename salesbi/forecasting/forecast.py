"""Entry points: ``forecast_sales`` (the pipeline's forecast step) and ``forecast_series`` (one series)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesbi.errors import ConfigurationError, SalesBIError, StepSkipped
from salesbi.forecasting.engine import MODELS, EngineOutput, run_engine
from salesbi.forecasting.evaluate import LEVELS
from salesbi.forecasting.lgbm import LightGBMConfig, training_caps
from salesbi.forecasting.series import (
    DEFAULT_HORIZON,
    FREQUENCY_NAMES,
    MIN_PERIODS,
    WEEKDAYS,
    SeriesPanel,
    build_panel,
    build_series,
    choose_frequency_of_totals,
    choose_horizon,
    frequency_choice,
    normalize_frequency,
    order_dates,
    period_start,
    to_month_end,
    week_start_index,
)
from salesbi.forecasting.tables import FORECAST_ACCURACY, SALES_FORECAST
from salesbi.modelrun import ModelRun
from salesbi.types import conform

MODEL_VERSION = "1"


@dataclass
class ForecastResult:
    """The forecast step's output: the two rpt frames, one ModelRun per model, frequency and horizon."""

    sales_forecast: pd.DataFrame
    forecast_accuracy: pd.DataFrame
    model_runs: list[ModelRun]
    frequency: str
    horizon: int
    #: the stored model (``salesbi.incremental_forecast.ForecastModel``) daily runs extend
    models: dict[str, Any] = field(default_factory=dict)
    frequency_note: str = ""  # why this frequency (chosen from the data, or set by the caller)


def _check_horizon(horizon: int | None, backtest_origins: int) -> None:
    if horizon is not None and horizon < 1:
        raise ConfigurationError(f"forecast horizon must be at least 1 period, got {horizon}")
    if backtest_origins < 0:
        raise ConfigurationError(f"backtest_origins must be 0 or more, got {backtest_origins}")


def _too_short(panel: SeriesPanel) -> str | None:
    """Return why ``panel`` is too short to forecast (None when it is long enough)."""
    need = MIN_PERIODS[panel.frequency]
    if panel.n_periods >= need:
        return None
    name = FREQUENCY_NAMES[panel.frequency]
    periods = "period" if panel.n_periods == 1 else "periods"
    return f"only {panel.n_periods} full {name} {periods} of sales: a {name} forecast needs at least {need}"


def _check_length(panel: SeriesPanel) -> None:
    reason = _too_short(panel)
    if reason:
        raise SalesBIError(reason, hint="load more history or choose a finer frequency (D or W)")


def forecast_sales(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    product_lines: pd.DataFrame,
    offices: pd.DataFrame,
    *,
    run_id: str,
    frequency: str | None = None,
    horizon: int | None = None,
    backtest_origins: int = 3,
    top_countries: int = 5,
    random_state: int = 0,
    n_jobs: int = 1,
    lgbm_config: LightGBMConfig | None = None,
    week_start: str | int = "MON",
) -> ForecastResult:
    """Return forecasts of total, product-line, country and office net sales with their backtest.

    ``fact`` is ``rpt.fact_order_lines``.  Frequency (D/W/M) and horizon default to what the
    data support (see :func:`frequency_choice`, :func:`choose_horizon`); weeks start on
    ``week_start`` ('MON'..'SUN').  Each series publishes its champion's forecast (lowest mean
    backtest WAPE, simplest on a tie) with conformal 80 % / 95 % intervals.  Raises
    :class:`StepSkipped` when the history is too short for any frequency (or for the one asked).
    """
    if fact.empty:
        raise SalesBIError(
            "fact_order_lines is empty: there are no sales to forecast", hint="load orders first"
        )
    _check_horizon(horizon, backtest_origins)
    horizon_set = bool(horizon)
    week = week_start_index(week_start)
    orders = pd.DataFrame({"order_date": order_dates(fact)})
    if frequency:
        freq, why = normalize_frequency(frequency), "set by the caller"
    else:
        freq, why = frequency_choice(orders["order_date"], week)
    try:
        panel = build_series(fact, customers, product_lines, offices, freq, top_countries, week)
    except SalesBIError as exc:
        raise StepSkipped(f"forecast skipped: {exc.message}") from exc
    reason = _too_short(panel)
    if reason:
        hint = "" if frequency else " and the days and weeks are too sparse for a finer frequency"
        raise StepSkipped(f"forecast skipped: {reason}{hint}")
    if not horizon:
        base = choose_horizon(freq, panel.n_periods, backtest_origins)
        horizon = to_month_end(base, freq, panel.dates[-1], panel.n_periods, backtest_origins)
    h = horizon
    out = run_engine(panel, h, backtest_origins, random_state, n_jobs=n_jobs, lgbm_config=lgbm_config)
    result = _result(out, run_id, backtest_origins, top_countries, random_state)
    result.frequency_note = why
    for run in result.model_runs:
        run.params["frequency_reason"] = why
        run.params["week_start"] = WEEKDAYS[week]
    from salesbi.incremental_forecast import MODEL_NAME, build_forecast_model

    result.models[MODEL_NAME] = build_forecast_model(
        out,
        result.forecast_accuracy,
        final_booster=out.final_lightgbm.booster if out.final_lightgbm is not None else None,
        week_start=week,
        top_countries=top_countries,
        frequency_set=bool(frequency),
        horizon_set=horizon_set,
        frequency_note=why,
        random_state=random_state,
    )
    return result


def forecast_series(
    history: pd.Series, horizon: int | None = None, frequency: str | None = None
) -> pd.DataFrame:
    """Return the future forecast of one sales series (index: dates) with 80 %/95 % intervals.

    ``history`` values are summed per period (so daily orders may be passed for a monthly
    forecast) and missing periods count as zero.  Columns: date, forecast, lower_80,
    upper_80, lower_95, upper_95, model, model_note, horizon_step, frequency.  Without
    ``frequency`` it is chosen from the data and the ``frequency`` column says which
    (D, W or M); weekly totals dated on one weekday keep their weeks starting on that day.
    """
    if not isinstance(history, pd.Series) or history.empty:
        raise SalesBIError("history must be a non-empty pandas Series of sales indexed by date")
    try:
        dates = pd.to_datetime(pd.Series(history.index))
    except (TypeError, ValueError) as exc:
        raise SalesBIError(
            "the history's index must hold dates", hint="index the series by order date"
        ) from exc
    values = pd.to_numeric(pd.Series(history.to_numpy()), errors="coerce").fillna(0.0).astype("float64")
    if frequency:
        freq = normalize_frequency(frequency)
    elif dates.dt.normalize().is_unique:  # already one total per day (or per period)
        freq = choose_frequency_of_totals(dates, values)
    else:  # one entry per order: its density says how fine the periods can be
        freq = frequency_choice(dates[values != 0])[0]
    long = pd.DataFrame(
        {"series_id": "total", "order_date": dates.to_numpy(), "net_sales": values.to_numpy()}
    )
    meta = pd.DataFrame(
        {
            "series_id": ["total"],
            "series_level": ["total"],
            "series_name": ["All sales"],
            "country_code": [None],
        }
    )
    end = dates.max()
    weekdays = pd.DatetimeIndex(dates).day_of_week.unique()
    week = int(weekdays[0]) if freq == "W" and len(weekdays) == 1 else 0
    if freq != "D":
        # a series given per period (e.g. month starts) covers its last period entirely
        starts = period_start(dates, freq, week)
        if bool((pd.DatetimeIndex(dates) == starts).all()):
            end = _period_last_day(starts.max(), freq)
    panel = build_panel(long, meta, freq, end=end, week_start=week)
    _check_length(panel)
    h = horizon or choose_horizon(freq, panel.n_periods, 3)
    out = run_engine(panel, h, 3, 0)
    sf = _forecast_rows(out, "forecast_series")
    fut = sf[sf["is_future"]].reset_index(drop=True)
    cols = [
        "date",
        "forecast",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "model",
        "model_note",
        "horizon_step",
        "frequency",
    ]
    return fut[cols]


def _period_last_day(start: pd.Timestamp, freq: str) -> pd.Timestamp:
    from salesbi.forecasting.series import period_end

    return period_end(start, freq)


def _forecast_rows(out: EngineOutput, run_id: str) -> pd.DataFrame:
    """Return the ``sales_forecast`` rows: every history period, backtest forecasts, the future."""
    panel = out.panel
    n, T, H = panel.n_series, panel.n_periods, out.horizon
    meta = panel.meta
    idx = np.arange(n)
    champ = np.array(out.champion, dtype=object)

    hist = pd.DataFrame(
        {
            "series_i": np.repeat(idx, T),
            "t": np.tile(np.arange(T), n),
            "date": np.tile(panel.dates.to_numpy(), n),
            "actual": panel.values.ravel(),
        }
    )
    # champion's out-of-sample forecasts over the backtest windows, as (series, period) grids
    grids = {c: np.full((n, T), np.nan) for c in ("forecast", "lower_80", "upper_80", "lower_95", "upper_95")}
    step = np.full((n, T), np.nan)
    in_backtest = np.zeros((n, T), dtype=bool)
    for m in set(champ):
        rows = np.flatnonzero(champ == m)
        for k, o in enumerate(out.origins):
            cols = slice(o + 1, o + 1 + H)
            grids["forecast"][rows, cols] = out.backtest[m][rows, k]
            for level in LEVELS:
                lo, hi = out.backtest_bounds[m][level]
                tag = round(level * 100)
                grids[f"lower_{tag}"][rows, cols] = lo[rows, k]
                grids[f"upper_{tag}"][rows, cols] = hi[rows, k]
            step[rows, cols] = np.arange(1, H + 1)
            in_backtest[rows, cols] = True
    for col, grid in grids.items():
        hist[col] = grid.ravel()
    hist["horizon_step"] = step.ravel()
    flat = in_backtest.ravel()
    hist["is_backtest"] = flat
    series_of_row = hist["series_i"].to_numpy()
    hist["model"] = np.where(flat, champ[series_of_row], None)
    hist["model_note"] = np.where(flat, np.array(out.champion_note, dtype=object)[series_of_row], None)
    hist["is_future"] = False

    fut = pd.DataFrame(
        {
            "series_i": np.repeat(idx, H),
            "date": np.tile(pd.DatetimeIndex(out.future_dates).to_numpy(), n),
            "actual": np.nan,
            "horizon_step": np.tile(np.arange(1, H + 1), n),
            "is_backtest": False,
            "is_future": True,
            "model": np.repeat(champ, H),
            "model_note": np.repeat(np.array(out.champion_note, dtype=object), H),
        }
    )
    fc = np.stack([out.future[champ[i]][i] for i in range(n)])
    fut["forecast"] = fc.ravel()
    for level in LEVELS:
        tag = round(level * 100)
        lo = np.stack([out.future_bounds[champ[i]][level][0][i] for i in range(n)])
        hi = np.stack([out.future_bounds[champ[i]][level][1][i] for i in range(n)])
        fut[f"lower_{tag}"] = lo.ravel()
        fut[f"upper_{tag}"] = hi.ravel()

    frame = pd.concat([hist.drop(columns="t"), fut], ignore_index=True)
    for col in ("series_id", "series_level", "series_name"):
        frame[col] = meta[col].to_numpy()[frame["series_i"].to_numpy()]
    frame["frequency"] = panel.frequency
    frame["date"] = pd.to_datetime(frame["date"])
    frame["month_start"] = frame["date"].dt.to_period("M").dt.to_timestamp()
    frame["run_id"] = run_id
    for col in ("actual", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        frame[col] = frame[col].astype("float64").round(2)
    frame["horizon_step"] = frame["horizon_step"].astype("Float64").astype("Int64")
    frame = frame.sort_values(["series_i", "date"], kind="stable").reset_index(drop=True)
    return conform(frame, SALES_FORECAST)


def _accuracy_rows(out: EngineOutput, run_id: str) -> pd.DataFrame:
    panel = out.panel
    rows: list[dict[str, Any]] = []
    for i in range(panel.n_series):
        meta = panel.meta.iloc[i]
        champ = out.champion[i]
        for m in MODELS:
            met = out.metrics[m]
            status = out.status[m][i]
            notes = [out.notes[m][i]] if out.notes[m][i] else []
            if m == champ:
                notes.insert(0, f"champion: {out.champion_note[i]}")
            elif status != "ok":
                notes.insert(0, "not a candidate: could not be fitted at every origin")
            else:
                notes.insert(0, f"not published: {out.champion_note[i]}")
            if not out.origins:
                notes.append("history too short for a backtest")
            rows.append(
                {
                    "series_id": meta["series_id"],
                    "model": m,
                    "series_level": meta["series_level"],
                    "series_name": meta["series_name"],
                    "frequency": panel.frequency,
                    "horizon": out.horizon,
                    "wape": met["wape"][i],
                    "mase": met["mase"][i],
                    "bias": met["bias"][i],
                    "coverage_80": met["coverage_80"][i],
                    "coverage_95": met["coverage_95"][i],
                    "n_origins": len(out.origins),
                    "n_points": len(out.origins) * out.horizon,
                    "is_champion": m == champ,
                    "status": status,
                    "note": "; ".join(notes) or None,
                    "run_id": run_id,
                }
            )
    return conform(pd.DataFrame(rows), FORECAST_ACCURACY)


def _model_runs(
    out: EngineOutput, backtest_origins: int, top_countries: int, random_state: int
) -> list[ModelRun]:
    panel = out.panel
    start = panel.dates[0].date()
    end = panel.dates[-1].date()
    runs = []
    for m in MODELS:
        met = out.metrics[m]
        champions = sum(1 for c in out.champion if c == m)
        skipped = sum(1 for s in out.status[m] if s != "ok")

        def mean(x: np.ndarray) -> float | None:
            finite = x[np.isfinite(x)]
            return float(finite.mean()) if len(finite) else None

        params: dict[str, Any] = {
            "frequency": panel.frequency,
            "horizon": out.horizon,
            "backtest_origins_requested": backtest_origins,
            "backtest_origins": [str(panel.dates[o].date()) for o in out.origins],
            "top_countries": top_countries,
            "random_state": random_state,
            "strategy": "direct, global" if m == "lightgbm" else "per series",
        }
        if m == "lightgbm":
            params["train_rows_final"] = out.lgbm_rows
            params["training_caps"] = training_caps(
                out.lgbm_cap, out.lgbm_candidates, out.lgbm_rows, out.lgbm_sampling, out.lgbm_distinct
            )
            params["boost_rounds"] = out.lgbm_rounds or out.lgbm_max_rounds
            params["boost_rounds_chosen_by"] = (
                f"early stopping at the earliest fit: the best round from {out.lgbm_min_rounds} to "
                f"{out.lgbm_max_rounds} on "
                f"{out.lgbm_validation_rows} validation rows (targets in the last horizon before its "
                "cutoff); the later fits train on all their rows for that many rounds"
                if out.lgbm_rounds
                else "fixed (no early stopping)"
            )
        runs.append(
            ModelRun(
                model_name=f"forecast_{m}",
                model_version=MODEL_VERSION,
                status="ok" if out.origins else "too_thin",
                data_start=start,
                data_end=end,
                n_rows=panel.n_series * panel.n_periods,
                params=params,
                metrics={
                    "series": panel.n_series,
                    "mean_wape": mean(met["wape"]),
                    "mean_mase": mean(met["mase"]),
                    "mean_bias": mean(met["bias"]),
                    "mean_coverage_80": mean(met["coverage_80"]),
                    "mean_coverage_95": mean(met["coverage_95"]),
                    "champion_of_series": champions,
                    "not_candidate_series": skipped,
                    "seconds": out.seconds.get("lightgbm" if m == "lightgbm" else "baselines"),
                },
                notes=(
                    f"{champions} of {panel.n_series} series publish this model's forecast"
                    + (f"; not a candidate for {skipped} series" if skipped else "")
                    + ("" if out.origins else "; history too short for a backtest")
                ),
            )
        )
    return runs


def _result(
    out: EngineOutput, run_id: str, backtest_origins: int, top_countries: int, random_state: int
) -> ForecastResult:
    return ForecastResult(
        sales_forecast=_forecast_rows(out, run_id),
        forecast_accuracy=_accuracy_rows(out, run_id),
        model_runs=_model_runs(out, backtest_origins, top_countries, random_state),
        frequency=out.panel.frequency,
        horizon=out.horizon,
    )


__all__ = ["DEFAULT_HORIZON", "ForecastResult", "forecast_sales", "forecast_series"]
