"""Gamma-Gamma spend model ([FHL2005b]) on lifetimes' fitter ([Hardie-note-025])."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from lifetimes import GammaGammaFitter
from lifetimes.utils import ConvergenceError
from scipy.stats import pearsonr

from retain.models.value.purchase import FitError, collapse, covariance_from, numeric_hessian

PARAM_NAMES = ("p", "q", "v")


@dataclass
class SpendModel:
    """Gamma-Gamma on repeat buyers (frequency > 0, monetary > 0).

    ``fit`` leaves ``params_``, ``log_params_cov_``, ``n_customers_`` and
    ``frequency_monetary_correlation_``: the model assumes spend per purchase is independent
    of the purchase rate; a strong correlation (|r| > 0.3) is reported as a warning.
    """

    penalizer: float = 0.0
    min_repeat_buyers: int = 30
    params_: dict[str, float] = field(default_factory=dict)
    log_params_cov_: np.ndarray | None = None
    n_customers_: int = 0
    frequency_monetary_correlation_: float = float("nan")
    log_likelihood_: float = float("nan")

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
        fitter = GammaGammaFitter(penalizer_coef=self.penalizer)
        try:
            fitter.fit(distinct["frequency"], distinct["monetary"], weights=counts, q_constraint=True)
        except ConvergenceError:
            raise FitError("the Gamma-Gamma spend fit did not converge; try a penalizer (e.g. --penalizer 0.001)") from None
        self.params_ = {name: float(fitter.params_[name]) for name in PARAM_NAMES}
        if self.params_["q"] <= 1:
            raise FitError(
                f"the Gamma-Gamma fit gave q={self.params_['q']:.3g} <= 1, so the population mean spend is "
                "undefined; try a penalizer or check for extreme order values"
            )
        self.n_customers_ = int(counts.sum())
        self.frequency_monetary_correlation_ = float(pearsonr(frequency[repeat], monetary[repeat])[0])
        data = (distinct["frequency"], distinct["monetary"], counts)
        self.log_likelihood_ = -self._total_negative_log_likelihood(self._log_params(), *data)
        information = numeric_hessian(lambda lp: self._total_negative_log_likelihood(lp, *data), self._log_params())
        self.log_params_cov_ = covariance_from(information)
        return self

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
        mean = GammaGammaFitter._negative_log_likelihood(log_params, frequency, monetary, weights, 0.0)
        return float(mean * weights.sum())

    def expected_order_value(self, frequency, monetary, params: dict[str, float] | None = None) -> np.ndarray:
        """E[spend per purchase | x, m] ([FHL2005b] eq. 5; [Hardie-note-025] eq. 5): a
        frequency-weighted mix of the customer's own mean and the population mean; customers
        with no repeat purchase get the population mean v p / (q - 1)."""
        p, q, v = ((params or self.params_)[name] for name in PARAM_NAMES)
        frequency = np.asarray(frequency, dtype=float)
        monetary = np.where(frequency > 0, np.asarray(monetary, dtype=float), 0.0)
        individual_weight = p * frequency / (p * frequency + q - 1)
        population_mean = v * p / (q - 1)
        return (1 - individual_weight) * population_mean + individual_weight * monetary
