"""The global LightGBM model: one model over every series and every step ahead (direct strategy)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np

from salesbi.forecasting.features import CATEGORICAL, MIN_HISTORY, FeatureContext, build_features
from salesbi.sampling import cap_record, stratified_rows

#: more rows did not help: on the generated company 100k sampled rows scored as well as 300k at 1/3 the time
MAX_TRAIN_ROWS = 100_000


@dataclass
class LightGBMConfig:
    """Training settings; deterministic (fixed seed, 1 thread by default, deterministic=True)."""

    #: the most boosting rounds; with ``early_stopping_rounds`` the rounds actually used are chosen
    num_boost_round: int = 400
    learning_rate: float = 0.03
    num_leaves: int = 15
    max_train_rows: int = MAX_TRAIN_ROWS
    #: how the training rows are drawn above ``max_train_rows`` (a key of :data:`SAMPLINGS`)
    sampling: str = "uniform"
    # 1 thread: on a shared 2-core machine OpenMP threads contend and 2 runs several times slower
    num_threads: int = 1
    random_state: int = 0
    #: distinct models over the backtest origins (None: one per origin): a model trained at an
    #: origin also forecasts the later origins until the next refit (it sees less, never more);
    #: the final model is always refitted.  1 halves the fits of a 3-origin backtest, but its
    #: stale backtest cost CDNOW's champion 0.254 -> 0.262 WAPE (docs/benchmarks.md): not the default
    backtest_fits: int | None = None
    #: stop when the validation L1 has not improved for this many rounds (None: always
    #: ``num_boost_round``).  The validation slice is the training rows whose target falls in the
    #: last ``horizon`` periods up to the cutoff (the most recent, as a forecast is judged); the
    #: model is then trained on the older rows only.  :func:`fit_models` does this once, at the
    #: earliest cutoff, and trains the later models on all their rows with the rounds found there.
    #: At 1M generated lines the best round was 82-224 of 400 (docs/benchmarks.md).
    #: The kept round is the best at or after ``min_rounds``.
    early_stopping_rounds: int | None = 50
    #: early stopping keeps the best round at or after this one: on CDNOW the recent validation
    #: slice was best at round 1 (a level shift the median prior fits), a 1-round model
    min_rounds: int = 100
    #: fewer validation rows than this: no early stopping (``num_boost_round`` rounds, all rows)
    min_validation_rows: int = 200
    #: models fitted at the same time, each in its own thread with ``num_threads`` LightGBM
    #: threads (the fits are independent and single-threaded fits are deterministic, so the
    #: models are the same for any value)
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self, n_rows: int) -> dict[str, Any]:
        """Return the LightGBM parameters for a training set of ``n_rows`` rows."""
        return {
            # L1 = the median: what minimises absolute error, hence WAPE
            "objective": "l1",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            # sales are noisy: large leaves (200 rows at 100k) generalise better than 20
            "min_data_in_leaf": int(max(3, min(200, n_rows // 500))),
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbose": -1,
            **self.extra,
        }


#: how the training rows above ``max_train_rows`` can be drawn (the text is stated in the model card)
SAMPLINGS: dict[str, str] = {
    "uniform": (
        "seeded, uniform over series and steps, origins uniform over those valid for the step, "
        "drawn with replacement (used: the draws; distinct: the different rows among them)"
    ),
    "stratified": (
        "seeded, stratified by series and step ahead (each its share of the rows), "
        "origins drawn without replacement"
    ),
    "recent": (
        "stratified by series and step ahead (each its share of the rows), "
        "the most recent target periods of each kept"
    ),
}


def candidate_rows(n_series: int, cutoff: int, horizon: int, frequency: str) -> int:
    """Return the number of training examples (series, origin, step) with a target ``<= cutoff``."""
    first = MIN_HISTORY[frequency] - 1
    return n_series * sum(max(0, cutoff - h - first + 1) for h in range(1, horizon + 1))


def training_caps(
    cap: int, candidates: int, used: int, sampling: str = "uniform", distinct: int | None = None
) -> list[dict[str, Any]]:
    """Return the model card's statement of the final LightGBM fit's cap (see salesbi.sampling):
    ``used`` training rows drawn, ``distinct`` different (series, origin, step) among them."""
    return [cap_record("lightgbm_final", "rows", cap, candidates, used, SAMPLINGS[sampling], distinct)]


def distinct_rows(rows: np.ndarray, origins: np.ndarray, steps: np.ndarray) -> int:
    """Return how many different (series, origin, step) training rows there are among the given ones."""
    if not len(rows):
        return 0
    return len(np.unique(np.stack([rows, origins, steps], axis=1), axis=0))


def training_rows(
    n_series: int,
    cutoff: int,
    horizon: int,
    frequency: str,
    max_rows: int,
    seed: int,
    sampling: str = "uniform",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, origins, steps) of training examples whose target period is ``<= cutoff``.

    Every (series, origin, step) with enough history is a candidate; above ``max_rows`` a
    sample is drawn (``sampling``, a key of :data:`SAMPLINGS`), so training cost stays flat
    however long the history: ``uniform`` draws series, step and origin at random (seeded);
    ``stratified`` keeps each (series, step) its share of the rows (:func:`salesbi.sampling.stratified_rows`,
    seeded); ``recent`` keeps the same shares, each the (series, step)'s latest origins.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sampling!r}: one of {', '.join(SAMPLINGS)}")
    first = MIN_HISTORY[frequency] - 1
    origins_per_step = [max(0, cutoff - h - first + 1) for h in range(1, horizon + 1)]
    per_series = int(sum(origins_per_step))
    total = per_series * n_series
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    if total <= max_rows or sampling != "uniform":
        rows_l, orig_l, step_l = [], [], []
        for h, count in zip(range(1, horizon + 1), origins_per_step, strict=True):
            if count == 0:
                continue
            o = np.arange(first, first + count)
            rows_l.append(np.repeat(np.arange(n_series), count))
            orig_l.append(np.tile(o, n_series))
            step_l.append(np.full(count * n_series, h))
        rows, origins, steps = np.concatenate(rows_l), np.concatenate(orig_l), np.concatenate(step_l)
        if total <= max_rows:
            return rows, origins, steps
        keep = stratified_rows(
            rows * horizon + (steps - 1), max_rows, seed, latest=origins if sampling == "recent" else None
        )
        return rows[keep], origins[keep], steps[keep]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_series, size=max_rows)
    steps = rng.integers(1, horizon + 1, size=max_rows)
    # origin uniform over the origins valid for its step
    span = np.maximum(1, cutoff - steps - first + 1)
    origins = first + (rng.random(max_rows) * span).astype(np.int64)
    keep = origins + steps <= cutoff
    return rows[keep], origins[keep], steps[keep]


@dataclass
class FittedLightGBM:
    """A trained global model and the frame columns it expects."""

    booster: lgb.Booster | None
    columns: list[str]
    #: training rows the model read (draws: a row drawn twice counts twice)
    n_train: int
    note: str = ""
    #: different (series, origin, step) among them (``n_train`` unless drawn with replacement)
    n_distinct: int = 0
    #: boosting rounds of the model (the best iteration when early stopping chose it)
    rounds: int = 0
    #: validation rows early stopping was judged on (0: no early stopping)
    n_validation: int = 0

    def predict(self, ctx: FeatureContext, origin: int, horizon: int) -> np.ndarray:
        """Return forecasts (n_series, horizon) made at ``origin`` (index of the last known period)."""
        n = ctx.values.shape[0]
        rows = np.repeat(np.arange(n), horizon)
        steps = np.tile(np.arange(1, horizon + 1), n)
        origins = np.full(len(rows), origin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            x, scale = build_features(ctx, rows, origins, steps)
        if self.booster is None:
            return np.zeros((n, horizon))
        pred = np.asarray(self.booster.predict(x[self.columns]), dtype="float64") * scale
        # guard: never more than 1.5 × the series' largest period so far (known at the origin)
        cap = np.repeat(1.5 * ctx.values[:, : origin + 1].max(axis=1), horizon)
        return np.clip(pred, 0.0, cap).reshape(n, horizon)


class StopAfter:
    """LightGBM callback: early stopping on the first validation metric that keeps the best round
    at or after ``min_rounds`` and stops ``patience`` rounds without improvement after it."""

    order = 30  # after the evaluation that fills ``evaluation_result_list``

    def __init__(self, min_rounds: int, patience: int) -> None:
        self.min_rounds = max(1, min_rounds)
        self.patience = patience
        self.best = math.inf
        self.best_round = 0
        self.best_scores: list[Any] = []

    def __call__(self, env: Any) -> None:
        """Record the round's validation score; raise EarlyStopException when it is time to stop."""
        done = env.iteration + 1  # rounds trained so far
        if done < self.min_rounds or not env.evaluation_result_list:
            return
        score = float(env.evaluation_result_list[0][2])
        if score < self.best or not self.best_round:
            self.best, self.best_round, self.best_scores = score, done, list(env.evaluation_result_list)
        if done - self.best_round >= self.patience:
            raise lgb.callback.EarlyStopException(self.best_round - 1, self.best_scores)


