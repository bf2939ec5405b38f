"""The one feature implementation that training, batch (local and Spark) and HTTP call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.data.frames import frame_of
from retain.features.config import FeatureConfig
from retain.features.history import behaviour, cutoff_day, purchase_log, rfm
from retain.features.segments import FeatureReference, lifecycle_stage
from retain.features.interactions import attributes, interaction_features
from retain.features.tables import codes_in, remap, sorted_codes

# The leading columns of every feature table, in this order.
KEY_COLUMNS = ["customer_id", "as_of"]
RFM_COLUMNS = ["frequency", "recency", "T", "monetary"]
SEGMENT_COLUMNS = ["rfm_r", "rfm_f", "rfm_m", "rfm_code", "rfm_segment", "abc_class", "lifecycle_stage"]


def rfm_summary(transactions: pd.DataFrame, as_of, config: FeatureConfig | None = None) -> pd.DataFrame:
    """frequency, recency, T, monetary per customer (index customer_id), lifetimes' way."""
    config = config or FeatureConfig()
    log = purchase_log(transactions, as_of)
    table = pd.DataFrame(rfm(log, config))
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
    return frame_of(_coded_feature_columns(transactions, as_of, customers, interactions, config))


def _coded_feature_columns(transactions, as_of, customers, interactions, config) -> dict[str, np.ndarray]:
    """``feature_columns`` with each table's rows coded against the transactions' ids."""
    codes, ids = sorted_codes(transactions["customer_id"])
    index = pd.Index(ids)
    return feature_columns(
        as_of, config, transactions, codes, ids,
        customers=customers, customer_codes=None if customers is None else codes_in(index, customers["customer_id"]),
        interactions=interactions,
        interaction_codes=None if interactions is None else codes_in(index, interactions["customer_id"]),
    )


def feature_columns(
    as_of,
    config: FeatureConfig,
    transactions: pd.DataFrame,
    transaction_codes: np.ndarray,
    ids: np.ndarray,
    *,
    customers: pd.DataFrame | None = None,
    customer_codes: np.ndarray | None = None,
    interactions: pd.DataFrame | None = None,
    interaction_codes: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``customer_features``' columns, in its order, for tables whose rows are already
    coded (position in ``ids``, text sorted ascending; -1 leaves a row out): one row per
    customer of ``ids`` with a purchase before the cutoff, in the order of ``ids``."""
    stamp, _ = cutoff_day(as_of)
    log = purchase_log(transactions, stamp, transaction_codes, ids)
    columns = {
        "customer_id": log.customer_ids,
        "as_of": np.full(log.n, stamp.to_datetime64().astype("datetime64[ns]")),
    }
    columns.update(rfm(log, config))
    columns.update(behaviour(log, config))
    if interactions is not None:
        columns.update(interaction_features(log.customer_ids, interactions, stamp, config, -columns["days_since_last"],
                                            codes=remap(interaction_codes, log.customer_of_code)))
    if customers is not None:
        columns.update(attributes(log.customer_ids, customers, stamp, codes=remap(customer_codes, log.customer_of_code)))
    for kind in config.service_kinds:
        # > 0: the last complaint (ticket) came after the last purchase, as when service drives a customer away
        if f"days_since_last_{kind}" in columns:
            columns[f"last_{kind}_after_last_purchase_days"] = columns["days_since_last"] - columns[f"days_since_last_{kind}"]
    columns["lifecycle_stage"] = lifecycle_stage(columns, config.lifecycle)
    return columns


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
    columns = _coded_feature_columns(transactions, as_of, customers, interactions, config)
    return scored_frame(columns, config, reference)


def scored_frame(columns: dict[str, np.ndarray], config: FeatureConfig, reference: FeatureReference | None,
                 ) -> tuple[pd.DataFrame, FeatureReference]:
    """``build_features``' table from ``feature_columns``' columns: the population scores
    added and the leading columns first."""
    if reference is None:
        reference = FeatureReference.fit(columns, config)
    columns.update(reference.scores(columns))
    leading = KEY_COLUMNS + RFM_COLUMNS + SEGMENT_COLUMNS
    ordered = {name: columns[name] for name in leading}
    ordered.update((name, values) for name, values in columns.items() if name not in ordered)
    return frame_of(ordered), reference


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
