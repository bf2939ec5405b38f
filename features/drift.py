"""Distribution drift between the data a model was trained on and the data it scores.

A *profile* is taken of the training table when a model is logged: per numeric column the
decile edges and the share of rows in each bin (missing values in a bin of their own), per
text column the share of each category. At scoring time the same bins are filled with the
scored rows and compared by the population stability index ([PSI] in docs/references.md),
``PSI = sum((actual - expected) * ln(actual / expected))``, the measure credit scoring and
churn teams read (< 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift), and for text
columns the share of rows whose category training never saw.

Hand-written rather than evidently: the statistic is a dozen lines, it must be computed
from a profile stored inside the model (the training rows are not at hand when scoring),
and evidently 0.7 would add a large dependency tree (and its own pandas/pydantic pins) to
every scoring environment, Spark executors and the HTTP image included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
_FLOOR = 1e-4  # a bin empty on one side would make the PSI infinite
MODERATE_PSI = 0.1
MAJOR_PSI = 0.25
# A customer's age grows with the time between training and scoring whatever the business
# does: its shift is reported in the drift file but raises no alert (the batch job's summary,
# the score store and the report all read this one list).
AGE_COLUMNS = ("T",)


def profile(frame: pd.DataFrame, columns) -> dict:
    """The training profile of ``columns`` of ``frame`` (those present)."""
    result = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            shares = values.astype("string").fillna("<missing>").value_counts(normalize=True)
            result[column] = {"kind": "category", "shares": {str(k): float(v) for k, v in shares.items()}}
            continue
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        finite = numbers[np.isfinite(numbers)]
        if finite.size == 0:
            continue
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
        result[column] = {"kind": "numeric", "edges": edges.tolist(), "shares": _numeric_shares(numbers, edges).tolist()}
    return result


def _numeric_shares(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares per bin: len(edges) + 1 value bins, then one for missing values."""
    finite = np.isfinite(numbers)
    counts = np.bincount(np.searchsorted(edges, numbers[finite], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, (~finite).sum()).astype(float)
    return counts / max(counts.sum(), 1.0)


def _psi(actual: np.ndarray, expected: np.ndarray) -> float:
    actual, expected = np.maximum(actual, _FLOOR), np.maximum(expected, _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def compare(training_profile: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per profiled column present in ``frame``: psi, unseen_share (text columns),
    and a level in words (stable, moderate shift, major shift)."""
    rows = []
    for column, entry in training_profile.items():
        if column not in frame.columns or len(frame) == 0:
            continue
        values = frame[column]
        unseen = np.nan
        if entry["kind"] == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            actual = _numeric_shares(numbers, np.asarray(entry["edges"], dtype=float))
            expected = np.asarray(entry["shares"], dtype=float)
        else:
            text = values.astype("string").fillna("<missing>")
            known = list(entry["shares"])
            observed = text.value_counts(normalize=True)
            actual = np.array([observed.get(k, 0.0) for k in known] + [observed.drop(known, errors="ignore").sum()])
            expected = np.array([entry["shares"][k] for k in known] + [0.0])
            unseen = float(actual[-1])
        psi = _psi(actual, expected)
        level = "major shift" if psi > MAJOR_PSI else "moderate shift" if psi > MODERATE_PSI else "stable"
        rows.append({"column": column, "psi": psi, "unseen_share": unseen, "level": level})
    return pd.DataFrame(rows, columns=["column", "psi", "unseen_share", "level"])
