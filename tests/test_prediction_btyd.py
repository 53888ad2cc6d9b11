"""BG/NBD + Gamma-Gamma: likelihoods against numerical integration, parameters recovered from simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from salesbi.prediction.btyd import (
    BGNBD,
    GammaGamma,
    bgnbd_log_likelihood,
    expected_order_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    probability_alive,
    probability_of_purchase,
)

TRUE = BGNBD(r=0.25, alpha=4.0, a=0.8, b=2.5)


def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def simulate(n: int, seed: int, calibration: tuple[float, float] = (27.0, 39.0), holdout: float = 39.0):
    """Return (x, t_x, T, future purchases, future any) of ``n`` simulated BG/NBD customers."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE.r, 1.0 / TRUE.alpha, n)
    p = rng.beta(TRUE.a, TRUE.b, n)
    T = rng.uniform(*calibration, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    time = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        time[idx] += rng.exponential(1.0 / np.maximum(lam[idx], 1e-12))
        past_end = time[idx] > T[idx] + holdout
        alive[idx[past_end]] = False
        buy = idx[~past_end]
        in_cal = time[buy] <= T[buy]
        x[buy[in_cal]] += 1
        t_x[buy[in_cal]] = time[buy[in_cal]]
        future[buy[~in_cal]] += 1
        dies = rng.random(len(buy)) < p[buy]
        alive[buy[dies]] = False
    return x, t_x, T, future


def test_bgnbd_likelihood_equals_the_integral_over_customers() -> None:
    m = BGNBD(r=0.6, alpha=3.0, a=1.4, b=2.2)
    for x, t_x, T in ((0, 0.0, 30.0), (1, 5.0, 30.0), (4, 22.5, 35.0)):

        def integrand(lam: float, p: float, x: int = x, t_x: float = t_x, T: float = T) -> float:
            alive = (1 - p) ** x * lam**x * math.exp(-lam * T)
            dead = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
            gamma_pdf = math.exp(
                m.r * math.log(m.alpha) + (m.r - 1) * math.log(lam) - m.alpha * lam - math.lgamma(m.r)
            )
            beta_pdf = math.exp((m.a - 1) * math.log(p) + (m.b - 1) * math.log1p(-p) - _betaln(m.a, m.b))
            return (alive + dead) * gamma_pdf * beta_pdf

        value, _ = integrate.dblquad(integrand, 0, 1, 0, 20, epsabs=1e-12)
        ll = float(bgnbd_log_likelihood(m, np.array([x]), np.array([t_x]), np.array([T]))[0])
        assert ll == pytest.approx(math.log(value), abs=1e-5), (x, t_x, T)


def test_bgnbd_recovers_simulated_parameters_and_predicts_the_holdout() -> None:
    x, t_x, T, future = simulate(6000, seed=1)
    fitted = fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(TRUE.r, rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE.alpha, rel=0.25)
    assert fitted.a == pytest.approx(TRUE.a, rel=0.35)
    assert fitted.b == pytest.approx(TRUE.b, rel=0.45)
    # the fitted likelihood is at least that of the true parameters (it is the maximum)
    assert bgnbd_log_likelihood(fitted, x, t_x, T).sum() >= bgnbd_log_likelihood(TRUE, x, t_x, T).sum()
    # the 39-week holdout, customer by customer: totals and P(any purchase) match the simulation
    expected = expected_purchases(fitted, 39.0, x, t_x, T)
    assert expected.sum() == pytest.approx(future.sum(), rel=0.06)
    prob = probability_of_purchase(fitted, 39.0, x, t_x, T)
    assert prob.mean() == pytest.approx((future > 0).mean(), abs=0.02)
    for lo, hi in ((0, 0.1), (0.1, 0.3), (0.3, 1.0)):  # calibrated within bands too
        band = (prob >= lo) & (prob < hi)
        assert prob[band].mean() == pytest.approx((future[band] > 0).mean(), abs=0.04), (lo, hi)
    # P(alive): 1 without repeat purchases; lower the longer a frequent buyer has been silent
    alive = probability_alive(fitted, np.array([0.0, 5.0, 5.0]), np.array([0.0, 30.0, 5.0]), np.full(3, 35.0))
    assert alive[0] == 1.0 and alive[1] > alive[2]


@pytest.mark.parametrize(
    "a", [1.5, 0.6]
)  # below 1 too: the closed form holds for any a (a clamp to 1 was wrong)
def test_expected_purchases_equals_monte_carlo_for_one_customer(a: float) -> None:
    m = BGNBD(r=0.5, alpha=5.0, a=a, b=3.0)
    x, t_x, T, t = 3.0, 20.0, 30.0, 26.0
    rng = np.random.default_rng(0)
    # sample (λ, p) from the posterior by importance weights on the prior: weight = likelihood
    lam = rng.gamma(m.r, 1 / m.alpha, 400_000)
    p = rng.beta(m.a, m.b, 400_000)
    alive_lik = (1 - p) ** x * lam**x * np.exp(-lam * T)
    dead_lik = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x)
    w = alive_lik + dead_lik
    alive_share = alive_lik / w
    # alive at T, the count in (T, T + t] given (λ, p): the k-th of the N ~ Poisson(λt) purchases
    # happens while alive with probability (1-p)^(k-1), so E = E[(1 - (1-p)^N) / p] = (1 - e^(-λpt)) / p
    counts = (1 - np.exp(-lam * p * t)) / p
    mc = float(np.sum(w * alive_share * counts) / np.sum(w))
    formula = float(expected_purchases(m, t, np.array([x]), np.array([t_x]), np.array([T]))[0])
    assert formula == pytest.approx(mc, rel=0.03)


