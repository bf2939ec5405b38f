"""Customer codes for the rows of the input tables, and the feature table built in one step.

Every feature group works on integer customer codes (positions in one array of text ids),
computed once per table and shared, and returns plain numpy columns; the DataFrame is
made once at the end. A pandas call has a fixed cost whatever its size, which is most of a
one-customer request, so the per-call work stays in numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.data import fast_paths

_LONGEST_ID_SORTED_AS_NUMPY_TEXT = 64


def text_ids(values: pd.Series) -> np.ndarray:
    """The ids of a column as an object array of text (``values.astype(str)``)."""
    ids = values.to_numpy(dtype=object)
    # already text (the usual case): skip the conversion, it costs as much as the lookup
    if pd.api.types.infer_dtype(ids, skipna=False) == "string":
        return ids
    return values.astype(str).to_numpy(dtype=object)


def positions_in(ids, values) -> np.ndarray:
    """``pd.Index(ids).get_indexer(values)``: the position of each value among the distinct
    text ``ids``, -1 when absent."""
    # a few ids are looked up in a dict: building pandas' hash table of the ids costs more
    # (a one-customer request looks ids up four times)
    found = fast_paths.positions_by_dict(ids, values)
    if found is not None:
        return found
    return (ids if isinstance(ids, pd.Index) else pd.Index(ids)).get_indexer(values)


def codes_in(ids: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each row's customer in ``ids`` (text; -1 when absent), hashing each
    distinct id once for a categorical column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        positions = ids.get_indexer(values.cat.categories.astype(str))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, np.append(positions, -1)[codes], -1)
    return positions_in(ids, text_ids(values))


def text_order(ids: np.ndarray) -> np.ndarray:
    """The stable argsort of text ids (an object array)."""
    # fixed-width numpy text sorts faster than Python strings, in the same order; not for
    # very long ids, whose fixed width would take n x longest x 4 bytes
    if len(ids) and max(map(len, ids)) <= _LONGEST_ID_SORTED_AS_NUMPY_TEXT:
        return np.argsort(ids.astype(str), kind="stable")
    return np.argsort(ids, kind="stable")


def sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, ids): each row's position in ``ids``, the column's distinct ids as sorted
    text, so that tables built in code order come out sorted by customer_id."""
    codes, uniques = pd.factorize(values, sort=False)
    ids = np.asarray(uniques, dtype=object).astype(str).astype(object)
    order = text_order(ids)
    rank = np.empty(len(ids) + 1, dtype=np.intp)
    rank[order] = np.arange(len(ids))
    rank[-1] = -1  # factorize's -1 (a missing id) stays -1
    return rank[codes], ids[order]


def remap(codes: np.ndarray, new_code: np.ndarray) -> np.ndarray:
    """Codes into another numbering: ``new_code[code]``, and -1 stays -1."""
    return np.append(new_code, -1)[codes]
