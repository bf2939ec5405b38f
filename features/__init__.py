"""Point-in-time customer features: RFM, scores and segments, lifecycle, rhythm, trends.

No feature sees a row at or after its cutoff; any subset of customers gives the same rows
as the whole base when scored with the base's ``FeatureReference``.
"""

from retain.features.config import FeatureConfig, LifecycleRules
from retain.features.pipeline import build_features, calibration_holdout, customer_features, rfm_summary
from retain.features.segments import LIFECYCLE_STAGES, FeatureReference

__all__ = [
    "FeatureConfig",
    "FeatureReference",
    "LIFECYCLE_STAGES",
    "LifecycleRules",
    "build_features",
    "calibration_holdout",
    "customer_features",
    "rfm_summary",
]
