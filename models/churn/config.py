"""The churn-type classifier's settings, and the label of customers who stay."""

from __future__ import annotations

from dataclasses import dataclass

RETAINED = "retained"


@dataclass(frozen=True)
class ChurnConfig:
    """Classifier settings. ``n_jobs`` is 1 by default: on shared 2-core machines more
    threads can stall LightGBM (docs/benchmarks.md). ``class_weight_power`` 0.5 weights each
    class by sqrt(largest class / its size). A churn type with fewer than
    ``min_class_examples`` training customers is merged into ``other``. ``calibration``:
    ``sigmoid`` (retain's own, calibration.py) or another method of scikit-learn's
    ``CalibratedClassifierCV``."""

    horizon_days: float = 90.0
    value_features: bool = True
    n_jobs: int = 1
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_child_samples: int | None = None  # None: training rows / 500, between 20 and 200
    reg_lambda: float = 0.0
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    early_stopping_min_delta: float = 0.0  # a smaller fall of the validation loss does not count as better
    max_bin: int = 63
    class_weight_power: float = 0.5
    min_class_examples: int = 20
    calibration: str = "sigmoid"
    top_drivers: int = 3
    seed: int = 0
