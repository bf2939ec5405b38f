"""A DataFrame column's values without the Series.

``frame[name]`` builds (and caches) a Series: ~10 us each, and a one-customer request reads
~80 columns that way, more than its arithmetic costs. ``column_array`` reads the values the
frame holds directly. ``DataFrame._get_column_array`` is pandas' own accessor for this
(private API: pyproject pins pandas <2.4; tests/test_validation.py checks it against
``frame[name]`` for every kind of column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def column_array(frame: pd.DataFrame, name: str):
    """``frame[name].to_numpy()`` for a column of a numpy dtype (dates included), else
    ``frame[name].array`` (strings, categories, nullable booleans, dates with a time zone).
    The frame's own values, not a copy: not to be written to."""
    position = frame.columns.get_loc(name)
    if not isinstance(position, int):  # a repeated column name: the columns of that name, as pandas gives them
        return frame[name].to_numpy()
    values = frame._get_column_array(position)
    # a datetime64 column is held as a DatetimeArray: its numpy array is what to_numpy gives
    return np.asarray(values) if isinstance(values.dtype, np.dtype) else values


def float_array(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame[name].to_numpy(dtype=float)``: the frame's own array when it is float already."""
    values = column_array(frame, name)
    return values.astype(float, copy=False) if isinstance(values, np.ndarray) else values.to_numpy(dtype=float)


__all__ = ["column_array", "float_array"]
