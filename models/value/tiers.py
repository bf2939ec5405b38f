"""Value tiers from docs/domain.md: the customer pyramid and the value matrix.

Cut points are fitted on the training base and stored with the model, so a customer's
tier does not depend on who else is in the scoring batch.

The two agree by construction (docs/customer-story.md): the matrix's future axis is the
pyramid's own cut, "high later" = in the pyramid's top three tiers, so a customer the
matrix says to invest in or develop is never a lead customer whose move is to avoid cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PYRAMID = ("platinum", "gold", "iron", "lead")

# Value matrix (docs/domain.md): (high current value, high future value) -> quadrant. The values
# name their axes, "now" = value so far and "later" = CLV, so they never read as a pyramid tier.
QUADRANTS = {
    (False, False): "low now / low later",
    (False, True): "low now / high later",
    (True, False): "high now / low later",
    (True, True): "high now / high later",
}
# The quadrants in the order of ``TierEdges.quadrant_index``: (high now, high later) as two bits.
QUADRANT_ORDER = tuple(QUADRANTS[(bool(i & 2), bool(i & 1))] for i in range(4))
# The matrix's own short names for its quadrants (docs/domain.md): never a pyramid metal,
# which names a different group of customers.
QUADRANT_MATRIX_NAMES = {
    "low now / low later": "low value", "low now / high later": "rising",
    "high now / low later": "fading", "high now / high later": "stars",
}


@dataclass(frozen=True)
class TierConfig:
    """``pyramid_shares``: top share of customers by CLV in platinum, then gold, then iron;
    the rest are lead.

    The value matrix's cuts are business cuts, not the median:
    - high later: CLV in the pyramid's top three tiers (top ``sum(pyramid_shares)``, 20% by
      default, of the training base by CLV), so the matrix and the pyramid never disagree;
    - high now: among the customers who together hold ``high_current_share`` (80% by default,
      the A class of an ABC analysis) of the training base's value so far.

    ``high_value_quantile`` is no longer read (kept so that models pickled with it load)."""

    pyramid_shares: tuple[float, float, float] = (0.01, 0.04, 0.15)
    high_current_share: float = 0.8
    high_value_quantile: float = 0.5

    def __post_init__(self):
        if any(s <= 0 for s in self.pyramid_shares) or sum(self.pyramid_shares) >= 1:
            raise ValueError(f"pyramid shares must be positive and sum below 1, not {self.pyramid_shares}")
        if not 0 < self.high_current_share <= 1:
            raise ValueError(f"high_current_share must be in (0, 1], not {self.high_current_share}")


def value_share_edge(values: np.ndarray, share: float) -> float:
    """The smallest value among the top customers who together hold ``share`` of the total
    (values below 0 count as 0); +inf when the total is 0 (nobody is high)."""
    ordered = np.sort(np.nan_to_num(np.maximum(np.asarray(values, dtype=float), 0.0)))[::-1]
    total = ordered.sum()
    if not len(ordered) or total <= 0:
        return float("inf")
    last = min(int(np.searchsorted(np.cumsum(ordered) / total, share - 1e-12)), len(ordered) - 1)
    return float(max(ordered[last], np.nextafter(0.0, 1.0)))


@dataclass
class TierEdges:
    """CLV thresholds for platinum, gold and iron, and the high/low splits of current and
    future value, all taken from the training base. A customer is high at or above a split."""

    pyramid: tuple[float, float, float]
    high_current: float
    high_future: float

    @classmethod
    def from_values(cls, clv: np.ndarray, current_value: np.ndarray, config: TierConfig) -> "TierEdges":
        """The edges at ``config``'s shares of the training base's CLV and current value
        (a value object, not an estimator: no ``fit``)."""
        cumulative = np.cumsum(config.pyramid_shares)
        pyramid = tuple(float(np.quantile(clv, 1 - share)) for share in cumulative)
        return cls(
            pyramid=pyramid,
            high_current=value_share_edge(current_value, config.high_current_share),
            high_future=pyramid[2],
        )

    def pyramid_index(self, clv: np.ndarray) -> np.ndarray:
        """Each customer's tier as its position in ``PYRAMID`` (3, lead, where CLV is missing)."""
        platinum, gold, iron = self.pyramid
        clv = np.asarray(clv)
        return np.select([clv >= platinum, clv >= gold, clv >= iron], [0, 1, 2], default=3)

    def pyramid_tier(self, clv: np.ndarray) -> np.ndarray:
        return np.array(PYRAMID, dtype=object)[self.pyramid_index(clv)]

    def quadrant_index(self, current_value: np.ndarray, clv: np.ndarray) -> np.ndarray:
        """Each customer's quadrant as its position in ``QUADRANT_ORDER``. "High later" is
        the pyramid's top three tiers (``pyramid_index`` < 3), whatever edges an older model
        stored as ``high_future``."""
        current_value = np.asarray(current_value, dtype=float)
        high_now = (current_value >= self.high_current) & (current_value > 0)
        high_later = self.pyramid_index(clv) < 3
        return high_now.astype(np.intp) * 2 + high_later

    def value_quadrant(self, current_value: np.ndarray, clv: np.ndarray) -> np.ndarray:
        return np.array(QUADRANT_ORDER, dtype=object)[self.quadrant_index(current_value, clv)]
