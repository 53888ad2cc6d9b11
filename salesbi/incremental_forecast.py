"""The forecast on a daily run: extend the stored champions instead of re-running the backtest.

A full forecast fit (``salesbi.forecasting.forecast_sales``) backtests every candidate model on
every series, picks a champion per series and calibrates its conformal intervals; most of its
cost is the backtest (four LightGBM fits and every baseline at every origin). It stores what it
chose as a :class:`ForecastModel` (``<out>/models/sales_forecast/<version>/``): per series the
champion, the champion's backtest forecasts, intervals and actuals, its interval calibration
(step factors and residual quantiles per level), its ETS smoothing parameters, the final global
LightGBM booster, and the ``forecast_accuracy`` rows of the backtest.

A daily run with a fresh stored model (:func:`run_forecast_step`, same rule as the other model
steps: ``refit`` auto|always|never, age, drift) builds the series on the new history and extends
each series with its stored champion only:

- a baseline champion (naive, window average, seasonal naive, Theta, damped ETS) is refitted on
  the new history exactly as the full fit's final origin does (same fit window, same seasonal
  specification, ETS with its stored smoothing parameters): on the same history it gives the
  same forecast;
- a LightGBM champion is predicted by the stored booster from the features at the new last
  period (no training);
- intervals: the stored step factors and residual quantiles around the new forecast, scaled by
  the series' noise scale at the new last period (as the full fit does).

``rpt.sales_forecast`` keeps the stored backtest forecasts on their periods and the new future;
``rpt.forecast_accuracy`` republishes the stored backtest scores with a note that says so.
The horizon is what the fit would choose on the new history (a daily horizon runs to a month's
end), capped at the stored one (the calibration has no step factors beyond it; the decision says
so). The stored model cannot be extended, and the step refits, when the frequency or the series
changed, the history ends before the model's or starts elsewhere, or the run asks for a horizon
past the stored one.

**Drift**: the stored champions' WAPE on the periods since the fit (their stored future forecasts
against the new actuals, every series pooled) against the backtest WAPE of the same steps ahead;
``recent / backtest - 1``, measured once at least :data:`MIN_DRIFT_PERIODS` periods are known.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salesbi import modelstore
from salesbi.errors import ConfigurationError
from salesbi.modelstore import dumps, make_version, read_card

if TYPE_CHECKING:
    from salesbi.forecasting.engine import EngineOutput
    from salesbi.forecasting.forecast import ForecastResult
    from salesbi.forecasting.series import SeriesPanel
    from salesbi.incremental_models import ModelDecision

log = logging.getLogger(__name__)

MODEL_NAME = "sales_forecast"
MODEL_FILE = "forecast.json"
BOOSTER_FILE = "lightgbm.txt"
#: periods after the fit needed before the drift is measured (a week of days, two weeks, a month)
MIN_DRIFT_PERIODS = {"D": 7, "W": 2, "M": 1}
_BOUND_COLUMNS = ("lower_80", "upper_80", "lower_95", "upper_95")


class CannotExtend(Exception):
    """The stored forecast model cannot be extended to this history (the message says why)."""


def _floats(a: np.ndarray) -> list[Any]:
    """Return ``a`` as nested lists of floats (NaN kept: the store's JSON writes it as NaN)."""
    out: list[Any] = np.asarray(a, dtype="float64").tolist()
    return out


@dataclass
class ForecastModel:
    """What the last full forecast fit chose, enough to extend its forecast to a longer history."""

    frequency: str
    horizon: int
    week_start: int
    top_countries: int
    frequency_set: bool  # the caller chose the frequency (else it was chosen from the data)
    horizon_set: bool
    frequency_note: str
    data_start: date
    data_end: date  # the last full period of the history it was fitted on
    series: list[dict[str, Any]]  # series_id, series_level, series_name, champion, champion_note
    origins: list[str]  # backtest origins: the last known period of each window
    backtest: dict[str, list[Any]]  # actual, forecast, lower_80, … : (series, origins, horizon)
    future: list[Any]  # the champions' future forecast at the fit (series, horizon)
    factors: dict[str, list[float]]  # champion model → interval step factors (horizon,)
    bounds: dict[str, list[Any]]  # level tag "80"/"95" → (series, 2) normalised residual quantiles
    smoothing: list[dict[str, float] | None]  # per series: ETS parameters (ETS champions only)
    ets_seasonal: bool
    theta_seasonal: bool
    accuracy: list[dict[str, Any]]  # the forecast_accuracy rows of the backtest (run_id removed)
    booster: str | None = None  # the final global LightGBM model (text), when a series uses it
    columns: list[str] = field(default_factory=list)
    n_train: int = 0
    #: the final LightGBM fit's cap, stated in the card (salesbi.sampling.cap_record)
    training_caps: list[dict[str, Any]] = field(default_factory=list)
    random_state: int = 0
    created_at: str = ""
    version: str = ""
    model_name: str = MODEL_NAME

    def payload(self) -> dict[str, Any]:
        """Return the model's content (everything but the booster) as JSON-able data."""
        return {
            "frequency": self.frequency,
            "horizon": self.horizon,
            "week_start": self.week_start,
            "top_countries": self.top_countries,
            "frequency_set": self.frequency_set,
            "horizon_set": self.horizon_set,
            "frequency_note": self.frequency_note,
            "series": self.series,
            "origins": self.origins,
            "backtest": self.backtest,
            "future": self.future,
            "factors": self.factors,
            "bounds": self.bounds,
            "smoothing": self.smoothing,
            "ets_seasonal": self.ets_seasonal,
            "theta_seasonal": self.theta_seasonal,
            "accuracy": self.accuracy,
            "columns": self.columns,
            "n_train": self.n_train,
            "training_caps": self.training_caps,
        }

    def files(self) -> dict[str, bytes]:
        """Return the files to store: ``forecast.json`` and the LightGBM text model (when used)."""
        files = {MODEL_FILE: dumps(self.payload())}
        if self.booster is not None:
            files[BOOSTER_FILE] = self.booster.encode("utf-8")
        return files

    def champions(self) -> dict[str, int]:
        """Return champion model → number of series it publishes."""
        counts: dict[str, int] = {}
        for s in self.series:
            counts[s["champion"]] = counts.get(s["champion"], 0) + 1
        return dict(sorted(counts.items()))

    def card(self) -> dict[str, Any]:
        """Return the model card."""
        champions = [r for r in self.accuracy if r.get("is_champion")]
        wapes = [
            float(r["wape"]) for r in champions if r.get("wape") is not None and math.isfinite(r["wape"])
        ]
        return {
            "kind": "forecast",
            "model_name": self.model_name,
            "version": self.version,
            "created_at": self.created_at,
            "training_window": {"start": self.data_start.isoformat(), "end": self.data_end.isoformat()},
            "params": {
                "frequency": self.frequency,
                "frequency_note": self.frequency_note,
                "horizon": self.horizon,
                "week_start": self.week_start,
                "top_countries": self.top_countries,
                "backtest_origins": self.origins,
                "random_state": self.random_state,
            },
            "metrics": {
                "series": len(self.series),
                "champions": self.champions(),
                "mean_champion_wape": float(np.mean(wapes)) if wapes else None,
                "lightgbm_train_rows": self.n_train,
            },
            "training_caps": self.training_caps,
            "note": "champion per series from a rolling-origin backtest; daily runs extend it "
            "(salesbi.incremental_forecast)",
        }

    def stamp(self, created_at: datetime) -> None:
        """Set ``created_at`` and the content-derived ``version``."""
        self.created_at = created_at.isoformat()
        self.version = make_version(created_at, self.files(), self.card())

    @classmethod
    def from_folder(cls, folder: Path) -> ForecastModel:
        """Return the model stored in a version folder."""
        folder = Path(folder)
        card = read_card(folder)
        data = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        booster_path = folder / BOOSTER_FILE
        window = card["training_window"]
        return cls(
            booster=booster_path.read_text(encoding="utf-8") if booster_path.is_file() else None,
            data_start=date.fromisoformat(window["start"]),
            data_end=date.fromisoformat(window["end"]),
            random_state=int(card.get("params", {}).get("random_state", 0)),
            created_at=card.get("created_at", ""),
            version=card.get("version", ""),
            model_name=card.get("model_name", MODEL_NAME),
            **data,
        )


# ------------------------------------------------------------------------------ build (fit run)


def _ets_smoothing(y: np.ndarray, origins: list[int], horizon: int, season: int, frequency: str) -> Any:
    """Return the ETS parameters the full fit used for series ``y`` (estimated where it estimated them).

    ``fit_baselines`` estimates them at the first origin whose history it can fit (enough periods,
    not all zero) and reuses them at every later origin, the final one included.
    """
    from salesbi.forecasting.baselines import FIT_ERRORS, FIT_WINDOW, MIN_FIT, ets_damped, ets_is_seasonal

    window = FIT_WINDOW[frequency]
    seasonal = ets_is_seasonal(min(window, origins[0] + 1), season)
    for origin in origins:
        hist = np.asarray(y[max(0, origin + 1 - window) : origin + 1], dtype="float64")
        if len(hist) < MIN_FIT or not np.any(hist != 0):
            continue
        try:
            return ets_damped(hist, horizon, season, None, seasonal=seasonal)[1]
        except FIT_ERRORS:
            continue
    return None


def build_forecast_model(
    out: EngineOutput,
    accuracy: pd.DataFrame,
    *,
    final_booster: Any,
    week_start: int,
    top_countries: int,
    frequency_set: bool,
    horizon_set: bool,
    frequency_note: str,
    random_state: int,
    created_at: datetime | None = None,
) -> ForecastModel:
    """Return the storable model of a full forecast fit (its engine output and accuracy rows).

    ``final_booster``: the LightGBM model fitted at the last period (None when it could not be fitted).
    """
    from salesbi.forecasting.baselines import FIT_WINDOW, ets_is_seasonal, theta_is_seasonal
    from salesbi.forecasting.evaluate import LEVELS, calibrate
    from salesbi.forecasting.lgbm import training_caps
    from salesbi.forecasting.series import SEASON

    panel, H, K = out.panel, out.horizon, len(out.origins)
    n, T, f = panel.n_series, panel.n_periods, panel.frequency
    season = SEASON[f]
    champ = list(out.champion)
    groups = panel.meta["series_level"].to_numpy()
    grids = {c: np.full((n, K, H), np.nan) for c in ("forecast", *_BOUND_COLUMNS)}
    future = np.full((n, H), np.nan)
    factors: dict[str, list[float]] = {}
    bounds = {str(round(level * 100)): np.full((n, 2), np.nan) for level in LEVELS}
    for m in sorted(set(champ)):
        rows = np.array([i for i in range(n) if champ[i] == m])
        future[rows] = out.future[m][rows]
        if not K:
            continue
        grids["forecast"][rows] = out.backtest[m][rows]
        for level in LEVELS:
            tag = round(level * 100)
            lo, hi = out.backtest_bounds[m][level]
            grids[f"lower_{tag}"][rows] = lo[rows]
            grids[f"upper_{tag}"][rows] = hi[rows]
        # the engine's calibration of model m (every series where m is a candidate), kept for its champions
        candidate = np.array([s == "ok" for s in out.status[m]])
        fc = np.where(candidate[:, None, None], out.backtest[m], np.nan)
        z = (out.actual - fc) / out.backtest_scale[:, :, None]
        step, quantiles = calibrate(z, np.isfinite(z), groups)
        factors[m] = step.tolist()
        for level in LEVELS:
            bounds[str(round(level * 100))][rows] = quantiles[level][rows]
    first = out.origins[0] if K else T - 1
    first_len = min(FIT_WINDOW[f], first + 1)
    all_origins = [*out.origins, T - 1]
    smoothing = [
        _ets_smoothing(panel.values[i], all_origins, H, season, f) if champ[i] == "ets_damped" else None
        for i in range(n)
    ]
    records = accuracy.drop(columns=["run_id"]).astype(object).where(accuracy.notna(), None)
    model = ForecastModel(
        frequency=f,
        horizon=H,
        week_start=week_start,
        top_countries=top_countries,
        frequency_set=frequency_set,
        horizon_set=horizon_set,
        frequency_note=frequency_note,
        data_start=panel.dates[0].date(),
        data_end=panel.dates[-1].date(),
        series=[
            {
                "series_id": str(panel.meta["series_id"].iloc[i]),
                "series_level": str(panel.meta["series_level"].iloc[i]),
                "series_name": str(panel.meta["series_name"].iloc[i]),
                "champion": champ[i],
                "champion_note": out.champion_note[i],
            }
            for i in range(n)
        ],
        origins=[str(panel.dates[o].date()) for o in out.origins],
        backtest={"actual": _floats(out.actual), **{c: _floats(g) for c, g in grids.items()}},
        future=_floats(future),
        factors=factors,
        bounds={tag: _floats(b) for tag, b in bounds.items()},
        smoothing=smoothing,
        ets_seasonal=ets_is_seasonal(first_len, season),
        theta_seasonal=theta_is_seasonal(first_len, season),
        accuracy=records.to_dict(orient="records"),
        booster=final_booster.model_to_string()
        if final_booster is not None and "lightgbm" in champ
        else None,
        columns=[],
        n_train=int(out.lgbm_rows),
        training_caps=training_caps(
            out.lgbm_cap, out.lgbm_candidates, out.lgbm_rows, out.lgbm_sampling, out.lgbm_distinct
        ),
        random_state=random_state,
    )
    if model.booster is not None:
        model.columns = list(final_booster.feature_name())
    model.stamp(created_at or modelstore.utc_now())
    return model


# ------------------------------------------------------------------------- extend (daily run)


@dataclass
class Extension:
    """The new history's panel and horizon, checked against the stored model (ready to extend)."""

    panel: SeriesPanel
    horizon: int
    new_periods: int  # full periods after the stored model's last one
    note: str = ""  # why the horizon is not the one a fit would choose (capped at the stored one)


def prepare_extension(
    model: ForecastModel,
    fact: pd.DataFrame,
    core: Mapping[str, pd.DataFrame],
    *,
    frequency: str | None,
    horizon: int | None,
) -> Extension:
    """Return the new history's panel and horizon; :class:`CannotExtend` (the reason) when it does not fit.

    ``frequency``/``horizon``: the run's parameters (None: chosen from the data, as the fit does).
    """
    from salesbi.errors import SalesBIError
    from salesbi.forecasting.series import (
        build_series,
        choose_horizon,
        frequency_choice,
        normalize_frequency,
        order_dates,
        to_month_end,
    )

    if frequency:
        if normalize_frequency(frequency) != model.frequency:
            raise CannotExtend(
                f"the run asks for frequency {frequency}, the stored model is {model.frequency}"
            )
    elif model.frequency_set:
        raise CannotExtend(
            f"the stored model's frequency {model.frequency} was set by its run; this run chooses"
        )
    else:
        orders = pd.DataFrame({"order_date": order_dates(fact)})
        chosen = frequency_choice(orders["order_date"], model.week_start)[0]
        if chosen != model.frequency:
            raise CannotExtend(
                f"the data now support frequency {chosen}, the stored model is {model.frequency}"
            )
    try:
        panel = build_series(
            fact,
            core["customers"],
            core["product_lines"],
            core["offices"],
            model.frequency,
            model.top_countries,
            model.week_start,
        )
    except SalesBIError as exc:
        raise CannotExtend(f"the series cannot be built: {exc.message}") from exc
    ids = [s["series_id"] for s in model.series]
    if list(panel.meta["series_id"]) != ids:
        new, gone = set(panel.meta["series_id"]) - set(ids), set(ids) - set(panel.meta["series_id"])
        raise CannotExtend(f"the series changed (new: {sorted(new)[:3]}, gone: {sorted(gone)[:3]})")
    if panel.dates[0].date() != model.data_start:
        raise CannotExtend(f"the history now starts {panel.dates[0].date()}, not {model.data_start}")
    end = panel.dates[-1].date()
    if end < model.data_end:
        raise CannotExtend(f"the history ends {end}, before the stored model's last period {model.data_end}")
    note = ""
    if horizon:
        h = horizon
        if h > model.horizon:
            raise CannotExtend(f"the run asks for {h} periods ahead, past the stored model's {model.horizon}")
    elif model.horizon_set:
        raise CannotExtend("the stored model's horizon was set by its run; this run chooses")
    else:
        k = len(model.origins) if model.origins else 3
        base = choose_horizon(model.frequency, panel.n_periods, k)
        h = to_month_end(base, model.frequency, panel.dates[-1], panel.n_periods, k)
        if h > model.horizon:  # e.g. a daily horizon that now runs to the end of the next month
            note = f"horizon {model.horizon} (the stored calibration's; a fit would choose {h})"
            h = model.horizon
    new_periods = int((panel.dates > pd.Timestamp(model.data_end)).sum())
    return Extension(panel, h, new_periods, note)


def forecast_drift(model: ForecastModel, ext: Extension) -> float | None:
    """Return the stored champions' WAPE since the fit / their backtest WAPE on the same steps, minus 1.

    None until :data:`MIN_DRIFT_PERIODS` periods after the fit are known, or without a backtest.
    """
    m = min(ext.new_periods, model.horizon)
    if m < MIN_DRIFT_PERIODS[model.frequency] or not model.origins:
        return None
    start = int(np.flatnonzero(ext.panel.dates == pd.Timestamp(model.data_end))[0]) + 1
    actual = ext.panel.values[:, start : start + m]
    predicted = np.asarray(model.future, dtype="float64")[:, :m]
    bt_actual = np.asarray(model.backtest["actual"], dtype="float64")[:, :, :m]
    bt_forecast = np.asarray(model.backtest["forecast"], dtype="float64")[:, :, :m]
    ok = np.isfinite(bt_forecast)
    bt_denom = float(np.abs(bt_actual[ok]).sum())
    denom = float(np.abs(actual).sum())
    if bt_denom <= 0 or denom <= 0:
        return None
    recent = float(np.abs(actual - predicted).sum()) / denom
    backtest = float(np.abs(bt_actual[ok] - bt_forecast[ok]).sum()) / bt_denom
    return recent / backtest - 1.0 if backtest > 0 else None


def _baseline_future(model: ForecastModel, i: int, y: np.ndarray, horizon: int, champion: str) -> np.ndarray:
    """Return series ``i``'s baseline champion refitted at the last period (as the full fit does)."""
    from salesbi.forecasting.baselines import (
        AVERAGE_WINDOW,
        FIT_WINDOW,
        MIN_FIT,
        ets_damped,
        naive,
        seasonal_naive,
        theta,
        window_average,
    )
    from salesbi.forecasting.series import SEASON

    f, season = model.frequency, SEASON[model.frequency]
    hist = np.asarray(y[max(0, len(y) - FIT_WINDOW[f]) :], dtype="float64")
    if champion == "naive":
        fc = naive(hist, horizon)
    elif champion == "window_average":
        fc = window_average(hist, horizon, AVERAGE_WINDOW[f])
    elif champion == "seasonal_naive":
        fc = seasonal_naive(hist, horizon, season)
    elif len(hist) < MIN_FIT:
        raise CannotExtend(f"{champion} needs {MIN_FIT} periods")
    elif not np.any(hist != 0):
        fc = np.zeros(horizon)
    elif champion == "theta":
        fc = theta(hist, horizon, season, seasonal=model.theta_seasonal)
    else:
        fc = ets_damped(hist, horizon, season, model.smoothing[i], seasonal=model.ets_seasonal)[0]
    return np.clip(np.asarray(fc, dtype="float64"), 0.0, None)


def extend_forecast(model: ForecastModel, ext: Extension, *, run_id: str) -> ForecastResult:
    """Return the forecast of the new history by the stored champions, with the stored backtest.

    Same tables as a full fit; no model runs, nothing to store. :class:`CannotExtend` when a
    champion cannot be refitted on the new history.
    """
    from salesbi.forecasting.baselines import FIT_ERRORS
    from salesbi.forecasting.engine import EngineOutput, _context, interval_scale
    from salesbi.forecasting.evaluate import LEVELS, intervals
    from salesbi.forecasting.forecast import ForecastResult, _forecast_rows
    from salesbi.forecasting.lgbm import FittedLightGBM
    from salesbi.forecasting.tables import FORECAST_ACCURACY
    from salesbi.types import conform

    panel, h, H = ext.panel, ext.horizon, model.horizon
    n, T = panel.n_series, panel.n_periods
    champ = [s["champion"] for s in model.series]
    ctx = _context(panel, H)
    future = np.full((n, H), np.nan)
    if "lightgbm" in champ:
        if model.booster is None:
            raise CannotExtend("the stored model has no LightGBM booster")
        import lightgbm as lgb

        booster = FittedLightGBM(lgb.Booster(model_str=model.booster), model.columns, model.n_train)
        lgbm = booster.predict(ctx, T - 1, H)
    for i, m in enumerate(champ):
        if m == "lightgbm":
            future[i] = lgbm[i]
            continue
        try:
            future[i] = _baseline_future(model, i, panel.values[i], H, m)
        except FIT_ERRORS as exc:
            raise CannotExtend(
                f"{m} could not be refitted on series {model.series[i]['series_id']}: {exc}"
            ) from exc
    if not np.isfinite(future).all():
        raise CannotExtend("a stored champion forecast NaN on the new history")
    origins = [int(np.flatnonzero(panel.dates == pd.Timestamp(o))[0]) for o in model.origins]
    K = len(origins)
    scale = interval_scale(panel.values, T - 1, panel.frequency)
    backtest: dict[str, np.ndarray] = {}
    backtest_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    futures: dict[str, np.ndarray] = {}
    future_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    stored = {c: np.asarray(v, dtype="float64").reshape(n, K, H) for c, v in model.backtest.items()}
    for m in set(champ):
        backtest[m] = stored["forecast"]
        futures[m] = future
        backtest_bounds[m] = {
            lv: (stored[f"lower_{round(lv * 100)}"], stored[f"upper_{round(lv * 100)}"]) for lv in LEVELS
        }
        if m in model.factors:
            factors = np.asarray(model.factors[m], dtype="float64")
            future_bounds[m] = {
                lv: intervals(
                    future, scale, factors, np.asarray(model.bounds[str(round(lv * 100))], dtype="float64")
                )
                for lv in LEVELS
            }
        else:  # no backtest: intervals unknown, as in the full fit
            nan = np.full((n, H), np.nan)
            future_bounds[m] = {lv: (nan, nan) for lv in LEVELS}
    out = EngineOutput(
        panel=panel,
        horizon=H,
        origins=origins,
        future_dates=list(ctx.calendar[T : T + H]),
        actual=stored["actual"],
        backtest=backtest,
        backtest_scale=np.ones((n, K)),
        backtest_bounds=backtest_bounds,
        future=futures,
        future_bounds=future_bounds,
        status={},
        notes={},
        champion=champ,
        champion_note=[s["champion_note"] for s in model.series],
        metrics={},
    )
    rows = _forecast_rows(out, run_id)
    if h < H:  # the horizon the fit would choose now (to the month's end): fewer steps than stored
        keep = ~(rows["is_future"].astype(bool) & (rows["horizon_step"].fillna(0) > h)).to_numpy()
        rows = rows[keep].reset_index(drop=True)
    note = f"stored backtest of forecast model {model.version} (fitted {model.created_at[:10]}), not re-run"
    accuracy = pd.DataFrame(model.accuracy)
    accuracy["note"] = [f"{x}; {note}" if x else note for x in accuracy["note"]]
    accuracy["run_id"] = run_id
    return ForecastResult(
        sales_forecast=rows,
        forecast_accuracy=conform(accuracy, FORECAST_ACCURACY),
        model_runs=[],
        frequency=model.frequency,
        horizon=h,
        frequency_note=f"{model.frequency_note} (stored model {model.version})",
    )


# ------------------------------------------------------------------------------------ the step


def run_forecast_step(
    fit: Callable[[], Any],
    fact: pd.DataFrame,
    core: Mapping[str, pd.DataFrame],
    *,
    run_id: str,
    models_dir: Path,
    refit: str = "auto",
    max_age_days: int = 7,
    drift_threshold: float = 0.25,
    frequency: str | None = None,
    horizon: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, ModelDecision]:
    """Return (ForecastResult, decision): the stored champions extended, or ``fit()`` on a refit."""
    from salesbi.incremental_models import ModelDecision, decide_refit

    now = now or modelstore.utc_now()
    model: ForecastModel | None = None
    card: dict[str, Any] | None = None
    try:
        folder = modelstore.latest_folder(models_dir, MODEL_NAME)
        card = read_card(folder)
        if refit != "always":
            model = ForecastModel.from_folder(folder)
    except (ConfigurationError, OSError, ValueError, KeyError, TypeError) as exc:
        log.info("no usable stored forecast model: %s", exc)
        card = card if refit == "always" else None
    if refit == "always" or model is None:
        decision = decide_refit(
            "forecast",
            refit=refit,
            card=card if refit == "always" else None,
            now=now,
            max_age_days=max_age_days,
            drift_threshold=drift_threshold,
        )
        return fit(), decision
    try:
        ext = prepare_extension(model, fact, core, frequency=frequency, horizon=horizon)
    except CannotExtend as exc:
        base = decide_refit(
            "forecast",
            refit="always",
            card=card,
            now=now,
            max_age_days=max_age_days,
            drift_threshold=drift_threshold,
        )
        return fit(), ModelDecision(**{**base.as_dict(), "reason": f"stored model cannot be extended: {exc}"})
    drift = forecast_drift(model, ext) if refit == "auto" else None
    decision = decide_refit(
        "forecast",
        refit=refit,
        card=card,
        now=now,
        max_age_days=max_age_days,
        drift_threshold=drift_threshold,
        drift=drift,
    )
    if decision.action == "refit":
        return fit(), decision
    try:
        result = extend_forecast(model, ext, run_id=run_id)
    except CannotExtend as exc:
        return fit(), ModelDecision(
            **{**decision.as_dict(), "action": "refit", "reason": f"stored model cannot be extended: {exc}"}
        )
    reason = (
        f"refit={refit}: stored model from {model.created_at[:10]} extended by {ext.new_periods} period(s)"
    )
    if ext.note:
        reason += f"; {ext.note}"
    log.info("forecast: %s (%s)", reason, model.version)
    return result, ModelDecision(**{**decision.as_dict(), "reason": reason})
