"""Customer value: what each customer will buy and spend, and their tier.

Three families implement one interface, ``ValueModel`` (``protocol``): ``ProbabilisticValueModel``
(``probabilistic``: a purchase model from ``purchase`` and Gamma-Gamma spend from ``spend``),
``LearnedValueModel`` (``learned``: LightGBM) and ``SubscriptionValueModel``
(``subscription``: the sBG). ``scores`` builds the value score columns from any of them,
``tiers`` places customers in the pyramid and the value matrix, ``coverage`` measures
predictive intervals against a holdout.
"""

from importlib import import_module

from retain.models.value.config import ValueConfig
from retain.models.value.protocol import Forecast, OutcomeDistribution, ValueModel
from retain.models.value.scores import SCORE_COLUMNS, score_table, value_scores

# The families and their fitting error, imported when first asked for: they pull in lifetimes,
# scipy.stats and LightGBM, which take far longer to import than the rest of the package,
# and readers of the interface, the tiers or the scores (the report, the plots) need none.
_LAZY = {
    "FitError": "purchase",
    "LearnedConfig": "learned",
    "LearnedValueModel": "learned",
    "ProbabilisticValueModel": "probabilistic",
    "SubscriptionValueModel": "subscription",
}

__all__ = ["Forecast", "OutcomeDistribution", "SCORE_COLUMNS", "ValueConfig", "ValueModel", "score_table",
           "value_scores", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
