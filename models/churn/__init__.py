"""The churn-type classifier: who will leave within the horizon, and why.

- ``config.py``: ``ChurnConfig`` and the ``retained`` label;
- ``inputs.py``: which columns are features and the matrix the trees read (``InputSchema``);
- ``labels.py``: rare types merged into ``other``, the macro-F1 decision weights;
- ``calibration.py``: the probabilities calibrated on customers the trees never saw;
- ``model.py``: ``ChurnTypeModel``: fit, probabilities, scores;
- ``decision.py``: the one p_churn threshold of ``will_churn``, and the type weights;
- ``lapse.py``: churn without churn events: the lapse labels, the horizon read from the data,
  ``LapseChurnModel``;
- ``reasons.py``: why a customer may leave, inferred from their history (no labels).

Drivers come from ``retain.models.attribution`` (path attributions) and are put in words by
``retain.models.drivers``.
"""

from retain.models.churn.config import RETAINED, ChurnConfig
from retain.models.churn.inputs import (
    CORE_FEATURES, NOT_FEATURES, VALUE_FEATURES, InputNotes, ValueFeatureSource, with_value_features,
)
from retain.models.churn.labels import macro_f1_weights
from retain.models.churn.model import ChurnTypeModel
from retain.models.churn.lapse import LAPSED, LapseChurnModel

# churn models pickled before this package existed name this class here (inside their calibrator);
# older models of other kinds get retain.models.registry.load's advice to retrain
from retain.models.churn.calibration import _GivenProbabilities  # noqa: E402,F401

__all__ = [
    "CORE_FEATURES", "LAPSED", "LapseChurnModel", "NOT_FEATURES", "RETAINED", "VALUE_FEATURES", "ChurnConfig", "ChurnTypeModel", "InputNotes",
    "ValueFeatureSource", "macro_f1_weights", "with_value_features",
]
