"""Daily model steps that reuse the stored models: the refit rule and scoring with a stored model.

The weekly retrain fits every model (``refit="always"``); a daily run scores customers with the
models stored by the last fit (``<out>/models``) unless one of them is stale:

=========  =====================  ==============================================================
refit      stored model           decision
=========  =====================  ==============================================================
always     any                    refit ("refit=always")
never      none / unusable        refit ("no stored model") — there is nothing to score with
never      present                reuse
auto       none / unusable        refit ("no stored model")
auto       older than max age     refit ("older than N days")
auto       error drifted          refit ("monitored error X above training error Y by > T")
auto       otherwise              reuse
=========  =====================  ==============================================================

A model's age is days between its card's ``created_at`` and now. Its **monitored error** (only the
customer-sales model has one): the stored model's mean absolute error on the last complete window
``[as_of - horizon, as_of)``, predicted from the features at the window's start, against its mean
absolute error on the holdout window when it was trained (``metrics.mae[sales_method]``); drift is
``monitored / trained - 1``. The forecast step follows the same rule with its own stored model and
drift (``salesbi.incremental_forecast``: the stored champions extended to the new history).

Scoring functions return the fit functions' result types (``SegmentationResult``,
``PredictionResult``) with the stored model's version in their rows, no model runs and nothing
to store again; on the data the model was fitted on they reproduce the fit run's outputs (tested).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesbi import modelstore
from salesbi.errors import ConfigurationError, SalesBIError

log = logging.getLogger(__name__)

#: model step → the name its model is stored under (steps without a stored model are absent)
STORED_MODELS: dict[str, str] = {
    "segments": "customer_segments",
    "predictions": "customer_sales",
    "forecast": "sales_forecast",  # decided by salesbi.incremental_forecast.run_forecast_step
}
REFIT_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class ModelDecision:
    """Whether a model step refits or scores with its stored model, and why."""

    step: str
    action: str  # refit | reuse
    reason: str
    model_name: str | None = None
    version: str | None = None
    created_at: str | None = None
    age_days: float | None = None
    drift: float | None = None  # monitored error / training error - 1 (None: not monitored)

    def as_dict(self) -> dict[str, Any]:
        """Return the decision as JSON-able data (run summary, insights)."""
        return asdict(self)


def model_age_days(card: Mapping[str, Any], now: datetime) -> float | None:
    """Return the days since the card's ``created_at`` (None when it has none)."""
    created = card.get("created_at")
    if not created:
        return None
    stamp = datetime.fromisoformat(str(created))
    if stamp.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    return (now - stamp).total_seconds() / 86_400


def decide_refit(
    step: str,
    *,
    refit: str,
    card: Mapping[str, Any] | None,
    now: datetime,
    max_age_days: int,
    drift_threshold: float,
    drift: float | None = None,
) -> ModelDecision:
    """Return the decision for one model step (the table in the module docstring).

    ``card``: the stored model's card (None when no model is stored or it cannot be read);
    ``drift``: its monitored error relative to its training error, minus 1 (None: not monitored).
    """
    if refit not in REFIT_CHOICES:
        raise ConfigurationError(f"refit must be one of {REFIT_CHOICES}, got {refit!r}")
    if card is None:
        return ModelDecision(step, "refit", "no stored model")
    age = model_age_days(card, now)
    common: dict[str, Any] = {
        "model_name": card.get("model_name"),
        "version": card.get("version"),
        "created_at": card.get("created_at"),
        "age_days": None if age is None else round(age, 2),
        "drift": None if drift is None else round(drift, 4),
    }
    if refit == "always":
        return ModelDecision(step, "refit", "refit=always (the weekly retrain)", **common)
    if refit == "auto":
        if age is None or age > max_age_days:
            return ModelDecision(step, "refit", f"stored model older than {max_age_days} days", **common)
        if drift is not None and drift > drift_threshold:
            return ModelDecision(
                step,
                "refit",
                f"monitored error {drift:+.0%} against training, past the {drift_threshold:.0%} threshold",
                **common,
            )
    return ModelDecision(step, "reuse", f"refit={refit}: stored model scored", **common)


