"""BG/NBD purchase model with Gamma-Gamma spend: the "buy till you die" benchmark of customer prediction.

BG/NBD (Fader, Hardie & Lee, 2005, "Counting your customers the easy way"): while alive a
customer buys at Poisson rate ``λ`` (``λ ~ Gamma(r, α)`` across customers) and after each
purchase drops out for good with probability ``p`` (``p ~ Beta(a, b)``).  Gamma-Gamma (Fader,
Hardie & Lee, 2005, "RFM and CLV"): a customer's order values have a mean that varies across
customers as Gamma(p, q, γ) and is independent of the purchase process.

Implemented here from the published likelihoods and formulas with SciPy (maximum likelihood
on log-parameters, L-BFGS-B).  Inputs per customer, in weeks: ``x`` repeat purchases (orders
after the first), ``t_x`` time from the first to the last purchase, ``T`` time from the first
purchase to the end of the calibration period; for spend, ``n`` orders with mean value ``m``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from salesbi.sampling import by_repeat_purchases

DAYS_PER_UNIT = 7.0  # the models work in weeks: better conditioned than days


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters (time unit: weeks)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        """Return the parameters as a JSON-able dict."""
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters."""

    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        """Return the parameters as a JSON-able dict."""
        return {k: float(v) for k, v in asdict(self).items()}


def bgnbd_log_likelihood(
    params: BGNBD | tuple[float, float, float, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood of (``x``, ``t_x``, ``T``) (FHL 2005, eq. 6)."""
    r, alpha, a, b = (params.r, params.alpha, params.a, params.b) if isinstance(params, BGNBD) else params
    x = np.asarray(x, dtype="float64")
    t_x = np.asarray(t_x, dtype="float64")
    T = np.asarray(T, dtype="float64")
    a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)  # = Γ(a+b)Γ(b+x) / (Γ(b)Γ(a+b+x))
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            repeat,
            math.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


#: BG/NBD and Gamma-Gamma are fitted on at most this many customers (a stratified sample; the
#: predictions are still computed for everyone).  Four or three parameters: 20,000 customers fix
#: them to within a few per cent (the accuracy cost is measured in docs/benchmarks.md).
FIT_CAP = 20_000


def stratified_sample(x: np.ndarray, cap: int = FIT_CAP, seed: int = 0) -> np.ndarray:
    """Return the sorted row positions of a seeded sample of at most ``cap`` rows, stratified by ``x``.

    Strata: repeat purchases 0, 1, 2–3, 4–7, 8–15, 16+; each keeps its share of the rows
    (proportional allocation, so the sample's likelihood needs no weights).  All rows when
    there are no more than ``cap``.
    """
    return by_repeat_purchases(x, cap, seed)


def bgnbd_log_likelihood_gradient(
    params: tuple[float, float, float, float],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Return (summed BG/NBD log-likelihood, its gradient in the log-parameters log r, log α, log a, log b).

    The derivatives of :func:`bgnbd_log_likelihood` term by term (digamma for the log-gamma
    terms; the two branches of the log-sum weighted by their shares), times each parameter for
    the log scale; ``tests/test_prediction_btyd.py`` checks them against finite differences.
    The (di)gamma terms depend on the customer only through the repeat purchases ``x`` (a
    count): they are computed once per distinct count. ``counts``: ``np.unique(x,
    return_inverse=True)`` when the caller already has it.
    """
    r, alpha, a, b = params
    ux, inv = counts if counts is not None else np.unique(x, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    # per distinct count: Γ and ψ terms (a1 and a2 of bgnbd_log_likelihood and their derivatives)
    psi_abx = digamma(a + b + ux)
    per_count = (
        gammaln(r + ux) - gammaln(r) + r * math.log(alpha) + betaln(a, b + ux) - betaln(a, b),
        digamma(r + ux) - digamma(r) + math.log(alpha),
        digamma(a + b) - psi_abx,
        digamma(b + ux) - psi_abx - digamma(b) + digamma(a + b),
    )
    n_per_count = np.bincount(inv, minlength=len(ux)).astype("float64")
    log_t = np.log(alpha + T)
    a3 = -(r + x) * log_t
    repeat = x > 0
    bx1 = np.where(repeat, b + x - 1, 1.0)
    log_tx = np.log(alpha + t_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(repeat, math.log(a) - np.log(bx1) - (r + x) * log_tx, -np.inf)
    total = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - total)
    w4 = np.where(repeat, np.exp(a4 - total), 0.0)  # w3 + w4 = 1
    value = float(per_count[0] @ n_per_count + total.sum())
    d_r = per_count[1] @ n_per_count - float(np.sum(w3 * log_t + w4 * log_tx))
    d_alpha = len(x) * r / alpha - float(np.sum((r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))))
    d_a = per_count[2] @ n_per_count + float(w4.sum()) / a
    d_b = per_count[3] @ n_per_count - float(np.sum(w4 / bx1))
    return value, np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, start: BGNBD | None = None) -> BGNBD:
    """Return the maximum-likelihood BG/NBD parameters of a calibration sample.

    L-BFGS-B on the log-parameters with the analytic gradient
    (:func:`bgnbd_log_likelihood_gradient`: one likelihood pass per step instead of five for
    finite differences).  ``start``: initial parameters (e.g. the fit at a neighbouring cutoff:
    fewer iterations).
    """
    x = np.asarray(x, dtype="float64")
    t_x = np.asarray(t_x, dtype="float64")
    T = np.asarray(T, dtype="float64")
    counts = np.unique(x, return_inverse=True)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = bgnbd_log_likelihood_gradient(tuple(np.exp(theta)), x, t_x, T, counts)  # type: ignore[arg-type]
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros(4)
        return -value, -grad

    first = (1.0, max(1e-3, float(np.mean(T))), 1.0, 1.0) if start is None else astuple(start)
    theta0 = np.clip(np.log(first), -12.0, 12.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4)
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha), float(a), float(b))


