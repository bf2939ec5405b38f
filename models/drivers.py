"""Per-customer churn drivers in words a marketer reads: a feature and its value -> a phrase
(``describe_feature``), and each customer's strongest attributions -> their drivers
(``top_drivers``).

Phrases are matched on the feature's name pattern, and every window length or order count
in a phrase is read from the name (``purchases_90d``, ``categories_last_4_orders``), so
configured windows (``FeatureConfig.windows``, ``recent_orders``, ...) read right. Each
pattern also says what a missing value means (``None``: the driver is left out). Times are
in days, as with the default ``--time-unit-days 1``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:,.2g}"


def _count(value: float, noun: str, plural: str | None = None) -> str:
    """'1 purchase', '3 purchases', '0 purchases'."""
    word = noun if round(value, 6) == 1 else (plural or noun + "s")
    return f"{_number(value)} {word}"


def _days(value: float) -> str:
    return _count(value, "day")


def _every(value: float) -> str:
    return "every day" if round(value) <= 1 else f"every {_number(value)} days"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _trend(value: float, rising: str, falling: str, steady: str) -> str:
    return rising if value > 0 else falling if value < 0 else steady


# (pattern, phrase(match, value), phrase when the value is missing or None to leave it out)
_PHRASES: list[tuple[str, object, object]] = [
    # purchases and rhythm
    (r"frequency", lambda m, v: f"{_count(v, 'repeat purchase')} so far", None),
    (r"recency", lambda m, v: f"last purchase {_days(v)} after the first", None),
    (r"T", lambda m, v: f"customer for {_days(v)}", None),
    (r"monetary", lambda m, v: f"average order {_money(v)}" if v > 0 else "no repeat order yet", None),
    (r"rfm_r", lambda m, v: f"recency score {_number(v)} of 5", None),
    (r"rfm_f", lambda m, v: f"frequency score {_number(v)} of 5", None),
    (r"rfm_m", lambda m, v: f"spend score {_number(v)} of 5", None),
    (r"purchase_days", lambda m, v: f"bought on {_count(v, 'separate day')}", None),
    (r"orders", lambda m, v: f"{_count(v, 'order')} in total", None),
    (r"total_spend", lambda m, v: f"spent {_money(v)} in total", None),
    (r"tenure_days", lambda m, v: f"customer for {_days(v)}", None),
    (r"days_since_last", lambda m, v: f"no purchase for {_days(v)}", None),
    (r"mean_gap_days", lambda m, v: f"usually buys {_every(v)}", "only one purchase day so far"),
    (r"std_gap_days", lambda m, v: f"time between purchases varies by about {_days(v)}",
     "too few purchases to show a rhythm"),
    (r"recency_vs_rhythm", lambda m, v: f"current gap is {v:.1f}x their usual time between purchases",
     "too few purchases to show a rhythm"),
    (r"last_gap_vs_rhythm", lambda m, v: f"last gap was {v:.1f}x their usual time between purchases",
     "too few purchases to show a rhythm"),
    (r"gap_direction_last_(\d+)",
     lambda m, v: f"time between purchases {_trend(v, 'growing', 'shrinking', 'steady')} "
                  f"over the last {m[1]} purchases", "too few purchases to show a direction"),
    (r"order_value_direction_last_(\d+)",
     lambda m, v: f"order values {_trend(v, 'rising', 'falling', 'steady')} over the last {m[1]} purchases",
     "too few purchases to show a direction"),
    (r"order_value_last_(\d+)_vs_before", lambda m, v: f"last {m[1]} orders {v:+.0%} in value vs earlier ones",
     lambda m: f"no orders before the last {m[1]} to compare with"),
    # windows
    (r"(purchase|spend)_trend_(\d+)d",
     lambda m, v: f"{'purchases' if m[1] == 'purchase' else 'spend'} "
                  f"{_trend(v, 'up', 'down', 'flat')} in the last {m[2]} days vs the {m[2]} before", None),
    (r"purchases_prev_(\d+)d", lambda m, v: f"{_count(v, 'purchase')} in the {m[1]} days before the last {m[1]}",
     None),
    (r"purchases_(\d+)d", lambda m, v: f"{_count(v, 'purchase')} in the last {m[1]} days", None),
    (r"spend_prev_(\d+)d",
     lambda m, v: f"spent {_money(v)} in the {m[1]} days before the last {m[1]}" if v else
     f"no spend in the {m[1]} days before the last {m[1]}", None),
    (r"spend_(\d+)d", lambda m, v: f"spent {_money(v)} in the last {m[1]} days" if v else
     f"no spend in the last {m[1]} days", None),
    (r"mean_order_value", lambda m, v: f"average order {_money(v)}", None),
    (r"order_value_before_(\d+)d", lambda m, v: f"average order {_money(v)} before the last {m[1]} days",
     lambda m: f"no order before the last {m[1]} days"),
    (r"order_value_(\d+)d", lambda m, v: f"average order {_money(v)} in the last {m[1]} days",
     lambda m: f"no order in the last {m[1]} days"),
    (r"order_value_change_(\d+)d", lambda m, v: f"order value {v:+.0%} in the last {m[1]} days vs before",
     lambda m: f"no orders in the last {m[1]} days and before to compare"),
    (r"returns", lambda m, v: _count(v, "return"), None),
    (r"returns_share", lambda m, v: f"{v:.0%} of spend returned", None),
    # discounts and categories
    (r"discount_share", lambda m, v: f"{v:.0%} of the gross price was discounted", None),
    (r"discounted_orders_share", lambda m, v: f"{v:.0%} of orders used a discount", None),
    (r"discounted_orders_share_(\d+)d", lambda m, v: f"{v:.0%} of orders in the last {m[1]} days used a discount",
     None),
    (r"discounted_orders_share_before_(\d+)d",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} days used a discount", None),
    (r"discounted_orders_share_last_(\d+)_orders", lambda m, v: f"{v:.0%} of the last {m[1]} orders used a discount",
     None),
    (r"discounted_orders_share_before_last_(\d+)_orders",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} used a discount", None),
    (r"categories", lambda m, v: f"bought from {_count(v, 'category', 'categories')}", None),
    (r"categories_last_(\d+)_orders", lambda m, v: f"{_count(v, 'category', 'categories')} in the last {m[1]} orders",
     None),
    (r"categories_before_last_(\d+)_orders",
     lambda m, v: f"{_count(v, 'category', 'categories')} before the last {m[1]} orders",
     lambda m: f"no orders before the last {m[1]}"),
    (r"category_streak_orders",
     lambda m, v: f"last {_number(v)} orders in a row in the same category" if v > 1
     else "last order in a different category from the one before", None),
    (r"category_streak_share", lambda m, v: f"the latest run in one category is {v:.0%} of all orders", None),
    # service
    (r"interactions", lambda m, v: _count(v, "service contact"), None),
    (r"unresolved_(complaint|ticket)s_(\d+)d", lambda m, v: f"{_count(v, 'unresolved ' + m[1])} in the last {m[2]} days",
     None),
    (r"(complaint|ticket)s_(\d+)d", lambda m, v: f"{_count(v, m[1])} in the last {m[2]} days", None),
    (r"(complaint|ticket)_resolution_hours_(\d+)d",
     lambda m, v: f"{m[1]}s took {_count(v, 'hour')} on average to resolve (last {m[2]} days)",
     lambda m: None),
    (r"unresolved_(complaint|ticket)s_near_last_purchase",
     lambda m, v: f"{_count(v, 'unresolved ' + m[1])} around the last purchase", None),
    (r"(complaint|ticket)s_near_last_purchase", lambda m, v: f"{_count(v, m[1])} around the last purchase", None),
    (r"days_since_last_(complaint|ticket)", lambda m, v: f"last {m[1]} {_days(v)} ago",
     lambda m: f"no {m[1]} on record"),
    (r"last_(complaint|ticket)_after_last_purchase_days",
     lambda m, v: f"last {m[1]} {_days(abs(v))} {'after' if v >= 0 else 'before'} the last purchase",
     lambda m: f"no {m[1]} on record"),
    (r"last_satisfaction", lambda m, v: f"last satisfaction score {_number(v)} (-90..90)",
     "no satisfaction score on record"),
    (r"satisfaction_index_(\d+)d",
     lambda m, v: f"satisfaction index {_number(v)} over the last {'year' if m[1] == '365' else m[1] + ' days'} "
                  "(-90..90)", None),
    # value model
    (r"p_alive_horizon", lambda m, v: f"{v:.0%} chance of still being active at the horizon", None),
    (r"p_alive", lambda m, v: f"{v:.0%} chance of still being an active customer", None),
    (r"p_no_purchase_horizon", lambda m, v: f"{v:.0%} chance of no purchase within the horizon", None),
    (r"expected_purchases", lambda m, v: f"{v:.1f} purchases expected within the horizon", None),
    # customer attributes: dates become ages in days
    (r"attr_(.+)_days", lambda m, v: f"{_words(m[1])} {_days(v)} ago", lambda m: f"{_words(m[1])} unknown"),
]

# categorical features: "label: value"
_LABELS = {"rfm_segment": "RFM segment", "abc_class": "revenue class (A: top 80%)",
           "lifecycle_stage": "lifecycle stage"}


def _words(name: str) -> str:
    """A column name in words: snake_case and CamelCase split ("MonthlyCharges" -> "monthly
    charges", as telecom exports name them), acronyms kept ("CLTV")."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).replace("_", " ")
    return " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in spaced.split())


