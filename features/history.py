"""Per-customer aggregates of the transaction history before a cutoff.

Everything here is computed per customer from that customer's rows alone, so any subset
of customers gives the same rows as the whole base (the batch and HTTP paths rely on it).
The work is a few sorts and ``np.bincount`` passes, not a Python loop per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from retain.data.frames import column_array, float_array
from retain.errors import RetainError
from retain.features.config import FeatureConfig

_SECONDS_PER_DAY = 86_400
_SECONDS_OFFSET = 1 << 35  # keeps seconds-before-cutoff positive in the packed sort key (~1000 years)


def cutoff_day(as_of) -> tuple[pd.Timestamp, np.datetime64]:
    stamp = pd.Timestamp(as_of).normalize()
    return stamp, np.datetime64(stamp.date(), "D")


@dataclass
class PurchaseLog:
    """A cutoff's transactions, indexed by customer (0..n-1 in ``customer_ids``).

    Days are counted relative to the cutoff: -1 is the last day observed.
    """

    customer_ids: np.ndarray  # object array of ids, one per customer with a purchase
    # purchase rows (amount >= 0), sorted by customer then time
    row_customer: np.ndarray
    row_day: np.ndarray
    row_filtered_index: np.ndarray  # position among the rows before the cutoff
    # distinct purchase days per customer, sorted by customer then day
    day_customer: np.ndarray
    day_day: np.ndarray
    day_spend: np.ndarray
    # returns (amount < 0) of those customers
    return_customer: np.ndarray
    return_amount: np.ndarray
    frame: pd.DataFrame  # the transactions as given, rows after the cutoff included
    filtered_positions: np.ndarray  # rows of ``frame`` before the cutoff
    filtered_amount: np.ndarray
    customer_of_code: np.ndarray  # input customer code -> customer (-1: no purchase before the cutoff)

    # RFM alone needs only the day-level arrays; these row-level gathers are made on demand
    @cached_property
    def row_amount(self) -> np.ndarray:
        return self.filtered_amount[self.row_filtered_index]

    @cached_property
    def row_frame_index(self) -> np.ndarray:
        """Position in ``frame``, for reading the optional columns of purchase rows."""
        return self.filtered_positions[self.row_filtered_index]

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    def count(self, customer: np.ndarray, weights=None) -> np.ndarray:
        return np.bincount(customer, weights=weights, minlength=self.n).astype(float)


def purchase_log(transactions: pd.DataFrame, as_of, codes: np.ndarray | None = None,
                 ids: np.ndarray | None = None) -> PurchaseLog:
    """Index the transactions strictly before ``as_of`` by customer and time.

    ``codes`` (one per row, -1 to leave the row out) and ``ids`` number the customers as
    the caller already did; customers keep the order of ``ids``. Without them the ids are
    numbered in order of first appearance among the rows before the cutoff.
    """
    _, cutoff = cutoff_day(as_of)
    stamp = np.asarray(column_array(transactions, "timestamp")).astype("datetime64[s]").astype(np.int64)
    seconds = stamp - cutoff.astype("datetime64[s]").astype(np.int64)  # < 0 before the cutoff
    if codes is None:
        positions = np.flatnonzero(seconds < 0)
        # take single columns, not a copy of the whole frame: the optional columns are read
        # later, for purchase rows only, through row_frame_index
        codes, uniques = pd.factorize(transactions["customer_id"].iloc[positions], sort=False)
    else:
        positions = np.flatnonzero((seconds < 0) & (codes >= 0))
        codes, uniques = codes[positions], ids
    seconds = seconds[positions]
    day = seconds // _SECONDS_PER_DAY  # -1 = the last day before the cutoff
    amount = float_array(transactions, "amount")[positions]
    is_purchase = amount >= 0

    # customers are those with at least one purchase; renumber them 0..n-1
    has_purchase = np.bincount(codes[is_purchase], minlength=len(uniques)) > 0
    renumber = np.where(has_purchase, np.cumsum(has_purchase) - 1, -1)
    customer_ids = np.asarray(uniques, dtype=object)[has_purchase]

    rows = np.flatnonzero(is_purchase)
    if rows.size == 0:
        raise RetainError(f"no customer has a purchase before {cutoff}: pick a later as-of date")
    cust = renumber[codes[rows]]
    # one sort by (customer, time): customer in the high bits, seconds before cutoff below;
    # stable, so that lines of one order (same second) keep their input order whatever
    # other customers the table holds
    key = (cust.astype(np.int64) << 36) + (seconds[rows] + _SECONDS_OFFSET)
    order = np.argsort(key, kind="stable")
    rows, cust = rows[order], cust[order]
    row_day = day[rows]
    new_day = np.r_[True, (cust[1:] != cust[:-1]) | (row_day[1:] != row_day[:-1])]
    day_index = np.cumsum(new_day) - 1
    day_spend = np.bincount(day_index, weights=amount[rows])

    returns = np.flatnonzero(~is_purchase & has_purchase[codes])
    return PurchaseLog(
        customer_ids=customer_ids,
        row_customer=cust,
        row_day=row_day,
        row_filtered_index=rows,
        day_customer=cust[new_day],
        day_day=row_day[new_day],
        day_spend=day_spend,
        return_customer=renumber[codes[returns]],
        return_amount=-amount[returns],
        frame=transactions,
        filtered_positions=positions,
        filtered_amount=amount,
        customer_of_code=renumber,
    )


def _group_bounds(customer: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last position of each customer in an array sorted by customer."""
    counts = np.bincount(customer, minlength=n)
    last = np.cumsum(counts) - 1
    return last - counts + 1, last


