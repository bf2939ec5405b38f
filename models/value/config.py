"""The value settings every family reads: horizon, margin, discounting, interval level, tiers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retain.models.value.tiers import TierConfig


@dataclass(frozen=True)
class ValueConfig:
    """Horizon, margin and discounting of CLV; interval and tier settings.

    Cash flows are discounted at the end of each ``discount_step_days`` step at the annual
    ``annual_discount_rate``, as lifetimes discounts monthly. ``current_value_column`` is the
    feature that measures a customer's value today in the value matrix. ``interval`` is the
    level of the per-customer predictive intervals (``clv_low``/``clv_high``,
    ``expected_purchases_low``/``_high``): the central 80% of what the customer will buy
    and spend over the horizon, by default, widened to hold the expected value.
    ``termination_p_alive``: below this P(alive) the lifecycle stage is "termination", and
    only there (docs/customer-story.md).
    """

    horizon_days: float = 365.0
    margin: float = 1.0
    annual_discount_rate: float = 0.10
    discount_step_days: float = 30.0
    interval: float = 0.80
    current_value_column: str = "spend_180d"
    tiers: TierConfig = field(default_factory=TierConfig)
    penalizer: float = 0.0
    min_repeat_buyers: int = 30
    termination_p_alive: float = 0.3

    def money_terms(self) -> dict[str, float]:
        """The settings that turn purchases into CLV, as a family's ``describe`` reports them."""
        return {"horizon_days": self.horizon_days, "margin": self.margin,
                "annual_discount_rate": self.annual_discount_rate}

    def __post_init__(self):
        if self.horizon_days <= 0 or self.discount_step_days <= 0:
            raise ValueError("horizon_days and discount_step_days must be positive")
        if not 0 < self.interval < 1:
            raise ValueError("interval must be between 0 and 1, e.g. 0.8")
        if not 0 < self.termination_p_alive < 1:
            raise ValueError("termination_p_alive must be between 0 and 1, e.g. 0.3")
        if self.annual_discount_rate <= -1:
            raise ValueError("annual_discount_rate must be above -1")


def discount_schedule(config: ValueConfig) -> tuple[np.ndarray, np.ndarray]:
    """Step ends in days (the last one is the horizon) and the discount factor at each
    (read-only arrays, computed once per setting: every scoring call reads them)."""
    key = (config.horizon_days, config.discount_step_days, config.annual_discount_rate)
    if key not in _SCHEDULES:
        ends = np.arange(config.discount_step_days, config.horizon_days, config.discount_step_days)
        ends = np.append(ends, config.horizon_days)
        factors = (1.0 + config.annual_discount_rate) ** (-ends / 365.0)
        for array in (ends, factors):
            array.setflags(write=False)
        _SCHEDULES[key] = ends, factors
    return _SCHEDULES[key]


_SCHEDULES: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}
