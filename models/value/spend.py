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
from scipy.special import digamma, gammaln
from scipy.stats import pearsonr

from retain.models.value.purchase import FitError, collapse, covariance_from, numeric_hessian

PARAM_NAMES = ("p", "q", "v")
# Relative spread of mean spend per customer below which spend counts as constant.
CONSTANT_SPREAD = 1e-3
# The limiting parameters standing for "the observed mean for everyone": q much larger than
# p x for any frequency, so the customer's own mean gets no weight, and p v / (q - 1) = mean;
# the spend of N purchases is then N times the mean, with no spread.
_LIMIT_P, _LIMIT_Q = 1e6, 1e12


def _objective(log_params, x, log_m, m, weights, distinct_x, x_weight, which_x, penalizer, scale):
    """Gamma-Gamma total negative log-likelihood (lifetimes' form, [Hardie-note-025] eq. 3)
    and its gradient in log parameters, on spend divided by ``scale`` (so v is near 1; the
    penalty applies to v in the original unit, as lifetimes'):
        log L = log G(px+q) - log G(px) - log G(q) + q log v + (px-1) log m + px log x
                - (px+q) log(x m + v)."""
    p, q, v = np.exp(log_params)
    px_distinct = p * distinct_x
    px = px_distinct[which_x]
    log_xm_v = np.log(x * m + v)
    x_terms = gammaln(px_distinct + q) - gammaln(px_distinct) - gammaln(q)
    log_likelihood = ((x_weight * x_terms).sum() + weights.sum() * q * np.log(v)
                      + (weights * ((px - 1) * log_m + px * np.log(x) - (px + q) * log_xm_v)).sum())
    d_x = digamma(px_distinct + q)
    d_p = ((x_weight * distinct_x * (d_x - digamma(px_distinct))).sum()
           + (weights * x * (log_m + np.log(x) - log_xm_v)).sum())
    d_q = (x_weight * (d_x - digamma(q))).sum() + weights.sum() * np.log(v) - (weights * log_xm_v).sum()
    d_v = weights.sum() * q / v - (weights * (px + q) / (x * m + v)).sum()
    gradient = -np.array([d_p * p, d_q * q, d_v * v])
    value = -log_likelihood
    if penalizer:
        params = np.array([p, q, v * scale])
        total = weights.sum() * penalizer
        value += total * (params ** 2).sum()
        gradient += 2 * total * params ** 2
    return value, gradient


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
        log_params = self._maximum_likelihood(x, m / mean, weights, mean)
        if log_params is None:
            return self._constant(mean)
        params = np.exp(log_params) * np.array([1.0, 1.0, mean])
        self.params_ = dict(zip(PARAM_NAMES, map(float, params)))
        if self.params_["q"] <= 1:
            raise FitError(
                f"the Gamma-Gamma fit gave q={self.params_['q']:.3g} <= 1, so the population mean spend is "
                "undefined; try a penalizer or check for extreme order values"
            )
        data = (x, m, weights)
        self.log_likelihood_ = -self._total_negative_log_likelihood(self._log_params(), *data)
        information = numeric_hessian(lambda lp: self._total_negative_log_likelihood(lp, *data), self._log_params())
        self.log_params_cov_ = covariance_from(information)
        return self

    def _constant(self, mean: float) -> "SpendModel":
        """Spend with no spread to model: every customer's expected order value is the
        observed mean (the Gamma-Gamma's limit; ``_LIMIT_P``, ``_LIMIT_Q``)."""
        self.constant_spend_ = mean
        self.params_ = {"p": _LIMIT_P, "q": _LIMIT_Q, "v": mean * (_LIMIT_Q - 1) / _LIMIT_P}
        self.log_params_cov_ = None
        self.log_likelihood_ = float("nan")
        return self

    def _maximum_likelihood(self, x, m, weights, scale) -> np.ndarray | None:
        """Log parameters on spend scaled by ``scale``; None where the likelihood keeps
        rising towards the no-spread limit (p and q without bound: spend nearly constant)."""
        distinct_x, which_x = np.unique(x, return_inverse=True)
        x_weight = np.bincount(which_x, weights=weights)
        args = (x, np.log(m), m, weights, distinct_x, x_weight, which_x, self.penalizer, scale)

        def guarded(log_params):
            with np.errstate(all="ignore"):
                value, gradient = _objective(log_params, *args)
            if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
                return np.inf, np.zeros(3)
            return value, gradient

        start = np.log([2.0, 3.0, 1.0])  # a population mean p v / (q - 1) of the observed mean
        result = minimize(guarded, start, jac=True, method="BFGS", options={"gtol": 1e-9 * weights.sum()})
        params = np.exp(result.x)
        if not np.all(np.isfinite(params)) or params[0] > 1e5 or params[1] > 1e5:
            return None  # the no-spread limit
        if not np.all(np.isfinite(result.jac)) or np.abs(result.jac).max() > 1e-4 * weights.sum():
            raise FitError(f"the Gamma-Gamma spend fit did not converge on {int(weights.sum()):,} repeat buyers "
                           f"({result.message}); try a penalizer (e.g. --penalizer 0.001)")
        return result.x

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

    @staticmethod
    def _total_negative_log_likelihood(log_params, frequency, monetary, weights) -> float:
        distinct_x, which_x = np.unique(frequency, return_inverse=True)
        x_weight = np.bincount(which_x, weights=weights)
        with np.errstate(all="ignore"):
            return float(_objective(log_params, frequency, np.log(monetary), monetary, weights, distinct_x,
                                    x_weight, which_x, 0.0, 1.0)[0])

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
