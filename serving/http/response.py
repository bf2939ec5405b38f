"""The scores as the JSON response: the score column names as keys, NaN as null."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

def _json_values(values, kind: str) -> list:
    if kind == "float":
        array = np.asarray(values, dtype=float)
        return [None if math.isnan(v) else v for v in array.tolist()]
    if kind == "datetime":
        days = np.datetime_as_string(np.asarray(values, dtype="datetime64[ns]"), unit="D")
        return [None if day == "NaT" else day for day in days.tolist()]
    if kind == "bool":
        if not isinstance(values, pd.arrays.BooleanArray):
            values = pd.array(values, dtype="boolean")
        return values.to_numpy(dtype=object, na_value=None).tolist()
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]


def score_rows(scores, columns: dict[str, str]) -> list[dict]:
    """The score rows as JSON-ready dicts, the score column names as keys (NaN -> null).
    ``scores`` is a frame or a dict of arrays."""
    n = len(scores) if isinstance(scores, pd.DataFrame) else len(next(iter(scores.values())))
    names = list(columns)
    lists = [_json_values(scores[name] if name in scores else [None] * n, columns[name]) for name in names]
    return [dict(zip(names, row)) for row in zip(*lists)]
