"""RFM scores, codes and segments, ABC classes, and lifecycle stages.

Quintile edges and ABC cut points are relative to a population, so they are *fitted* once
(on the whole base, or the training base) into a ``FeatureReference`` and then applied to
any subset of customers unchanged: the same customer gets the same score whether scored
alone over HTTP, in a Spark partition, or in the whole base.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from retain.features.config import FeatureConfig, LifecycleRules

# R score (rows, 5..1) x F score (columns, 1..5) -> segment; the common RFM segment map.
SEGMENT_GRID = {
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose"),
}
LIFECYCLE_STAGES = ("acquisition", "growth", "maturity", "decline", "termination")
_SEGMENTS = np.array([SEGMENT_GRID[row] for row in (1, 2, 3, 4, 5)], dtype=object)


@dataclass
class FeatureReference:
    """Population cut points learned from a base of customers at one cutoff."""

    recency_edges: list[float]  # on days_since_last (fewer days = better)
    frequency_edges: list[float]  # on purchase_days
    monetary_edges: list[float]  # on total_spend
    abc_a_min_spend: float
    abc_b_min_spend: float
    fitted_on_customers: int

    @classmethod
    def fit(cls, features, config: FeatureConfig) -> "FeatureReference":
        """Cut points of ``features`` (a feature table, or a mapping of its columns)."""
        spend = np.sort(np.asarray(features["total_spend"]))[::-1]
        if len(spend) == 0:
            raise ValueError("cannot fit RFM cut points on an empty feature table")
        quantiles = np.arange(1, config.rfm_bins) / config.rfm_bins
        share = np.cumsum(spend) / max(spend.sum(), 1e-12)
        a_share, b_share = config.abc_shares
        a_last = min(int(np.searchsorted(share, a_share)), len(spend) - 1)
        b_last = min(int(np.searchsorted(share, b_share)), len(spend) - 1)
        return cls(
            recency_edges=np.quantile(np.asarray(features["days_since_last"]), quantiles).tolist(),
            frequency_edges=np.quantile(np.asarray(features["purchase_days"]), quantiles).tolist(),
            monetary_edges=np.quantile(np.asarray(features["total_spend"]), quantiles).tolist(),
            abc_a_min_spend=float(spend[a_last]),
            abc_b_min_spend=float(spend[b_last]),
            fitted_on_customers=len(spend),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "FeatureReference":
        return cls(**json.loads(Path(path).read_text()))

    # derived once per reference, not per call; not dataclass fields, so models pickled
    # before they existed load and compute them on first use
    @cached_property
    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.recency_edges), np.asarray(self.frequency_edges), np.asarray(self.monetary_edges)

    @cached_property
    def _rfm_codes(self) -> np.ndarray:
        """Every "RFM" code text, indexed [r - 1, f - 1, m - 1]."""
        r_scores, f_scores, m_scores = (range(1, len(edges) + 2) for edges in self._edges)
        return np.array([[[f"{r}{f}{m}" for m in m_scores] for f in f_scores] for r in r_scores], dtype=object)

    def apply(self, features: pd.DataFrame) -> pd.DataFrame:
        """rfm_r, rfm_f, rfm_m (1..bins, higher is better), rfm_code, rfm_segment, abc_class."""
        return pd.DataFrame(self.scores(features), index=features.index)

    def scores(self, features) -> dict[str, np.ndarray]:
        """``apply``'s columns as arrays, from a feature table or a mapping of its columns."""
        bins = len(self.frequency_edges) + 1
        recency_edges, frequency_edges, monetary_edges = self._edges
        spend = np.asarray(features["total_spend"])
        r = bins - np.searchsorted(recency_edges, np.asarray(features["days_since_last"]), side="left")
        f = 1 + np.searchsorted(frequency_edges, np.asarray(features["purchase_days"]), side="left")
        m = 1 + np.searchsorted(monetary_edges, spend, side="left")
        # the segment grid is defined on quintiles; other bin counts are mapped onto it
        r5 = np.ceil(r * 5 / bins).astype(int)
        f5 = np.ceil(f * 5 / bins).astype(int)
        return {
            "rfm_r": r,
            "rfm_f": f,
            "rfm_m": m,
            "rfm_code": self._rfm_codes[r - 1, f - 1, m - 1],
            "rfm_segment": _SEGMENTS[r5 - 1, f5 - 1],
            "abc_class": np.where(
                spend >= self.abc_a_min_spend, "A", np.where(spend >= self.abc_b_min_spend, "B", "C")
            ).astype(object),
        }


def lifecycle_stage(features, rules: LifecycleRules) -> np.ndarray:
    """The lifecycle stage of docs/features.md; the first rule that matches wins:

    1. termination: no purchase for longer than max(termination_min_days,
       termination_rhythm_multiple x the customer's mean gap); a one-day buyer: longer
       than termination_single_purchase_days.
    2. acquisition: first purchase at most acquisition_max_tenure_days ago, or at most
       acquisition_max_purchase_days purchase days so far.
    3. decline: overdue (days since last > decline_rhythm_multiple x mean gap), or the
       purchase or spend trend over the trend window at or below decline_trend.
    4. growth: purchase or spend trend at or above growth_trend.
    5. maturity: everyone else.

    ``features``: a feature table or a mapping of its columns.
    """
    w = rules.trend_window_days
    since = np.asarray(features["days_since_last"])
    gap = np.asarray(features["mean_gap_days"])
    has_gap = ~np.isnan(gap)
    gap0 = np.nan_to_num(gap)
    purchase_trend = np.asarray(features[f"purchase_trend_{w}d"])
    spend_trend = np.asarray(features[f"spend_trend_{w}d"])
    terminated = np.where(
        has_gap,
        since > np.maximum(rules.termination_min_days, rules.termination_rhythm_multiple * gap0),
        since > rules.termination_single_purchase_days,
    )
    acquiring = (np.asarray(features["tenure_days"]) <= rules.acquisition_max_tenure_days) | (
        np.asarray(features["purchase_days"]) <= rules.acquisition_max_purchase_days
    )
    declining = (
        (has_gap & (since > rules.decline_rhythm_multiple * gap0))
        | (purchase_trend <= rules.decline_trend)
        | (spend_trend <= rules.decline_trend)
    )
    growing = (purchase_trend >= rules.growth_trend) | (spend_trend >= rules.growth_trend)
    return np.select(
        [terminated, acquiring, declining, growing],
        ["termination", "acquisition", "decline", "growth"],
        default="maturity",
    ).astype(object)


def stage_given_p_alive(stage, p_alive, termination_p_alive: float) -> np.ndarray:
    """The lifecycle stage once a value model has judged whether the customer is alive: one
    source of truth for "alive" (docs/customer-story.md). "termination" exactly where
    P(alive) is below ``termination_p_alive``; a customer the rhythm rule of
    ``lifecycle_stage`` calls ended but the model still believes alive is "decline" (overdue
    for their rhythm, not gone). Where P(alive) is missing the rule's stage stands.
    ``stage`` itself comes back when no stage changes."""
    p_alive = np.asarray(p_alive, dtype=float)
    text = np.asarray(stage, dtype=object)
    known = ~np.isnan(p_alive)
    ended = known & (p_alive < termination_p_alive)
    overdue = known & ~ended & (text == "termination")
    if not (ended & (text != "termination")).any() and not overdue.any():
        return stage
    return np.where(ended, "termination", np.where(overdue, "decline", text)).astype(object)
