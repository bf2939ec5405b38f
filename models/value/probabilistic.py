"""The probabilistic value family: a purchase-count model (BG/NBD, MBG/NBD or Pareto/NBD)
and Gamma-Gamma spend combined into P(alive), expected purchases, expected order value,
discounted CLV with a per-customer predictive interval, and value tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import norm

from retain.data.frames import float_array
from retain.models.value.config import ValueConfig, discount_schedule
from retain.models.value.coverage import coverage
from retain.models.value.protocol import NON_CONTRACTUAL, Forecast
from retain.models.value.purchase import CountTail, GivenHistories, PurchaseModel, histories_of
from retain.models.value.scores import PASSTHROUGH_COLUMNS, check_columns, fit_tier_edges, score_table
from retain.models.value.spend import SpendModel
from retain.models.value.tiers import TierEdges


@dataclass
class ProbabilisticValueModel:
    """A purchase model of ``family`` (bgnbd, mbgnbd or pareto) and a spend model, with the
    value settings and tier edges they were fitted with. ``time_unit_days`` is the unit of
    recency and T in the feature table (1 = days, 7 = weeks).

    ``fit(features)`` fits ``purchase``, ``spend`` and ``tier_edges`` and returns the model
    (``retain.models.value.protocol``). A part given to the constructor already fitted is
    kept: ``spend`` does not depend on the purchase family, so the families compared on one
    table share one Gamma-Gamma fit; a model given both parts and no tier edges predicts
    values but does not score."""

    family: str = "bgnbd"
    config: ValueConfig = field(default_factory=ValueConfig)
    time_unit_days: float = 1.0
    spend: SpendModel | None = None
    purchase: PurchaseModel | None = None
    tier_edges: TierEdges | None = None

    business = NON_CONTRACTUAL

    def fit(self, features: pd.DataFrame) -> "ProbabilisticValueModel":
        config = self.config
        check_columns(features)
        if self.purchase is None:
            self.purchase = PurchaseModel(self.family, penalizer=config.penalizer).fit(
                features["frequency"], features["recency"], features["T"])
        if self.spend is None:
            self.spend = SpendModel(penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers).fit(
                features["frequency"], features["monetary"])
        values = self.predict_values(features, with_interval=False)
        self.tier_edges = fit_tier_edges(features, values["clv"], config)
        return self

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*PASSTHROUGH_COLUMNS, self.config.current_value_column]))

    # --- vectorised predictions -----------------------------------------------------

    def expected_over(self, days: float, features: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``days`` per customer."""
        histories, inverse = histories_of(features)
        return self.purchase.expected_purchases(days / self.time_unit_days, *histories)[inverse]

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        return self.spend.expected_order_value(float_array(features, "frequency"), float_array(features, "monetary"))

    def means_over(self, days: float, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected repeat purchases and spend (undiscounted) in the next ``days``."""
        purchases = self.expected_over(days, features)
        return purchases, purchases * self.expected_order_value(features)

    def discounted_purchases(self, given: GivenHistories) -> tuple[np.ndarray, np.ndarray]:
        """Per history in ``given``: discounted expected purchases over the horizon and the
        plain total."""
        ends, factors = discount_schedule(self.config)
        cumulative = given.expected_purchases(ends / self.time_unit_days)
        per_step = np.diff(cumulative, axis=0, prepend=0.0)
        return factors @ per_step, cumulative[-1]

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """All numeric outputs for every row of ``features``, evaluated once per distinct
        (frequency, recency, T) history. P(alive), the distinct (frequency, T) pairs and the
        discounted purchases are computed once and shared by every output."""
        check_columns(features)
        histories, inverse = histories_of(features)
        given = self.purchase.given(*histories)
        horizon = self.config.horizon_days / self.time_unit_days
        discounted, purchases = self.discounted_purchases(given)
        order_value = self.expected_order_value(features)
        values = {
            "p_alive": given.alive[inverse],
            "p_alive_horizon": given.p_alive_at(horizon)[inverse],
            "p_no_purchase_horizon": given.p_no_purchase(horizon)[inverse],
            "expected_purchases": purchases[inverse],
            "expected_order_value": order_value,
            "clv": self.config.margin * discounted[inverse] * order_value,
        }
        if with_interval:
            values.update(self._interval(features, given, inverse, discounted, purchases))
        return values

    def _interval(self, features, given: GivenHistories, inverse, discounted, purchases) -> dict[str, np.ndarray]:
        """Predictive interval at ``config.interval`` over the horizon; CLV's bounds carry the
        same margin and discounting as ``clv`` (the ratio of discounted to plain purchases)."""
        outcomes = self._outcomes(features, self.config.horizon_days, given, inverse)
        purchases_low, purchases_high, spend_low, spend_high = outcomes.interval(self.config.interval)
        ratio = np.divide(discounted, purchases, out=np.ones_like(purchases), where=purchases > 0)[inverse]
        return {
            "expected_purchases_low": purchases_low,
            "expected_purchases_high": purchases_high,
            "clv_low": self.config.margin * ratio * spend_low,
            "clv_high": self.config.margin * ratio * spend_high,
        }

    # --- the predictive distribution ---------------------------------------------------

    def outcomes(self, features: pd.DataFrame, days: float) -> "PurchaseSpendOutcomes":
        histories, inverse = histories_of(features)
        return self._outcomes(features, days, self.purchase.given(*histories), inverse)

    def _outcomes(self, features: pd.DataFrame, days: float, given: GivenHistories,
                  inverse: np.ndarray) -> "PurchaseSpendOutcomes":
        """What each customer buys in the next ``days``: the purchase count's distribution
        (``count_tail`` per (frequency, T) pair, times P(alive)) and Gamma-Gamma spend.

        Spend: each purchase z ~ Gamma(p, nu) with nu | history ~ Gamma(p x + q, v + x m)
        ([FHL2005b]), independent of the count N. So E[S] = E[N] p B/(A-1) and
        E[S^2] = (p E[N] + p^2 E[N^2]) B^2/((A-1)(A-2)) with A = p x + q, B = v + x m; S > 0
        exactly when N > 0, and S given N > 0 is taken as the lognormal with those two moments."""
        _, pair_of = given.pairs
        tail = given.count_tail(days / self.time_unit_days)
        alive = given.alive
        first, second = tail.moments()
        mean_count = (alive * first[pair_of])[inverse]
        second_count = (alive * second[pair_of])[inverse]
        p, q, v = (self.spend.params_[name] for name in ("p", "q", "v"))
        frequency = float_array(features, "frequency")
        monetary = np.where(frequency > 0, float_array(features, "monetary"), 0.0)
        shape, rate = p * frequency + q, v + frequency * monetary
        mean_spend = mean_count * p * rate / (shape - 1)
        # A <= 2 (a new customer with q <= 2) has no finite variance: a very wide interval instead
        second_spend = (p * mean_count + p * p * second_count) * rate ** 2 / ((shape - 1) * np.maximum(shape - 2, 0.05))
        quiet = 1.0 - (alive * tail.at(pair_of, np.ones(len(pair_of), dtype=np.int64)))[inverse]
        return PurchaseSpendOutcomes(tail, pair_of, alive, inverse, quiet, mean_spend, second_spend)

    def forecast(self, features: pd.DataFrame, days: float) -> Forecast:
        return Forecast(*self.means_over(days, features), self.outcomes(features, days))

    def predictive_interval(self, features: pd.DataFrame, days: float, level: float | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer: the equal-tailed ``level`` interval of repeat purchases (whole
        numbers) and of spend (undiscounted) in the next ``days``."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).interval(level)

    def interval_coverage(self, features: pd.DataFrame, days: float, actual_purchases, actual_spend,
                          level: float | None = None) -> dict[str, float]:
        """How well the ``level`` predictive intervals hold what customers actually did in the
        next ``days`` (a holdout): ``retain.models.value.coverage.coverage``."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).coverage(actual_purchases, actual_spend, level)

    def parameter_interval(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """The uncertainty of the fitted parameters alone, as ``*_param_low``/``*_param_high``
        around expected purchases and CLV over the horizon (``_parameter_interval``)."""
        histories, inverse = histories_of(features)
        values = self.predict_values(features, with_interval=False)
        _, purchases = self.discounted_purchases(self.purchase.given(*histories))
        return self._parameter_interval(features, histories, inverse, purchases, values)

    def _parameter_interval(self, features, histories, inverse, purchases, values) -> dict[str, np.ndarray]:
        """Equal-tailed interval from parameter uncertainty by the delta method on the log
        scale: Var(log y) = g' Cov g, with g the gradient of log y in the log parameters
        (forward differences) and Cov the inverse observed information of each fit. The two
        fits are independent, so their variances add for CLV = purchases x order value x
        margin (the discount profile is held at the point estimate). This is uncertainty in
        the expectation, not the spread of what one customer will actually spend."""
        z = float(norm.ppf(0.5 + self.config.interval / 2))
        horizon = self.config.horizon_days / self.time_unit_days
        log_purchases = np.log(np.maximum(purchases, 1e-300))
        purchase_gradient = [
            np.log(np.maximum(self.purchase.expected_purchases(horizon, *histories, params=shifted), 1e-300)) - log_purchases
            for shifted in _shifted(self.purchase.params_, self.purchase.param_names)
        ]
        purchase_variance = _quadratic_form(purchase_gradient, self.purchase.log_params_cov_)[inverse]
        frequency, monetary = features["frequency"], features["monetary"]
        log_value = np.log(values["expected_order_value"])
        spend_gradient = [
            np.log(self.spend.expected_order_value(frequency, monetary, params=shifted)) - log_value
            for shifted in _shifted(self.spend.params_, tuple(self.spend.params_))
        ]
        spend_variance = _quadratic_form(spend_gradient, self.spend.log_params_cov_)
        spread_purchases = z * np.sqrt(purchase_variance)
        spread_clv = z * np.sqrt(purchase_variance + spend_variance)
        return {
            "expected_purchases_param_low": values["expected_purchases"] * np.exp(-spread_purchases),
            "expected_purchases_param_high": values["expected_purchases"] * np.exp(spread_purchases),
            "clv_param_low": values["clv"] * np.exp(-spread_clv),
            "clv_param_high": values["clv"] * np.exp(spread_clv),
        }

    # --- the score table and what training logs ------------------------------------------

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value model's scores, one row per input row, in input order."""
        return score_table(features, self.predict_values(features), self.tier_edges, self.config)

    def describe(self) -> dict:
        return {
            "purchase_model": self.purchase.family,
            "purchase_params": self.purchase.params_,
            "spend_params": self.spend.params_,
            "spend_model": self.spend.description,
            "time_unit_days": self.time_unit_days,
            **self.config.money_terms(),
        }

    def params(self) -> dict[str, float]:
        return self.purchase.params_

    def fit_metrics(self) -> dict[str, float]:
        return {"frequency_monetary_correlation": self.spend.frequency_monetary_correlation_}

    @property
    def log_likelihood(self) -> float:
        return self.purchase.log_likelihood_


@dataclass(frozen=True)
class PurchaseSpendOutcomes:
    """The purchase count's distribution per distinct history (``pair``: its (frequency, T)
    pair in ``tail``; ``inverse``: each customer's history) and, per customer, the chance
    of no purchase and the two moments of spend."""

    tail: CountTail  # over (frequency, T) pairs
    pair: np.ndarray
    alive: np.ndarray
    inverse: np.ndarray
    quiet: np.ndarray  # P(N = 0) = P(S = 0)
    mean_spend: np.ndarray
    second_spend: np.ndarray

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The equal-tailed ``level`` interval of the count and of spend, per customer."""
        low, high = (1 - level) / 2, (1 + level) / 2
        return (*(self.count_quantile(q) for q in (low, high)), *(self.spend_quantile(q) for q in (low, high)))

    def coverage(self, actual_purchases, actual_spend, level: float) -> dict[str, float]:
        return coverage(self, actual_purchases, actual_spend, level)

    def count_quantile(self, level: float) -> np.ndarray:
        """Smallest n with P(N <= n) >= level: the number of n >= 1 with P(N >= n) > 1 - level."""
        threshold = np.divide(1 - level, self.alive, out=np.full(len(self.alive), np.inf), where=self.alive > 0)
        return self.tail.count_above(self.pair, threshold).astype(float)[self.inverse]

    def count_cdf(self, n: np.ndarray) -> np.ndarray:
        """P(N <= n) per customer; 0 for n < 0."""
        n = np.asarray(n).astype(np.int64)
        pair, alive = self.pair[self.inverse], self.alive[self.inverse]
        return np.where(n < 0, 0.0, 1.0 - alive * self.tail.at(pair, n + 1))

    @cached_property
    def _lognormal(self) -> tuple[np.ndarray, np.ndarray]:
        """Spend given N > 0 as the lognormal with its mean and variance: log-mean and
        log-sd (a Gamma fits as well but its quantile function is far slower). Computed
        once for both bounds of an interval."""
        positive = np.maximum(1.0 - self.quiet, 1e-300)
        # customers certain not to buy (quiet = 1) get bounds of 0 whatever these are
        with np.errstate(all="ignore"):
            mean = np.maximum(self.mean_spend / positive, 1e-300)
            ratio = np.nan_to_num((self.second_spend / positive) / (mean * mean), nan=1.0, posinf=1e300)
        log_variance = np.log1p(np.maximum(ratio - 1.0, 1e-12))
        return np.log(mean) - log_variance / 2, np.sqrt(log_variance)

    def spend_quantile(self, level: float) -> np.ndarray:
        location, spread = self._lognormal
        within = np.clip((level - self.quiet) / np.maximum(1.0 - self.quiet, 1e-300), 1e-12, 1 - 1e-12)
        value = np.exp(location + spread * ndtri(within))
        return np.where(level <= self.quiet, 0.0, value)

    def spend_cdf(self, spend: np.ndarray) -> np.ndarray:
        location, spread = self._lognormal
        with np.errstate(divide="ignore"):
            inside = ndtr((np.log(np.maximum(spend, 0.0)) - location) / spread)
        return self.quiet + (1.0 - self.quiet) * inside


_STEP = 1e-5  # forward-difference step in log parameters


def _shifted(params: dict[str, float], names) -> list[dict[str, float]]:
    return [{**params, name: params[name] * np.exp(_STEP)} for name in names]


def _quadratic_form(differences: list[np.ndarray], covariance: np.ndarray | None) -> np.ndarray:
    """g' Cov g per row, with g = differences / step."""
    if covariance is None:
        return np.zeros_like(differences[0])
    gradient = np.vstack(differences) / _STEP
    return np.einsum("in,ij,jn->n", gradient, covariance, gradient)
