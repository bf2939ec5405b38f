"""The value score columns, built the same way for every family from its ``predict_values``
output: the passthrough features, the numeric scores, and the tier and quadrant with their
moves (``retain.models.actions``). The columns agree with each other by construction
(docs/customer-story.md): P(alive) decides the lifecycle stage's termination, the CLV range
holds the CLV, the quadrant's move points the tier move's way."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retain.data.frames import column_array, float_array
from retain.features.segments import stage_given_p_alive
from retain.models.actions import PYRAMID_MOVES, QUADRANT_MOVES
from retain.models.value.config import ValueConfig
from retain.models.value.tiers import PYRAMID, QUADRANT_ORDER, TierEdges

if TYPE_CHECKING:
    from retain.models.value.protocol import ValueModel

REQUIRED_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary")
PASSTHROUGH_COLUMNS = ("customer_id", "as_of", "frequency", "recency", "T", "monetary",
                       "rfm_code", "rfm_segment", "lifecycle_stage")
SCORE_COLUMNS = (
    "p_alive", "p_alive_horizon", "p_no_purchase_horizon",
    "expected_purchases", "expected_purchases_low", "expected_purchases_high",
    "expected_order_value", "clv", "clv_low", "clv_high",
    "value_tier", "tier_move", "value_quadrant", "value_move",
)


def score_table(features: pd.DataFrame, values: dict[str, np.ndarray], tier_edges: TierEdges,
                config: ValueConfig) -> pd.DataFrame:
    """The score table of any value model family from its ``predict_values`` output: the
    passthrough features, ``SCORE_COLUMNS``, tier and quadrant with their moves."""
    return pd.DataFrame(score_columns(features, values, tier_edges, config))


def value_scores(model: ValueModel, features: pd.DataFrame) -> dict[str, np.ndarray]:
    """``model.score(features)``'s columns as arrays, for any value family (no frame built:
    the scoring core assembles its own)."""
    return score_columns(features, model.predict_values(features), model.tier_edges, model.config)


def score_columns(features: pd.DataFrame, values: dict[str, np.ndarray], tier_edges: TierEdges,
                  config: ValueConfig) -> dict[str, np.ndarray]:
    """``score_table``'s columns as a dict of arrays. Two columns are more than passed
    through (docs/customer-story.md): the lifecycle stage, whose termination P(alive)
    decides, and the CLV range, widened to hold the CLV."""
    # the columns gathered as arrays and made into one frame: inserting them one by one into
    # a frame costs more than the arithmetic behind them for a single customer
    present = set(features.columns)
    columns = {name: column_array(features, name) for name in PASSTHROUGH_COLUMNS if name in present}
    columns.update((name, values[name]) for name in SCORE_COLUMNS if name in values)
    if "lifecycle_stage" in columns and "p_alive" in values:
        stage = columns["lifecycle_stage"]
        judged = stage_given_p_alive(stage, values["p_alive"], config.termination_p_alive)
        if judged is not stage:
            columns["lifecycle_stage"] = _same_kind(judged, stage)
    if "clv_low" in columns and "clv_high" in columns:
        columns["clv_low"], columns["clv_high"] = holding_the_mean(
            values["clv"], columns["clv_low"], columns["clv_high"])
    tier = tier_edges.pyramid_index(values["clv"])
    quadrant = tier_edges.quadrant_index(current_value(features, config), values["clv"])
    columns["value_tier"] = _PYRAMID_NAMES[tier]
    columns["tier_move"] = _PYRAMID_MOVES[tier]
    columns["value_quadrant"] = _QUADRANT_NAMES[quadrant]
    columns["value_move"] = _QUADRANT_MOVES[quadrant]
    return columns


def holding_the_mean(mean, low, high) -> tuple[np.ndarray, np.ndarray]:
    """A predictive interval widened just enough to hold the expected value: low <= mean <= high.

    The interval is the central ``ValueConfig.interval`` of what the customer will spend; the
    expected value (``clv``) is a mean, which for a customer who most likely buys nothing but
    might buy a lot lies above the 90th percentile. A wider interval still holds the outcome
    at least as often, so the widened one is an "at least 80%" interval (docs/customer-story.md)."""
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    with np.errstate(invalid="ignore"):
        low = np.where(np.isnan(low) | np.isnan(mean), low, np.minimum(low, mean))
        high = np.where(np.isnan(high) | np.isnan(mean), high, np.maximum(high, mean))
    return low, high


def _same_kind(values: np.ndarray, like):
    """``values`` with the dtype of ``like`` (a pandas extension array stays one); ``like``
    itself when no value changed."""
    if isinstance(like, np.ndarray):
        return values
    if isinstance(like.dtype, pd.CategoricalDtype):
        categories = list(like.dtype.categories)
        categories += [c for c in pd.unique(values[pd.notna(values)]) if c not in categories]
        return pd.Categorical(values, categories=categories)
    return pd.array(values, dtype=like.dtype)


# tier and quadrant names and moves by their index (TierEdges.pyramid_index, quadrant_index)
_PYRAMID_NAMES = np.array(PYRAMID, dtype=object)
_PYRAMID_MOVES = np.array([PYRAMID_MOVES[tier] for tier in PYRAMID], dtype=object)
_QUADRANT_NAMES = np.array(QUADRANT_ORDER, dtype=object)
_QUADRANT_MOVES = np.array([QUADRANT_MOVES[quadrant] for quadrant in QUADRANT_ORDER], dtype=object)


def fit_tier_edges(features: pd.DataFrame, clv: np.ndarray, config: ValueConfig) -> TierEdges:
    """The tier and quadrant edges of a family fitted on ``features``, from its CLV there."""
    return TierEdges.from_values(clv, current_value(features, config), config.tiers)


def check_columns(features: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"the feature table lacks column(s) {missing}; build it with retain.features.build_features")


def current_value(features: pd.DataFrame, config: ValueConfig) -> np.ndarray:
    column = config.current_value_column
    if column not in features.columns:
        raise ValueError(f"the value matrix needs the feature {column!r} (ValueConfig.current_value_column)")
    return float_array(features, column)
