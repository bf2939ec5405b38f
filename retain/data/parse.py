"""Reading the contract's kinds out of what a file holds: ids as stripped text, numbers,
dates (ISO 8601 with or without a time zone, or day/month order settled by the data) and
true/false flags.

Functions here take columns or arrays and return values and masks (which rows could not be
read); they report nothing. ``retain.data.validate`` turns the masks into problems and facts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data import fast_paths
from retain.errors import DataValidationError

TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}
# what ``flag_meanings`` gives a value that is neither true nor false, and a missing one
NOT_A_FLAG = -1
MISSING_FLAG = -2

_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_DAY_MONTH = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})\b"


# --- distinct values and text ------------------------------------------------------------


def codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing) and the distinct values: a categorical column's own
    codes, else one hash pass. Checks then run on the distinct values only."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), np.asarray(values.cat.categories, dtype=object)
    # a plain object column is hashed as its array: the same codes, without the Series' overhead
    row_codes, uniques = pd.factorize(values.to_numpy() if values.dtype == object else values, sort=False,
                                      use_na_sentinel=True)
    return row_codes, np.asarray(uniques)


def stripped(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values as text without surrounding white space, and which are empty.
    Returns ``uniques`` itself (no new strings) when no value had white space to strip."""
    if uniques.dtype != object or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        uniques = uniques.astype(str)  # ids written as numbers are still ids: 42 -> "42"
    few = fast_paths.stripped_strings(uniques)
    if few is not None:
        return few
    text = pa.array(uniques, type=pa.string())
    trimmed = pc.utf8_trim_whitespace(text)
    empty = pc.utf8_length(trimmed).to_numpy(zero_copy_only=False) == 0
    if trimmed.equals(text):  # trimming only removes characters: equal means nothing was trimmed
        return uniques, empty
    return np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object), empty


