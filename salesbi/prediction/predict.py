"""Train, evaluate and apply the customer-sales models on a proper holdout; or fall back honestly.

Method (see docs/segmentation.md):

1. ``as_of`` (T) defaults to the day after the last order; the horizon is H days (up to 730).
2. The latest complete window ``[T − H, T)`` is the holdout, with origin ``e = T − H``; features
   at an origin read only orders before it.
3. Candidates for the sales in the next window: LightGBM (L2, as RMSE judges), BG/NBD × Gamma-Gamma
   (fitted on the calibration period alone; its expected purchases, P(order), P(alive) and
   expected sales are also LightGBM features), and two naive baselines (last window's sales;
   average sales per window since the first order).  For the probability of ordering: LightGBM,
   LightGBM Platt-calibrated, BG/NBD, and the naive Poisson rate.
4. **Rolling origins** when the history holds at least ``MIN_WINDOWS`` windows: LightGBM for
   the holdout is trained on origins ``e − H − i·step`` (step = H/2, up to 8, each with ≥ H days
   of history), so no training target overlaps the holdout.  **One calibration window**
   otherwise (long horizons: 39 weeks on 78 weeks of data): features at ``e`` from the
   calibration period alone, targets in the holdout window; LightGBM is trained on a seeded half
   of the customers and every candidate is scored on the other half.
5. Champions on the holdout: sales by RMSE (MAE, Spearman rank correlation, top-decile share
   and total error reported beside, with the best baseline and the runner-up); probability by
   Brier score (log-loss and ROC AUC beside), the Platt calibration scored out of fold, among
   the candidates that rank customers (ROC AUC ≥ 0.55 and ≥ the naive rate's − 0.02).
6. The final LightGBM is refitted with every target up to T (origins ``e − i·step``, or all
   customers at ``e``) and predicts at T; BG/NBD is refitted on everything before T.
7. Too thin (status ``too_thin``): no complete window before the holdout, fewer than 200
   customers at the holdout origin, or fewer than 30 ordering / 30 non-ordering training
   examples. Then no model is fitted; predictions come from the best naive baseline, and the
   note says so.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.modelrun import ModelRun
from salesbi.modelstore import utc_now
from salesbi.prediction.btyd import BTYD, BTYD_FEATURES, FIT_CAP, btyd_arrays, fit_btyd
from salesbi.prediction.features import (
    FEATURES,
    Prepared,
    customer_features_at,
    features_at,
    prepare,
    targets_at,
)
from salesbi.prediction.model import (
    BOOSTERS,
    StoredModel,
    naive_probability,
    naive_sales,
    platt_apply,
    platt_fit,
    predict_frame,
    predict_row,
)
from salesbi.prediction.tables import CUSTOMER_PREDICTIONS
from salesbi.sampling import BY_REPEAT_PURCHASES, cap_record, stratified_rows
from salesbi.segmentation.history import OrderHistory, as_history, customer_lines, default_as_of
from salesbi.segmentation.segment import customer_reps, rep_names
from salesbi.types import conform

#: complete windows of history for rolling origins (fewer: one calibration window)
MIN_WINDOWS = 3
#: LightGBM's inputs: the customer features plus the BG/NBD + Gamma-Gamma outputs
MODEL_FEATURES: tuple[str, ...] = (*FEATURES, *BTYD_FEATURES)
MIN_CUSTOMERS = 200
MIN_CLASS_EXAMPLES = 30
MAX_ORIGINS = 8
#: rolling origins stop adding cutoffs once their rows reach this (at least MIN_ORIGINS cutoffs)
TRAIN_ROWS_TARGET = 80_000
MIN_ORIGINS = 2
MAX_TRAIN_ROWS = 400_000
#: boosting rounds at LEARNING_RATE: 100 × 0.1 scores like 200 × 0.05 on the holdout (within the
#: spread of the seed) at half the fits' and the top drivers' cost (docs/benchmarks.md)
BOOST_ROUNDS = 100
LEARNING_RATE = 0.1


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
        "learning_rate": LEARNING_RATE,
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


def origins(
    end_origin: pd.Timestamp,
    start: pd.Timestamp,
    horizon_days: int,
    first_orders: np.ndarray | None = None,
) -> list[pd.Timestamp]:
    """Return up to MAX_ORIGINS cutoffs ``end_origin − i·step`` (step H/2), each with ≥ H days of history.

    ``first_orders`` (each customer's first order date, sorted): stop adding origins once they
    hold ``TRAIN_ROWS_TARGET`` training rows (customers known at each cutoff), keeping at least
    ``MIN_ORIGINS`` — many customers need fewer origins for the same accuracy (the cost is
    measured in docs/benchmarks.md).
    """
    step = pd.Timedelta(days=max(7, horizon_days // 2))
    out: list[pd.Timestamp] = []
    rows = 0
    for i in range(MAX_ORIGINS):
        c = end_origin - i * step
        if c - start < pd.Timedelta(days=horizon_days):
            break
        if first_orders is not None and len(out) >= MIN_ORIGINS and rows >= TRAIN_ROWS_TARGET:
            break
        out.append(c)
        if first_orders is not None:
            rows += int(np.searchsorted(first_orders, c.to_datetime64(), side="left"))
    return out


def with_btyd(
    x: pd.DataFrame, horizon_days: int, start: BTYD | None = None
) -> tuple[pd.DataFrame, BTYD | None]:
    """Return ``x`` with the BTYD_FEATURES of a BG/NBD + Gamma-Gamma fitted on ``x`` itself, and the fit.

    ``x`` holds the features at one cutoff (orders before it only), so the fit reads nothing
    after the cutoff.  Fewer than 20 customers: no fit, the columns are NaN.  ``start``: a fit
    at a neighbouring cutoff to start the search from (same optimum, fewer iterations).
    """
    if len(x) < 20:
        return x.assign(**{c: np.nan for c in BTYD_FEATURES}), None
    model = fit_btyd(x, start)
    return x.assign(**btyd_arrays(model, x, horizon_days)), model


@dataclass
class CutoffFrames:
    """Features (with BG/NBD ones) and targets per cutoff, each computed once in a run.

    The holdout model's origins ``e − h − i·step`` and the final model's ``e − i·step`` share
    all but two cutoffs (step = h/2); each BG/NBD fit starts from the previous one.
    """

    prepared: Prepared
    horizon_days: int
    frames: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)
    last_fit: BTYD | None = None

    def at(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """Return the features and targets at ``cutoff`` (column ``origin`` = the cutoff)."""
        if cutoff not in self.frames:
            x, fit = with_btyd(
                features_at(self.prepared, cutoff, self.horizon_days), self.horizon_days, self.last_fit
            )
            self.last_fit = fit or self.last_fit
            y = targets_at(self.prepared, cutoff, self.horizon_days, x.index)
            part = pd.concat([x, y], axis=1)
            part["origin"] = cutoff
            self.frames[cutoff] = part
        return self.frames[cutoff]


def training_frame(
    prepared: Prepared,
    cutoffs: list[pd.Timestamp],
    horizon_days: int,
    cache: CutoffFrames | None = None,
) -> pd.DataFrame:
    """Return stacked features (with BG/NBD ones) and targets at each cutoff (column ``origin``).

    ``cache``: frames already computed in this run (and where to keep the new ones).
    """
    cache = cache if cache is not None else CutoffFrames(prepared, horizon_days)
    parts = [cache.at(c) for c in cutoffs]
    if not parts:
        return pd.DataFrame(columns=[*MODEL_FEATURES, "target_sales", "target_ordered", "origin"])
    return pd.concat(parts)


#: how the LightGBM training rows above MAX_TRAIN_ROWS are sampled (stated in the model card)
BY_ORIGIN_AND_ORDERED = "seeded, stratified by origin and whether the customer ordered in the window"


def _cap(frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
    """Return ``frame``, or above MAX_TRAIN_ROWS a seeded sample stratified by origin and ordered-or-not."""
    if len(frame) <= MAX_TRAIN_ROWS:
        return frame
    origin = pd.factorize(frame["origin"].to_numpy())[0]
    ordered = frame["target_ordered"].to_numpy(dtype="float64") > 0
    keep = stratified_rows(origin * 2 + ordered, MAX_TRAIN_ROWS, random_state)
    return frame.iloc[keep]


def training_caps(eval_rows: int | None, final_rows: int | None, btyd: BTYD | None) -> list[dict[str, Any]]:
    """Return the model card's statement of the prediction's training caps (see salesbi.sampling).

    ``eval_rows``/``final_rows``: the holdout and final LightGBM models' training rows (None:
    that LightGBM model was not fitted); ``btyd``: the BG/NBD + Gamma-Gamma fit at the as-of date, if any.
    """
    caps = [
        cap_record(
            f"lightgbm_{which}",
            "rows",
            MAX_TRAIN_ROWS,
            rows,
            min(rows, MAX_TRAIN_ROWS),
            BY_ORIGIN_AND_ORDERED,
        )
        for which, rows in (("holdout", eval_rows), ("final", final_rows))
        if rows is not None
    ]
    if btyd is not None:
        caps.append(
            cap_record(
                "bgnbd_gamma_gamma",
                "customers",
                FIT_CAP,
                btyd.customers,
                btyd.fit_customers,
                BY_REPEAT_PURCHASES,
            )
        )
    return caps


def fit_boosters(
    train: pd.DataFrame,
    random_state: int,
    rounds: int,
    threads: int = 1,
    names: tuple[str, ...] = BOOSTERS,
    workers: int = 1,
) -> dict[str, lgb.Booster]:
    """Return the boosters ``names`` (of sales, order, q10, q90) fitted on ``train``.

    Each booster is trained on its own (same data, same seed), so fitting fewer changes none.
    The rows are binned once: sales, q10 and q90 share one LightGBM Dataset (same label), the
    order model's reuses its bins.  ``workers`` > 1: the fits run side by side in threads
    (LightGBM releases the GIL while it trains; the boosters are the same as one at a time).
    """
    x = train[list(MODEL_FEATURES)]
    sales = train["target_sales"].to_numpy(dtype="float64")
    ordered = train["target_ordered"].to_numpy(dtype="float64")
    specs = {
        "sales": lgb_params("regression", random_state, threads),
        "order": lgb_params("binary", random_state, threads),
        "q10": lgb_params("quantile", random_state, threads, alpha=0.1),
        "q90": lgb_params("quantile", random_state, threads, alpha=0.9),
    }
    wanted = [name for name in specs if name in names]
    if not wanted:
        return {}
    binning = lgb_params("regression", random_state, threads)
    sales_set = lgb.Dataset(x, label=sales, params=binning, free_raw_data=True).construct()
    sets = {name: sales_set for name in wanted}
    if "order" in wanted:
        sets["order"] = lgb.Dataset(
            x, label=ordered, params=binning, reference=sales_set, free_raw_data=True
        ).construct()

    def fit(name: str) -> lgb.Booster:
        return lgb.train(specs[name], sets[name], num_boost_round=rounds)

    if workers > 1 and len(wanted) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(wanted))) as pool:
            return dict(zip(wanted, pool.map(fit, wanted), strict=True))
    return {name: fit(name) for name in wanted}


def published_boosters(sales_method: str, probability_method: str) -> tuple[str, ...]:
    """Return the boosters the published methods use: sales + interval, and/or order (final model)."""
    names: tuple[str, ...] = ()
    if sales_method == "lightgbm":
        names += ("sales", "q10", "q90")
    if probability_method in ("lightgbm", "lightgbm_calibrated"):
        names += ("order",)
    return names


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


def top_decile_share(y: np.ndarray, pred: np.ndarray) -> float | None:
    """Return the share of actual sales bought by the 10 % of customers ranked highest by ``pred``."""
    total = float(y.sum())
    if total <= 0 or not len(y):
        return None
    k = max(1, math.ceil(0.1 * len(y)))
    top = np.argsort(-pred, kind="stable")[:k]
    return float(y[top].sum()) / total


def _spearman(y: np.ndarray, pred: np.ndarray) -> float | None:
    if len(y) < 3 or np.all(y == y[0]) or np.all(pred == pred[0]):
        return None
    return float(spearmanr(y, pred).statistic)


def thin_reasons(windows: int, eval_customers: int, train: pd.DataFrame, horizon_days: int) -> list[str]:
    """Return why the data are too thin for a reliable model (empty when they are not)."""
    reasons = []
    if windows < 2:
        reasons.append(
            f"only {windows} complete {horizon_days}-day windows (need 2: a calibration period and a holdout)"
        )
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


def _folds(n: int, random_state: int) -> np.ndarray:
    """Return a seeded 0/1 fold label per row (half each)."""
    rng = np.random.default_rng(random_state + 17)
    labels = np.zeros(n, dtype="int64")
    labels[rng.permutation(n)[: n // 2]] = 1
    return labels


def out_of_fold_platt(p: np.ndarray, y: np.ndarray, random_state: int) -> np.ndarray:
    """Return Platt-calibrated ``p`` where each half is calibrated on the other half (honest scores)."""
    folds = _folds(len(p), random_state)
    out = np.empty(len(p))
    for f in (0, 1):
        fit, apply = folds != f, folds == f
        out[apply] = platt_apply(p[apply], *platt_fit(p[fit], y[fit]))
    return out


def evaluate(
    holdout: pd.DataFrame, boosters: dict[str, lgb.Booster] | None, random_state: int = 0
) -> dict[str, Any]:
    """Return the holdout scores of every candidate: sales (MAE, RMSE, Spearman, top decile, total error)
    and probability (Brier, log-loss, ROC AUC), with calibration tables."""
    y = holdout["target_sales"].to_numpy(dtype="float64")
    ordered = holdout["target_ordered"].to_numpy(dtype="float64")
    sales = {m: naive_sales(holdout, m) for m in ("naive_last_window", "naive_average")}
    probs = {"naive_rate": naive_probability(holdout)}
    if holdout["btyd_sales"].notna().all():
        sales["bgnbd"] = holdout["btyd_sales"].to_numpy(dtype="float64")
        probs["bgnbd"] = holdout["btyd_probability"].to_numpy(dtype="float64")
    metrics: dict[str, Any] = {
        "eval_customers": len(holdout),
        "eval_actual_sales": round(float(y.sum()), 2),
        "eval_ordering_customers": int(ordered.sum()),
    }
    if boosters:
        x = holdout[list(MODEL_FEATURES)]
        pred = np.clip(np.asarray(boosters["sales"].predict(x)), 0.0, None)
        sales["lightgbm"] = pred
        low = np.minimum(np.clip(np.asarray(boosters["q10"].predict(x)), 0.0, None), pred)
        high = np.maximum(np.asarray(boosters["q90"].predict(x)), pred)
        metrics["interval_coverage_80"] = round(float(np.mean((y >= low) & (y <= high))), 4)
        raw = np.asarray(boosters["order"].predict(x))
        probs["lightgbm"] = raw
        probs["lightgbm_calibrated"] = out_of_fold_platt(raw, ordered, random_state)
        metrics["calibration"] = calibration_table(ordered, probs["lightgbm_calibrated"])
        metrics["calibration_uncalibrated"] = calibration_table(ordered, raw)
    metrics["calibration_naive_rate"] = calibration_table(ordered, probs["naive_rate"])
    scores = {m: _errors(y, p) for m, p in sales.items()}
    metrics["mae"] = {m: round(v[0], 4) for m, v in scores.items()}
    metrics["rmse"] = {m: round(v[1], 4) for m, v in scores.items()}
    metrics["spearman"] = {m: _round(_spearman(y, p)) for m, p in sales.items()}
    metrics["top_decile_share"] = {m: _round(top_decile_share(y, p)) for m, p in sales.items()}
    total = float(y.sum())
    metrics["total_error"] = {
        m: (round(float(p.sum()) / total - 1.0, 4) if total > 0 else None) for m, p in sales.items()
    }
    metrics["roc_auc"] = {m: _round(_auc(ordered, p)) for m, p in probs.items()}
    metrics["brier"] = {m: round(float(brier_score_loss(ordered, p)), 6) for m, p in probs.items()}
    metrics["log_loss"] = {
        m: round(float(log_loss(ordered, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])), 6)
        for m, p in probs.items()
    }
    metrics["mean_probability"] = {m: round(float(np.mean(p)), 4) for m, p in probs.items()}
    metrics["observed_order_rate"] = round(float(ordered.mean()), 4) if len(ordered) else None
    return metrics


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _best(scores: dict[str, float], candidates: tuple[str, ...]) -> str:
    present = [c for c in candidates if c in scores]
    return min(present, key=lambda c: (scores[c], candidates.index(c)))


#: sales candidates, simplest last: an exact tie goes to the earlier
SALES_CANDIDATES = ("naive_average", "naive_last_window", "bgnbd", "lightgbm")
PROBABILITY_CANDIDATES = ("naive_rate", "bgnbd", "lightgbm_calibrated", "lightgbm")
#: a published probability must rank customers: holdout ROC AUC at least this ...
AUC_FLOOR = 0.55
#: ... and at most this far below the naive rate's AUC (the baseline's rank skill)
AUC_SLACK = 0.02


def rank_skill_exclusions(metrics: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    """Return {probability candidate: why it may not be published} for candidates without rank skill.

    A candidate is excluded when its holdout ROC AUC is missing, below ``AUC_FLOOR``, or more than
    ``AUC_SLACK`` below the naive rate's: a low Brier score can come from shrinking every customer
    to the base rate, which calibrates well and tells the user nothing about who will order.
    When every candidate would be excluded, none is (the Brier score decides alone).
    """
    auc = metrics.get("roc_auc", {})
    base = auc.get("naive_rate")
    need = max(AUC_FLOOR, base - AUC_SLACK) if base is not None else AUC_FLOOR
    out: dict[str, str] = {}
    for m in allowed:
        if m not in metrics.get("brier", {}):
            continue
        value = auc.get(m)
        if value is None:
            out[m] = "no ROC AUC on the holdout (one class only)"
        elif value < need:
            out[m] = f"ROC AUC {value:.3f} below {need:.3f} (floor {AUC_FLOOR}, naive rate {base})"
    candidates = [m for m in allowed if m in metrics.get("brier", {})]
    return {} if len(out) == len(candidates) else out


def choose_methods(metrics: dict[str, Any], thin: bool) -> dict[str, Any]:
    """Return the sales and probability champions with the runner-up and best baseline of each.

    Sales: lowest holdout RMSE; probability: lowest Brier score among the candidates with rank
    skill (:func:`rank_skill_exclusions`, recorded as ``probability_excluded``).  Thin data:
    baselines only.
    """
    allowed_sales = ("naive_average", "naive_last_window") if thin else SALES_CANDIDATES
    allowed_prob = ("naive_rate",) if thin else PROBABILITY_CANDIDATES
    out: dict[str, Any] = {}
    excluded = rank_skill_exclusions(metrics, allowed_prob)
    if excluded:
        out["probability_excluded"] = excluded
    for kind, key, allowed, baselines in (
        ("sales", "rmse", allowed_sales, ("naive_average", "naive_last_window")),
        ("probability", "brier", allowed_prob, ("naive_rate",)),
    ):
        scores = {m: v for m, v in metrics.get(key, {}).items() if m in allowed}
        if not scores:
            out[f"{kind}_method"] = baselines[0]
            continue
        eligible = [m for m in scores if kind != "probability" or m not in excluded]
        ranked = sorted(eligible, key=lambda m: (scores[m], allowed.index(m)))
        out[f"{kind}_method"] = ranked[0]
        out[f"{kind}_runner_up"] = ranked[1] if len(ranked) > 1 else None
        out[f"{kind}_baseline"] = min((m for m in baselines if m in scores), key=lambda m: scores[m])
    return out


def history_before(
    fact: pd.DataFrame | OrderHistory, as_of: date | None
) -> tuple[OrderHistory, pd.Timestamp, Any]:
    """Return the order history (of the fact's lines, or ``fact`` itself), the as-of day (default:
    after the last order) and the history before it, prepared.

    Raises SalesBIError when no order falls before the as-of day.
    """
    history = as_history(fact)
    as_of = as_of or default_as_of(history.orders)
    t = pd.Timestamp(as_of)
    prepared = prepare(history.before(t))
    if prepared.orders.empty:
        raise SalesBIError(f"no orders before the as-of date {as_of}", hint="choose a later as_of")
    return history, t, prepared


def predict_customer_sales(
    fact: pd.DataFrame | OrderHistory,
    customers: pd.DataFrame,
    *,
    employees: pd.DataFrame | None = None,
    as_of: date | None = None,
    horizon_days: int = 90,
    random_state: int = 0,
    boost_rounds: int = BOOST_ROUNDS,
    created_at: datetime | None = None,
    threads: int = 1,
    workers: int = 1,
) -> PredictionResult:
    """Return next-``horizon_days`` sales and order-probability predictions for every customer with an order.

    ``employees`` (optional) fills ``sales_rep_name``. ``threads``: LightGBM threads for the fits
    and the scoring (the trees do not depend on it). ``workers``: boosters fitted side by side in
    threads, and the final model's training rows built while the holdout model trains (the
    results do not depend on it). See the module docstring for the method.
    """
    if horizon_days < 7:
        raise ConfigurationError(f"horizon_days must be at least 7, got {horizon_days}")
    history, t, prepared = history_before(fact, as_of)
    start = prepared.start
    h = pd.Timedelta(days=horizon_days)
    e = t - h
    windows = int((t - start).days // horizon_days)
    rolling = windows >= MIN_WINDOWS
    design = "rolling_origins" if rolling else "one_calibration_window"

    cache = CutoffFrames(prepared, horizon_days)
    first_seen = prepared.orders.groupby("customer_id", observed=True)["order_date"].min()
    first_orders = np.sort(first_seen.to_numpy(dtype="datetime64[ns]"))
    at_e = (
        training_frame(prepared, [e], horizon_days, cache) if e > start else training_frame(prepared, [], 1)
    )
    if rolling:
        fit_rows = training_frame(
            prepared, origins(e - h, start, horizon_days, first_orders), horizon_days, cache
        )
        holdout = at_e
    else:  # one calibration window: LightGBM learns on half the customers, all are scored on the rest
        half = _folds(len(at_e), random_state) == 1
        fit_rows, holdout = at_e[half], at_e[~half]
    reasons = thin_reasons(windows, len(at_e), fit_rows, horizon_days)
    thin = bool(reasons)

    boosters: dict[str, lgb.Booster] = {}
    metrics: dict[str, Any] = {
        "design": design,
        "eval_window": [e.date().isoformat(), (t - timedelta(days=1)).date().isoformat()],
    }
    eval_boosters = None
    final_origins = origins(e, start, horizon_days, first_orders) if rolling else [e]
    final_train: pd.DataFrame | None = None
    if len(holdout):
        if thin:
            eval_boosters = None
        elif workers > 1 and rolling:
            # the final model's rows (BG/NBD fits at its new cutoffs) are built while the holdout
            # model trains: the same cutoffs in the same order as after it, so the same frames
            with ThreadPoolExecutor(max_workers=1) as pool:
                job = pool.submit(
                    fit_boosters,
                    _cap(fit_rows, random_state),
                    random_state,
                    boost_rounds,
                    threads,
                    BOOSTERS,
                    workers,
                )
                final_train = training_frame(prepared, final_origins, horizon_days, cache)
                eval_boosters = job.result()
        else:
            eval_boosters = fit_boosters(
                _cap(fit_rows, random_state), random_state, boost_rounds, threads, BOOSTERS, workers
            )
        metrics.update(evaluate(holdout, eval_boosters, random_state))
    metrics["train_rows_eval_model"] = len(fit_rows)
    chosen = choose_methods(metrics, thin)
    metrics.update(chosen)
    sales_method = chosen["sales_method"]
    probability_method = chosen["probability_method"]
    calibration: dict[str, float] = {}
    if probability_method == "lightgbm_calibrated" and eval_boosters is not None:
        raw = np.asarray(eval_boosters["order"].predict(holdout[list(MODEL_FEATURES)]))
        slope, intercept = platt_fit(raw, holdout["target_ordered"].to_numpy())
        calibration = {"slope": slope, "intercept": intercept}
    if not thin and "lightgbm" in (sales_method, probability_method.removesuffix("_calibrated")):
        if final_train is None:
            final_train = (
                at_e if not rolling else training_frame(prepared, final_origins, horizon_days, cache)
            )
        boosters = fit_boosters(
            _cap(final_train, random_state),
            random_state,
            boost_rounds,
            threads,
            published_boosters(sales_method, probability_method),
            workers,
        )
        metrics["train_rows_final_model"] = len(final_train)

    note = ""
    if thin:
        note = (
            "Too thin for a reliable model: " + "; ".join(reasons) + f". Predictions are the naive baseline "
            f"({sales_method.replace('_', ' ')}), the probability a Poisson rate from past orders."
        )
    elif sales_method in ("naive_average", "naive_last_window"):
        note = (
            "No model beat the naive baseline on the holdout window; "
            f"predictions are the {sales_method.replace('_', ' ')} baseline."
        )
    features, btyd = with_btyd(features_at(prepared, t, horizon_days), horizon_days, cache.last_fit)
    params: dict[str, Any] = {
        "horizon_days": horizon_days,
        "as_of": t.date().isoformat(),
        "design": design,
        "origin_step_days": max(7, horizon_days // 2),
        "origins_final": [c.date().isoformat() for c in final_origins],
        "boost_rounds": boost_rounds,
        "lightgbm": lgb_params("regression", random_state, threads),
        "thresholds": {
            "min_windows_rolling": MIN_WINDOWS,
            "min_customers": MIN_CUSTOMERS,
            "min_class_examples": MIN_CLASS_EXAMPLES,
            "max_origins": MAX_ORIGINS,
            "min_origins": MIN_ORIGINS,
            "train_rows_target": TRAIN_ROWS_TARGET,
            "max_train_rows": MAX_TRAIN_ROWS,
        },
        # BG/NBD + Gamma-Gamma are fitted on a stratified sample of at most this many customers
        "btyd_fit_customers_cap": FIT_CAP,
        "training_caps": training_caps(
            len(fit_rows) if eval_boosters is not None else None, metrics.get("train_rows_final_model"), btyd
        ),
    }
    if btyd is not None:
        params["btyd"] = btyd.as_dict()
    if calibration:
        params["calibration"] = calibration
    model = StoredModel(
        as_of=t.date(),
        horizon_days=horizon_days,
        sales_method=sales_method,
        probability_method=probability_method,
        boosters=boosters,
        features=list(MODEL_FEATURES) if boosters else list(FEATURES),
        status="too_thin" if thin else "ok",
        note=note,
        params=params,
        metrics=metrics,
        data_start=start.date(),
        data_end=prepared.end.date(),
    )
    model.stamp(created_at or utc_now())

    frame = predict_frame(features[list(FEATURES)], model, threads=threads, workers=workers)
    frame = _with_names(frame, history, customers, employees)
    frame["as_of_date"] = t
    frame["horizon_days"] = horizon_days
    frame["window_end"] = t + h - pd.Timedelta(days=1)
    out = conform(frame.reset_index(), CUSTOMER_PREDICTIONS)
    return PredictionResult(out, _runs(model, metrics, len(features)), {model.model_name: model})


def _with_names(
    frame: pd.DataFrame,
    history: pd.DataFrame | OrderHistory,
    customers: pd.DataFrame,
    employees: pd.DataFrame | None,
) -> pd.DataFrame:
    info = customers.set_index(customers["customer_id"].astype("string"))
    info = info[~info.index.duplicated()].reindex(frame.index)
    frame["customer_name"] = info["customer_name"].to_numpy()
    rep_id = customer_reps(history, customers, frame.index)
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
        "design",
        "eval_window",
        "eval_customers",
        "eval_actual_sales",
        "mae",
        "rmse",
        "spearman",
        "top_decile_share",
        "total_error",
        "interval_coverage_80",
        "sales_method",
        "sales_runner_up",
        "sales_baseline",
        "train_rows_eval_model",
        "train_rows_final_model",
    )
    order_keys = (
        "design",
        "eval_window",
        "eval_customers",
        "eval_ordering_customers",
        "observed_order_rate",
        "mean_probability",
        "brier",
        "log_loss",
        "roc_auc",
        "calibration",
        "calibration_uncalibrated",
        "calibration_naive_rate",
        "probability_method",
        "probability_runner_up",
        "probability_baseline",
        "probability_excluded",
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