def _label(name: str) -> str:
    return _LABELS.get(name) or (_words(name[5:]) if name.startswith("attr_") else name.replace("_", " "))


def describe_feature(name: str, value) -> str:
    """A feature and this customer's value of it, in words a marketer reads; "" when a
    missing value says nothing worth showing."""
    # value != value: NaN, without np.isnan's cost on a Python float (called once per phrase)
    missing = value is None or value is pd.NA or (isinstance(value, float) and value != value)
    if isinstance(value, str):
        return f"{_label(name)}: {value.replace('_', ' ')}"
    phrase, when_missing = _phrase_for(name)
    if missing:
        return when_missing()
    return phrase(float(value))


_PHRASE_CACHE: dict[str, tuple] = {}


def _phrase_for(name: str):
    """The phrase functions (value, missing) of a feature name, found once per name."""
    if name not in _PHRASE_CACHE:
        for pattern, phrase, missing in _PHRASES:
            match = re.fullmatch(pattern, name)
            if match:
                if missing is None:
                    on_missing = lambda: ""  # noqa: E731
                elif callable(missing):
                    on_missing = lambda missing=missing, match=match: missing(match) or ""  # noqa: E731
                else:
                    on_missing = lambda missing=missing: missing  # noqa: E731
                _PHRASE_CACHE[name] = (lambda v, phrase=phrase, match=match: phrase(match, v), on_missing)
                break
        else:  # a feature retain does not know (a numeric attribute): its name and value
            _PHRASE_CACHE[name] = (lambda v: f"{_label(name)}: {_number(v)}", lambda: f"{_label(name)} unknown")
    return _PHRASE_CACHE[name]