def fit_lightgbm(ctx: FeatureContext, cutoff: int, horizon: int, config: LightGBMConfig) -> FittedLightGBM:
    """Return the global model trained on every target period ``<= cutoff``.

    With ``config.early_stopping_rounds`` and at least ``config.min_validation_rows`` rows whose
    target falls in the last ``horizon`` periods up to the cutoff, those rows are the validation
    slice: the model is trained on the older rows and keeps its best round.
    """
    n = ctx.values.shape[0]
    rows, origins, steps = training_rows(
        n, cutoff, horizon, ctx.frequency, config.max_train_rows, config.random_state, config.sampling
    )
    if len(rows) < 10:
        return FittedLightGBM(
            None,
            [],
            len(rows),
            note="too little history to train; forecasts 0",
            n_distinct=distinct_rows(rows, origins, steps),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x, scale = build_features(ctx, rows, origins, steps)
    y = ctx.values[rows, origins + steps] / scale
    columns = list(x.columns)
    recent = origins + steps > cutoff - horizon
    n_valid = int(recent.sum())
    stop = config.early_stopping_rounds
    if stop and n_valid >= config.min_validation_rows and len(rows) - n_valid >= 10:
        older = ~recent
        data = lgb.Dataset(x[older], label=y[older], categorical_feature=CATEGORICAL, free_raw_data=True)
        valid = lgb.Dataset(x[recent], label=y[recent], reference=data)
        stopper = StopAfter(min(config.min_rounds, config.num_boost_round), stop)
        booster = lgb.train(
            config.params(int(older.sum())),
            data,
            num_boost_round=config.num_boost_round,
            valid_sets=[valid],
            callbacks=[stopper],
        )
        booster.best_iteration = stopper.best_round  # predict() uses it
        return FittedLightGBM(
            booster,
            columns,
            int(older.sum()),
            rounds=stopper.best_round,
            n_validation=n_valid,
            n_distinct=distinct_rows(rows[older], origins[older], steps[older]),
        )
    data = lgb.Dataset(x, label=y, categorical_feature=CATEGORICAL, free_raw_data=True)
    booster = lgb.train(config.params(len(rows)), data, num_boost_round=config.num_boost_round)
    return FittedLightGBM(
        booster,
        columns,
        len(rows),
        rounds=config.num_boost_round,
        n_distinct=distinct_rows(rows, origins, steps),
    )


def fit_models(
    ctx: FeatureContext, cutoffs: list[int], horizon: int, config: LightGBMConfig
) -> tuple[dict[int, FittedLightGBM], int | None]:
    """Return ({cutoff: model} for the distinct ``cutoffs``, the rounds early stopping chose or None).

    The earliest cutoff's model is fitted first, with early stopping when ``config`` asks for it
    and its validation slice is large enough; every later model is trained on all its rows for
    the rounds found there, else for ``num_boost_round`` (known at the
    earliest cutoff, so no model chooses its rounds on data after its own cutoff).  The later
    fits are independent: ``config.workers`` threads fit them side by side (LightGBM releases the
    GIL while it trains), with the same models as one at a time.
    """
    order = sorted(set(cutoffs))
    if not order:
        return {}, None
    first = fit_lightgbm(ctx, order[0], horizon, config)
    chosen = first.rounds if first.booster is not None and first.n_validation else None
    # no early stopping at the first fit (too few recent rows): the configured rounds for all
    later = replace(config, num_boost_round=chosen or config.num_boost_round, early_stopping_rounds=None)
    fitted = {order[0]: first}
    rest = order[1:]
    if config.workers > 1 and len(rest) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(config.workers, len(rest))) as pool:
            models = list(pool.map(lambda c: fit_lightgbm(ctx, c, horizon, later), rest))
    else:
        models = [fit_lightgbm(ctx, c, horizon, later) for c in rest]
    fitted.update(zip(rest, models, strict=True))
    return fitted, chosen


def refit_origins(origins: list[int], fits: int | None) -> list[int]:
    """Return per backtest origin the origin whose model forecasts it (``fits`` evenly spread refits).

    The first origin always gets a model; each later one uses the latest refit at or before it.
    ``fits`` None: every origin its own model.
    """
    if not origins or fits is None:
        return list(origins)
    every = math.ceil(len(origins) / max(1, min(fits, len(origins))))
    return [origins[(k // every) * every] for k in range(len(origins))]
