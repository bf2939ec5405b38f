"""Customer value: what each customer will buy and spend, and their tier.

Three families implement one interface, ``ValueModel`` (``protocol``): ``ProbabilisticValueModel``
(``probabilistic``: a purchase model from ``purchase`` and Gamma-Gamma spend from ``spend``),
``LearnedValueModel`` (``learned``: LightGBM) and ``SubscriptionValueModel``
(``subscription``: the sBG). ``scores`` builds the value score columns from any of them,
``tiers`` places customers in the pyramid and the value matrix, ``coverage`` measures
predictive intervals against a holdout.
"""

from retain.models.value.config import ValueConfig
from retain.models.value.learned import LearnedConfig, LearnedValueModel
from retain.models.value.probabilistic import ProbabilisticValueModel
from retain.models.value.protocol import Forecast, OutcomeDistribution, ValueModel
from retain.models.value.purchase import FitError
from retain.models.value.scores import SCORE_COLUMNS, score_table, value_scores
from retain.models.value.subscription import SubscriptionValueModel

__all__ = [
    "FitError", "Forecast", "LearnedConfig", "LearnedValueModel", "OutcomeDistribution", "ProbabilisticValueModel",
    "SCORE_COLUMNS", "SubscriptionValueModel", "ValueConfig", "ValueModel", "score_table", "value_scores",
]
