"""Service-interaction features and customer attributes, per customer, before a cutoff."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from retain.data.frames import column_array, float_array
from retain.features.config import FeatureConfig
from retain.features.history import cutoff_day
from retain.features.tables import positions_in

ATTRIBUTE_PREFIX = "attr_"
_NS_PER_DAY = 86_400 * 10**9


def _positions(customer_ids: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Row -> position in customer_ids, -1 for customers without a purchase."""
    return positions_in(customer_ids, np.asarray(ids, dtype=object))


def _kind_rows(kinds: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per service kind, which rows are of it, read the way ``.str.strip().str.lower()`` would."""
    # normalise each distinct value once rather than every row
    codes, distinct = pd.factorize(kinds)
    normalised = np.array([str(value).strip().lower() for value in distinct] + [None], dtype=object)
    return {name: (normalised == name)[codes] for name in names}


def _unresolved_rows(resolved: pd.Series) -> np.ndarray:
    """``resolved == False``; unknown (NA) resolution does not count as unresolved."""
    if pd.api.types.is_bool_dtype(resolved.dtype):
        return ~resolved.to_numpy(dtype=bool, na_value=True)
    values = resolved.to_numpy(dtype=object, na_value=None)
    return np.asarray(values == False, dtype=bool)  # noqa: E712 (element-wise, as pandas compares)


def interaction_features(customer_ids: np.ndarray, interactions: pd.DataFrame, as_of, config: FeatureConfig,
                         last_purchase_day: np.ndarray | None = None, codes: np.ndarray | None = None,
                         ) -> dict[str, np.ndarray]:
    """Complaints, unresolved ones, resolution time and satisfaction within windows, and
    (given each customer's last purchase day, counted from the cutoff) around the last purchase.

    ``codes`` (each row's position in customer_ids, -1 for other customers) saves looking
    the ids up again. The column set depends only on the config and on which optional
    columns the table has, never on the values present, so subsets of customers get the
    same columns.
    """
    _, cutoff = cutoff_day(as_of)
    n = len(customer_ids)
    when = np.asarray(column_array(interactions, "timestamp"))
    if codes is None:
        codes = _positions(customer_ids, interactions["customer_id"])
    # the rows' positions, not a filtered copy of the frame: columns are read one by one
    rows = np.flatnonzero((when < cutoff) & (codes >= 0))
    who = codes[rows]
    when = when[rows]
    day = (when.astype("datetime64[D]") - cutoff).astype(np.int64)
    of_kind = _kind_rows(np.asarray(column_array(interactions, "kind"))[rows], config.service_kinds)

    def count(mask, weights=None):
        return np.bincount(who[mask], weights=None if weights is None else weights[mask], minlength=n).astype(float)

    out: dict[str, np.ndarray] = {"interactions": np.bincount(who, minlength=n).astype(float)}
    unresolved_row = _unresolved_rows(interactions["resolved"])[rows] if "resolved" in interactions else None
    hours = float_array(interactions, "resolution_hours")[rows] if "resolution_hours" in interactions else None
    for name in config.service_kinds:
        is_kind = of_kind[name]
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
    if "satisfaction" in interactions:
        score = float_array(interactions, "satisfaction")[rows]
        rated = ~np.isnan(score)
        # the latest rating wins: sort by (customer, time, score) and keep each customer's
        # last; the score breaks ties so that the input's row order never matters
        stamp = when.astype(np.int64)
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
    return out


_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_ISO_DATE_TEXT = re.compile(_ISO_DATE)


def _dates_from_text(values):
    """Text whose every non-blank value is an ISO date (a date column read from CSV) as
    dates (a DatetimeArray), blanks missing; any other column (numpy or pandas array) unchanged."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    # most text columns are categories: the first distinct value that is not a date says so
    distinct = [str(value).strip() for value in pd.unique(values[~pd.isna(values)])]
    if not all(_ISO_DATE_TEXT.fullmatch(value) for value in distinct if value) or not any(distinct):
        return values  # (nothing but blanks: no date to read either)
    text = pd.Series(values).astype("string").str.strip()
    text = text.mask(text == "")
    given = text.dropna()
    if not given.str.fullmatch(_ISO_DATE).all():
        return values
    utc = given.str.contains(r"Z|[+-]\d{2}:?\d{2}$").any()
    return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=utc).array


def attributes(customer_ids: np.ndarray, customers: pd.DataFrame, as_of, codes: np.ndarray | None = None,
               ) -> dict[str, np.ndarray]:
    """Customer attribute columns as features: numbers stay numbers, dates (also ISO dates
    written as text, as CSV gives them) become ages in days (unknown when the date is not
    before the cutoff), anything else is a category. A customer listed twice takes its
    first row; ``codes`` (each row's position in customer_ids, -1 for other customers)
    saves looking the ids up again."""
    stamp, _ = cutoff_day(as_of)
    cutoff_ns = stamp.to_datetime64().astype("datetime64[ns]").astype(np.int64)
    if codes is None:
        codes = _positions(customer_ids, customers["customer_id"])
    listed = np.flatnonzero(codes >= 0)
    found, first = np.unique(codes[listed], return_index=True)
    row = np.full(len(customer_ids), -1)
    row[found] = listed[first]
    everyone_listed = len(found) == len(customer_ids)
    out = {}
    for column in customers.columns:
        if column == "customer_id":
            continue
        values = column_array(customers, column)  # pandas' array for pandas' types: keeps tz, NA
        # -1 (no row) gives a missing value, with the dtype changes of a reindex: integers
        # become floats, booleans objects; numpy's take (cheaper, docs/benchmarks.md) when every row is there
        values = values[row] if isinstance(values, np.ndarray) and everyone_listed else \
            pd.api.extensions.take(values, row, allow_fill=True)
        name = ATTRIBUTE_PREFIX + column
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            values = _dates_from_text(values)
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            if getattr(values.dtype, "tz", None) is not None:
                values = values.tz_localize(None)
            when = np.asarray(values, dtype="datetime64[ns]")
            # whole days from the date to the cutoff, rounded down (Timedelta.days)
            age = np.floor_divide(cutoff_ns - when.astype(np.int64), _NS_PER_DAY).astype(float)
            age[np.isnat(when)] = np.nan
            out[name + "_days"] = np.where(age > 0, age, np.nan)
        elif pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            out[name] = np.asarray(values.astype(float), dtype=float)
        else:
            text = np.array(values, dtype=object)
            text[pd.isna(text)] = None
            out[name] = text
    return out
