"""Conformal intervals cover their nominal level (issue 17): interpolated ranks, isotonic steps, recency."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import isotonic_regression

from salesbi.forecasting import evaluate
from salesbi.forecasting.evaluate import (
    LEVELS,
    MIN_STEP_POOL,
    calibrate,
    conformal_rank,
    interpolated_quantile,
    intervals,
    isotonic,
    recency_weights,
    step_factors,
    weighted_quantile,
)
from tests.test_forecasting_fair import _brute_quantile

Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape)


def _skewed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.gamma(2.0, size=shape) - 2.0  # mean 0, long right tail


def _heavy(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(3, size=shape)


def test_interpolated_quantile_is_the_brute_force_order_statistic_or_between_two() -> None:
    rng = np.random.default_rng(11)
    errors = rng.permutation(np.arange(1.0, 25.0))  # 24 distinct errors 1..24
    # 90 %: fractional rank 25 × 0.9 = 22.5, halfway between the 22nd and the 23rd smallest
    assert interpolated_quantile(errors, 0.9) == pytest.approx(22.5)
    assert interpolated_quantile(errors, 0.1) == pytest.approx(2.5)
    assert interpolated_quantile(errors, 0.8) == pytest.approx(20.0)  # 25 × 0.8 = 20: a whole rank
    assert interpolated_quantile(errors, 0.99) == 24.0 and interpolated_quantile(errors, 0.01) == 1.0
    assert np.isnan(interpolated_quantile(np.array([]), 0.9))
    for n in (1, 2, 3, 5, 9, 19, 24, 39, 84, 100):
        values = rng.normal(size=n)
        ordered = np.sort(values)
        for q in (0.025, 0.1, 0.2, 0.8, 0.9, 0.975):
            got = interpolated_quantile(values, q)
            brute = _brute_quantile(values, q)  # the conservative whole rank, by its definition
            assert ordered[conformal_rank(n, q) - 1] == brute, (n, q)
            p = (n + 1) * q  # the fractional rank
            if p <= 1 or p >= n:  # beyond the scores: clipped to the smallest / largest
                assert got == (ordered[0] if p <= 1 else ordered[-1]) == brute, (n, q)
            elif abs(p - round(p)) < 1e-9:  # a whole rank: exactly the brute-force order statistic
                assert got == pytest.approx(brute), (n, q)
            else:  # between the two order statistics around p, one of them the brute-force one
                below, above = ordered[int(p) - 1], ordered[int(p)]
                assert brute == (above if q > 0.5 else below), (n, q)
                w = p - int(p)
                assert got == pytest.approx(below + w * (above - below)), (n, q)


@pytest.mark.parametrize("draw", [_normal, _skewed, _heavy], ids=["normal", "skewed", "heavy-tailed"])
@pytest.mark.parametrize(
    "shape",
    [(1, 3, 8), (12, 3, 1), (4, 3, 28)],
    ids=["24 residuals", "36 residuals (bikes-like)", "4 series x 3 origins x 28 days (CDNOW-like)"],
)
def test_exchangeable_residuals_cover_the_nominal_level(draw: Draw, shape: tuple[int, int, int]) -> None:
    """Backtest residuals and future errors from one distribution: the intervals cover their level.

    Mean coverage over 200 seeded calibrations (50 future errors per series and step each):
    the old whole ranks covered 0.84 at 80 % with 24 or 36 residuals (4 points over).
    """
    n_series, _, horizon = shape
    covered: dict[float, list[float]] = {level: [] for level in LEVELS}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        z = draw(rng, shape)
        factors, bounds = calibrate(z, np.ones_like(z, dtype=bool), np.array(["g"] * n_series))
        forecast = np.full((n_series, horizon), 1000.0)
        actual = forecast[:, None, :] + 10.0 * draw(rng, (n_series, 50, horizon))
        for level in LEVELS:
            lo, hi = intervals(forecast, np.full(n_series, 10.0), factors, bounds[level])
            covered[level].append(float(np.mean((actual >= lo[:, None, :]) & (actual <= hi[:, None, :]))))
    n = int(np.prod(shape))
    assert np.mean(covered[0.80]) == pytest.approx(0.80, abs=0.02)
    # 95 % from 24 residuals is [min, max]: 23 / 25 = 0.92 on average, the most 24 residuals can say
    assert np.mean(covered[0.95]) == pytest.approx(0.95 if n >= 36 else 0.92, abs=0.015)


def test_isotonic_fit_matches_scipy_and_keeps_the_mean() -> None:
    assert isotonic(np.array([1.0, 3, 2, 2, 5, 4]), np.ones(6)) == pytest.approx(
        [1, 7 / 3, 7 / 3, 7 / 3, 4.5, 4.5]
    )
    rng = np.random.default_rng(5)
    for size in (1, 2, 7, 28, 60):
        y = rng.normal(size=size).cumsum() * 0.3 + rng.normal(size=size)
        w = rng.integers(1, 20, size=size).astype(float)
        got = isotonic(y, w)
        assert got == pytest.approx(isotonic_regression(y, weights=w).x, abs=1e-10)
        assert np.all(np.diff(got) >= -1e-12)
        assert np.average(got, weights=w) == pytest.approx(np.average(y, weights=w))


def test_step_factors_follow_error_growth_not_noise() -> None:
    # no growth: 12 residuals a step (CDNOW's 4 series × 3 origins); the old running maximum of the
    # noisy step means widened the last steps by 47 % on average, the isotonic fit by about 13 %
    last, middle = [], []
    for seed in range(100):
        z = np.random.default_rng(seed).normal(size=(4, 3, 28))
        f = step_factors(z, np.ones_like(z, dtype=bool))
        assert np.all(np.diff(f) >= 0)
        last.append(f[-1])
        middle.append(float(np.median(f)))
    assert np.mean(last) < 1.25
    assert np.mean(middle) == pytest.approx(1.0, abs=0.05)
    # errors growing fourfold over the horizon: the factors follow the growth
    growth = 1 + np.arange(28) / 9
    fitted = []
    for seed in range(100):
        z = np.random.default_rng(seed).normal(size=(4, 3, 28)) * growth
        f = step_factors(z, np.ones_like(z, dtype=bool))
        fitted.append(f / f.mean())
    ratio = np.mean(fitted, axis=0) / (growth / growth.mean())
    assert np.all(np.abs(ratio - 1) < 0.15), np.round(ratio, 2)


def test_steps_with_few_residuals_take_the_factor_of_the_step_before() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(4, 3, 6)) * np.array([1, 1, 2, 2, 3, 3])
    mask = np.ones_like(z, dtype=bool)
    mask[:, :, 3] = False  # step 4 has no residual at all
    mask[:, 1:, 0] = False  # step 1 has 4 < MIN_STEP_POOL
    assert mask[:, :, 0].sum() < MIN_STEP_POOL
    f = step_factors(z, mask)
    assert f[0] == f[1] and f[3] == f[2]
    assert np.all(np.diff(f) >= 0) and f[-1] > f[1]
    assert np.all(step_factors(z, np.zeros_like(mask)) == 1.0)


def test_weighted_quantile_by_hand_and_equal_weights_are_the_interpolated_quantile() -> None:
    values, weights = np.array([4.0, 1.0, 3.0, 2.0]), np.array([4.0, 1.0, 2.0, 1.0])
    # sorted 1, 2, 3, 4 carry the cumulative masses 1, 2, 4, 8 out of 8 + 2 (the next score's weight)
    assert weighted_quantile(values, weights, 0.3, 2.0) == pytest.approx(2.5)  # halfway 0.2 → 0.4
    assert weighted_quantile(values, weights, 0.6, 2.0) == pytest.approx(3.5)  # halfway 0.4 → 0.8
    assert weighted_quantile(values, weights, 0.05, 2.0) == 1.0  # below the first mass: the smallest
    assert weighted_quantile(values, weights, 0.9, 2.0) == 4.0  # beyond the last: the largest
    assert np.isnan(weighted_quantile(np.array([]), np.array([]), 0.5, 1.0))
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 24, 36, 84):
        v = rng.normal(size=n)
        for c in (1.0, 0.25, 7.0):  # any common weight, the next score weighing the same
            for q in (0.025, 0.1, 0.2, 0.8, 0.9, 0.975):
                assert weighted_quantile(v, np.full(n, c), q, c) == pytest.approx(interpolated_quantile(v, q))


def test_recency_weights_halve_per_origin_away_from_the_interval() -> None:
    assert evaluate.RECENCY == 0.5
    assert recency_weights(3, 3) == pytest.approx([0.25, 0.5, 1.0])  # the future: the last origin weighs 1
    assert recency_weights(3, 1) == pytest.approx([1.0, 1.0, 1.0])  # origin 1 left out: its neighbours
    assert recency_weights(3, 0) == pytest.approx([1.0, 1.0, 0.5])
    assert recency_weights(0, 0).size == 0


def _coverage(z: np.ndarray, future: np.ndarray) -> dict[float, float]:
    n_series = z.shape[0]
    factors, bounds = calibrate(z, np.ones_like(z, dtype=bool), np.array(["g"] * n_series))
    forecast = np.full((n_series, z.shape[2]), 1000.0)
    actual = forecast[:, None, :] + 10.0 * future
    out = {}
    for level in LEVELS:
        lo, hi = intervals(forecast, np.full(n_series, 10.0), factors, bounds[level])
        out[level] = float(np.mean((actual >= lo[:, None, :]) & (actual <= hi[:, None, :])))
    return out


def test_drifting_residuals_recency_weights_cover_better(monkeypatch: pytest.MonkeyPatch) -> None:
    """Residuals whose centre moves over the backtest (a level change): the recent ones are trusted more.

    Bikes-like: 12 series x 3 origins x 1 step; the residuals' centre rises by one noise unit per
    origin (sales falling through the calibration months, then recovering) and the future errors
    continue from the last origin.  Equal weights centre the interval on the old residuals and
    miss above; the recency weights move it towards the latest ones.
    """
    centre = np.array([-2.0, -1.0, 0.0])
    got: dict[float, list[list[float]]] = {1.0: [], 0.5: []}
    for rng_seed in range(200):
        rng = np.random.default_rng(rng_seed)
        z = rng.normal(size=(12, 3, 1)) + centre[None, :, None]
        future = rng.normal(size=(12, 50, 1)) + 0.5
        for rho in got:
            monkeypatch.setattr(evaluate, "RECENCY", rho)
            cov = _coverage(z, future)
            got[rho].append([cov[0.80], cov[0.95]])
    equal, recent = np.mean(got[1.0], axis=0), np.mean(got[0.5], axis=0)
    # 80 %: 0.59 → 0.67 (a partial correction: half the weight still sits on older origins)
    assert recent[0] > equal[0] + 0.05 and abs(recent[0] - 0.80) < abs(equal[0] - 0.80)
    assert recent[1] > equal[1] - 0.005  # 95 %: the same (0.854 either way: the largest residuals bound it)
