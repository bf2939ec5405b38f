"""Per-customer churn drivers in words a marketer reads: a feature and its value -> a phrase.

Phrases are matched on the feature's name pattern, so window lengths and order counts come
from the configured feature names (``purchases_90d``, ``categories_last_4_orders``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:,.2g}"


_PHRASES: list[tuple[str, object]] = [
    (r"unresolved_(complaint|ticket)s_(\d+)d", lambda m, v: f"{_number(v)} unresolved {m[1]}s in the last {m[2]} days"),
    (r"(complaint|ticket)s_(\d+)d", lambda m, v: f"{_number(v)} {m[1]}s in the last {m[2]} days"),
    (r"(complaint|ticket)_resolution_hours_(\d+)d",
     lambda m, v: f"{m[1]}s took {_number(v)} hours to resolve (last {m[2]} days)"),
    (r"days_since_last_(complaint|ticket)", lambda m, v: f"last {m[1]} {_number(v)} days ago"),
    (r"days_since_last", lambda m, v: f"no purchase for {_number(v)} days"),
    (r"recency_vs_rhythm", lambda m, v: f"current gap is {v:.1f}x their usual time between purchases"),
    (r"last_gap_vs_rhythm", lambda m, v: f"last gap was {v:.1f}x their usual time between purchases"),
    (r"mean_gap_days", lambda m, v: f"usually buys every {_number(v)} days"),
    (r"(purchase|spend)_trend_(\d+)d",
     lambda m, v: f"{'purchases' if m[1] == 'purchase' else 'spend'} {'up' if v > 0 else 'down' if v < 0 else 'flat'} "
                  f"in the last {m[2]} days vs the {m[2]} before (trend {v:+.2f})"),
    (r"purchases_prev_(\d+)d", lambda m, v: f"{_number(v)} purchases in the {m[1]} days before the last {m[1]}"),
    (r"purchases_(\d+)d", lambda m, v: f"{_number(v)} purchases in the last {m[1]} days"),
    (r"spend_prev_(\d+)d", lambda m, v: f"spent {_number(v)} in the {m[1]} days before the last {m[1]}"),
    (r"spend_(\d+)d", lambda m, v: f"spent {_number(v)} in the last {m[1]} days"),
    (r"discounted_orders_share_(\d+)d", lambda m, v: f"{v:.0%} of orders in the last {m[1]} days used a discount"),
    (r"discounted_orders_share_before_(\d+)d",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} days used a discount"),
    (r"discounted_orders_share_last_(\d+)_orders", lambda m, v: f"{v:.0%} of the last {m[1]} orders used a discount"),
    (r"discounted_orders_share_before_last_(\d+)_orders",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} used a discount"),
    (r"gap_direction_last_(\d+)",
     lambda m, v: f"time between purchases {'growing' if v > 0 else 'shrinking' if v < 0 else 'steady'} "
                  f"over the last {m[1]} purchases ({v:+.1f})"),
    (r"order_value_direction_last_(\d+)",
     lambda m, v: f"order values {'rising' if v > 0 else 'falling' if v < 0 else 'steady'} "
                  f"over the last {m[1]} purchases ({v:+.1f})"),
    (r"order_value_last_(\d+)_vs_before", lambda m, v: f"last {m[1]} orders {v:+.0%} in value vs earlier ones"),
    (r"last_(complaint|ticket)_after_last_purchase_days",
     lambda m, v: f"last {m[1]} {_number(abs(v))} days {'after' if v >= 0 else 'before'} the last purchase"),
    (r"discounted_orders_share", lambda m, v: f"{v:.0%} of orders used a discount"),
    (r"discount_share", lambda m, v: f"{v:.0%} of the gross price was discounted"),
    (r"order_value_change_90d", lambda m, v: f"order value {v:+.0%} in the last 90 days vs before"),
    (r"categories_last_4_orders", lambda m, v: f"{_number(v)} categories in the last 4 orders"),
    (r"categories_before_last_4_orders", lambda m, v: f"{_number(v)} categories before the last 4 orders"),
    (r"last_satisfaction", lambda m, v: f"last satisfaction score {_number(v)} (-90..90)"),
    (r"satisfaction_index_365d", lambda m, v: f"satisfaction index {_number(v)} over the last year (-90..90)"),
    (r"returns_share", lambda m, v: f"{v:.0%} of spend returned"),
    (r"p_alive_horizon", lambda m, v: f"{v:.0%} chance of still being active at the horizon"),
    (r"p_alive", lambda m, v: f"{v:.0%} chance of still being an active customer"),
    (r"p_no_purchase_horizon", lambda m, v: f"{v:.0%} chance of no purchase within the horizon"),
    (r"expected_purchases", lambda m, v: f"{v:.1f} purchases expected within the horizon"),
    (r"frequency", lambda m, v: f"{_number(v)} repeat purchases so far"),
    (r"tenure_days", lambda m, v: f"customer for {_number(v)} days"),
    (r"attr_(.+)_days", lambda m, v: f"{m[1].replace('_', ' ')} {_number(v)} days ago"),
]


def describe_feature(name: str, value) -> str:
    """A feature and this customer's value of it, in words a marketer reads."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"{name.replace('_', ' ')} unknown"
    if isinstance(value, str):
        label = name[5:] if name.startswith("attr_") else name
        return f"{label.replace('_', ' ')}: {value}"
    phrase = _phrase_for(name)
    return phrase(float(value))


_PHRASE_CACHE: dict[str, object] = {}


def _phrase_for(name: str):
    """The phrase function of a feature name, found once per name."""
    if name not in _PHRASE_CACHE:
        for pattern, phrase in _PHRASES:
            match = re.fullmatch(pattern, name)
            if match:
                _PHRASE_CACHE[name] = lambda v, phrase=phrase, match=match: phrase(match, v)
                break
        else:
            _PHRASE_CACHE[name] = lambda v: f"{name.replace('_', ' ')} = {_number(v)}"
    return _PHRASE_CACHE[name]


