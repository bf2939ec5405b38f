"""Small-input fast paths: the same results as the general (pandas/Arrow) code, for inputs of
at most ``SMALL_INPUT`` values, computed with Python dicts and strings or numpy.

Why they exist: a pandas or Arrow call has a fixed cost (building a hash table, a string
array, a parser's set-up) whatever its size, and an HTTP request for one customer is made of
such calls on a handful of values. Below a few dozen values a Python loop over the values
costs less than that fixed cost.

Why one threshold: every path here trades the same thing (Python's cost per value against
pandas' cost per call), so one number, at the small end where each of them still wins, is
enough; a request of one or a few customers stays below it. The number only moves work
between two paths that give equal results: each path is equal to the general one by
construction, and a test checks each against it by turning the fast paths off (setting
``SMALL_INPUT`` to -1): tests/unit/test_fast_paths.py, and for the churn model's category codes,
which need a trained model, the lean-path test of the model layer.

Shape, for adding one: a function named for what it computes, taking what the general path
takes, returning the result, or None when the input is not small (``is_small``) or not of the
form the path handles; the caller then runs the general path. Callers read ``SMALL_INPUT``
through ``is_small`` only, so that one assignment turns every path off.
"""

from __future__ import annotations

import re

import numpy as np

SMALL_INPUT = 32


def is_small(*sizes: int) -> bool:
    """Whether every size is at most ``SMALL_INPUT``."""
    return all(size <= SMALL_INPUT for size in sizes)


# --- text ----------------------------------------------------------------------------------


def stripped_strings(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct strings without surrounding white space, and which are empty, as Arrow's
    ``utf8_trim_whitespace`` gives them (``uniques`` itself when nothing was stripped); None
    unless they are few and all ASCII: Python's ``str.strip`` removes the same ASCII white
    space as Arrow's, but not the same non-ASCII white space."""
    if not is_small(len(uniques)) or not all(value.isascii() for value in uniques):
        return None
    trimmed = [value.strip() for value in uniques]
    empty = np.array([not value for value in trimmed], dtype=bool)
    if all(new == old for new, old in zip(trimmed, uniques)):
        return uniques, empty
    return np.array(trimmed, dtype=object), empty


# --- dates ---------------------------------------------------------------------------------

# A date, or a date and time, with no time zone, in the years numpy's nanoseconds hold
# without overflow: numpy reads these exactly as pandas' ISO 8601 parser does
PLAIN_ISO = re.compile(r"(?:1[7-9]\d\d|2[01]\d\d|22[0-5]\d)-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?")


def plain_iso_dates(text: np.ndarray) -> np.ndarray | None:
    """``pd.to_datetime(text, errors="coerce", format="ISO8601")`` as nanosecond dates, read by
    numpy; None unless the values are few and each is missing or matches ``PLAIN_ISO`` and is
    a calendar date (numpy rejects 2023-02-30, which pandas makes NaT)."""
    if not is_small(len(text)) or not all(value is None or isinstance(value, str) and PLAIN_ISO.fullmatch(value)
                                          for value in text):
        return None
    try:
        return np.array(text, dtype="datetime64[ns]")
    except ValueError:
        return None


# --- lookups -------------------------------------------------------------------------------


def positions_by_dict(ids, values) -> np.ndarray | None:
    """``pd.Index(ids).get_indexer(values)`` (``ids`` distinct) looked up in a dict; None
    unless both are few."""
    if not is_small(len(ids), len(values)):
        return None
    position = {identifier: i for i, identifier in enumerate(ids)}
    return np.array([position.get(value, -1) for value in values], dtype=np.intp)


# --- distinct rows and values ------------------------------------------------------------------


def distinct_rows_by_dict(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None:
    """``retain.models.value.purchase.collapse`` of a few rows (equal-length float columns):
    the same distinct rows, in order of first appearance, their counts and each row's position
    among them, found with one dict instead of a hash pass per column; None unless few."""
    if not is_small(len(next(iter(columns.values())))):
        return None
    first_of: dict[tuple, int] = {}
    firsts: list[int] = []
    inverse = []
    for position, row in enumerate(zip(*(column.tolist() for column in columns.values()))):
        code = first_of.setdefault(row, len(first_of))
        if code == len(firsts):
            firsts.append(position)
        inverse.append(code)
    inverse = np.array(inverse, dtype=np.intp)
    distinct = {name: column[firsts] for name, column in columns.items()}
    return distinct, np.bincount(inverse, minlength=len(firsts)), inverse


def each_value_once(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, distinct) to look each value up by: for a few values, every value is its own
    "distinct" value (looking up a repeat twice costs less than ``pd.factorize``'s hash pass);
    None unless few. Unlike ``pd.factorize``, missing values keep a code of their own, so a
    lookup must map a missing value itself."""
    if not is_small(len(values)):
        return None
    return np.arange(len(values)), values


__all__ = ["PLAIN_ISO", "SMALL_INPUT", "distinct_rows_by_dict", "each_value_once", "is_small", "plain_iso_dates",
           "positions_by_dict", "stripped_strings"]
