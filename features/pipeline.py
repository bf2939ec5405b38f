"""The one feature implementation that training, batch (local and Spark) and HTTP call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.features.config import FeatureConfig
from retain.features.history import behaviour, cutoff_day, purchase_log, rfm
from retain.features.segments import FeatureReference, lifecycle_stage
from retain.features.interactions import attributes, interaction_features

# The leading columns of every feature table, in this order.
KEY_COLUMNS = ["customer_id", "as_of"]
RFM_COLUMNS = ["frequency", "recency", "T", "monetary"]
SEGMENT_COLUMNS = ["rfm_r", "rfm_f", "rfm_m", "rfm_code", "rfm_segment", "abc_class", "lifecycle_stage"]


def rfm_summary(transactions: pd.DataFrame, as_of, config: FeatureConfig | None = None) -> pd.DataFrame:
    """frequency, recency, T, monetary per customer (index customer_id), lifetimes' way."""
    config = config or FeatureConfig()
    log = purchase_log(transactions, as_of)
    table = rfm(log, config)
    table.index = pd.Index(log.customer_ids, name="customer_id")
    return table


def customer_features(
    transactions: pd.DataFrame,
    as_of,
    *,
    customers: pd.DataFrame | None = None,
    interactions: pd.DataFrame | None = None,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """Per-customer features from rows strictly before ``as_of``, without population scores.

    One row per customer with at least one purchase before the cutoff, sorted by
    customer_id. Each row depends only on that customer's own rows.
    """
    config = config or FeatureConfig()
    stamp, _ = cutoff_day(as_of)
    log = purchase_log(transactions, stamp)
    parts = [rfm(log, config), behaviour(log, config)]
    if interactions is not None:
        last_purchase_day = -parts[1]["days_since_last"].to_numpy()
        parts.append(interaction_features(log.customer_ids, interactions, stamp, config, last_purchase_day))
    if customers is not None:
        parts.append(attributes(log.customer_ids, customers, stamp))
    table = pd.concat(parts, axis=1)
    for kind in config.service_kinds:
        # > 0: the last complaint (ticket) came after the last purchase, as when service drives a customer away
        if f"days_since_last_{kind}" in table:
            table[f"last_{kind}_after_last_purchase_days"] = table["days_since_last"] - table[f"days_since_last_{kind}"]
    table.insert(0, "customer_id", log.customer_ids.astype(str))
    table.insert(1, "as_of", pd.Series(stamp, index=table.index, dtype="datetime64[ns]"))
    table["lifecycle_stage"] = lifecycle_stage(table, config.lifecycle)
    return table.sort_values("customer_id", kind="stable").reset_index(drop=True)


def build_features(
    transactions: pd.DataFrame,
    as_of,
    *,
    customers: pd.DataFrame | None = None,
    interactions: pd.DataFrame | None = None,
    config: FeatureConfig | None = None,
    reference: FeatureReference | None = None,
) -> tuple[pd.DataFrame, FeatureReference]:
    """The full feature table and the reference its population scores came from.

    Without ``reference`` the cut points are fitted on these customers; pass the base's
    reference when scoring a subset so that its rows equal the whole-base run.
    """
    config = config or FeatureConfig()
    table = customer_features(
        transactions, as_of, customers=customers, interactions=interactions, config=config
    )
    if reference is None:
        reference = FeatureReference.fit(table, config)
    scores = reference.apply(table)
    table = pd.concat([table, scores], axis=1)
    leading = KEY_COLUMNS + RFM_COLUMNS + SEGMENT_COLUMNS
    return table[leading + [c for c in table.columns if c not in leading]], reference


def calibration_holdout(
    transactions: pd.DataFrame,
    calibration_end,
    holdout_end,
    *,
    customers: pd.DataFrame | None = None,
    interactions: pd.DataFrame | None = None,
    config: FeatureConfig | None = None,
    reference: FeatureReference | None = None,
) -> tuple[pd.DataFrame, FeatureReference]:
    """Features before ``calibration_end`` plus what each of those customers actually did in
    [calibration_end, holdout_end): ``holdout_purchases`` (distinct purchase days, as
    lifetimes' frequency_holdout), ``holdout_spend`` (sum), ``holdout_monetary`` (mean spend per
    purchase day, like the calibration ``monetary``; lifetimes' monetary_value_holdout averages
    rows instead) and ``holdout_duration`` (in the time unit). New customers of the holdout
    period are not included: they have no calibration history.
    """
    config = config or FeatureConfig()
    cal, cal_day = cutoff_day(calibration_end)
    end, end_day = cutoff_day(holdout_end)
    if end <= cal:
        raise ValueError(f"holdout end {end.date()} must be after calibration end {cal.date()}")
    table, reference = build_features(
        transactions, cal, customers=customers, interactions=interactions, config=config, reference=reference
    )
    when = transactions["timestamp"].to_numpy()
    window = transactions.loc[(when >= cal_day) & (when < end_day) & (transactions["amount"].to_numpy() >= 0)]
    per_day = (
        pd.DataFrame(
            {
                "customer_id": np.asarray(window["customer_id"], dtype=object).astype(str),
                "day": window["timestamp"].to_numpy().astype("datetime64[D]"),
                "amount": window["amount"].to_numpy(),
            }
        )
        .groupby(["customer_id", "day"], sort=False)["amount"]
        .sum()
        .groupby(level="customer_id")
        .agg(["count", "sum"])
    )
    per_day = per_day.reindex(table["customer_id"]).fillna(0.0)
    table["holdout_purchases"] = per_day["count"].to_numpy()
    table["holdout_spend"] = per_day["sum"].to_numpy()
    table["holdout_monetary"] = np.divide(
        table["holdout_spend"], table["holdout_purchases"],
        out=np.zeros(len(table)), where=table["holdout_purchases"].to_numpy() > 0,
    )
    table["holdout_duration"] = ((end_day - cal_day) / np.timedelta64(1, "D")) / config.time_unit_days
    return table, reference
