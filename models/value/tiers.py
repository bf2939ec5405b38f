"""Value tiers from docs/domain.md: the customer pyramid and the value matrix.

Cut points are fitted on the training base and stored with the model, so a customer's
tier does not depend on who else is in the scoring batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PYRAMID = ("platinum", "gold", "iron", "lead")

# Value matrix (docs/domain.md): (high current value, high future value) -> quadrant. The values
# name their axes, "now" = value so far and "later" = CLV, each against the training base's
# median, so they never read as a second pyramid tier: a customer can be tier "lead" (the
# bottom 80% by CLV) and "high now / high later" (above the median on both).
QUADRANTS = {
    (False, False): "low now / low later",
    (False, True): "low now / high later",
    (True, False): "high now / low later",
    (True, True): "high now / high later",
}
# The quadrants in the order of ``TierEdges.quadrant_index``: (high now, high later) as two bits.
QUADRANT_ORDER = tuple(QUADRANTS[(bool(i & 2), bool(i & 1))] for i in range(4))
# The names the value matrix gives the quadrants in docs/domain.md, for reading docs side by side.
QUADRANT_MATRIX_NAMES = {
    "low now / low later": "lead", "low now / high later": "iron",
    "high now / low later": "platinum", "high now / high later": "gold",
}


@dataclass(frozen=True)
class TierConfig:
    """``pyramid_shares``: top share of customers by CLV in platinum, then gold, then iron;
    the rest are lead. ``high_value_quantile``: above this quantile of the training base a
    current or future value counts as high in the value matrix."""

    pyramid_shares: tuple[float, float, float] = (0.01, 0.04, 0.15)
    high_value_quantile: float = 0.5

    def __post_init__(self):
        if any(s <= 0 for s in self.pyramid_shares) or sum(self.pyramid_shares) >= 1:
            raise ValueError(f"pyramid shares must be positive and sum below 1, not {self.pyramid_shares}")
        if not 0 < self.high_value_quantile < 1:
            raise ValueError("high_value_quantile must be between 0 and 1")


@dataclass
class TierEdges:
    """CLV thresholds for platinum, gold and iron, and the high/low splits of current and
    future value, all taken from the training base."""

    pyramid: tuple[float, float, float]
    high_current: float
    high_future: float

    @classmethod
    def from_values(cls, clv: np.ndarray, current_value: np.ndarray, config: TierConfig) -> "TierEdges":
        """The edges at ``config``'s quantiles of the training base's CLV and current value
        (a value object, not an estimator: no ``fit``)."""
        cumulative = np.cumsum(config.pyramid_shares)
        pyramid = tuple(float(np.quantile(clv, 1 - share)) for share in cumulative)
        return cls(
            pyramid=pyramid,
            high_current=float(np.quantile(current_value, config.high_value_quantile)),
            high_future=float(np.quantile(clv, config.high_value_quantile)),
        )

    def pyramid_index(self, clv: np.ndarray) -> np.ndarray:
        """Each customer's tier as its position in ``PYRAMID`` (3, lead, where CLV is missing)."""
        platinum, gold, iron = self.pyramid
        clv = np.asarray(clv)
        return np.select([clv >= platinum, clv >= gold, clv >= iron], [0, 1, 2], default=3)

    def pyramid_tier(self, clv: np.ndarray) -> np.ndarray:
        return np.array(PYRAMID, dtype=object)[self.pyramid_index(clv)]

    def quadrant_index(self, current_value: np.ndarray, clv: np.ndarray) -> np.ndarray:
        """Each customer's quadrant as its position in ``QUADRANT_ORDER``."""
        high_now = np.asarray(current_value) > self.high_current
        high_later = np.asarray(clv) > self.high_future
        return high_now.astype(np.intp) * 2 + high_later

    def value_quadrant(self, current_value: np.ndarray, clv: np.ndarray) -> np.ndarray:
        return np.array(QUADRANT_ORDER, dtype=object)[self.quadrant_index(current_value, clv)]
