"""Service-interaction features and customer attributes, per customer, before a cutoff."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from retain.features.config import FeatureConfig
from retain.features.history import cutoff_day

ATTRIBUTE_PREFIX = "attr_"


def _positions(customer_ids: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Row -> position in customer_ids, -1 for customers without a purchase."""
    return pd.Index(customer_ids).get_indexer(np.asarray(ids, dtype=object))


def interaction_features(customer_ids: np.ndarray, interactions: pd.DataFrame, as_of, config: FeatureConfig,
                         last_purchase_day: np.ndarray | None = None) -> pd.DataFrame:
    """Complaints, unresolved ones, resolution time and satisfaction within windows, and
    (given each customer's last purchase day, counted from the cutoff) around the last purchase.

    The column set depends only on the config and on which optional columns the table
    has, never on the values present, so subsets of customers get the same columns.
    """
    _, cutoff = cutoff_day(as_of)
    n = len(customer_ids)
    frame = interactions[interactions["timestamp"].to_numpy() < cutoff]
    who = _positions(customer_ids, frame["customer_id"])
    known = who >= 0
    frame, who = frame.loc[known], who[known]
    day = (frame["timestamp"].to_numpy().astype("datetime64[D]") - cutoff).astype(np.int64)
    kind = frame["kind"].astype("string").str.strip().str.lower().to_numpy()

    def count(mask, weights=None):
        return np.bincount(who[mask], weights=None if weights is None else weights[mask], minlength=n).astype(float)

    out: dict[str, np.ndarray] = {"interactions": count(np.ones(len(who), bool))}
    # unknown resolution (NA) does not count as unresolved
    unresolved_row = (frame["resolved"] == False).fillna(False).to_numpy(bool) if "resolved" in frame else None  # noqa: E712
    hours = frame["resolution_hours"].to_numpy(dtype=float) if "resolution_hours" in frame else None
    for name in config.service_kinds:
        is_kind = kind == name
        for w in config.service_windows:
            in_window = is_kind & (day >= -w)
            out[f"{name}s_{w}d"] = count(in_window)
            if unresolved_row is not None:
                out[f"unresolved_{name}s_{w}d"] = count(in_window & unresolved_row)
            if hours is not None:
                timed = in_window & ~np.isnan(hours)
                total = count(timed, hours)
                n_timed = count(timed)
                out[f"{name}_resolution_hours_{w}d"] = np.divide(
                    total, n_timed, out=np.full(n, np.nan), where=n_timed > 0
                )
        if last_purchase_day is not None:
            # service trouble shortly before or after the last purchase: the customer may have left over it
            near = is_kind & (np.abs(day - np.asarray(last_purchase_day)[who]) <= config.near_last_purchase_days)
            out[f"{name}s_near_last_purchase"] = count(near)
            if unresolved_row is not None:
                out[f"unresolved_{name}s_near_last_purchase"] = count(near & unresolved_row)
        latest = np.full(n, -np.inf)
        np.maximum.at(latest, who[is_kind], day[is_kind].astype(float))
        out[f"days_since_last_{name}"] = np.where(np.isfinite(latest), -latest, np.nan)
    if "satisfaction" in frame:
        score = frame["satisfaction"].to_numpy(dtype=float)
        rated = ~np.isnan(score)
        # the latest rating wins: sort by (customer, time, score) and keep each customer's
        # last; the score breaks ties so that the input's row order never matters
        stamp = frame["timestamp"].to_numpy().astype(np.int64)
        order = np.lexsort((score[rated], stamp[rated], who[rated]))
        rated_who, rated_score = who[rated][order], score[rated][order]
        last = np.full(n, np.nan)
        last[rated_who] = rated_score  # later rows overwrite earlier ones
        out["last_satisfaction"] = last
        year = rated & (day >= -365)
        n_year = count(year)
        # docs/domain.md's CSM: mean of item scores on the -90..90 scale
        out["satisfaction_index_365d"] = np.divide(
            count(year, np.nan_to_num(score)), n_year, out=np.full(n, np.nan), where=n_year > 0
        )
    return pd.DataFrame(out)


_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_ISO_DATE_TEXT = re.compile(_ISO_DATE)


def _dates_from_text(values: pd.Series) -> pd.Series:
    """Text whose every non-blank value is an ISO date (a date column read from CSV) as
    dates, blanks missing; any other column unchanged."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    # most text columns are categories: the first distinct value that is not a date says so
    distinct = (str(value).strip() for value in pd.unique(values.dropna()))
    if not all(_ISO_DATE_TEXT.fullmatch(value) for value in distinct if value):
        return values
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    given = text.dropna()
    if given.empty or not given.str.fullmatch(_ISO_DATE).all():
        return values
    return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=given.str.contains(r"Z|[+-]\d{2}:?\d{2}$").any())


def attributes(customer_ids: np.ndarray, customers: pd.DataFrame, as_of) -> pd.DataFrame:
    """Customer attribute columns as features: numbers stay numbers, dates (also ISO dates
    written as text, as CSV gives them) become ages in days (unknown when the date is not
    before the cutoff), anything else is a category."""
    stamp, _ = cutoff_day(as_of)
    table = customers.drop_duplicates("customer_id")
    table = table.set_axis(np.asarray(table["customer_id"], dtype=object)).reindex(customer_ids)
    out = {}
    for column in table.columns:
        if column == "customer_id":
            continue
        values = table[column]
        name = ATTRIBUTE_PREFIX + column
        if not pd.api.types.is_datetime64_any_dtype(values):
            values = _dates_from_text(values)
        if pd.api.types.is_datetime64_any_dtype(values):
            if values.dt.tz is not None:
                values = values.dt.tz_localize(None)
            age = (stamp - values).dt.days.astype(float)
            out[name + "_days"] = age.where(age > 0).to_numpy()
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[name] = values.astype(float).to_numpy()
        else:
            out[name] = values.astype(object).where(values.notna(), None).to_numpy()
    return pd.DataFrame(out)
