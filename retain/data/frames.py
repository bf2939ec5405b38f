"""A DataFrame's columns without the Series, and a DataFrame made from its columns at once.

``frame[name]`` builds (and caches) a Series, and a one-customer request reads dozens of
columns that way: together they cost more than its arithmetic. ``column_array`` reads the
values the frame holds directly. ``DataFrame._get_column_array`` is pandas' own accessor for this
(private API: pyproject pins pandas <2.4; tests/data/test_validation.py checks it against
``frame[name]`` for every kind of column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.core.internals import BlockManager
from pandas.core.internals.api import make_block


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


def frame_of(columns: dict, index: pd.Index | None = None) -> pd.DataFrame:
    """The DataFrame of these equal-length columns, in this order (object for text).

    Same frame as ``pd.DataFrame(columns, index=index)``, which has a cost per column for the
    feature columns whatever the row count (it checks and converts each column on its own):
    here each numpy dtype's columns are stacked into one block, each other array (pandas'
    nullable booleans, categories, dates with a time zone) is a block of its own, and the
    frame is made from the blocks. A Series gives its values (its index is not looked at).
    ``make_block`` and ``BlockManager`` are pandas' own constructors for this (internal API:
    pyproject pins pandas <2.4; tests/data/test_features.py checks the frame equals pandas').
    """
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0 if index is None else len(index)
    by_dtype: dict[np.dtype, list[int]] = {}
    values = []
    blocks = []
    for position, name in enumerate(names):
        column = columns[name]
        if type(column) is not np.ndarray:  # (the usual case first: most feature columns)
            if isinstance(column, pd.Series):
                column = column.array
            if isinstance(column.dtype, np.dtype):  # numpy values in pandas' wrapper (dates, NumpyExtensionArray)
                column = np.asarray(column)
        if column.shape != (n,):
            raise ValueError(f"column {name} has shape {column.shape}, not ({n},)")
        if not isinstance(column, np.ndarray):
            values.append(None)  # a block of its own
            blocks.append(make_block(column, placement=[position], ndim=2))
            continue
        if column.dtype.kind == "U":
            column = column.astype(object)
        values.append(column)
        by_dtype.setdefault(column.dtype, []).append(position)
    # np.stack copies, as pd.DataFrame(dict) does: the frame shares no memory with its inputs
    blocks += [make_block(np.stack([values[i] for i in positions]), placement=positions, ndim=2)
               for positions in by_dtype.values()]
    manager = BlockManager(blocks, [pd.Index(names, dtype=object), pd.RangeIndex(n) if index is None else index])
    return pd.DataFrame._from_mgr(manager, axes=manager.axes)


__all__ = ["column_array", "float_array", "frame_of"]