def load_stored(models_dir: Path, step: str) -> Any | None:
    """Return the newest stored model of ``step`` (None when none is stored or it cannot be read)."""
    name = STORED_MODELS.get(step)
    if name is None:
        return None
    try:
        return modelstore.load_latest(models_dir, name)
    except (ConfigurationError, OSError, ValueError, KeyError) as exc:
        log.info("no usable stored %s model: %s", name, exc)
        return None


# ------------------------------------------------------------------------------------- scoring


def score_segments(
    model: Any,
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    employees: pd.DataFrame,
    *,
    as_of: date | None = None,
) -> Any:
    """Return a SegmentationResult scoring every customer with the stored model's RFM edges and clusters.

    Same columns as :func:`salesbi.segmentation.segment_customers`; the stored model's version is
    in no row (segments carry none), no model runs, nothing to store.
    """
    from salesbi.segmentation.history import as_history, behaviour_features, default_as_of
    from salesbi.segmentation.segment import SegmentationResult, segments_frame, summarise_segments

    history = as_history(fact)
    as_of = as_of or default_as_of(history.orders)
    features = behaviour_features(history, as_of)
    if features.empty:
        raise SalesBIError(f"no orders before the as-of date {as_of}", hint="choose a later as_of")
    frame = segments_frame(features, model.edges, model.clusters, history, customers, employees, as_of)
    return SegmentationResult(frame, summarise_segments(frame), [], {})


def score_predictions(
    model: Any,
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    employees: pd.DataFrame | None = None,
    as_of: date | None = None,
    threads: int = 1,
) -> Any:
    """Return a PredictionResult for every customer, predicted by the stored customer-sales model.

    Same columns as :func:`salesbi.prediction.predict_customer_sales` (the model's horizon;
    ``model_version`` the stored version); no model runs, nothing to store.
    """
    from salesbi.prediction.features import FEATURES, features_at
    from salesbi.prediction.model import predict_frame
    from salesbi.prediction.predict import PredictionResult, _with_names, history_before
    from salesbi.prediction.tables import CUSTOMER_PREDICTIONS
    from salesbi.types import conform

    history, t, prepared = history_before(fact, as_of)
    h = model.horizon_days
    features = features_at(prepared, t, h)
    frame = predict_frame(features[list(FEATURES)], model, threads=threads)
    frame = _with_names(frame, history, customers, employees)
    frame["as_of_date"] = t
    frame["horizon_days"] = h
    frame["window_end"] = t + pd.Timedelta(days=h) - pd.Timedelta(days=1)
    return PredictionResult(conform(frame.reset_index(), CUSTOMER_PREDICTIONS), [], {})


def prediction_drift(model: Any, fact: pd.DataFrame, *, as_of: date | None = None) -> float | None:
    """Return the stored customer-sales model's monitored error drift (see the module docstring).

    None when the model has no training MAE for its method or the last window has no customers.
    """
    from salesbi.prediction.features import FEATURES, features_at, prepare, targets_at
    from salesbi.prediction.model import predict_frame
    from salesbi.segmentation.history import as_history, default_as_of

    trained = (model.metrics.get("mae") or {}).get(model.sales_method)
    if not trained:
        return None
    history = as_history(fact)
    t = pd.Timestamp(as_of or default_as_of(history.orders))
    start = t - pd.Timedelta(days=model.horizon_days)
    prepared = prepare(history.before(t))
    features = features_at(prepared, start, model.horizon_days)
    if features.empty:
        return None
    predicted = predict_frame(features[list(FEATURES)], model)["predicted_sales"]
    actual = targets_at(prepared, start, model.horizon_days, features.index)["target_sales"]
    mae = float(np.mean(np.abs(predicted.to_numpy(dtype="float64") - actual.to_numpy(dtype="float64"))))
    if not math.isfinite(mae):
        return None
    return mae / float(trained) - 1.0


# ------------------------------------------------------------------------------------ the step


