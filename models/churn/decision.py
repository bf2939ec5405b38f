"""Who is flagged and for which type: one threshold on ``p_churn`` decides ``will_churn``;
per-type weights only choose the ``churn_type`` among those flagged.

The rule (docs/churn-model.md, "Who is flagged"): a customer is flagged when ``p_churn``
(1 - P(retained)) is at least the model's ``threshold``; a flagged customer's type is the
churn type with the largest weighted probability. The threshold and the type weights are
chosen together on the calibration customers (never seen by the trees) to maximise the
macro-F1 of the whole decision: retained plus each churn type (for a model of the lapse,
retained vs lapsed). So a customer at p_churn 0.32 is flagged whenever one at 0.05 is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the grid of candidate thresholds: quantiles of the calibration customers' p_churn
_THRESHOLD_CANDIDATES = 200
_WEIGHT_GRID = np.exp(np.linspace(np.log(0.25), np.log(4.0), 17))


@dataclass(frozen=True)
class Decision:
    """``threshold`` on p_churn; ``type_weights`` per class (retained first, its weight 1
    and unused); the objective reached on the customers it was chosen on, and the precision
    and recall of ``will_churn`` (any churn type vs retained) there."""

    threshold: float
    type_weights: np.ndarray
    macro_f1: float
    precision: float
    recall: float


def decide(probabilities: np.ndarray, threshold: float, type_weights: np.ndarray) -> np.ndarray:
    """Class codes (0: retained) of the rule for class probabilities (retained first)."""
    p_churn = 1.0 - probabilities[:, 0]
    if probabilities.shape[1] == 2:
        kind = np.ones(len(probabilities), dtype=np.int64)
    else:
        kind = 1 + np.argmax(probabilities[:, 1:] * type_weights[1:], axis=1)
    return np.where(p_churn >= threshold, kind, 0)


def macro_f1(codes: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over ``n_classes`` from one confusion count (scikit-learn's f1_score with
    ``zero_division=0``, without its per-call cost: the search calls it thousands of times)."""
    confusion = np.bincount(codes * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, -1)
    hits = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * hits, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(f1.mean())


def choose_decision(probabilities: np.ndarray, codes: np.ndarray, rounds: int = 2) -> Decision:
    """The threshold and type weights that maximise the decision's macro-F1 on these
    customers (calibrated probabilities, retained first; true class codes): the threshold
    searched over quantiles of p_churn, the type weights by coordinate search, in turn."""
    n_classes = probabilities.shape[1]
    codes = np.asarray(codes, dtype=np.int64)
    p_churn = 1.0 - probabilities[:, 0]
    candidates = np.unique(np.quantile(p_churn, np.linspace(0, 1, _THRESHOLD_CANDIDATES + 1)))
    weights = np.ones(n_classes)

    def score(threshold, w):
        return macro_f1(codes, decide(probabilities, threshold, w), n_classes)

    threshold = float(np.quantile(p_churn, 1 - np.mean(codes != 0))) if len(codes) else 0.5
    best = score(threshold, weights)
    for _ in range(rounds):
        for candidate in candidates:
            result = score(candidate, weights)
            if result > best + 1e-12:
                best, threshold = result, float(candidate)
        for k in range(1, n_classes if n_classes > 2 else 1):
            for value in _WEIGHT_GRID:
                trial = weights.copy()
                trial[k] = value
                result = score(threshold, trial)
                if result > best + 1e-12:
                    best, weights = result, trial
    flagged, churned = p_churn >= threshold, codes != 0
    precision = float(np.mean(churned[flagged])) if flagged.any() else float("nan")
    recall = float(np.mean(flagged[churned])) if churned.any() else float("nan")
    return Decision(threshold=threshold, type_weights=weights, macro_f1=best, precision=precision, recall=recall)