def stripped_ids(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``stripped`` of distinct ids, and which of them it changed (None when none)."""
    text, empty = stripped(uniques)
    return text, empty, None if text is uniques else text != uniques


def blank_codes(codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Rows missing, or empty after stripping white space, of the column with these codes
    (-1 = missing) and distinct values."""
    _, empty = stripped(uniques)
    return (codes < 0) | np.append(empty, False)[codes]


_strip = np.frompyfunc(str.strip, 1, 1)  # str.strip of each string of an object array, in numpy's loop


def stripped_column(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``raw.astype("string").str.strip()`` as an object array (None where missing), and
    which rows have a value. A column of strings (dates as text, the usual case) is stripped
    in one pass, without building a string Series first (a fixed cost per call)."""
    values = raw.to_numpy()
    if raw.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        present = ~pd.isna(values)
        if present.all():
            return _strip(values), present
        text = np.full(len(values), None, dtype=object)
        text[present] = _strip(values[present])
        return text, present
    text = raw.astype("string").str.strip()  # numbers, dates, mixed objects: pandas makes them text
    return text.to_numpy(dtype=object, na_value=None), text.notna().to_numpy()


# --- dates ---------------------------------------------------------------------------------


def parse_naive_iso(text: np.ndarray) -> np.ndarray | None:
    """ISO 8601 dates and datetimes (NaT where not ISO), or None when some carry a time zone."""
    few = fast_paths.plain_iso_dates(text)
    if few is not None:
        return few
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about mixed offsets; parse_iso settles them
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    return parsed.to_numpy() if isinstance(parsed, pd.DatetimeIndex) and parsed.tz is None else None


def parse_iso(text: np.ndarray) -> tuple[np.ndarray, int]:
    """ISO 8601 dates and datetimes, with or without a time zone; aware ones in UTC.
    Returns the naive-UTC values (NaT where not ISO) and how many rows carried a time zone."""
    values = parse_naive_iso(text)
    if values is not None:
        return values, 0
    # some values carry an offset: those are read in UTC, each on its own (pandas would
    # carry one row's offset over to a following value without one)
    series = pd.Series(text, dtype="string")
    zoned = series.str.contains(_ZONE, regex=True, na=False).to_numpy()
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    parsed[zoned] = pd.to_datetime(series[zoned], errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
    if not zoned.all():
        parsed[~zoned] = pd.to_datetime(series[~zoned], errors="coerce", format="ISO8601")
    return parsed.to_numpy(), int(zoned.sum())


def iso_dates(columns: dict) -> dict:
    """Date columns held as text, by any key: per key, the column's stripped text, which rows
    have a value, the values read as ISO 8601 (NaT where not) and how many rows carried a
    time zone. When none does, one call reads all the columns (a parser's fixed cost per call
    is most of the time for the few rows of an HTTP request)."""
    texts = {key: stripped_column(raw) for key, raw in columns.items()}
    if len(texts) > 1:
        values = parse_naive_iso(np.concatenate([text for text, _ in texts.values()]))
        if values is not None:
            ends = np.cumsum([len(text) for text, _ in texts.values()])
            return {key: (text, present, values[end - len(text):end], 0)
                    for (key, (text, present)), end in zip(texts.items(), ends)}
    return {key: (text, present, *parse_iso(text)) for key, (text, present) in texts.items()}


def day_month_order(text: pd.Series, where: str) -> tuple[str | None, list]:
    """'%d' first or '%m' first for dates like 02/01/2023, when a value over 12 settles it,
    and an example that settles it; ``where`` names the column in the errors."""
    parts = text.str.extract(_DAY_MONTH)
    numeric = parts[0].notna()
    if not numeric.any():
        return None, []
    first, second = parts[0][numeric].astype(int), parts[2][numeric].astype(int)
    day_first, month_first = (first > 12).any(), (second > 12).any()
    if day_first and month_first:
        raise DataValidationError(
            f"{where} mixes day-first dates ({text[numeric][first > 12].iloc[0]!r}) and month-first dates "
            f"({text[numeric][second > 12].iloc[0]!r}); write them one way, or give --date-format"
        )
    if not (day_first or month_first):
        raise DataValidationError(
            f"{where}: dates like {text[numeric].iloc[0]!r} could be day/month or month/day and no value "
            "settles it; give --date-format '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)"
        )
    example = text[numeric][(first > 12) if day_first else (second > 12)].iloc[0]
    return ("%d" if day_first else "%m"), [example]


def parse_other_dates(text: np.ndarray, values: np.ndarray, unparsed: np.ndarray, date_format: str | None,
                      where: str) -> tuple[np.ndarray, np.ndarray, str | None, list]:
    """The dates that are not ISO 8601 (``unparsed``) read with ``date_format``, or with the
    day/month order the data shows. Returns all the values, which are still not dates, and
    the day/month order the data showed with an example (None, [] when none was needed)."""
    text = pd.Series(text, dtype="string")
    parsed = pd.Series(values)
    rest = text[unparsed]
    order, examples = None, []
    if date_format:
        try:
            parsed[unparsed] = pd.to_datetime(rest, errors="coerce", format=date_format)
        except ValueError as exc:  # a format pandas cannot use: "'Q' is a bad directive in format '%Q'"
            raise DataValidationError(f"{where}: --date-format {date_format!r} is not a date format ({exc}); "
                                      "write it as for strptime, e.g. '%d/%m/%Y %H:%M'") from None
    else:
        order, examples = day_month_order(rest, where)
        # not ISO: pandas' inference, told the day/month order when the data showed it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[unparsed] = pd.to_datetime(rest, errors="coerce", format="mixed", dayfirst=order == "%d")
    return parsed.to_numpy(), (parsed.isna() & text.notna()).to_numpy(), order, examples


# --- numbers and flags -----------------------------------------------------------------------


def parse_numbers(raw: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    """The column as float, and which rows held something that is not a number (None when
    the column held numbers only)."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(float), None
    parsed = pd.to_numeric(raw, errors="coerce").astype(float)
    return parsed, (parsed.isna() & raw.notna()).to_numpy()


def flag_meanings(raw: pd.Series) -> np.ndarray:
    """Per row, 1 for a true word, 0 for a false one (``TRUE``, ``FALSE``, any case, white
    space around), ``NOT_A_FLAG`` for anything else, ``MISSING_FLAG`` where missing."""
    # a flag column holds a handful of distinct values: read each once
    row_codes, uniques = codes(raw)
    words = [str(value).strip().lower() for value in uniques]
    meanings = [1 if w in TRUE else 0 if w in FALSE else NOT_A_FLAG for w in words]
    return np.array(meanings + [MISSING_FLAG], dtype=np.int8)[row_codes]
