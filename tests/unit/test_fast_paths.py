"""The small-input fast paths (``retain.data.fast_paths``) give what the general path gives.

Each test computes its cases with the fast paths on, then with them off
(``fast_paths.SMALL_INPUT = -1``), or against pandas itself, and compares.
"""

import warnings

import numpy as np
import pandas as pd

from retain.data import fast_paths


def test_a_few_values_are_stripped_as_arrow_strips_them(monkeypatch):
    """A request's few distinct values are stripped by Python: the same text, emptiness and
    identity (nothing stripped: the same array) as Arrow's trim, for every ASCII character
    Arrow counts as white space and for text Arrow alone handles (non-ASCII)."""
    from retain.data import parse

    ascii_space = [chr(i) for i in range(128) if (" a" + chr(i)).strip() == "a" or chr(i) == " "]
    cases = [np.array(["a", "b"], dtype=object), np.array([" a", "b\t", "", "  "], dtype=object),
             np.array([f"x{c}" for c in ascii_space] + [f"{c}y" for c in ascii_space], dtype=object),
             np.array(["\xa0a", "b"], dtype=object), np.array([42, 7], dtype=object), np.array([], dtype=object)]
    assert fast_paths.stripped_strings(cases[2]) is not None  # every ASCII white space case takes the fast path
    few = [parse.stripped(values) for values in cases]
    monkeypatch.setattr(fast_paths, "SMALL_INPUT", -1)
    for values, (text, empty) in zip(cases, few):
        arrow_text, arrow_empty = parse.stripped(values)
        np.testing.assert_array_equal(text, arrow_text)
        np.testing.assert_array_equal(empty, arrow_empty)
        assert (text is values) == (arrow_text is values)


def test_a_few_plain_iso_dates_read_by_numpy_equal_pandas_reading(monkeypatch):
    """A request's few dates are read by numpy when they are plain ISO 8601: the same values
    as pandas' parser, NaT and all, including the forms numpy must not read (out of the
    nanosecond range, not a calendar date, with a time zone)."""
    from retain.data.parse import parse_naive_iso

    values = ["2023-01-21", "2023-01-21T22:37:53", "2023-01-21 22:37:53", "2023-01-21T22:37", "2024-02-29",
              "2023-01-21T22:37:53.5", "2023-01-21T22:37:53.123456789", "1700-01-01", "2259-12-31", None]
    odd = ["2023-02-30", "2023-13-01", "2023-01-21T25:00:00", "0001-01-01", "2300-01-01", "1677-09-21",
           "21/01/2023", "2023-01-21T22:37:53.1234567891"]
    assert fast_paths.plain_iso_dates(np.array(values, dtype=object)) is not None
    cases = [np.array(text, dtype=object) for text in [values, *([*values, one] for one in odd)]]
    few = [parse_naive_iso(text) for text in cases]
    monkeypatch.setattr(fast_paths, "SMALL_INPUT", -1)
    for text, found in zip(cases, few):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = pd.to_datetime(text, errors="coerce", format="ISO8601").to_numpy()
        np.testing.assert_array_equal(found, expected)
        np.testing.assert_array_equal(parse_naive_iso(text), expected)


def test_positions_of_a_few_ids_equal_pandas_lookup():
    """A request's few ids are looked up in a dict; the same positions as pandas' index."""
    from retain.features import tables

    rng = np.random.default_rng(2)
    small = fast_paths.SMALL_INPUT
    for n_ids, n_values in ((0, 3), (1, 1), (5, 12), (small, small), (small + 8, 10), (10, 200)):
        ids = np.array([f"c{i}" for i in rng.permutation(60)[:n_ids]], dtype=object)
        values = np.array([f"c{i}" for i in rng.integers(0, 60, n_values)], dtype=object)
        expected = pd.Index(ids).get_indexer(values)
        found = tables.positions_in(ids, values)
        assert found.dtype == expected.dtype
        np.testing.assert_array_equal(found, expected)


def test_collapse_of_a_few_rows_equals_the_hashed_collapse(monkeypatch):
    """A request's few rows are collapsed with a dict; the same distinct rows, in the same
    order, as pandas' hash pass gives."""
    from retain.models.value.purchase import collapse

    rng = np.random.default_rng(1)
    cases = []
    for n in (1, 2, 5, 17, fast_paths.SMALL_INPUT):
        x = rng.integers(0, 3, n).astype(float)
        x[rng.random(n) < 0.2] = -0.0  # -0.0 and 0.0 are one value in both
        cases.append({"x": x, "T": rng.integers(0, 2, n) * 30.5, "z": rng.choice([0.1, 0.2], n)})
    few = [collapse(columns) for columns in cases]
    monkeypatch.setattr(fast_paths, "SMALL_INPUT", -1)
    for columns, (distinct, counts, inverse) in zip(cases, few):
        expected, expected_counts, expected_inverse = collapse(columns)
        np.testing.assert_array_equal(inverse, expected_inverse)
        np.testing.assert_array_equal(counts, expected_counts)
        for name in columns:
            assert distinct[name].dtype == expected[name].dtype
            np.testing.assert_array_equal(distinct[name], expected[name])
