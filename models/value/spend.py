"""Gamma-Gamma spend model ([FHL2005b]) on retain's own likelihood ([Hardie-note-025]).

Like the purchase models, it is fitted by BFGS with an analytic gradient on customers
collapsed by identical (frequency, mean spend), with the terms in frequency alone evaluated
once per distinct frequency: the estimates are lifetimes' GammaGammaFitter's (tested on
CDNOW's published values), in a fraction of its time on large bases. Constant or nearly
constant spend (every purchase worth the same, as in a log of dates only) has no spread for
the model to learn: it runs to its limit, where every customer's expected order value is
the observed mean, and that is what is used, said so in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, polygamma
from scipy.stats import pearsonr

from retain.models.value.purchase import FitError, collapse, covariance_from

PARAM_NAMES = ("p", "q", "v")
# Relative spread of mean spend per customer below which spend counts as constant.
CONSTANT_SPREAD = 1e-3
# The limiting parameters standing for "the observed mean for everyone": q much larger than
# p x for any frequency, so the customer's own mean gets no weight, and p v / (q - 1) = mean;
# the spend of N purchases is then N times the mean, with no spread.
_LIMIT_P, _LIMIT_Q = 1e6, 1e12


@dataclass(frozen=True)
class _Collapsed:
    """Repeat buyers collapsed by (frequency x, mean spend m), with what the likelihood
    needs of them computed once: the terms in x alone per distinct x, and the sums that do
    not depend on the parameters."""

    x: np.ndarray
    m: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        distinct_x, which_x = np.unique(self.x, return_inverse=True)
        log_xm = np.log(self.x) + np.log(self.m)
        object.__setattr__(self, "distinct_x", distinct_x)
        object.__setattr__(self, "x_weight", np.bincount(which_x, weights=self.weights))
        object.__setattr__(self, "xm", self.x * self.m)
        object.__setattr__(self, "wx", self.weights * self.x)
        object.__setattr__(self, "total", self.weights.sum())
        object.__setattr__(self, "sum_wx_log_xm", (self.wx * log_xm).sum())
        object.__setattr__(self, "sum_w_log_m", (self.weights * np.log(self.m)).sum())

    def objective(self, log_params, penalizer: float = 0.0, hessian: bool = False):
        """Gamma-Gamma total negative log-likelihood (lifetimes' form, [Hardie-note-025]
        eq. 3) and its gradient in log parameters (with lifetimes' penalty, penalizer x
        sum(params^2) per customer); with ``hessian``, also its exact Hessian in log parameters:
            log L = log G(px+q) - log G(px) - log G(q) + q log v + (px-1) log m + px log x
                    - (px+q) log(x m + v)."""
        p, q, v = np.exp(log_params)
        px = p * self.distinct_x
        log_xm_v = np.log(self.xm + v)
        inverse_xm_v = 1.0 / (self.xm + v)
        sum_wx_log, sum_w_log = (self.wx * log_xm_v).sum(), (self.weights * log_xm_v).sum()
        sum_wx_inverse, sum_w_inverse = (self.wx * inverse_xm_v).sum(), (self.weights * inverse_xm_v).sum()
        log_likelihood = ((self.x_weight * (gammaln(px + q) - gammaln(px) - gammaln(q))).sum()
                          + self.total * q * np.log(v) + p * self.sum_wx_log_xm - self.sum_w_log_m
                          - p * sum_wx_log - q * sum_w_log)
        digamma_sum = digamma(px + q)
        d_p = (self.x_weight * self.distinct_x * (digamma_sum - digamma(px))).sum() + self.sum_wx_log_xm - sum_wx_log
        d_q = (self.x_weight * (digamma_sum - digamma(q))).sum() + self.total * np.log(v) - sum_w_log
        d_v = self.total * q / v - p * sum_wx_inverse - q * sum_w_inverse
        value, gradient = -log_likelihood, -np.array([d_p * p, d_q * q, d_v * v])
        if penalizer:
            params = np.array([p, q, v])
            value += self.total * penalizer * (params ** 2).sum()
            gradient = gradient + 2 * self.total * penalizer * params ** 2
        if not hessian:
            return float(value), gradient
        # second derivatives of log L in (p, q, v): the terms in x alone are trigammas per
        # distinct x; p and q enter the rest linearly, so only v's curvature needs the rows
        trigamma_sum = polygamma(1, px + q)
        sum_wx_inverse2 = (self.wx * inverse_xm_v ** 2).sum()
        sum_w_inverse2 = (self.weights * inverse_xm_v ** 2).sum()
        raw = np.empty((3, 3))
        raw[0, 0] = (self.x_weight * self.distinct_x ** 2 * (trigamma_sum - polygamma(1, px))).sum()
        raw[1, 1] = (self.x_weight * (trigamma_sum - polygamma(1, q))).sum()
        raw[0, 1] = raw[1, 0] = (self.x_weight * self.distinct_x * trigamma_sum).sum()
        raw[2, 2] = -self.total * q / v ** 2 + p * sum_wx_inverse2 + q * sum_w_inverse2
        raw[0, 2] = raw[2, 0] = -sum_wx_inverse
        raw[1, 2] = raw[2, 1] = self.total / v - sum_w_inverse
        theta = np.array([p, q, v])
        # d2/dphi_i dphi_j of log L with theta = exp(phi): theta_i theta_j H_ij + [i = j] theta_i g_i
        curvature = -(theta[:, None] * theta[None, :] * raw + np.diag(theta * np.array([d_p, d_q, d_v])))
        if penalizer:
            curvature = curvature + np.diag(4 * self.total * penalizer * params ** 2)
        return float(value), gradient, curvature


def _newton(data: _Collapsed, start: np.ndarray, penalizer: float, tolerance: float, max_steps: int = 60):
    """Newton's method with step halving on the exact Hessian (three parameters: a handful
    of passes over the rows, where BFGS needs tens). (log parameters, gradient) once the
    gradient is below ``tolerance``; (None, None) where the Hessian is not positive
    definite or the steps stall (the caller falls back to BFGS). Running towards the
    no-spread limit (p, q beyond 1e5) stops early with the point reached."""
    at = start
    value, gradient, curvature = data.objective(at, penalizer, hessian=True)
    for _ in range(max_steps):
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return None, None
        if np.abs(gradient).max() < tolerance or np.exp(at[:2]).max() > 1e5:
            return at, gradient
        try:
            if not np.all(np.linalg.eigvalsh(curvature) > 0):
                return None, None
            step = -np.linalg.solve(curvature, gradient)
        except np.linalg.LinAlgError:
            return None, None
        step *= min(1.0, 2.0 / max(np.abs(step).max(), 1e-300))  # at most a factor e^2 per step
        for _ in range(30):
            candidate = at + step
            new_value = data.objective(candidate, penalizer)[0]
            if np.isfinite(new_value) and new_value <= value:
                break
            step /= 2
        else:
            return None, None
        at = candidate
        value, gradient, curvature = data.objective(at, penalizer, hessian=True)
    return None, None


@dataclass
class SpendModel:
    """Gamma-Gamma on repeat buyers (frequency > 0, monetary > 0).

    ``fit`` leaves ``params_``, ``log_params_cov_``, ``n_customers_``,
    ``constant_spend_`` (the observed mean where spend has no spread to model, else None)
    and ``frequency_monetary_correlation_``: the model assumes spend per purchase is
    independent of the purchase rate; a strong correlation (|r| > 0.3) is reported as a
    warning.
    """

    penalizer: float = 0.0
    min_repeat_buyers: int = 30
    params_: dict[str, float] = field(default_factory=dict)
    log_params_cov_: np.ndarray | None = None
    n_customers_: int = 0
    frequency_monetary_correlation_: float = float("nan")
    log_likelihood_: float = float("nan")
    constant_spend_: float | None = None

    def fit(self, frequency, monetary) -> "SpendModel":
        frequency = np.asarray(frequency, dtype=float)
        monetary = np.asarray(monetary, dtype=float)
        repeat = (frequency > 0) & (monetary > 0)
        if repeat.sum() < self.min_repeat_buyers:
            raise FitError(
                f"only {int(repeat.sum())} customers bought again with positive spend in the calibration "
                f"period; the spend model needs at least {self.min_repeat_buyers}: use a later calibration "
                "end or more history"
            )
        distinct, counts, _ = collapse({"frequency": frequency[repeat], "monetary": monetary[repeat]})
        x, m, weights = distinct["frequency"], distinct["monetary"], counts.astype(float)
        self.n_customers_ = int(counts.sum())
        mean = float((weights * x * m).sum() / (weights * x).sum())
        spread = float(np.sqrt((weights * x * (m / mean - 1) ** 2).sum() / (weights * x).sum()))
        self.frequency_monetary_correlation_ = (
            float(pearsonr(frequency[repeat], monetary[repeat])[0]) if spread > CONSTANT_SPREAD
            and np.ptp(frequency[repeat]) > 0 else float("nan"))
        if spread <= CONSTANT_SPREAD:
            return self._constant(mean)
        data = _Collapsed(x, m, weights)
        log_params = self._maximum_likelihood(data, mean)
        if log_params is None:
            return self._constant(mean)
        self.params_ = dict(zip(PARAM_NAMES, map(float, np.exp(log_params))))
        if self.params_["q"] <= 1:
            raise FitError(
                f"the Gamma-Gamma fit gave q={self.params_['q']:.3g} <= 1, so the population mean spend is "
                "undefined; try a penalizer or check for extreme order values"
            )
        with np.errstate(all="ignore"):
            self.log_likelihood_ = -data.objective(self._log_params())[0]
            information = data.objective(self._log_params(), hessian=True)[2]
        self.log_params_cov_ = covariance_from(information) if np.all(np.isfinite(information)) else None
        return self

    def _constant(self, mean: float) -> "SpendModel":
        """Spend with no spread to model: every customer's expected order value is the
        observed mean (the Gamma-Gamma's limit; ``_LIMIT_P``, ``_LIMIT_Q``)."""
        self.constant_spend_ = mean
        self.params_ = {"p": _LIMIT_P, "q": _LIMIT_Q, "v": mean * (_LIMIT_Q - 1) / _LIMIT_P}
        self.log_params_cov_ = None
        self.log_likelihood_ = float("nan")
        return self

    def _maximum_likelihood(self, data: "_Collapsed", mean: float) -> np.ndarray | None:
        """Log parameters, from a start whose population mean p v / (q - 1) is the observed
        ``mean`` (Newton's steps in log parameters do not depend on the unit of spend);
        None where the likelihood keeps rising towards the no-spread limit (p and q without
        bound: spend nearly constant)."""

        def guarded(log_params):
            with np.errstate(all="ignore"):
                value, gradient = data.objective(log_params, self.penalizer)
            if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
                return np.inf, np.zeros(3)
            return value, gradient

        start = np.log([2.0, 3.0, mean])
        tolerance = 1e-9 * data.total
        with np.errstate(all="ignore"):
            found, jac = _newton(data, start, self.penalizer, tolerance)
            if found is None:  # Newton left the region where the Hessian is positive definite: BFGS
                result = minimize(guarded, start, jac=True, method="BFGS", options={"gtol": tolerance})
                found, jac, message = result.x, result.jac, result.message
            else:
                message = "Newton"
        params = np.exp(found)
        if not np.all(np.isfinite(params)) or params[0] > 1e5 or params[1] > 1e5:
            return None  # the no-spread limit
        if not np.all(np.isfinite(jac)) or np.abs(jac).max() > 1e-4 * data.total:
            raise FitError(f"the Gamma-Gamma spend fit did not converge on {int(data.total):,} repeat buyers "
                           f"({message}); try a penalizer (e.g. --penalizer 0.001)")
        return found

    @property
    def description(self) -> str:
        """The fitted spend model in words."""
        if self.constant_spend_ is not None:
            return (f"spend per purchase has no spread to model (every repeat purchase worth about "
                    f"{self.constant_spend_:.4g}): each customer's expected order value is that observed mean")
        return "Gamma-Gamma: each customer's mean order value shrunk towards the population's"

    @property
    def correlation_warning(self) -> str | None:
        r = self.frequency_monetary_correlation_
        if np.isfinite(r) and abs(r) > 0.3:
            return (
                f"frequency and monetary value are correlated (Pearson r = {r:.2f}); Gamma-Gamma assumes "
                "they are independent, so expected order values may be biased"
            )
        return None

    def _log_params(self) -> np.ndarray:
        return np.log([self.params_[name] for name in PARAM_NAMES])

    def expected_order_value(self, frequency, monetary, params: dict[str, float] | None = None) -> np.ndarray:
        """E[spend per purchase | x, m] ([FHL2005b] eq. 5; [Hardie-note-025] eq. 5): a
        frequency-weighted mix of the customer's own mean and the population mean; customers
        with no repeat purchase get the population mean v p / (q - 1). With constant spend,
        the observed mean for everyone."""
        frequency = np.asarray(frequency, dtype=float)
        if self.constant_spend_ is not None and params is None:
            return np.full(frequency.shape, self.constant_spend_)
        p, q, v = ((params or self.params_)[name] for name in PARAM_NAMES)
        monetary = np.where(frequency > 0, np.asarray(monetary, dtype=float), 0.0)
        individual_weight = p * frequency / (p * frequency + q - 1)
        population_mean = v * p / (q - 1)
        return (1 - individual_weight) * population_mean + individual_weight * monetary
