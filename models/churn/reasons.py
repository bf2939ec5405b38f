"""Why a customer may leave, inferred from evidence in their own history when no churn type
was ever recorded (the model of the lapse, lapse.py).

Not a learned prediction: a documented rule over the feature table (docs/churn-model.md,
"Inferred reasons"), after the causes of docs/domain.md. Each reason has signals; a signal
that holds adds its weight; the reason with the most weight wins (ties in the order below),
and a customer with no signal gets ``unknown``. The evidence is each holding signal of the
chosen reason in words.

- service: unresolved complaints (around the last purchase, or in the last year),
  complaints around the last purchase, a dissatisfied last survey (below 0 on -90..90);
- price: discounts stopped in the last orders of a customer who used them, rising order
  values over the last purchases, most orders discounted (dependence on discounts);
- competition: a fading share: lengthening gaps and falling order values over the last
  purchases, spend per order well below the customer's earlier orders;
- need: the last orders narrowed to one category after several (a category that stopped).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from retain.data.frames import column_array
from retain.models.drivers import describe_feature

INFERRED_REASONS = ("service", "price", "competition", "need")
UNKNOWN = "unknown"
INFERRED_MARK = " (inferred)"  # churn_type values of the lapse model read "price (inferred)"

# a direction over the last purchases (rises - falls) / steps: at least this share one way
_STEADY_DIRECTION = 0.6
_ORDER_VALUE_CHANGE = 0.25   # last orders at least 25% above or below earlier ones
_DISCOUNT_USER = 0.3         # share of earlier orders discounted that marks a discount user
_DISCOUNT_DEPENDENT = 0.5    # share of all orders discounted: dependence on discounts


def _column(features: pd.DataFrame, pattern: str) -> tuple[str | None, np.ndarray]:
    """The first column whose name matches ``pattern`` (window lengths vary with the
    feature settings) and its values as floats; all missing when there is none."""
    for name in features.columns:
        if re.fullmatch(pattern, str(name)):
            values = pd.to_numeric(pd.Series(column_array(features, name)), errors="coerce")
            return name, values.to_numpy(dtype=float, na_value=np.nan)
    return None, np.full(len(features), np.nan)


def _signals(features: pd.DataFrame) -> list[tuple[str, float, np.ndarray, list[tuple[str, np.ndarray]]]]:
    """(reason, weight, holds per customer, the feature columns that show it with their values)."""
    c = {key: _column(features, pattern) for key, pattern in {
        "unresolved_near": r"unresolved_complaints_near_last_purchase",
        "unresolved_year": r"unresolved_complaints_365d",
        "complaints_near": r"complaints_near_last_purchase",
        "satisfaction": r"last_satisfaction",
        "discount_last": r"discounted_orders_share_last_\d+_orders",
        "discount_before": r"discounted_orders_share_before_last_\d+_orders",
        "discount_all": r"discounted_orders_share",
        "value_direction": r"order_value_direction_last_\d+",
        "gap_direction": r"gap_direction_last_\d+",
        "value_change": r"order_value_last_\d+_vs_before",
        "categories_last": r"categories_last_\d+_orders",
        "categories_before": r"categories_before_last_\d+_orders",
    }.items()}

    def values(key):
        return c[key][1]

    def names(*keys):
        return [c[key] for key in keys if c[key][0] is not None]

    with np.errstate(invalid="ignore"):
        return [
            ("service", 2.0, values("unresolved_near") > 0, names("unresolved_near")),
            ("service", 1.0, values("unresolved_year") > 0, names("unresolved_year")),
            ("service", 1.0, values("complaints_near") > 0, names("complaints_near")),
            ("service", 1.0, values("satisfaction") < 0, names("satisfaction")),
            ("price", 2.0, (values("discount_before") >= _DISCOUNT_USER) & (values("discount_last") == 0),
             names("discount_before", "discount_last")),
            ("price", 1.0, values("value_direction") >= _STEADY_DIRECTION, names("value_direction")),
            ("price", 1.0, values("discount_all") >= _DISCOUNT_DEPENDENT, names("discount_all")),
            ("competition", 1.0, values("gap_direction") >= _STEADY_DIRECTION, names("gap_direction")),
            ("competition", 1.0, values("value_direction") <= -_STEADY_DIRECTION, names("value_direction")),
            ("competition", 1.0, values("value_change") <= -_ORDER_VALUE_CHANGE, names("value_change")),
            ("need", 2.0, (values("categories_last") == 1) & (values("categories_before") >= 2),
             names("categories_last", "categories_before")),
        ]


def infer_reasons(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per customer (row of a feature table): the inferred reason (one of
    ``INFERRED_REASONS`` or ``unknown``) and its evidence in words ("" for unknown)."""
    n = len(features)
    signals = _signals(features)
    weight = np.zeros((n, len(INFERRED_REASONS)))
    for reason, points, holds, _ in signals:
        weight[:, INFERRED_REASONS.index(reason)] += np.where(holds, points, 0.0)
    best = np.argmax(weight, axis=1)  # ties: the first in INFERRED_REASONS
    found = weight[np.arange(n), best] > 0
    reasons = np.where(found, np.asarray(INFERRED_REASONS, dtype=object)[best], UNKNOWN).astype(object)
    # each holding signal of the chosen reason in words, column by column over all customers
    # (each distinct value phrased once: counts and shares repeat)
    evidence = np.full(n, "", dtype=object)
    seen = set()
    for signal_reason, _, holds, columns in signals:
        for name, values in columns:
            if (signal_reason, name) in seen:
                continue
            seen.add((signal_reason, name))
            rows = np.flatnonzero(holds & (reasons == signal_reason))
            if not len(rows):
                continue
            distinct, position = np.unique(values[rows], return_inverse=True)
            phrases = np.array([describe_feature(name, float(v)) for v in distinct], dtype=object)[position]
            separator = np.where((evidence[rows] != "") & (phrases != ""), "; ", "")
            evidence[rows] = evidence[rows] + separator + phrases
    return reasons, evidence
