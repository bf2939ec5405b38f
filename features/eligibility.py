"""Who can be scored as of a date, and in words why not.

A customer is scored when they have a purchase strictly before ``as_of`` and no recorded
churn event before it. Everyone else is listed with a reason, so that every input customer
leaves a scoring job either scored or explained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.features.config import FeatureConfig
from retain.features.history import cutoff_day
from retain.features.pipeline import build_features
from retain.features.segments import FeatureReference

NO_TRANSACTIONS = "no transactions"


def not_scored_reasons(
    customer_ids,
    transactions: pd.DataFrame,
    as_of,
    churn_events: pd.DataFrame | None = None,
) -> pd.Series:
    """Per customer id (text), an empty string when scorable, else the reason: "churned on
    DATE (TYPE)", "only returns before DATE", "no purchase before DATE (first purchase DATE)"
    or "no transactions"."""
    stamp, cutoff = cutoff_day(as_of)
    day = stamp.date()
    ids = pd.Index(pd.Series(customer_ids, dtype=object).astype(str).unique(), name="customer_id")
    reasons = pd.Series("", index=ids, dtype=object)

    tx_ids = transactions["customer_id"].astype(str).to_numpy()
    when = transactions["timestamp"].to_numpy()
    before = when < cutoff
    purchase = transactions["amount"].to_numpy(dtype=float) >= 0
    bought_before = pd.Index(np.unique(tx_ids[before & purchase]))
    returned_before = pd.Index(np.unique(tx_ids[before & ~purchase]))
    first_purchase = (
        pd.Series(when[purchase], index=tx_ids[purchase]).groupby(level=0).min()
        if purchase.any() else pd.Series(dtype="datetime64[ns]")
    )

    unscorable = ~ids.isin(bought_before)
    for position in np.flatnonzero(unscorable):
        customer = ids[position]
        if customer in returned_before:
            reasons.iloc[position] = f"only returns before {day}"
        elif customer in first_purchase.index:
            reasons.iloc[position] = f"no purchase before {day} (first purchase {pd.Timestamp(first_purchase[customer]).date()})"
        else:
            reasons.iloc[position] = NO_TRANSACTIONS

    if churn_events is not None and len(churn_events):
        events = churn_events[churn_events["churn_date"].to_numpy() < cutoff]
        if len(events):
            events = events.assign(customer_id=events["customer_id"].astype(str)).sort_values("churn_date")
            events = events.drop_duplicates("customer_id", keep="first").set_index("customer_id")
            churned = events.index.intersection(ids)
            if len(churned):
                dates = pd.to_datetime(events.loc[churned, "churn_date"]).dt.date.astype(str)
                types = events.loc[churned, "churn_type"].astype(str)
                reasons.loc[churned] = ("churned on " + dates + " (" + types + ")").to_numpy()
    return reasons


def input_customers(dataset) -> pd.Index:
    """Every customer an input names: in transactions or in the customers table."""
    ids = [dataset.transactions["customer_id"].astype(str)]
    if dataset.customers is not None:
        ids.append(dataset.customers["customer_id"].astype(str))
    return pd.Index(pd.concat(ids, ignore_index=True).unique(), name="customer_id")


def scorable_features(dataset, as_of, config: FeatureConfig, reference: FeatureReference,
                      ) -> tuple[pd.DataFrame, pd.Series]:
    """The feature table of the scorable customers of a ``retain.data.Dataset`` as of a
    date, and the not-scored reason of every input customer ("" when scored)."""
    reasons = not_scored_reasons(input_customers(dataset), dataset.transactions, as_of, dataset.churn_events)
    keep = reasons.index[reasons.to_numpy() == ""]
    if not len(keep):
        return pd.DataFrame(columns=["customer_id", "as_of"]), reasons

    def only_kept(frame):
        return None if frame is None else frame[frame["customer_id"].astype(str).isin(keep)]

    features, _ = build_features(only_kept(dataset.transactions), as_of, customers=only_kept(dataset.customers),
                                 interactions=only_kept(dataset.interactions), config=config, reference=reference)
    return features, reasons
