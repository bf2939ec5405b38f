"""Customer value: a purchase-count model and Gamma-Gamma combined into P(alive), expected
purchases, expected order value, discounted CLV with an interval, and value tiers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from retain.models.purchase import PurchaseModel, collapse
from retain.models.spend import SpendModel
from retain.models.actions import PYRAMID_MOVES, QUADRANT_MOVES
from retain.models.tiers import TierConfig, TierEdges

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
    feature that measures a customer's value today in the value matrix.
    """

    horizon_days: float = 365.0
    margin: float = 1.0
    annual_discount_rate: float = 0.10
    discount_step_days: float = 30.0
    interval: float = 0.90
    current_value_column: str = "spend_180d"
    tiers: TierConfig = field(default_factory=TierConfig)
    penalizer: float = 0.0
    min_repeat_buyers: int = 30

    def __post_init__(self):
        if self.horizon_days <= 0 or self.discount_step_days <= 0:
            raise ValueError("horizon_days and discount_step_days must be positive")
        if not 0 < self.interval < 1:
            raise ValueError("interval must be between 0 and 1, e.g. 0.9")
        if self.annual_discount_rate <= -1:
            raise ValueError("annual_discount_rate must be above -1")


def discount_schedule(config: ValueConfig) -> tuple[np.ndarray, np.ndarray]:
    """Step ends in days (the last one is the horizon) and the discount factor at each."""
    ends = np.arange(config.discount_step_days, config.horizon_days, config.discount_step_days)
    ends = np.append(ends, config.horizon_days)
    return ends, (1.0 + config.annual_discount_rate) ** (-ends / 365.0)


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
        return self.spend.expected_order_value(features["frequency"], features["monetary"])

    def _discounted_purchases(self, patterns, params=None) -> tuple[np.ndarray, np.ndarray]:
        """Per pattern: discounted expected purchases over the horizon and the plain total."""
        ends, factors = discount_schedule(self.config)
        cumulative = self.purchase.expected_purchases(ends / self.time_unit_days, *patterns, params=params)
        per_step = np.diff(cumulative, axis=0, prepend=0.0)
        return factors @ per_step, cumulative[-1]

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """All numeric outputs for every row of ``features``, evaluated once per distinct
        (frequency, recency, T) history."""
        _check_columns(features)
        patterns, inverse = _patterns(features)
        horizon = self.config.horizon_days / self.time_unit_days
        discounted, purchases = self._discounted_purchases(patterns)
        order_value = self.expected_order_value(features)
        alive = self.purchase.p_alive(*patterns)
        values = {
            "p_alive": alive[inverse],
            "p_alive_horizon": self.purchase.p_alive_at(horizon, *patterns, alive=alive)[inverse],
            "p_no_purchase_horizon": self.purchase.p_no_purchase(horizon, *patterns, alive=alive)[inverse],
            "expected_purchases": purchases[inverse],
            "expected_order_value": order_value,
            "clv": self.config.margin * discounted[inverse] * order_value,
        }
        if with_interval:
            values.update(self._interval(features, patterns, inverse, purchases, values))
        return values

    def _interval(self, features, patterns, inverse, purchases, values) -> dict[str, np.ndarray]:
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
            "expected_purchases_low": values["expected_purchases"] * np.exp(-spread_purchases),
            "expected_purchases_high": values["expected_purchases"] * np.exp(spread_purchases),
            "clv_low": values["clv"] * np.exp(-spread_clv),
            "clv_high": values["clv"] * np.exp(spread_clv),
        }

    # --- the score table -------------------------------------------------------------

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value model's scores, one row per input row, in input order."""
        values = self.predict_values(features)
        table = features[[c for c in PASSTHROUGH_COLUMNS if c in features.columns]].reset_index(drop=True)
        for name in SCORE_COLUMNS:
            if name in values:
                table[name] = values[name]
        tier = self.tier_edges.pyramid_tier(values["clv"])
        quadrant = self.tier_edges.value_quadrant(_current_value(features, self.config), values["clv"])
        table["value_tier"] = tier
        table["tier_move"] = pd.Series(tier).map(PYRAMID_MOVES).to_numpy()
        table["value_quadrant"] = quadrant
        table["value_move"] = pd.Series(quadrant).map(QUADRANT_MOVES).to_numpy()
        return table

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
        "frequency": features["frequency"].to_numpy(dtype=float),
        "recency": features["recency"].to_numpy(dtype=float),
        "T": features["T"].to_numpy(dtype=float),
    })
    return (distinct["frequency"], distinct["recency"], distinct["T"]), inverse


def _current_value(features: pd.DataFrame, config: ValueConfig) -> np.ndarray:
    column = config.current_value_column
    if column not in features.columns:
        raise ValueError(f"the value matrix needs the feature {column!r} (ValueConfig.current_value_column)")
    return features[column].to_numpy(dtype=float)
