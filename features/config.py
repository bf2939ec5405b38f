"""Settings of the feature pipeline; every threshold named in docs/features.md lives here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LifecycleRules:
    """Lifecycle stage thresholds; the rule itself is in segments.py (lifecycle_stage) and docs/features.md."""

    acquisition_max_tenure_days: int = 90
    acquisition_max_purchase_days: int = 2
    termination_rhythm_multiple: float = 4.0
    termination_min_days: int = 180
    termination_single_purchase_days: int = 365
    decline_rhythm_multiple: float = 1.5
    trend_window_days: int = 90  # must be one of FeatureConfig.windows
    decline_trend: float = -1 / 3  # (recent - before) / (recent + before); -1/3 = halved
    growth_trend: float = 0.2


@dataclass(frozen=True)
class FeatureConfig:
    # recency and T are in this many days (1 = days, 7 = weeks), like lifetimes' freq_multiplier
    time_unit_days: float = 1.0
    windows: tuple[int, ...] = (30, 90, 180)
    service_windows: tuple[int, ...] = (90, 365)
    service_kinds: tuple[str, ...] = ("complaint", "ticket")
    near_last_purchase_days: int = 30  # complaints within this many days of the last purchase
    recent_orders: int = 4  # category mix, discounts and order value of the last N orders against the ones before
    sequence_days: int = 6  # direction of order values and gaps over the last N purchase days
    rfm_bins: int = 5
    abc_shares: tuple[float, float] = (0.8, 0.95)  # A = top 80% of revenue, B = next 15%
    lifecycle: LifecycleRules = field(default_factory=LifecycleRules)

    def __post_init__(self):
        if self.lifecycle.trend_window_days not in self.windows:
            raise ValueError("lifecycle.trend_window_days must be one of windows")
        if self.time_unit_days <= 0:
            raise ValueError("time_unit_days must be positive")
