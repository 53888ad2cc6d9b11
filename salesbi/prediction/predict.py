"""Train, evaluate and apply the customer-sales models on rolling origins; or fall back honestly.

Method (see docs/segmentation.md):

1. ``as_of`` (T) defaults to the day after the last order; the horizon is H days.
2. The latest complete window ``[T − H, T)`` is the evaluation window, with origin ``e = T − H``.
3. Evaluation models are trained on origins ``e − H − i·step`` (step = H/2, up to 8 origins, each
   with at least H days of history before it), so no training target overlaps the evaluation
   window; features at an origin read only orders before it.
4. On the evaluation window the LightGBM regressor is compared with the naive baselines (last
   window's sales; average sales per window since the first order) by MAE and RMSE; the
   classifier with the naive Poisson rate by ROC AUC and Brier score, plus a calibration table.
5. The final models are refitted on origins ``e − i·step`` and predict at T. The published sales
   method is the one with the lowest evaluation MAE (LightGBM or a baseline); likewise the
   probability comes from the classifier only if it beats the naive rate's ROC AUC.
6. Too thin (status ``too_thin``): fewer than 3 complete windows, fewer than 200 customers at the
   evaluation origin, or fewer than 30 ordering / 30 non-ordering training examples. Then no
   model is fitted; predictions come from the best naive baseline, and the note says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.modelrun import ModelRun
from salesbi.modelstore import utc_now
from salesbi.prediction.features import (
    FEATURES,
    Prepared,
    customer_features_at,
    features_at,
    prepare,
    targets_at,
)
from salesbi.prediction.model import StoredModel, naive_probability, naive_sales, predict_frame, predict_row
from salesbi.prediction.tables import CUSTOMER_PREDICTIONS
from salesbi.segmentation.history import customer_lines, default_as_of, lines_from_fact
from salesbi.segmentation.segment import customer_reps, rep_names
from salesbi.types import conform

MIN_WINDOWS = 3
MIN_CUSTOMERS = 200
MIN_CLASS_EXAMPLES = 30
MAX_ORIGINS = 8
MAX_TRAIN_ROWS = 400_000
BOOST_ROUNDS = 200


@dataclass
class PredictionResult:
    """The ``rpt.customer_predictions`` frame, model runs, and the stored model bundle."""

    customer_predictions: pd.DataFrame
    model_runs: list[ModelRun]
    models: dict[str, StoredModel] = field(default_factory=dict)

    @property
    def model(self) -> StoredModel:
        """Return the customer-sales model bundle (to store, or to predict one customer)."""
        return self.models["customer_sales"]


def lgb_params(objective: str, random_state: int, threads: int = 1, **extra: Any) -> dict[str, Any]:
    """Return deterministic LightGBM parameters for ``objective`` (same trees for any ``threads``)."""
    params: dict[str, Any] = {
        "objective": objective,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        # 1 by default: steps that run side by side on few cores slow each other down with OpenMP threads
        "num_threads": threads,
        "deterministic": True,
        "force_row_wise": True,
        "seed": random_state,
        "verbose": -1,
    }
    params.update(extra)
    return params


def origins(end_origin: pd.Timestamp, start: pd.Timestamp, horizon_days: int) -> list[pd.Timestamp]:
    """Return up to MAX_ORIGINS cutoffs ``end_origin − i·step`` (step H/2), each with ≥ H days of history."""
    step = pd.Timedelta(days=max(7, horizon_days // 2))
    out = []
    for i in range(MAX_ORIGINS):
        c = end_origin - i * step
        if c - start < pd.Timedelta(days=horizon_days):
            break
        out.append(c)
    return out


def training_frame(prepared: Prepared, cutoffs: list[pd.Timestamp], horizon_days: int) -> pd.DataFrame:
    """Return stacked features and targets at each cutoff (column ``origin`` says which)."""
    parts = []
    for c in cutoffs:
        x = features_at(prepared, c, horizon_days)
        y = targets_at(prepared, c, horizon_days, x.index)
        part = pd.concat([x, y], axis=1)
        part["origin"] = c
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*FEATURES, "target_sales", "target_ordered", "origin"])
    return pd.concat(parts)


def _cap(frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
    if len(frame) <= MAX_TRAIN_ROWS:
        return frame
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(len(frame), size=MAX_TRAIN_ROWS, replace=False))
    return frame.iloc[keep]


def fit_boosters(
    train: pd.DataFrame, random_state: int, rounds: int, threads: int = 1
) -> dict[str, lgb.Booster]:
    """Return the four boosters (sales, order, q10, q90) fitted on ``train``."""
    x = train[list(FEATURES)]
    sales = train["target_sales"].to_numpy(dtype="float64")
    ordered = train["target_ordered"].to_numpy(dtype="float64")
    specs = {
        "sales": (lgb_params("tweedie", random_state, threads, tweedie_variance_power=1.3), sales),
        "order": (lgb_params("binary", random_state, threads), ordered),
        "q10": (lgb_params("quantile", random_state, threads, alpha=0.1), sales),
        "q90": (lgb_params("quantile", random_state, threads, alpha=0.9), sales),
    }
    return {
        name: lgb.train(params, lgb.Dataset(x, label=y, free_raw_data=True), num_boost_round=rounds)
        for name, (params, y) in specs.items()
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Return per probability decile bin: lower edge, customers, mean predicted, observed order rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin_low": round(float(edges[b]), 2),
                    "customers": int(mask.sum()),
                    "mean_predicted": round(float(p[mask].mean()), 4),
                    "observed_rate": round(float(y[mask].mean()), 4),
                }
            )
    return rows


def _errors(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return float(np.mean(np.abs(y - pred))), float(np.sqrt(np.mean((y - pred) ** 2)))


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def thin_reasons(windows: int, eval_customers: int, train: pd.DataFrame, horizon_days: int) -> list[str]:
    """Return why the data are too thin for a reliable model (empty when they are not)."""
    reasons = []
    if windows < MIN_WINDOWS:
        reasons.append(f"only {windows} complete {horizon_days}-day windows (need {MIN_WINDOWS})")
    if eval_customers < MIN_CUSTOMERS:
        reasons.append(f"only {eval_customers} customers to evaluate on (need {MIN_CUSTOMERS})")
    positives = int(train["target_ordered"].sum()) if len(train) else 0
    negatives = len(train) - positives
    if min(positives, negatives) < MIN_CLASS_EXAMPLES:
        reasons.append(
            f"{positives} ordering and {negatives} non-ordering training examples "
            f"(need {MIN_CLASS_EXAMPLES} each)"
        )
    return reasons


def evaluate(evaluation: pd.DataFrame, boosters: dict[str, lgb.Booster] | None) -> dict[str, Any]:
    """Return MAE/RMSE of the model (when given) and both baselines, classifier metrics and calibration."""
    y = evaluation["target_sales"].to_numpy(dtype="float64")
    ordered = evaluation["target_ordered"].to_numpy(dtype="float64")
    mae: dict[str, float] = {}
    rmse: dict[str, float] = {}
    for method in ("naive_last_window", "naive_average"):
        mae[method], rmse[method] = _errors(y, naive_sales(evaluation, method))
    p_naive = naive_probability(evaluation)
    auc: dict[str, float | None] = {"naive_rate": _auc(ordered, p_naive)}
    brier: dict[str, float] = {"naive_rate": float(brier_score_loss(ordered, p_naive))}
    metrics: dict[str, Any] = {
        "eval_customers": len(evaluation),
        "eval_actual_sales": round(float(y.sum()), 2),
        "eval_ordering_customers": int(ordered.sum()),
    }
    if boosters:
        x = evaluation[list(FEATURES)]
        pred = np.clip(np.asarray(boosters["sales"].predict(x)), 0.0, None)
        mae["lightgbm"], rmse["lightgbm"] = _errors(y, pred)
        low = np.minimum(np.clip(np.asarray(boosters["q10"].predict(x)), 0.0, None), pred)
        high = np.maximum(np.asarray(boosters["q90"].predict(x)), pred)
        metrics["interval_coverage_80"] = round(float(np.mean((y >= low) & (y <= high))), 4)
        p = np.asarray(boosters["order"].predict(x))
        auc["lightgbm"] = _auc(ordered, p)
        brier["lightgbm"] = float(brier_score_loss(ordered, p))
        metrics["calibration"] = calibration_table(ordered, p)
    metrics["calibration_naive_rate"] = calibration_table(ordered, p_naive)
    metrics["mae"] = {k: round(v, 4) for k, v in mae.items()}
    metrics["rmse"] = {k: round(v, 4) for k, v in rmse.items()}
    metrics["roc_auc"] = {k: (round(v, 4) if v is not None else None) for k, v in auc.items()}
    metrics["brier"] = {k: round(v, 6) for k, v in brier.items()}
    return metrics


def _best(scores: dict[str, float], candidates: tuple[str, ...]) -> str:
    present = [c for c in candidates if c in scores]
    return min(present, key=lambda c: (scores[c], candidates.index(c)))


def predict_customer_sales(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    employees: pd.DataFrame | None = None,
    as_of: date | None = None,
    horizon_days: int = 90,
    random_state: int = 0,
    boost_rounds: int = BOOST_ROUNDS,
    created_at: datetime | None = None,
    threads: int = 1,
) -> PredictionResult:
    """Return next-``horizon_days`` sales and order-probability predictions for every customer with an order.

    ``employees`` (optional) fills ``sales_rep_name``. ``threads``: LightGBM threads for the fits
    and the scoring (the trees do not depend on it). See the module docstring for the method.
    """
    if horizon_days < 7:
        raise ConfigurationError(f"horizon_days must be at least 7, got {horizon_days}")
    lines = lines_from_fact(fact)
    as_of = as_of or default_as_of(lines)
    t = pd.Timestamp(as_of)
    prepared = prepare(lines[lines["order_date"] < t])
    if prepared.orders.empty:
        raise SalesBIError(f"no orders before the as-of date {as_of}", hint="choose a later as_of")
    start = prepared.start
    h = pd.Timedelta(days=horizon_days)
    e = t - h
    windows = int((t - start).days // horizon_days)

    eval_train = training_frame(prepared, origins(e - h, start, horizon_days), horizon_days)
    evaluation = training_frame(prepared, [e], horizon_days) if e > start else training_frame(prepared, [], 1)
    reasons = thin_reasons(windows, len(evaluation), eval_train, horizon_days)
    thin = bool(reasons)

    boosters: dict[str, lgb.Booster] = {}
    metrics: dict[str, Any] = {
        "eval_window": [e.date().isoformat(), (t - timedelta(days=1)).date().isoformat()]
    }
    if len(evaluation):
        eval_boosters = (
            None
            if thin
            else fit_boosters(_cap(eval_train, random_state), random_state, boost_rounds, threads)
        )
        metrics.update(evaluate(evaluation, eval_boosters))
    metrics["train_rows_eval_model"] = len(eval_train)
    sales_method = "naive_average"
    probability_method = "naive_rate"
    if "mae" in metrics:
        sales_method = _best(metrics["mae"], ("lightgbm", "naive_average", "naive_last_window"))
    if not thin and metrics["roc_auc"].get("lightgbm") is not None:
        naive_auc = metrics["roc_auc"]["naive_rate"] or 0.0
        probability_method = "lightgbm" if metrics["roc_auc"]["lightgbm"] > naive_auc else "naive_rate"
    final_origins = origins(e, start, horizon_days)
    if not thin and "lightgbm" in (sales_method, probability_method):
        final_train = training_frame(prepared, final_origins, horizon_days)
        boosters = fit_boosters(_cap(final_train, random_state), random_state, boost_rounds, threads)
        metrics["train_rows_final_model"] = len(final_train)

    note = ""
    if thin:
        note = (
            "Too thin for a reliable model: " + "; ".join(reasons) + f". Predictions are the naive baseline "
            f"({sales_method.replace('_', ' ')}), the probability a Poisson rate from past orders."
        )
    elif sales_method != "lightgbm":
        note = (
            f"LightGBM did not beat the naive baseline on the latest complete window; "
            f"predictions are the {sales_method.replace('_', ' ')} baseline."
        )
    metrics["sales_method"] = sales_method
    metrics["probability_method"] = probability_method
    params = {
        "horizon_days": horizon_days,
        "as_of": t.date().isoformat(),
        "origin_step_days": max(7, horizon_days // 2),
        "origins_final": [c.date().isoformat() for c in final_origins],
        "boost_rounds": boost_rounds,
        "lightgbm": lgb_params("tweedie", random_state, threads, tweedie_variance_power=1.3),
        "thresholds": {
            "min_windows": MIN_WINDOWS,
            "min_customers": MIN_CUSTOMERS,
            "min_class_examples": MIN_CLASS_EXAMPLES,
        },
    }
    model = StoredModel(
        as_of=t.date(),
        horizon_days=horizon_days,
        sales_method=sales_method,
        probability_method=probability_method,
        boosters=boosters,
        status="too_thin" if thin else "ok",
        note=note,
        params=params,
        metrics=metrics,
        data_start=start.date(),
        data_end=prepared.end.date(),
    )
    model.stamp(created_at or utc_now())

    features = features_at(prepared, t, horizon_days)
    frame = predict_frame(features, model, threads=threads)
    frame = _with_names(frame, lines, customers, employees)
    frame["as_of_date"] = t
    frame["horizon_days"] = horizon_days
    frame["window_end"] = t + h - pd.Timedelta(days=1)
    out = conform(frame.reset_index(), CUSTOMER_PREDICTIONS)
    return PredictionResult(out, _runs(model, metrics, len(features)), {model.model_name: model})


def _with_names(
    frame: pd.DataFrame, lines: pd.DataFrame, customers: pd.DataFrame, employees: pd.DataFrame | None
) -> pd.DataFrame:
    info = customers.set_index(customers["customer_id"].astype("string"))
    info = info[~info.index.duplicated()].reindex(frame.index)
    frame["customer_name"] = info["customer_name"].to_numpy()
    rep_id = customer_reps(lines, customers, frame.index)
    frame["sales_rep_id"] = rep_id.to_numpy()
    if employees is not None:
        frame["sales_rep_name"] = rep_id.map(rep_names(employees)).astype("string").to_numpy()
    return frame


def _runs(model: StoredModel, metrics: dict[str, Any], n_customers: int) -> list[ModelRun]:
    common: dict[str, Any] = {
        "model_version": model.version,
        "status": model.status,
        "data_start": model.data_start,
        "data_end": model.data_end,
        "notes": model.note,
    }
    sales_keys = (
        "eval_window",
        "eval_customers",
        "eval_actual_sales",
        "mae",
        "rmse",
        "interval_coverage_80",
        "sales_method",
        "train_rows_eval_model",
        "train_rows_final_model",
    )
    order_keys = (
        "eval_window",
        "eval_customers",
        "eval_ordering_customers",
        "roc_auc",
        "brier",
        "calibration",
        "calibration_naive_rate",
        "probability_method",
    )
    sales_params = dict(model.params)
    order_params = {**model.params, "lightgbm": lgb_params("binary", int(model.params["lightgbm"]["seed"]))}
    return [
        ModelRun(
            model_name="customer_sales",
            n_rows=n_customers,
            params=sales_params,
            metrics={k: metrics[k] for k in sales_keys if k in metrics},
            **common,
        ),
        ModelRun(
            model_name="customer_order_probability",
            n_rows=n_customers,
            params=order_params,
            metrics={k: metrics[k] for k in order_keys if k in metrics},
            **common,
        ),
    ]


def predict_from_history(
    history: pd.DataFrame, model: StoredModel, as_of: date | None = None
) -> dict[str, Any]:
    """Return one customer's prediction from their order history with a stored model.

    ``history``: the customer's orders or order lines (order_date and net_sales or amount;
    optionally order_id, product_line_id, is_cancelled). ``as_of`` defaults to the model's, so
    the answer equals the batch row of the same customer. Keys: the prediction columns of
    ``rpt.customer_predictions`` (without names) plus ``features``.
    """
    lines = customer_lines(history)
    t = pd.Timestamp(as_of or model.as_of)
    features = customer_features_at(lines, t, model.horizon_days)
    if features is None:
        raise SalesBIError(
            f"the history has no order before {t.date()}", hint="send orders before the as-of date"
        )
    out: dict[str, Any] = {
        "as_of_date": t.date(),
        "horizon_days": model.horizon_days,
        "window_end": (t + pd.Timedelta(days=model.horizon_days - 1)).date(),
    }
    out.update(predict_row(features, model))
    out["features"] = {k: (None if math.isnan(v) else float(v)) for k, v in features.items()}
    return out