def test_gamma_gamma_recovers_spend_parameters() -> None:
    rng = np.random.default_rng(2)
    p, q, g = 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1 / g, 3000)  # per-customer rate of order values
    n = rng.integers(1, 8, 3000)
    values = [rng.gamma(p, 1 / nu[i], n[i]) for i in range(3000)]
    mean = np.array([v.mean() for v in values])
    fitted = fit_gamma_gamma(n, mean)
    assert fitted.p == pytest.approx(p, rel=0.2)
    assert fitted.q == pytest.approx(q, rel=0.2)
    assert fitted.gamma == pytest.approx(g, rel=0.3)
    true_ll = gamma_gamma_log_likelihood(GammaGamma(p, q, g), n, mean).sum()
    assert gamma_gamma_log_likelihood(fitted, n, mean).sum() >= true_ll
    # the conditional expectation shrinks an observed mean toward the population mean p·γ/(q−1) = 30
    e = expected_order_value(GammaGamma(p, q, g), np.array([1.0, 1.0, 50.0]), np.array([100.0, 5.0, 100.0]))
    assert e[0] == pytest.approx(6 * (15 + 100) / (6 + 3))
    assert 30 < e[0] < 100 and 5 < e[1] < 30 and e[2] == pytest.approx(6 * (15 + 5000) / (300 + 3))


def test_stratified_sample_keeps_each_repeat_band_share() -> None:
    from salesbi.prediction.btyd import stratified_sample

    x = np.random.default_rng(4).negative_binomial(1, 0.3, 50_000).astype("float64")
    rows = stratified_sample(x, 20_000, seed=1)
    assert 19_990 <= len(rows) <= 20_010 and np.all(np.diff(rows) > 0)
    bands = [1, 2, 4, 8, 16]
    full = np.bincount(np.digitize(x, bands), minlength=6) / len(x)
    part = np.bincount(np.digitize(x[rows], bands), minlength=6) / len(rows)
    assert np.abs(full - part).max() < 1e-3
    assert np.array_equal(rows, stratified_sample(x, 20_000, seed=1))  # seeded
    assert np.array_equal(stratified_sample(x[:500], 20_000), np.arange(500))  # small: everyone


