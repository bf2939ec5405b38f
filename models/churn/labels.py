"""The churn model's label set and decision rule: rare churn types merged into ``other``,
and per-class decision weights chosen for macro-F1."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from retain.errors import RetainError
from retain.models.churn.config import RETAINED

OTHER = "other"


def merge_rare(labels: list[pd.Series], min_examples: int) -> tuple[list[pd.Series], dict[str, int]]:
    """Labels of the training set and the others (``labels[0]`` is training) with every churn
    type that has fewer than ``min_examples`` training customers relabelled ``other``, and
    those types with their training counts. Warns when it merges; an error when even
    ``other`` has too few."""
    counts = labels[0].value_counts()
    rare = [label for label, n in counts.items() if label != RETAINED and n < min_examples]
    merged_labels = {label: int(counts[label]) for label in rare}
    if not rare:
        return labels, merged_labels
    merged = [y.where(~y.isin(rare), OTHER) for y in labels]
    if (merged[0] == OTHER).sum() < min_examples:
        detail = ", ".join(f"{k} ({v})" for k, v in merged_labels.items())
        raise RetainError(
            f"churn types with too few training customers: {detail}; each needs at least "
            f"{min_examples}: add snapshots (--snapshots), lengthen --horizon-days or relabel"
        )
    warnings.warn(f"rare churn types merged into 'other': {merged_labels}", stacklevel=3)
    return merged, merged_labels


def macro_f1_weights(probabilities: np.ndarray, codes: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class multipliers of the probabilities chosen by coordinate search to maximise
    macro-F1: calibrated probabilities favour the common class, macro-F1 weighs all alike."""
    weights = np.ones(probabilities.shape[1])
    grid = np.exp(np.linspace(np.log(0.25), np.log(100.0), 40))

    def score(w):
        return f1_score(codes, np.argmax(probabilities * w, axis=1), average="macro",
                        labels=range(probabilities.shape[1]), zero_division=0)

    best = score(weights)
    for _ in range(rounds):
        for k in range(1, probabilities.shape[1]):  # the first class is the reference
            for value in grid:
                trial = weights.copy()
                trial[k] = value
                result = score(trial)
                if result > best + 1e-9:
                    best, weights = result, trial
    return weights