@dataclass
class ModelStepOutcome:
    """A model step's result (the fit function's type) and the decision that produced it."""

    result: Any
    decision: ModelDecision


def run_model_step(
    step: str,
    fit: Callable[[], Any],
    fact: pd.DataFrame,
    core: Mapping[str, pd.DataFrame],
    *,
    models_dir: Path,
    refit: str = "auto",
    max_age_days: int = 7,
    drift_threshold: float = 0.25,
    as_of: date | None = None,
    threads: int = 1,
    now: datetime | None = None,
) -> ModelStepOutcome:
    """Return the step's result: scored with the stored model, or ``fit()`` when the rule says refit."""
    now = now or modelstore.utc_now()
    if step not in STORED_MODELS or step == "forecast":
        return ModelStepOutcome(
            fit(),
            ModelDecision(
                step, "refit", "fitted: no stored model of this step here (the forecast: score_or_fit)"
            ),
        )
    model = None if refit == "always" else load_stored(models_dir, step)
    card = model.card() if model is not None else None
    if refit == "always":
        try:
            card = modelstore.read_card(modelstore.latest_folder(models_dir, STORED_MODELS[step]))
        except (ConfigurationError, OSError, ValueError):
            card = None
    drift = None
    if model is not None and refit == "auto" and step == "predictions":
        drift = prediction_drift(model, fact, as_of=as_of)
    decision = decide_refit(
        step,
        refit=refit,
        card=card,
        now=now,
        max_age_days=max_age_days,
        drift_threshold=drift_threshold,
        drift=drift,
    )
    if decision.action == "refit" or model is None:
        return ModelStepOutcome(fit(), decision)
    if step == "segments":
        result = score_segments(model, fact, core["customers"], core["employees"], as_of=as_of)
    else:
        result = score_predictions(
            model, fact, core["customers"], employees=core["employees"], as_of=as_of, threads=threads
        )
    log.info(
        "%s: %s (stored %s, %.1f days old)", step, decision.reason, decision.version, decision.age_days or 0
    )
    return ModelStepOutcome(result, decision)


def freshness_frame(decisions: Mapping[str, ModelDecision]) -> pd.DataFrame:
    """Return one row per model step decision (the insights' ``run_model_freshness`` table)."""
    columns = ["step", "action", "reason", "model_name", "version", "created_at", "age_days", "drift"]
    return pd.DataFrame([d.as_dict() for d in decisions.values()], columns=columns)


def score_or_fit(
    step: str, fit: Callable[..., Any], fact: pd.DataFrame, core: Any, params: Any, *rest: Any
) -> Any:
    """Return model ``step``'s result for a run's ``params`` (PipelineParams): stored model or ``fit``.

    The drop-in replacement of a fit function of :data:`salesbi.pipeline.MODEL_FITS` (same
    arguments after ``step`` and ``fit``; picklable through ``functools.partial``). The decision
    is attached to the result as ``model_decision`` (a :class:`ModelDecision`). The forecast
    (``rest``: the run id) is decided by :func:`salesbi.incremental_forecast.run_forecast_step`.
    """
    if step == "forecast":
        from salesbi.incremental_forecast import run_forecast_step

        result, decision = run_forecast_step(
            lambda: fit(fact, core, params, *rest),
            fact,
            core,
            run_id=rest[0],
            models_dir=params.models_dir,
            refit=params.refit,
            max_age_days=params.model_max_age_days,
            drift_threshold=params.model_drift_threshold,
            frequency=params.forecast_frequency,
            horizon=params.forecast_horizon,
        )
        result.model_decision = decision
        return result
    outcome = run_model_step(
        step,
        lambda: fit(fact, core, params, *rest),
        fact,
        core,
        models_dir=params.models_dir,
        refit=params.refit,
        max_age_days=params.model_max_age_days,
        drift_threshold=params.model_drift_threshold,
        as_of=params.as_of,
        threads=params.model_threads,
    )
    outcome.result.model_decision = outcome.decision
    return outcome.result