def test_capped_and_warm_started_fits_find_the_full_fit() -> None:
    from salesbi.prediction.btyd import BTYD, stratified_sample

    x, t_x, T, future = simulate(30_000, seed=5)
    full = fit_bgnbd(x, t_x, T)
    # a warm start from a neighbouring fit reaches the same maximum
    warm = fit_bgnbd(x, t_x, T, start=BGNBD(full.r * 1.3, full.alpha * 0.7, full.a * 1.2, full.b * 0.8))
    ll = bgnbd_log_likelihood(full, x, t_x, T).sum()
    assert bgnbd_log_likelihood(warm, x, t_x, T).sum() == pytest.approx(ll, abs=0.05)
    # a 10,000-customer stratified sample: parameters within sampling error, holdout totals as close
    rows = stratified_sample(x, 10_000)
    capped = fit_bgnbd(x[rows], t_x[rows], T[rows])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(capped, name) == pytest.approx(getattr(full, name), rel=0.25), name
    total = expected_purchases(capped, 39.0, x, t_x, T).sum()
    assert total == pytest.approx(future.sum(), rel=0.06)
    assert BTYD.from_dict(BTYD(capped, GammaGamma(2.0, 3.0, 4.0)).as_dict()).purchases == capped


@pytest.mark.parametrize("params", [(0.25, 4.0, 0.8, 2.5), (1.7, 26.0, 1.07, 41.6), (3.0, 0.5, 0.05, 0.3)])
def test_bgnbd_gradient_equals_finite_differences(params: tuple[float, float, float, float]) -> None:
    from scipy.optimize import approx_fprime

    from salesbi.prediction.btyd import bgnbd_log_likelihood_gradient

    x, t_x, T, _ = simulate(3_000, seed=8)

    def summed(theta: np.ndarray) -> float:
        return float(bgnbd_log_likelihood(tuple(np.exp(theta)), x, t_x, T).sum())

    theta = np.log(params)
    value, grad = bgnbd_log_likelihood_gradient(params, x, t_x, T)
    assert value == pytest.approx(summed(theta), rel=1e-12)
    numeric = approx_fprime(theta, summed, 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-5 * (1 + np.abs(numeric).max()))


def test_bgnbd_fit_with_the_gradient_reaches_the_finite_difference_maximum() -> None:
    from scipy.optimize import minimize

    x, t_x, T, _ = simulate(20_000, seed=9)

    def loss(theta: np.ndarray) -> float:
        return -float(bgnbd_log_likelihood(tuple(np.exp(theta)), x, t_x, T).sum())

    # the search without a gradient (five likelihood passes per step), from the same start
    numeric = minimize(
        loss, np.log([1.0, float(np.mean(T)), 1.0, 1.0]), method="L-BFGS-B", bounds=[(-12, 12)] * 4
    )
    fitted = fit_bgnbd(x, t_x, T)
    assert -loss(np.log([fitted.r, fitted.alpha, fitted.a, fitted.b])) >= -numeric.fun - 1e-3
    for got, want in zip((fitted.r, fitted.alpha, fitted.a, fitted.b), np.exp(numeric.x), strict=True):
        assert got == pytest.approx(want, rel=0.02)


@pytest.mark.parametrize("params", [(0.75, 3.7, 38_910.0), (2.0, 3.0, 1_000.0), (6.0, 4.0, 15.0)])
def test_gamma_gamma_gradient_equals_finite_differences(params: tuple[float, float, float]) -> None:
    from scipy.optimize import approx_fprime

    from salesbi.prediction.btyd import gamma_gamma_log_likelihood_gradient

    rng = np.random.default_rng(12)
    n = rng.integers(1, 30, 5_000).astype("float64")
    mean = rng.gamma(4.0, 25.0, 5_000)

    def summed(theta: np.ndarray) -> float:
        return float(gamma_gamma_log_likelihood(tuple(np.exp(theta)), n, mean).sum())

    theta = np.log(params)
    value, grad = gamma_gamma_log_likelihood_gradient(params, n, mean)
    assert value == pytest.approx(summed(theta), rel=1e-12)
    numeric = approx_fprime(theta, summed, 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-5 * (1 + np.abs(numeric).max()))
