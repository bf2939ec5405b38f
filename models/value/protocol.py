"""The interface every value family implements, and what their predictive distributions offer.

Callers (training, the scoring core, the churn model's value features, the pyfunc) hold a
``ValueModel`` and never ask which family it is: ``ProbabilisticValueModel`` (a purchase
model, BG/NBD, MBG/NBD or Pareto/NBD, with Gamma-Gamma spend), ``LearnedValueModel``
(LightGBM on the features and a probabilistic model's outputs) and
``SubscriptionValueModel`` (the sBG for subscription bases).

Construction, the same for every family and for the parts inside them (``PurchaseModel``,
``SpendModel``, ``ShiftedBetaGeometric``, ``BillModel``): the constructor takes settings
only (and, optionally, parts already fitted on the same customers, which ``fit`` then
reuses); ``fit(data)`` learns from the data, stores what it learned on the instance and
returns the instance, so ``Family(settings).fit(data)`` is a fitted model. What ``fit``
needs differs by family (a feature table; the learned family also the transactions), so
``fit`` is not part of the protocol: a caller that fits knows the family it fits. Value
objects computed from data (``TierEdges``, ``CovariateDesign``) are not estimators: they
have named constructors (``from_values``, ``from_features``), not ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retain.models.value.config import ValueConfig
from retain.models.value.tiers import TierEdges

NON_CONTRACTUAL = "non-contractual"
SUBSCRIPTION = "subscription"


class OutcomeDistribution(Protocol):
    """Per customer, the distribution of what they will do in a horizon: the count N of
    repeat purchases (or bills) and the spend S (undiscounted), S = 0 exactly when N = 0."""

    def count_quantile(self, level: float) -> np.ndarray:
        """Smallest n with P(N <= n) >= level."""

    def count_cdf(self, n: np.ndarray) -> np.ndarray:
        """P(N <= n); 0 for n < 0."""

    def spend_quantile(self, level: float) -> np.ndarray:
        """The ``level`` quantile of S."""

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The equal-tailed ``level`` interval of N (low, high) and of S (low, high)."""

    def coverage(self, actual_purchases, actual_spend, level: float) -> dict[str, float]:
        """How well the ``level`` intervals hold the actual outcomes (``retain.models.value.coverage``)."""


@dataclass(frozen=True)
class Forecast:
    """What a value model expects of each customer over a horizon: mean repeat purchases,
    mean spend (undiscounted), and the distribution around them."""

    purchases: np.ndarray
    spend: np.ndarray
    outcomes: OutcomeDistribution


class ValueModel(Protocol):
    """A fitted value family (the module docstring says how one is built).

    ``config``: the value settings (horizon, margin, discounting, interval level);
    ``time_unit_days``: the unit of recency and T in the feature table; ``tier_edges``: the
    tier and quadrant cut points fitted on the training base; ``purchase``: the count model
    underneath (``params_``, ``standard_errors()``); ``spend``: the spend or bill model
    (``params_``, ``correlation_warning``); ``family``: the name ``--model`` takes;
    ``business``: ``non-contractual`` or ``subscription``, the kind of base it models."""

    config: ValueConfig
    time_unit_days: float
    tier_edges: TierEdges | None
    purchase: Any
    spend: Any

    @property
    def family(self) -> str: ...

    @property
    def business(self) -> str: ...

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The feature columns ``score`` reads."""

    def expected_over(self, days: float, features: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases (or bills) in the next ``days`` per customer."""

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        """Expected spend per purchase (or the bill) per customer."""

    def means_over(self, days: float, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected repeat purchases and spend (undiscounted) in the next ``days``."""

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """Every numeric score column over ``config.horizon_days`` for every row of ``features``."""

    def outcomes(self, features: pd.DataFrame, days: float) -> OutcomeDistribution:
        """The distribution of what each customer buys and spends in the next ``days``."""

    def forecast(self, features: pd.DataFrame, days: float) -> Forecast:
        """``means_over`` and ``outcomes`` together, computed once where they share work."""

    def predictive_interval(self, features: pd.DataFrame, days: float, level: float | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer: the equal-tailed ``level`` interval of purchases and of spend in the next ``days``."""

    def interval_coverage(self, features: pd.DataFrame, days: float, actual_purchases, actual_spend,
                          level: float | None = None) -> dict[str, float]:
        """How well the ``level`` intervals hold what customers did in the next ``days`` (a holdout)."""

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value score table, one row per input row, in input order."""

    def describe(self) -> dict:
        """The fitted model in a few plain values (family, parameters, settings)."""

    def params(self) -> dict[str, float]:
        """The fitted numbers that characterise the family, to log and compare."""

    def fit_metrics(self) -> dict[str, float]:
        """Numbers about the fit itself (not its forecasts), logged with the training run."""

    @property
    def log_likelihood(self) -> float | None:
        """The total log-likelihood of the fitted count model, None where the forecasts do
        not come from a likelihood fit (the learned family)."""