def rfm(log: PurchaseLog, config: FeatureConfig) -> dict[str, np.ndarray]:
    """frequency, recency, T, monetary in lifetimes' conventions.

    frequency = distinct purchase days after the first; recency = age at the last purchase
    day; T = age at the last observed day (the cutoff - 1 day); monetary = mean spend of
    the repeat purchase days (0 without one). Same as lifetimes'
    ``summary_data_from_transaction_data(..., observation_period_end=cutoff - 1 day,
    freq="D", freq_multiplier=time_unit_days)``.
    """
    first, last = _group_bounds(log.day_customer, log.n)
    n_days = last - first + 1
    first_day = log.day_day[first]
    repeat_spend = log.count(log.day_customer, log.day_spend) - log.day_spend[first]
    frequency = (n_days - 1).astype(float)
    unit = config.time_unit_days
    return {
        "frequency": frequency,
        "recency": (log.day_day[last] - first_day) / unit,
        "T": (-1 - first_day) / unit,
        "monetary": np.divide(repeat_spend, frequency, out=np.zeros(log.n), where=frequency > 0),
    }


def _trend(recent: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(recent - before) / (recent + before): -1 stopped, 0 steady, +1 new; 0 when both 0."""
    total = recent + before
    return np.divide(recent - before, total, out=np.zeros_like(total), where=total > 0)


def _safe_ratio(numerator, denominator):
    return np.divide(
        numerator,
        denominator,
        out=np.full(len(numerator), np.nan),
        where=np.asarray(denominator) > 0,
    )


def behaviour(log: PurchaseLog, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Rhythm, windowed counts and spend with trends, order value, returns, discounts, mix."""
    n = log.n
    first, last = _group_bounds(log.day_customer, n)
    n_days = (last - first + 1).astype(float)
    out: dict[str, np.ndarray] = {
        "purchase_days": n_days,
        "orders": log.count(log.row_customer),
        "total_spend": log.count(log.row_customer, log.row_amount),
        "tenure_days": -log.day_day[first].astype(float),
        "days_since_last": -log.day_day[last].astype(float),
    }
    # rhythm: gaps between consecutive purchase days
    not_first = np.ones(len(log.day_day), dtype=bool)
    not_first[first] = False
    gap = np.diff(log.day_day, prepend=0).astype(float)
    gap_customer = log.day_customer[not_first]
    gaps = gap[not_first]
    n_gaps = n_days - 1
    mean_gap = _safe_ratio(log.count(gap_customer, gaps), n_gaps)
    sq = log.count(gap_customer, gaps**2)
    variance = _safe_ratio(sq - n_gaps * np.nan_to_num(mean_gap) ** 2, n_gaps - 1)
    out["mean_gap_days"] = mean_gap
    out["std_gap_days"] = np.sqrt(np.clip(variance, 0, None))
    out["recency_vs_rhythm"] = _safe_ratio(out["days_since_last"], mean_gap)
    last_gap = np.where(n_gaps > 0, gap[last], np.nan)
    out["last_gap_vs_rhythm"] = _safe_ratio(last_gap, mean_gap)

    # where the last purchases head, counted in purchases rather than days before the cutoff
    tail = config.sequence_days
    out[f"order_value_direction_last_{tail}"] = _direction(log.day_customer, log.day_spend, n, tail)
    out[f"gap_direction_last_{tail}"] = _direction(gap_customer, gaps, n, tail - 1)
    k = config.recent_orders
    day_from_end = last[log.day_customer] - np.arange(len(log.day_customer))
    latest_days = day_from_end < k
    out[f"order_value_last_{k}_vs_before"] = _safe_ratio(
        _safe_ratio(log.count(log.day_customer[latest_days], log.day_spend[latest_days]), np.minimum(n_days, k)),
        _safe_ratio(log.count(log.day_customer[~latest_days], log.day_spend[~latest_days]), n_days - k),
    ) - 1

    # every window at once: row k of these (windows x purchase days) masks is window k, and
    # one bincount over (window, customer) slots counts them all (sums in the same order)
    windows = np.asarray(config.windows)[:, None]
    recent = log.day_day >= -windows
    prior = (log.day_day >= -2 * windows) & ~recent
    slot = log.day_customer + n * np.arange(len(windows))[:, None]
    spend = np.broadcast_to(log.day_spend, slot.shape)

    def per_window(mask, weights=None):
        counts = np.bincount(slot[mask], weights=None if weights is None else weights[mask], minlength=n * len(windows))
        return counts.reshape(len(windows), n).astype(float)

    n_recent, n_prior = per_window(recent), per_window(prior)
    s_recent, s_prior = per_window(recent, spend), per_window(prior, spend)
    purchase_trend, spend_trend = _trend(n_recent, n_prior), _trend(s_recent, s_prior)
    for row, w in enumerate(config.windows):
        out[f"purchases_{w}d"] = n_recent[row]
        out[f"purchases_prev_{w}d"] = n_prior[row]
        out[f"spend_{w}d"] = s_recent[row]
        out[f"spend_prev_{w}d"] = s_prior[row]
        out[f"purchase_trend_{w}d"] = purchase_trend[row]
        out[f"spend_trend_{w}d"] = spend_trend[row]

    out["mean_order_value"] = _safe_ratio(out["total_spend"], out["orders"])
    w = config.lifecycle.trend_window_days
    recent_rows = log.row_day >= -w
    recent_aov = _safe_ratio(
        log.count(log.row_customer[recent_rows], log.row_amount[recent_rows]),
        log.count(log.row_customer[recent_rows]),
    )
    earlier_aov = _safe_ratio(
        log.count(log.row_customer[~recent_rows], log.row_amount[~recent_rows]),
        log.count(log.row_customer[~recent_rows]),
    )
    out[f"order_value_{w}d"] = recent_aov
    out[f"order_value_before_{w}d"] = earlier_aov
    out[f"order_value_change_{w}d"] = _safe_ratio(recent_aov, earlier_aov) - 1

    returned = log.count(log.return_customer, log.return_amount)
    out["returns"] = log.count(log.return_customer)
    out["returns_share"] = _safe_ratio(returned, out["total_spend"])

    frame = log.frame
    if "discount" in frame:
        discount = np.nan_to_num(float_array(frame, "discount")[log.row_frame_index])
        gross = out["total_spend"] + log.count(log.row_customer, discount)
        out["discount_share"] = _safe_ratio(log.count(log.row_customer, discount), gross)
        has = (discount > 0).astype(float)
        out["discounted_orders_share"] = _safe_ratio(log.count(log.row_customer, has), out["orders"])
        _, last_row = _group_bounds(log.row_customer, log.n)
        latest_rows = last_row[log.row_customer] - np.arange(len(log.row_customer)) < k
        for label, mask in ((f"{w}d", recent_rows), (f"before_{w}d", ~recent_rows),
                            (f"last_{k}_orders", latest_rows), (f"before_last_{k}_orders", ~latest_rows)):
            out[f"discounted_orders_share_{label}"] = _safe_ratio(
                log.count(log.row_customer[mask], has[mask]), log.count(log.row_customer[mask])
            )
    if "category" in frame:
        out.update(_category_mix(log, config))
    return out


def _direction(customer: np.ndarray, value: np.ndarray, n: int, last: int) -> np.ndarray:
    """Over each customer's last ``last`` values (sorted by customer, then time): (rises -
    falls) / steps between consecutive values, in [-1, 1]; unknown with fewer than 2."""
    _, end = _group_bounds(customer, n)
    in_tail = end[customer] - np.arange(len(customer)) < last
    step = (customer[1:] == customer[:-1]) & in_tail[:-1] & in_tail[1:]
    who = customer[1:][step]
    sign = np.sign(np.diff(value)[step])
    return _safe_ratio(np.bincount(who, weights=sign, minlength=n), np.bincount(who, minlength=n).astype(float))


def _distinct_per_customer(customer: np.ndarray, value: np.ndarray, n: int, n_values: int) -> np.ndarray:
    """Distinct values (codes 0..n_values-1) per customer."""
    # one int64 key per (customer, value) pair, sorted and counted where it changes: rows
    # come sorted by customer, so a stable (merge) sort is near linear, unlike unique(axis=1)
    # or np.unique's hashing
    pairs = np.sort(customer.astype(np.int64) * n_values + value, kind="stable")
    first = np.r_[True, pairs[1:] != pairs[:-1]] if len(pairs) else np.zeros(0, dtype=bool)
    return np.bincount(pairs[first] // n_values, minlength=n).astype(float)


def _category_mix(log: PurchaseLog, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Distinct categories in the last N orders against the orders before them."""
    codes, categories = pd.factorize(np.asarray(column_array(log.frame, "category"))[log.row_frame_index])
    n_categories = max(len(categories), 1)
    _, last = _group_bounds(log.row_customer, log.n)
    from_end = last[log.row_customer] - np.arange(len(log.row_customer))
    k = config.recent_orders
    recent = from_end < k
    valid = codes >= 0
    before = _distinct_per_customer(log.row_customer[~recent & valid], codes[~recent & valid], log.n, n_categories)
    latest = _distinct_per_customer(log.row_customer[recent & valid], codes[recent & valid], log.n, n_categories)
    total = _distinct_per_customer(log.row_customer[valid], codes[valid], log.n, n_categories)
    # how many of the last orders in a row stay in the latest order's category
    row = np.arange(len(codes))
    differs = codes != codes[last[log.row_customer]]
    last_break = np.full(log.n, -1)
    np.maximum.at(last_break, log.row_customer[differs], row[differs])
    first_row = last - np.bincount(log.row_customer, minlength=log.n) + 1
    streak = (last - np.maximum(last_break, first_row - 1)).astype(float)
    orders = (last - first_row + 1).astype(float)
    return {
        "category_streak_orders": streak,
        "category_streak_share": _safe_ratio(streak, orders),
        "categories": total,
        f"categories_last_{k}_orders": latest,
        f"categories_before_last_{k}_orders": np.where(before > 0, before, np.nan),
    }