def _alive_odds(m: BGNBD, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x): the odds of having dropped out."""
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            math.log(m.a)
            - np.log(np.where(repeat, m.b + x - 1, 1.0))
            + (m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + t_x))
        )
        return np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def probability_alive(m: BGNBD, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return P(alive at T | x, t_x, T) (FHL 2005, eq. 11)."""
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    return 1.0 / (1.0 + _alive_odds(m, x, t_x, T))


def expected_purchases(m: BGNBD, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    # valid for any a > 0 (below 1 the factor and the bracket are both negative); only a = 1
    # itself is a removable singularity of the closed form: step off it
    a = m.a if abs(m.a - 1.0) > 1e-6 else 1.0 + 1e-6
    z = t / (m.alpha + T + t)
    hyper = hyp2f1(m.r + x, m.b + x, a + m.b + x - 1, z)
    ratio = np.exp((m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + T + t)))
    num = (a + m.b + x - 1) / (a - 1) * (1.0 - ratio * hyper)
    out = num / (1.0 + _alive_odds(m, x, t_x, T))
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0), 0.0, None)


def probability_of_purchase(m: BGNBD, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return P(at least one purchase in (T, T + t] | x, t_x, T).

    Alive at T, the next purchase comes after an exponential wait with the posterior rate
    ``λ ~ Gamma(r + x, α + T)`` and counts whatever happens after it, so
    P = P(alive) · (1 − ((α + T)/(α + T + t))^(r + x)).
    """
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    none = np.exp((m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + T + t)))
    return probability_alive(m, x, t_x, T) * (1.0 - none)


def gamma_gamma_log_likelihood(
    params: GammaGamma | tuple[float, float, float], n: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    """Return each customer's Gamma-Gamma log-likelihood of ``n`` orders of mean value ``mean``.

    Up to a term that does not depend on the parameters (FHL 2005 "RFM and CLV", eq. 3).
    """
    p, q, g = (params.p, params.q, params.gamma) if isinstance(params, GammaGamma) else params
    n = np.asarray(n, dtype="float64")
    mean = np.asarray(mean, dtype="float64")
    return (
        gammaln(p * n + q)
        - gammaln(p * n)
        - gammaln(q)
        + q * math.log(g)
        + (p * n - 1) * np.log(mean)
        + p * n * np.log(n)
        - (p * n + q) * np.log(n * mean + g)
    )


def gamma_gamma_log_likelihood_gradient(
    params: tuple[float, float, float], n: np.ndarray, mean: np.ndarray
) -> tuple[float, np.ndarray]:
    """Return (summed Gamma-Gamma log-likelihood, its gradient in log p, log q, log γ).

    The derivatives of :func:`gamma_gamma_log_likelihood` (``n`` ≥ 1 orders, ``mean`` > 0); the
    (di)gamma terms are computed once per distinct order count (tested against finite differences).
    """
    p, q, g = params
    un, inv = np.unique(n, return_inverse=True)
    per = np.bincount(np.asarray(inv).reshape(-1), minlength=len(un)).astype("float64")
    log_m, log_n = np.log(mean), np.log(n)
    big = n * mean + g
    log_big = np.log(big)
    count = float(len(n))
    value = (
        per @ (gammaln(p * un + q) - gammaln(p * un))
        - count * gammaln(q)
        + count * q * math.log(g)
        + float(np.sum((p * n - 1) * log_m + p * n * log_n - (p * n + q) * log_big))
    )
    psi_pnq, psi_pn = digamma(p * un + q), digamma(p * un)
    d_p = (per * un) @ (psi_pnq - psi_pn) + float(np.sum(n * (log_m + log_n - log_big)))
    d_q = per @ psi_pnq - count * digamma(q) + count * math.log(g) - float(log_big.sum())
    d_g = count * q / g - float(np.sum((p * n + q) / big))
    return float(value), np.array([d_p * p, d_q * q, d_g * g])


def fit_gamma_gamma(n: np.ndarray, mean: np.ndarray) -> GammaGamma:
    """Return the maximum-likelihood Gamma-Gamma parameters (customers with a positive mean only).

    L-BFGS-B on the log-parameters with the analytic gradient
    (:func:`gamma_gamma_log_likelihood_gradient`).
    """
    n = np.asarray(n, dtype="float64")
    mean = np.asarray(mean, dtype="float64")
    keep = (n > 0) & (mean > 0)
    n, mean = n[keep], mean[keep]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = gamma_gamma_log_likelihood_gradient(tuple(np.exp(theta)), n, mean)  # type: ignore[arg-type]
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros(3)
        return -value, -grad

    start = np.log([2.0, 3.0, max(1.0, float(np.mean(mean)))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 15.0)] * 3)
    p, q, g = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(g))


def expected_order_value(m: GammaGamma, n: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Return E[mean order value | n orders of mean ``mean``] = p(γ + n·mean) / (p·n + q − 1)."""
    n = np.asarray(n, dtype="float64")
    mean = np.nan_to_num(np.asarray(mean, dtype="float64"), nan=0.0)
    q = max(m.q, 1.0 + 1e-6)
    return m.p * (m.gamma + n * mean) / (m.p * n + q - 1.0)


@dataclass(frozen=True)
class BTYD:
    """A fitted BG/NBD + Gamma-Gamma pair."""

    purchases: BGNBD
    spend: GammaGamma
    #: customers the pair was fitted on, of how many (the cap's sample; 0: not recorded); not stored
    fit_customers: int = field(default=0, compare=False)
    customers: int = field(default=0, compare=False)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Return both parameter sets as JSON-able dicts."""
        return {"bgnbd": self.purchases.as_dict(), "gamma_gamma": self.spend.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> BTYD:
        """Return the pair stored by :meth:`as_dict`."""
        return cls(BGNBD(**data["bgnbd"]), GammaGamma(**data["gamma_gamma"]))


def rfm_inputs(features: Any) -> tuple[np.ndarray, ...]:
    """Return (x, t_x, T, n, mean) in weeks from prediction features (a frame, or one row as a dict).

    ``x`` = placed orders − 1, ``t_x`` = days from the first order to the last placed one,
    ``T`` = days from the first order to the cutoff, ``n`` = placed orders, ``mean`` = their
    average value.  A customer whose orders were all cancelled has x = 0 and t_x = 0.
    """

    def col(name: str) -> np.ndarray:
        return np.atleast_1d(np.asarray(features[name], dtype="float64"))

    freq, tenure, recency = col("frequency"), col("tenure_days"), col("recency_days")
    x = np.maximum(freq - 1.0, 0.0)
    T = np.maximum(tenure, 0.0) / DAYS_PER_UNIT
    t_x = np.where(freq >= 1, np.clip(tenure - recency, 0.0, None), 0.0) / DAYS_PER_UNIT
    return x, np.minimum(t_x, T), T, freq, col("avg_order_value")


def fit_btyd(features: pd.DataFrame, start: BTYD | None = None, cap: int = FIT_CAP) -> BTYD:
    """Return BG/NBD and Gamma-Gamma fitted on the calibration-period features of the customers.

    At most ``cap`` customers, a stratified sample (:func:`stratified_sample`); ``start``: a
    neighbouring fit to start the BG/NBD search from.
    """
    x, t_x, T, n, mean = rfm_inputs(features)
    rows = stratified_sample(x, cap)
    purchases = fit_bgnbd(x[rows], t_x[rows], T[rows], start.purchases if start else None)
    return BTYD(purchases, fit_gamma_gamma(n[rows], mean[rows]), fit_customers=len(rows), customers=len(x))


#: the columns :func:`btyd_arrays` adds (LightGBM features, and the BG/NBD candidate's predictions)
BTYD_FEATURES: tuple[str, ...] = ("btyd_purchases", "btyd_probability", "btyd_alive", "btyd_sales")


def btyd_arrays(model: BTYD, features: Any, horizon_days: int) -> dict[str, np.ndarray]:
    """Return per customer: expected purchases, P(order), P(alive) and expected sales in the next window."""
    x, t_x, T, n, mean = rfm_inputs(features)
    t = horizon_days / DAYS_PER_UNIT
    purchases = expected_purchases(model.purchases, t, x, t_x, T)
    value = np.where(n > 0, expected_order_value(model.spend, n, mean), 0.0)
    return {
        "btyd_purchases": purchases,
        "btyd_probability": probability_of_purchase(model.purchases, t, x, t_x, T),
        "btyd_alive": probability_alive(model.purchases, x, t_x, T),
        "btyd_sales": purchases * value,
    }