# a feature is a driver only when it moved the prediction at least this share of the
# customer's strongest driver: a static attribute with a sliver of attribution is not named
MIN_DRIVER_SHARE = 0.25


def top_drivers(contributions: np.ndarray, matrix: np.ndarray, feature_names: list[str],
                category_text: dict[str, np.ndarray], top: int, min_share: float = MIN_DRIVER_SHARE) -> np.ndarray:
    """Per customer (row of ``contributions``, features x their values in ``matrix``): up to
    ``top`` features with the largest positive contributions, in words, joined by "; ";
    only those contributing at least ``min_share`` of the customer's largest one.
    Categorical features hold their category codes in ``matrix`` (``category_text``: the
    text of each code)."""
    n_features = len(feature_names)
    top = min(top, contributions.shape[1])
    order = np.argsort(-contributions, axis=1)[:, :top]
    phrases = np.full((len(matrix), top), "", dtype=object)
    chosen = np.take_along_axis(contributions, order, axis=1)
    strongest = chosen[:, :1] if top else np.zeros((len(matrix), 1))
    # every (position, customer) whose chosen feature pushes towards the type by enough,
    # position by position and customers in order within each
    position, row = np.nonzero(((chosen > 0) & (chosen >= min_share * strongest)).T)
    column = order[row, position]
    value = matrix[row, column]
    if len(row):
        # counts and categories repeat: each distinct (position, feature, value) is phrased
        # once, from its first customer's value (as a loop over them would)
        value_codes, distinct_values = pd.factorize(value, use_na_sentinel=False)
        key = (position * n_features + column) * len(distinct_values) + value_codes
        key_codes, distinct_keys = pd.factorize(key)
        first = np.empty(len(distinct_keys), dtype=np.int64)
        first[key_codes[::-1]] = np.arange(len(key_codes))[::-1]
        names = feature_names
        phrased = np.array([
            describe_feature(names[c], category_text[names[c]][int(v)] if names[c] in category_text and v == v else v)
            for c, v in zip(column[first].tolist(), value[first].tolist())], dtype=object)
        phrases[row, position] = phrased[key_codes]
    # "; " between the non-empty phrases, one position at a time over all customers
    drivers = phrases[:, 0] if top else np.full(len(matrix), "", dtype=object)
    for position in range(1, top):
        following = phrases[:, position]
        separator = np.where((drivers != "") & (following != ""), "; ", "")
        drivers = drivers + separator + following
    return drivers.astype(object)
