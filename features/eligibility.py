"""Who can be scored as of a date, and in words why not.

A customer is scored when they have a purchase strictly before ``as_of`` and no recorded
churn event before it. Everyone else is listed with a reason, so that every input customer
leaves a scoring job either scored or explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.data.frames import column_array, float_array
from retain.features.config import FeatureConfig
from retain.features.history import cutoff_day
from retain.features.pipeline import feature_columns, scored_frame
from retain.features.segments import FeatureReference
from retain.features.tables import codes_in, positions_in, remap, text_ids, text_order
from retain.vocabulary import NotScored


@dataclass(frozen=True)
class NotScoredReasons:
    """Per input customer: why not scored, as codes (``NotScored``; None when scored) and in
    words (``not_scored_reason``; "" when scored), both indexed by customer id (text)."""

    codes: pd.Series
    words: pd.Series

    @classmethod
    def of(cls, ids, codes: np.ndarray, words: np.ndarray) -> "NotScoredReasons":
        index = pd.Index(ids, name="customer_id")
        return cls(pd.Series(codes, index=index, dtype=object), pd.Series(words, index=index, dtype=object))


def not_scored_reasons(
    customer_ids,
    transactions: pd.DataFrame,
    as_of,
    churn_events: pd.DataFrame | None = None,
) -> pd.Series:
    """Per customer id (text), an empty string when scorable, else the reason in words
    (``retain.vocabulary.NotScored``)."""
    ids = pd.Index(customer_ids, dtype=object).astype(str).unique()
    return _reasons(ids, codes_in(ids, transactions["customer_id"]), transactions, as_of, churn_events).words


def _reasons(ids: pd.Index, tx_codes: np.ndarray, transactions: pd.DataFrame, as_of,
             churn_events: pd.DataFrame | None) -> NotScoredReasons:
    """``not_scored_reasons``, given each transaction's position in ``ids``."""
    stamp, cutoff = cutoff_day(as_of)
    day = stamp.date()
    when = np.asarray(column_array(transactions, "timestamp"))
    before = when < cutoff
    purchase = float_array(transactions, "amount") >= 0
    known = tx_codes >= 0
    n = len(ids)
    bought_before = np.bincount(tx_codes[known & before & purchase], minlength=n) > 0
    returned_before = np.bincount(tx_codes[known & before & ~purchase], minlength=n) > 0
    has_purchase = np.bincount(tx_codes[known & purchase], minlength=n) > 0

    codes = np.full(n, None, dtype=object)
    reasons = np.full(n, "", dtype=object)
    only_returns = ~bought_before & returned_before
    codes[only_returns] = NotScored.ONLY_RETURNS
    reasons[only_returns] = NotScored.ONLY_RETURNS.words(as_of=day)
    later = ~bought_before & ~returned_before & has_purchase
    if later.any():
        rows = known & purchase & np.isin(tx_codes, np.flatnonzero(later))
        first = pd.Series(when[rows]).groupby(tx_codes[rows]).min()
        codes[first.index.to_numpy()] = NotScored.NO_PURCHASE_YET
        reasons[first.index.to_numpy()] = [
            NotScored.NO_PURCHASE_YET.words(as_of=day, first_purchase=t) for t in first.to_numpy()]
    nothing = ~bought_before & ~returned_before & ~has_purchase
    codes[nothing] = NotScored.NO_TRANSACTIONS
    reasons[nothing] = NotScored.NO_TRANSACTIONS.words()

    if churn_events is not None and len(churn_events):
        event_codes = codes_in(ids, churn_events["customer_id"])
        dates = np.asarray(column_array(churn_events, "churn_date"))
        rows = np.flatnonzero((event_codes >= 0) & (dates < cutoff))
        if len(rows):
            # the earliest churn event before as_of of each customer
            order = rows[np.lexsort((dates[rows], event_codes[rows]))]
            first_rows = order[np.r_[True, event_codes[order][1:] != event_codes[order][:-1]]]
            types = np.asarray(column_array(churn_events, "churn_type"), dtype=object)[first_rows]
            codes[event_codes[first_rows]] = NotScored.CHURNED
            reasons[event_codes[first_rows]] = [
                NotScored.CHURNED.words(churn_date=d, churn_type=t) for d, t in zip(dates[first_rows], types)]
    return NotScoredReasons.of(ids, codes, reasons)


def input_customers(dataset) -> pd.Index:
    """Every customer an input names: in transactions or in the customers table."""
    return _input_codes(dataset)[0]


def _input_codes(dataset) -> tuple[pd.Index, np.ndarray, np.ndarray | None]:
    """``input_customers`` and each transaction's and customers row's position in it,
    hashing each table's ids once."""
    tx_codes, ids = _distinct_codes(dataset.transactions["customer_id"])
    customer_codes = None
    if dataset.customers is not None:
        row_codes, listed = _distinct_codes(dataset.customers["customer_id"])
        position = positions_in(ids, listed)
        new = position < 0  # listed customers without transactions come after the others
        position[new] = len(ids) + np.arange(new.sum())
        ids = np.concatenate([ids, listed[new]])
        customer_codes = remap(row_codes, position)
    return pd.Index(ids, name="customer_id"), tx_codes, customer_codes


def _distinct_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, ids): ``distinct_ids`` of a column and each row's position in it."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        ids = distinct_ids(values)
        return codes_in(pd.Index(ids), values), ids
    codes, ids = pd.factorize(text_ids(values))
    return codes, np.asarray(ids, dtype=object)


def distinct_ids(values: pd.Series) -> np.ndarray:
    """The distinct ids of a column as text; a categorical column's used categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        # the categories that occur, in category order (a count per category: no sort, no hash)
        used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)))
        return np.asarray(values.cat.categories.astype(str), dtype=object)[used]
    return np.asarray(pd.unique(text_ids(values)), dtype=object)


def scorable_features(dataset, as_of, config: FeatureConfig, reference: FeatureReference,
                      ) -> tuple[pd.DataFrame, NotScoredReasons]:
    """The feature table of the scorable customers of a ``retain.data.Dataset`` as of a
    date, and why every other input customer is not scored."""
    # each table's rows coded once against the input's ids, for the reasons and the features
    ids, tx_codes, customer_codes = _input_codes(dataset)
    reasons = _reasons(ids, tx_codes, dataset.transactions, as_of, dataset.churn_events)
    scorable = np.flatnonzero(reasons.codes.isna().to_numpy())
    if not len(scorable):
        return pd.DataFrame(columns=["customer_id", "as_of"]), reasons

    # the scorable customers numbered in id order (the table's order); the others' rows get -1
    scorable = scorable[text_order(ids.to_numpy()[scorable])]
    feature_code = np.full(len(ids), -1)
    feature_code[scorable] = np.arange(len(scorable))

    interactions = dataset.interactions
    columns = feature_columns(
        as_of, config, dataset.transactions, remap(tx_codes, feature_code), ids.to_numpy()[scorable],
        customers=dataset.customers,
        customer_codes=None if customer_codes is None else remap(customer_codes, feature_code),
        interactions=interactions,
        interaction_codes=None if interactions is None else remap(codes_in(ids, interactions["customer_id"]),
                                                                  feature_code),
    )
    features, _ = scored_frame(columns, config, reference)
    return features, reasons
