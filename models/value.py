"""Customer value: a purchase-count model and Gamma-Gamma combined into P(alive), expected
purchases, expected order value, discounted CLV with a per-customer predictive interval,
and value tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import norm

from retain.data.frames import column_array, float_array
from retain.models.purchase import PurchaseModel, collapse, count_tail, distinct_pairs
from retain.models.spend import SpendModel
from retain.models.actions import PYRAMID_MOVES, QUADRANT_MOVES
from retain.models.tiers import PYRAMID, QUADRANT_ORDER, TierConfig, TierEdges

REQUIRED_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary")
PASSTHROUGH_COLUMNS = ("customer_id", "as_of", "frequency", "recency", "T", "monetary",
                       "rfm_code", "rfm_segment", "lifecycle_stage")
SCORE_COLUMNS = (
    "p_alive", "p_alive_horizon", "p_no_purchase_horizon",
    "expected_purchases", "expected_purchases_low", "expected_purchases_high",
    "expected_order_value", "clv", "clv_low", "clv_high",
    "value_tier", "tier_move", "value_quadrant", "value_move",
)


@dataclass(frozen=True)
class ValueConfig:
    """Horizon, margin and discounting of CLV; interval and tier settings.

    Cash flows are discounted at the end of each ``discount_step_days`` step at the annual
    ``annual_discount_rate``, as lifetimes discounts monthly. ``current_value_column`` is the
    feature that measures a customer's value today in the value matrix. ``interval`` is the
    level of the per-customer predictive intervals (``clv_low``/``clv_high``,
    ``expected_purchases_low``/``_high``): the central 80% of what the customer will buy
    and spend over the horizon, by default.
    """

    horizon_days: float = 365.0
    margin: float = 1.0
    annual_discount_rate: float = 0.10
    discount_step_days: float = 30.0
    interval: float = 0.80
    current_value_column: str = "spend_180d"
    tiers: TierConfig = field(default_factory=TierConfig)
    penalizer: float = 0.0
    min_repeat_buyers: int = 30

    def __post_init__(self):
        if self.horizon_days <= 0 or self.discount_step_days <= 0:
            raise ValueError("horizon_days and discount_step_days must be positive")
        if not 0 < self.interval < 1:
            raise ValueError("interval must be between 0 and 1, e.g. 0.8")
        if self.annual_discount_rate <= -1:
            raise ValueError("annual_discount_rate must be above -1")


def discount_schedule(config: ValueConfig) -> tuple[np.ndarray, np.ndarray]:
    """Step ends in days (the last one is the horizon) and the discount factor at each
    (read-only arrays, computed once per setting: every scoring call reads them)."""
    key = (config.horizon_days, config.discount_step_days, config.annual_discount_rate)
    if key not in _SCHEDULES:
        ends = np.arange(config.discount_step_days, config.horizon_days, config.discount_step_days)
        ends = np.append(ends, config.horizon_days)
        factors = (1.0 + config.annual_discount_rate) ** (-ends / 365.0)
        for array in (ends, factors):
            array.setflags(write=False)
        _SCHEDULES[key] = ends, factors
    return _SCHEDULES[key]


_SCHEDULES: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}


@dataclass
class ValueModel:
    """A fitted purchase model and spend model, with the value settings and tier edges
    they were fitted with. ``time_unit_days`` is the unit of recency and T in the feature
    table (1 = days, 7 = weeks)."""

    purchase: PurchaseModel
    spend: SpendModel
    config: ValueConfig
    time_unit_days: float = 1.0
    tier_edges: TierEdges | None = None

    @classmethod
    def fit(cls, features: pd.DataFrame, family: str = "bgnbd", config: ValueConfig | None = None,
            time_unit_days: float = 1.0, spend: SpendModel | None = None) -> "ValueModel":
        """``spend``: an already fitted spend model to reuse (it does not depend on the purchase model)."""
        config = config or ValueConfig()
        _check_columns(features)
        purchase = PurchaseModel(family, penalizer=config.penalizer).fit(
            features["frequency"], features["recency"], features["T"]
        )
        if spend is None:
            spend = SpendModel(penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers).fit(
                features["frequency"], features["monetary"]
            )
        model = cls(purchase, spend, config, time_unit_days)
        values = model.predict_values(features, with_interval=False)
        model.tier_edges = TierEdges.fit(values["clv"], _current_value(features, config), config.tiers)
        return model

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*PASSTHROUGH_COLUMNS, self.config.current_value_column]))

    # --- vectorised predictions -----------------------------------------------------

    def expected_over(self, days: float, features: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``days`` per customer."""
        patterns, inverse = _patterns(features)
        return self.purchase.expected_purchases(days / self.time_unit_days, *patterns)[inverse]

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        return self.spend.expected_order_value(float_array(features, "frequency"), float_array(features, "monetary"))

    def _discounted_purchases(self, patterns, params=None, *, alive=None, pairs=None) -> tuple[np.ndarray, np.ndarray]:
        """Per pattern: discounted expected purchases over the horizon and the plain total.
        ``alive``, ``pairs``: P(alive) and ``distinct_pairs`` of the patterns, if known."""
        ends, factors = discount_schedule(self.config)
        cumulative = self.purchase.expected_purchases(ends / self.time_unit_days, *patterns, params=params,
                                                      alive=alive, pairs=pairs)
        per_step = np.diff(cumulative, axis=0, prepend=0.0)
        return factors @ per_step, cumulative[-1]

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """All numeric outputs for every row of ``features``, evaluated once per distinct
        (frequency, recency, T) history. P(alive), the distinct (frequency, T) pairs and the
        discounted purchases are computed once and shared by every output."""
        _check_columns(features)
        patterns, inverse = _patterns(features)
        pairs = distinct_pairs(patterns[0], patterns[2])
        horizon = self.config.horizon_days / self.time_unit_days
        alive = self.purchase.p_alive(*patterns)
        discounted, purchases = self._discounted_purchases(patterns, alive=alive, pairs=pairs)
        order_value = self.expected_order_value(features)
        values = {
            "p_alive": alive[inverse],
            "p_alive_horizon": self.purchase.p_alive_at(horizon, *patterns, alive=alive, pairs=pairs)[inverse],
            "p_no_purchase_horizon": self.purchase.p_no_purchase(horizon, *patterns, alive=alive)[inverse],
            "expected_purchases": purchases[inverse],
            "expected_order_value": order_value,
            "clv": self.config.margin * discounted[inverse] * order_value,
        }
        if with_interval:
            values.update(self._interval(features, patterns, inverse, purchases, values,
                                         discounted=discounted, alive=alive, pairs=pairs))
        return values

    def _interval(self, features, patterns, inverse, purchases, values, *, discounted=None, alive=None,
                  pairs=None) -> dict[str, np.ndarray]:
        """Predictive interval at ``config.interval`` over the horizon; CLV's bounds carry the
        same margin and discounting as ``clv`` (the ratio of discounted to plain purchases).
        ``discounted``, ``alive``, ``pairs``: what ``predict_values`` already has."""
        horizon_days = self.config.horizon_days
        outcomes = self._outcome_distribution(features, horizon_days, (patterns, inverse), alive=alive, pairs=pairs)
        purchases_low, purchases_high, spend_low, spend_high = outcomes.interval(self.config.interval)
        if discounted is None:
            discounted, _ = self._discounted_purchases(patterns, alive=alive, pairs=pairs)
        ratio = np.divide(discounted, purchases, out=np.ones_like(purchases), where=purchases > 0)[inverse]
        return {
            "expected_purchases_low": purchases_low,
            "expected_purchases_high": purchases_high,
            "clv_low": self.config.margin * ratio * spend_low,
            "clv_high": self.config.margin * ratio * spend_high,
        }

    # --- the predictive distribution ---------------------------------------------------

    def _outcome_distribution(self, features: pd.DataFrame, days: float, _patterns_of=None, *,
                              alive=None, pairs=None) -> "_Outcomes":
        """What each customer buys in the next ``days``: the purchase count's distribution
        (``count_tail`` per (frequency, T) pair, times P(alive)) and Gamma-Gamma spend.

        Spend: each purchase z ~ Gamma(p, nu) with nu | history ~ Gamma(p x + q, v + x m)
        ([FHL2005b]), independent of the count N. So E[S] = E[N] p B/(A-1) and
        E[S^2] = (p E[N] + p^2 E[N^2]) B^2/((A-1)(A-2)) with A = p x + q, B = v + x m; S > 0
        exactly when N > 0, and S given N > 0 is taken as the lognormal with those two moments."""
        patterns, inverse = _patterns_of or _patterns(features)
        x, _, T = patterns
        pairs, pair_of = pairs or distinct_pairs(x, T)
        tail = count_tail(self.purchase, days / self.time_unit_days, pairs["x"], pairs["T"])
        alive = self.purchase.p_alive(*patterns) if alive is None else alive
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
        return _Outcomes(tail, pair_of, alive, inverse, quiet, mean_spend, second_spend)

    def predictive_interval(self, features: pd.DataFrame, days: float, level: float | None = None,
                            _patterns_of=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer: the equal-tailed ``level`` interval of repeat purchases (whole
        numbers) and of spend (undiscounted) in the next ``days``."""
        level = self.config.interval if level is None else level
        return self._outcome_distribution(features, days, _patterns_of).interval(level)

    def interval_coverage(self, features: pd.DataFrame, days: float, actual_purchases, actual_spend,
                          level: float | None = None) -> dict[str, float]:
        """How well the ``level`` predictive intervals hold what customers actually did in the
        next ``days`` (a holdout).

        ``*_interval_coverage``: the randomized PIT coverage ([CGH2009]):
        an outcome with an atom of probability (a count, or zero spend) counts for the share
        of its probability that falls inside the central band; it equals ``level`` when the
        model is calibrated. ``*_interval_share_inside``: the plain share of customers whose
        outcome lies within [low, high], which is at least ``level`` for whole-number counts
        (a customer whose most likely outcome is 0 with 90% gets the interval [0, 0])."""
        level = self.config.interval if level is None else level
        return coverage(self._outcome_distribution(features, days), actual_purchases, actual_spend, level)

    def parameter_interval(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """The uncertainty of the fitted parameters alone, as ``*_param_low``/``*_param_high``
        around expected purchases and CLV over the horizon (``_parameter_interval``)."""
        patterns, inverse = _patterns(features)
        values = self.predict_values(features, with_interval=False)
        discounted, purchases = self._discounted_purchases(patterns)
        return self._parameter_interval(features, patterns, inverse, purchases, values)

    def _parameter_interval(self, features, patterns, inverse, purchases, values) -> dict[str, np.ndarray]:
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
            np.log(np.maximum(self.purchase.expected_purchases(horizon, *patterns, params=shifted), 1e-300)) - log_purchases
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

    # --- the score table -------------------------------------------------------------

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value model's scores, one row per input row, in input order."""
        return score_table(features, self.predict_values(features), self.tier_edges, self.config)

    def describe(self) -> dict:
        return {
            "purchase_model": self.purchase.family,
            "purchase_params": self.purchase.params_,
            "spend_params": self.spend.params_,
            "time_unit_days": self.time_unit_days,
            "horizon_days": self.config.horizon_days,
            "margin": self.config.margin,
            "annual_discount_rate": self.config.annual_discount_rate,
        }


def score_table(features: pd.DataFrame, values: dict[str, np.ndarray], tier_edges: TierEdges,
                config: ValueConfig) -> pd.DataFrame:
    """The score table of any value model family from its ``predict_values`` output: the
    passthrough features, ``SCORE_COLUMNS``, tier and quadrant with their moves."""
    return pd.DataFrame(score_columns(features, values, tier_edges, config))


def value_scores(model, features: pd.DataFrame) -> dict[str, np.ndarray]:
    """``model.score(features)``'s columns as arrays, for any value family (no frame built:
    the scoring core assembles its own)."""
    return score_columns(features, model.predict_values(features), model.tier_edges, model.config)


def score_columns(features: pd.DataFrame, values: dict[str, np.ndarray], tier_edges: TierEdges,
                  config: ValueConfig) -> dict[str, np.ndarray]:
    """``score_table``'s columns as a dict of arrays."""
    # the columns gathered as arrays and made into one frame: inserting them one by one into
    # a frame costs more than the arithmetic behind them for a single customer
    present = set(features.columns)
    columns = {name: column_array(features, name) for name in PASSTHROUGH_COLUMNS if name in present}
    columns.update((name, values[name]) for name in SCORE_COLUMNS if name in values)
    tier = tier_edges.pyramid_index(values["clv"])
    quadrant = tier_edges.quadrant_index(_current_value(features, config), values["clv"])
    columns["value_tier"] = _PYRAMID_NAMES[tier]
    columns["tier_move"] = _PYRAMID_MOVES[tier]
    columns["value_quadrant"] = _QUADRANT_NAMES[quadrant]
    columns["value_move"] = _QUADRANT_MOVES[quadrant]
    return columns


# tier and quadrant names and moves by their index (TierEdges.pyramid_index, quadrant_index)
_PYRAMID_NAMES = np.array(PYRAMID, dtype=object)
_PYRAMID_MOVES = np.array([PYRAMID_MOVES[tier] for tier in PYRAMID], dtype=object)
_QUADRANT_NAMES = np.array(QUADRANT_ORDER, dtype=object)
_QUADRANT_MOVES = np.array([QUADRANT_MOVES[quadrant] for quadrant in QUADRANT_ORDER], dtype=object)


@dataclass(frozen=True)
class _Outcomes:
    """The purchase count's distribution per distinct history (``pair``: its (frequency, T)
    pair in ``tail``; ``inverse``: each customer's history) and, per customer, the chance
    of no purchase and the two moments of spend."""

    tail: object  # CountTail over (frequency, T) pairs
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
        log-sd (a Gamma fits as well but its quantile function costs 4 s per million).
        Computed once for both bounds of an interval."""
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


def coverage(outcomes, actual_purchases, actual_spend, level: float) -> dict[str, float]:
    """``interval_coverage``'s figures for any outcome distribution with ``count_cdf``,
    ``count_quantile``, ``spend_cdf``, ``spend_quantile`` and ``quiet`` (the chance of no
    purchase): the probabilistic families' and the learned model's alike."""
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    purchases = np.asarray(actual_purchases, dtype=float)
    spend = np.asarray(actual_spend, dtype=float)
    count_covered = _band_share(outcomes.count_cdf(purchases - 1), outcomes.count_cdf(purchases), low_q, high_q)
    spend_below = np.where(spend > 0, outcomes.spend_cdf(spend), 0.0)
    spend_upto = np.where(spend > 0, spend_below, outcomes.quiet)
    spend_covered = _band_share(spend_below, spend_upto, low_q, high_q)
    count_low, count_high = outcomes.count_quantile(low_q), outcomes.count_quantile(high_q)
    spend_low, spend_high = outcomes.spend_quantile(low_q), outcomes.spend_quantile(high_q)
    return {
        "purchases_interval_coverage": float(count_covered.mean()),
        "spend_interval_coverage": float(spend_covered.mean()),
        "purchases_interval_share_inside": float(((purchases >= count_low) & (purchases <= count_high)).mean()),
        "spend_interval_share_inside": float(((spend >= spend_low - 1e-9) & (spend <= spend_high + 1e-9)).mean()),
        "purchases_interval_mean_width": float((count_high - count_low).mean()),
    }


def _band_share(below: np.ndarray, upto: np.ndarray, low: float, high: float) -> np.ndarray:
    """Share of the PIT interval [below, upto] inside [low, high]; a point PIT counts 1 or 0."""
    width = upto - below
    overlap = np.clip(np.minimum(upto, high) - np.maximum(below, low), 0.0, None)
    point = (below >= low) & (below <= high)
    return np.where(width > 1e-12, overlap / np.maximum(width, 1e-300), point.astype(float))


_STEP = 1e-5  # forward-difference step in log parameters


def _shifted(params: dict[str, float], names) -> list[dict[str, float]]:
    return [{**params, name: params[name] * np.exp(_STEP)} for name in names]


def _quadratic_form(differences: list[np.ndarray], covariance: np.ndarray | None) -> np.ndarray:
    """g' Cov g per row, with g = differences / step."""
    if covariance is None:
        return np.zeros_like(differences[0])
    gradient = np.vstack(differences) / _STEP
    return np.einsum("in,ij,jn->n", gradient, covariance, gradient)


def _check_columns(features: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"the feature table lacks column(s) {missing}; build it with retain.features.build_features")


def _patterns(features: pd.DataFrame) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    distinct, _, inverse = collapse({
        "frequency": float_array(features, "frequency"),
        "recency": float_array(features, "recency"),
        "T": float_array(features, "T"),
    })
    return (distinct["frequency"], distinct["recency"], distinct["T"]), inverse


def _current_value(features: pd.DataFrame, config: ValueConfig) -> np.ndarray:
    column = config.current_value_column
    if column not in features.columns:
        raise ValueError(f"the value matrix needs the feature {column!r} (ValueConfig.current_value_column)")
    return float_array(features, column)
