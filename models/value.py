"""Customer value: a purchase-count model and Gamma-Gamma combined into P(alive), expected
purchases, expected order value, discounted CLV with an interval, and value tiers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retain.models.purchase import PurchaseModel, collapse
from retain.models.spend import SpendModel
from retain.models.tiers import PYRAMID_MOVES, QUADRANT_MOVES, TierConfig, TierEdges

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
    interval_draws: int = 200
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
            time_unit_days: float = 1.0) -> "ValueModel":
        config = config or ValueConfig()
        _check_columns(features)
        purchase = PurchaseModel(family, penalizer=config.penalizer).fit(
            features["frequency"], features["recency"], features["T"]
        )
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
        cumulative = [self.purchase.expected_purchases(end / self.time_unit_days, *patterns, params=params)
                      for end in ends]
        previous = np.zeros_like(cumulative[0])
        discounted = np.zeros_like(cumulative[0])
        for total, factor in zip(cumulative, factors):
            discounted += (total - previous) * factor
            previous = total
        return discounted, cumulative[-1]

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """All numeric outputs for every row of ``features``, evaluated once per distinct
        (frequency, recency, T) history."""
        _check_columns(features)
        patterns, inverse = _patterns(features)
        horizon = self.config.horizon_days / self.time_unit_days
        discounted, purchases = self._discounted_purchases(patterns)
        order_value = self.expected_order_value(features)
        values = {
            "p_alive": self.purchase.p_alive(*patterns)[inverse],
            "p_alive_horizon": self.purchase.p_alive_at(horizon, *patterns)[inverse],
            "p_no_purchase_horizon": self.purchase.p_no_purchase(horizon, *patterns)[inverse],
            "expected_purchases": purchases[inverse],
            "expected_order_value": order_value,
            "clv": self.config.margin * discounted[inverse] * order_value,
        }
        if with_interval:
            values.update(self._interval(features, patterns, inverse, discounted, purchases))
        return values

    def _interval(self, features, patterns, inverse, discounted, purchases) -> dict[str, np.ndarray]:
        """Equal-tailed interval from parameter uncertainty: parameter sets drawn from the
        asymptotic normal of both models' log parameters; each draw's CLV uses that draw's
        expected purchases and order values. The discount profile over the horizon is taken
        from the point estimate (scaled to each draw's total), which keeps this one
        evaluation per draw. This is uncertainty in the expectation, not the spread of what
        one customer will actually spend."""
        draws = self.config.interval_draws
        horizon = self.config.horizon_days / self.time_unit_days
        tail = (1 - self.config.interval) / 2
        purchase_draws = self.purchase.parameter_draws(draws, seed=1)
        spend_draws = self.spend.parameter_draws(draws, seed=2)
        pattern_purchases = np.column_stack(
            [self.purchase.expected_purchases(horizon, *patterns, params=p) for p in purchase_draws]
        )
        ratio = np.divide(discounted, purchases, out=np.ones_like(purchases), where=purchases > 0)
        frequency = features["frequency"].to_numpy(dtype=float)
        monetary = features["monetary"].to_numpy(dtype=float)
        low_high = {name: np.empty(len(features)) for name in
                    ("expected_purchases_low", "expected_purchases_high", "clv_low", "clv_high")}
        pattern_low, pattern_high = np.quantile(pattern_purchases, [tail, 1 - tail], axis=1)
        low_high["expected_purchases_low"] = pattern_low[inverse]
        low_high["expected_purchases_high"] = pattern_high[inverse]
        chunk = max(1, 2_000_000 // draws)  # bounds memory at about 16 MB per array
        for start in range(0, len(features), chunk):
            rows = slice(start, start + chunk)
            order_values = np.column_stack(
                [self.spend.expected_order_value(frequency[rows], monetary[rows], params=p) for p in spend_draws]
            )
            clv = self.config.margin * (pattern_purchases[inverse[rows]] * ratio[inverse[rows], None]) * order_values
            low_high["clv_low"][rows], low_high["clv_high"][rows] = np.quantile(clv, [tail, 1 - tail], axis=1)
        return low_high

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
