"""How well predictive intervals hold what customers actually did: the measures every
family's ``interval_coverage`` reports."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ContinuousSpendOutcomes(Protocol):
    """An outcome distribution whose spend is continuous given a purchase, with an atom at 0."""

    @property
    def quiet(self) -> np.ndarray: ...  # P(no purchase) = P(spend = 0), per customer

    def count_quantile(self, level: float) -> np.ndarray: ...

    def count_cdf(self, n: np.ndarray) -> np.ndarray: ...

    def spend_quantile(self, level: float) -> np.ndarray: ...

    def spend_cdf(self, spend: np.ndarray) -> np.ndarray: ...


def coverage(outcomes: ContinuousSpendOutcomes, actual_purchases, actual_spend, level: float) -> dict[str, float]:
    """The coverage figures of a distribution with continuous spend (the probabilistic
    families' and the learned model's alike).

    ``*_interval_coverage``: the randomized PIT coverage ([CGH2009]):
    an outcome with an atom of probability (a count, or zero spend) counts for the share
    of its probability that falls inside the central band; it equals ``level`` when the
    model is calibrated. ``*_interval_share_inside``: the plain share of customers whose
    outcome lies within [low, high], which is at least ``level`` for whole-number counts
    (a customer whose most likely outcome is 0 with 90% gets the interval [0, 0])."""
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    purchases = np.asarray(actual_purchases, dtype=float)
    spend = np.asarray(actual_spend, dtype=float)
    count_covered = band_share(outcomes.count_cdf(purchases - 1), outcomes.count_cdf(purchases), low_q, high_q)
    spend_below = np.where(spend > 0, outcomes.spend_cdf(spend), 0.0)
    spend_upto = np.where(spend > 0, spend_below, outcomes.quiet)
    spend_covered = band_share(spend_below, spend_upto, low_q, high_q)
    count_low, count_high = outcomes.count_quantile(low_q), outcomes.count_quantile(high_q)
    spend_low, spend_high = outcomes.spend_quantile(low_q), outcomes.spend_quantile(high_q)
    return {
        "purchases_interval_coverage": float(count_covered.mean()),
        "spend_interval_coverage": float(spend_covered.mean()),
        "purchases_interval_share_inside": float(((purchases >= count_low) & (purchases <= count_high)).mean()),
        "spend_interval_share_inside": float(((spend >= spend_low - 1e-9) & (spend <= spend_high + 1e-9)).mean()),
        "purchases_interval_mean_width": float((count_high - count_low).mean()),
    }


def band_share(below: np.ndarray, upto: np.ndarray, low: float, high: float) -> np.ndarray:
    """Share of the PIT interval [below, upto] inside [low, high]; a point PIT counts 1 or 0."""
    width = upto - below
    overlap = np.clip(np.minimum(upto, high) - np.maximum(below, low), 0.0, None)
    point = (below >= low) & (below <= high)
    return np.where(width > 1e-12, overlap / np.maximum(width, 1e-300), point.astype(float))


def pit_histogram(outcomes, actual_purchases, bins: int = 10) -> np.ndarray:
    """The (non-randomized) PIT histogram of purchase counts ([CGH2009]): each customer's PIT
    is spread evenly over [F(y-1), F(y)], the share of it in each of ``bins`` equal bins of
    [0, 1] is averaged over customers. Flat at 1/bins when the predictive distributions are
    calibrated; a U shape means too narrow, a hump too wide, a slope biased. ``outcomes``: any
    family's ``OutcomeDistribution`` (it needs ``count_cdf`` only)."""
    purchases = np.asarray(actual_purchases, dtype=float)
    below, upto = outcomes.count_cdf(purchases - 1), outcomes.count_cdf(purchases)
    edges = np.linspace(0.0, 1.0, bins + 1)
    shares = np.array([band_share(below, upto, low, high).mean() for low, high in zip(edges[:-1], edges[1:])])
    return shares / max(shares.sum(), 1e-300)  # a point PIT on an inner edge counts in both bins
