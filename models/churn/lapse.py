"""Churn without recorded churn: the lapse as the churn event (docs/churn-model.md, "Churn
without churn events").

Most shops never record a churn event; a customer simply stops buying. For them a customer
churns within the horizon when they make no purchase in it ([WW2008]'s hiatus view, learned
instead of fixed). ``lapse_labels`` labels customers at a cutoff from the purchases observed
after it; ``default_horizon`` reads the horizon from the data; ``LapseChurnModel`` is the
churn classifier of two classes (retained, lapsed) whose ``p_churn`` is P(no purchase within
the horizon), with ``churn_type`` an inferred reason (reasons.py), never a learned one.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pandas as pd

from retain.models.actions import CHURN_ACTIONS, GENERIC_ACTION
from retain.models.churn.config import RETAINED, ChurnConfig
from retain.models.churn.model import ChurnTypeModel
from retain.models.churn.reasons import INFERRED_MARK, UNKNOWN, infer_reasons

LAPSED = "lapsed"
# the horizon read from the data: this share of repeat buyers' usual gaps fits inside it
USUAL_GAP_SHARE = 0.8
HORIZON_STEP_DAYS = 30     # rounded up to whole months
HORIZON_BOUNDS_DAYS = (30, 365)


# The classifier settings of the lapse where the churn settings keep the labelled model's
# defaults: two classes of similar size need no class weights; shallower, slower-learning
# trees and isotonic calibration carry better to later, older customers (measured on CDNOW,
# docs/churn-model.md)
LAPSE_SETTINGS = {"class_weight_power": 0.0, "min_child_samples": 100, "calibration": "isotonic",
                  # the validation loss creeps down for hundreds of rounds by a thousandth: stop sooner
                  "early_stopping_rounds": 20, "early_stopping_min_delta": 0.001, "max_rounds": 300}
# two classes of similar size need far fewer rows than six of very different sizes: larger
# sets are sampled down to these (rows per set) to keep 1M customers within the time budget
LAPSE_MAX_ROWS = {"train": 250_000, "valid": 60_000, "calibration": 60_000, "test": 100_000}


def lapse_config(config: ChurnConfig) -> ChurnConfig:
    """``config`` with each of ``LAPSE_SETTINGS`` applied where it still holds the default."""
    defaults = {f.name: f.default for f in fields(ChurnConfig)}
    return replace(config, **{name: value for name, value in LAPSE_SETTINGS.items()
                              if getattr(config, name) == defaults[name]})


def purchases(transactions: pd.DataFrame) -> pd.DataFrame:
    """The purchase rows (returns, negative amounts, are no purchase)."""
    return transactions[transactions["amount"].to_numpy() >= 0]


def lapse_labels(transactions: pd.DataFrame, customer_ids: pd.Series, cutoff: pd.Timestamp,
                 horizon_days: float) -> pd.Series:
    """Per customer: ``lapsed`` when they make no purchase in [cutoff, cutoff + horizon),
    ``retained`` otherwise. Only purchases inside that window are read."""
    bought = purchases(transactions)
    when = bought["timestamp"].to_numpy()
    inside = (when >= np.datetime64(cutoff)) & (when < np.datetime64(cutoff + pd.Timedelta(days=horizon_days)))
    active = pd.Index(bought["customer_id"].to_numpy()[inside]).astype(str).unique()
    came_back = customer_ids.astype(str).isin(active).to_numpy()
    return pd.Series(np.where(came_back, RETAINED, LAPSED), index=customer_ids.index, dtype=object)


def default_horizon(transactions: pd.DataFrame, as_of: pd.Timestamp) -> tuple[float, str]:
    """The horizon in days and the reason in words: long enough that most active customers'
    usual gap fits inside it. A repeat buyer's usual gap is the median of the gaps between
    their purchase days before ``as_of``; the horizon is the ``USUAL_GAP_SHARE`` quantile
    of those, rounded up to whole months, within ``HORIZON_BOUNDS_DAYS``."""
    bought = purchases(transactions)
    before = bought[bought["timestamp"].to_numpy() < np.datetime64(as_of)]
    # one integer key per (customer, purchase day), sorted: each customer's days in order
    customer, _ = pd.factorize(before["customer_id"])
    day = before["timestamp"].to_numpy().astype("datetime64[D]").astype(np.int64)
    day = day - (day.min() if len(day) else 0)
    span = int(day.max()) + 1 if len(day) else 1
    keys = np.sort(customer.astype(np.int64) * span + day)  # sorted then deduplicated (np.unique hashes: slower)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    who, when = keys // span, keys % span
    same = who[1:] == who[:-1]
    gaps = pd.Series(np.diff(when)[same], index=who[1:][same])
    low, high = HORIZON_BOUNDS_DAYS
    if gaps.empty:
        return float(high), (f"no customer bought on two days before {as_of.date()}, so no usual gap to read: "
                             f"the longest default, {high} days")
    usual = gaps.groupby(level=0).median()
    quantile = float(np.quantile(usual.to_numpy(), USUAL_GAP_SHARE))
    horizon = min(max(math.ceil(quantile / HORIZON_STEP_DAYS) * HORIZON_STEP_DAYS, low), high)
    return float(horizon), (
        f"{USUAL_GAP_SHARE:.0%} of the {len(usual):,} repeat buyers before {as_of.date()} usually buy again "
        f"within {quantile:.0f} days (median gap between their purchase days); rounded up to whole months"
        + (f" and kept within {low}-{high} days" if horizon != math.ceil(quantile / HORIZON_STEP_DAYS)
           * HORIZON_STEP_DAYS else ""))


class LapseChurnModel(ChurnTypeModel):
    """The churn classifier of the lapse: classes ``retained`` and ``lapsed``; ``p_churn`` is
    the calibrated P(no purchase within the horizon), ``will_churn`` the one threshold on it
    (decision.py). For flagged customers, ``churn_type`` is the reason inferred from their
    history, marked "(inferred)", and ``top_drivers`` the features that moved their
    p_churn, then the evidence of the reason. No ``p_type_<label>`` columns: no type was
    learned. ``definition_``: which churn definition it learned and why."""

    definition_ = "the lapse: no purchase within the horizon"

    @property
    def churn_labels(self) -> list[str]:
        return []  # scores carry no p_type_<label> columns: the reason is inferred, not learned

    def _reasons(self, features: pd.DataFrame, matrix: np.ndarray, leaves: np.ndarray, probabilities: np.ndarray,
                 decided: np.ndarray, will_churn: np.ndarray) -> dict[str, np.ndarray]:
        at_risk = np.flatnonzero(will_churn)
        churn_type = np.full(len(decided), None, dtype=object)
        drivers = np.full(len(decided), "", dtype=object)
        action = np.full(len(decided), self.low_risk_action, dtype=object)
        if len(at_risk):
            rows = features.iloc[at_risk] if len(at_risk) < len(features) else features
            reasons, evidence = infer_reasons(rows.reset_index(drop=True))
            lapse = np.ones(len(at_risk), dtype=np.intp)  # the lapsed class
            moved = self._drivers(matrix[at_risk], leaves[at_risk], lapse)
            churn_type[at_risk] = np.char.add(reasons.astype(str), INFERRED_MARK).astype(object)
            why = np.where(reasons == UNKNOWN,
                           "reason unknown: no sign of service, price, competition or need in their history",
                           np.char.add("reason inferred from their history: ", evidence.astype(str)))
            drivers[at_risk] = np.where(moved != "", np.char.add(np.char.add(moved.astype(str), " | "), why), why)
            action[at_risk] = [CHURN_ACTIONS.get(reason, GENERIC_ACTION) for reason in reasons]
        return {"churn_type": churn_type, "top_drivers": drivers, "recommended_action": action}
