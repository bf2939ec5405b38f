"""Reading a dataset folder and checking it against the data contract.

Two kinds of findings. A *problem* is a defect (a date that is not a date, the same order
twice): it is reported with its table, column, row numbers (1-based data rows, the header
not counted) and a count; ``strict`` fails with that report, ``lenient`` sets the bad rows
aside in a rejects file with one reason per row. A *fact* is an ordinary feature of real
exports (two identical orders on one day, a customer with only returns, time zones): the
rows are kept and the fact is counted in the report. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retain.data.contract import (
    BOOL,
    DATETIME,
    FLOAT,
    ID,
    SATISFACTION_LEVELS,
    TABLES,
    TEXT,
    TableSpec,
)
from retain.data.frames import column_array
from retain.errors import DataValidationError, RetainError

STRICT = "strict"
LENIENT = "lenient"
_SHOWN_ROWS = 5
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Problem:
    table: str
    column: str | None
    reason: str
    rows: np.ndarray  # 0-based positions in the table as read
    examples: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows)

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        shown = ", ".join(str(int(r) + 1) for r in self.rows[:_SHOWN_ROWS])
        more = ", ..." if self.count > _SHOWN_ROWS else ""
        text = f"{where}: {self.count} row(s) {self.reason} (rows {shown}{more}"
        if self.examples:
            text += "; e.g. " + ", ".join(repr(e) for e in self.examples[:3])
        return text + ")"


@dataclass
class Fact:
    """Something ordinary about real data that was kept, and how often it occurs."""

    table: str
    column: str | None
    what: str
    count: int
    unit: str = "row(s)"
    examples: list = field(default_factory=list)

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{where}: {self.count:,} {self.unit} {self.what}"
        if self.examples:
            text += " (e.g. " + ", ".join(repr(e) for e in self.examples[:3]) + ")"
        return text


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_rejected: dict[str, int] = field(default_factory=dict)
    rejects_dir: Path | None = None
    facts: list[Fact] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            return "no problems found"
        return "\n".join("- " + p.describe() for p in self.problems)

    def facts_text(self) -> str:
        return "\n".join("- " + f.describe() for f in self.facts)

    def fact(self, table: str, what: str) -> Fact | None:
        """The fact of ``table`` whose text contains ``what``, if any."""
        return next((f for f in self.facts if f.table == table and what in f.what), None)

    def summary(self) -> str:
        parts = [
            f"{t}: {n:,} rows read, {self.rows_rejected.get(t, 0):,} rejected"
            for t, n in self.rows_read.items()
        ]
        return "; ".join(parts)


@dataclass
class Dataset:
    """Validated tables; optional ones are None when the folder lacks them."""

    transactions: pd.DataFrame
    customers: pd.DataFrame | None = None
    interactions: pd.DataFrame | None = None
    churn_events: pd.DataFrame | None = None
    report: ValidationReport = field(default_factory=ValidationReport)


def customers_with_only_returns(transactions: pd.DataFrame, before=None) -> pd.Index:
    """Ids of customers whose rows (those dated strictly before ``before``, when given) are
    all returns (negative amounts): they are kept in the data but have no purchase to
    score."""
    codes, ids = _codes(transactions["customer_id"])
    present = codes >= 0
    if before is not None:
        present &= transactions["timestamp"].to_numpy() < np.datetime64(pd.Timestamp(before))
    return pd.Index(_only_returns(codes, ids, transactions["amount"].to_numpy(), present), dtype=object,
                    name="customer_id")


def _only_returns(codes: np.ndarray, ids: np.ndarray, amount: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The ids (``codes`` index ``ids``) whose ``present`` rows are all returns."""
    seen = np.bincount(codes[present], minlength=len(ids)) > 0
    bought = np.bincount(codes[present & (amount >= 0)], minlength=len(ids)) > 0
    return ids[seen & ~bought]


# --- reading -----------------------------------------------------------------------


def read_mapping(path: str | Path | None, column_flags: list[str] | None = None) -> dict:
    """Mapping file (JSON) plus ``TABLE.COLUMN=SOURCE`` flags, as {table: {file, columns}}.

    The file looks like ``{"transactions": {"file": "orders.csv",
    "columns": {"customer_id": "CustID", "timestamp": "OrderDate"}}}``.
    """
    mapping: dict = {}
    if path:
        try:
            mapping = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RetainError(f"cannot read mapping file {path}: {exc}") from None
        unknown = set(mapping) - set(TABLES)
        if unknown:
            raise RetainError(
                f"mapping file {path} names unknown table(s) {sorted(unknown)}; "
                f"tables are {sorted(TABLES)}"
            )
    for flag in column_flags or []:
        try:
            target, source = flag.split("=", 1)
            table, column = target.split(".", 1)
        except ValueError:
            raise RetainError(
                f"column mapping {flag!r} should look like transactions.customer_id=CustID"
            ) from None
        if table not in TABLES:
            raise RetainError(f"column mapping {flag!r}: unknown table {table!r}")
        mapping.setdefault(table, {}).setdefault("columns", {})[column] = source
    return mapping


def _find_table_file(folder: Path, name: str, mapping: dict) -> Path | None:
    explicit = mapping.get(name, {}).get("file")
    if explicit:
        path = folder / explicit
        if not path.exists():
            raise RetainError(f"mapping names {path} for table {name}, but it does not exist")
        return path
    for suffix in (".parquet", ".csv"):
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def _shared_dictionary_codes(column: pa.ChunkedArray) -> pd.Categorical | None:
    """A dictionary column whose chunks share one dictionary (pandas writes a categorical
    that way: every row group repeats all the categories), as a categorical built from its
    codes; pyarrow's own conversion would first unify the dictionaries, hashing every
    category once per row group. None for any other column."""
    if not pa.types.is_dictionary(column.type) or column.num_chunks < 2:
        return None
    first = column.chunk(0).dictionary
    # chunks of one row group share the dictionary's memory: compare addresses before contents
    same_memory = [b.address if b is not None else None for b in first.buffers()]

    def shares(dictionary) -> bool:
        return [b.address if b is not None else None for b in dictionary.buffers()] == same_memory \
            or dictionary.equals(first)

    if not all(shares(chunk.dictionary) for chunk in column.chunks[1:]):
        return None
    codes = np.concatenate([chunk.indices.fill_null(-1).to_numpy() for chunk in column.chunks])
    try:  # from_codes checks the categories are distinct
        return pd.Categorical.from_codes(codes, categories=pd.Index(first.to_pandas()))
    except ValueError:
        return None


def _read_parquet(path: Path) -> pd.DataFrame:
    """``pd.read_parquet``, with categoricals rebuilt from their codes (see above)."""
    table = pq.read_table(path)
    fast = {name: _shared_dictionary_codes(table.column(name)) for name in table.column_names}
    fast = {name: values for name, values in fast.items() if values is not None}
    frame = table.drop_columns(list(fast)).to_pandas()  # pandas' metadata still sets the other dtypes
    for position, name in enumerate(n for n in table.column_names if n in fast or n in frame.columns):
        if name in fast:  # in its place, without copying the other columns
            frame.insert(position, name, fast[name])
    return frame


def read_table(path: Path, spec: TableSpec) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            frame = _read_parquet(path)
        else:
            # ids stay text: "00042" must not become 42
            frame = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise RetainError(f"{spec.name}: file {path} is empty (no header, no rows)") from None
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise RetainError(f"{spec.name}: cannot read {path}: {exc}") from None
    return frame


def _apply_mapping(frame: pd.DataFrame, spec: TableSpec, columns: dict, path: Path) -> pd.DataFrame:
    """Rename the user's columns to the contract's; a mapping to a column the file lacks is
    an error naming both, never silently ignored."""
    absent = {dst: src for dst, src in columns.items() if src not in frame.columns}
    if absent:
        dst, src = next(iter(absent.items()))
        raise RetainError(
            f"{spec.name}: the column mapping {spec.name}.{dst}={src} names column {src!r}, but {path.name} "
            f"has no such column; its columns are {list(frame.columns)}"
        )
    if not columns:
        return frame  # rename copies every column even when nothing changes
    return frame.rename(columns={src: dst for dst, src in columns.items()})


def load_dataset(
    folder: str | Path,
    *,
    mode: str = STRICT,
    mapping: dict | None = None,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
    date_format: str | None = None,
) -> Dataset:
    """Read and validate every table of a dataset folder.

    ``date_format`` (strptime, e.g. ``%d/%m/%Y``) reads dates that are not ISO 8601; without
    it, day/month order is taken from the data when a value over 12 settles it."""
    folder = Path(folder)
    if folder.is_file():
        raise RetainError(
            f"{folder} is a file; --data takes the dataset folder that holds transactions.csv or "
            f"transactions.parquet (here: --data {folder.parent})"
        )
    if not folder.is_dir():
        raise RetainError(f"dataset folder {folder} does not exist")
    mapping = mapping or {}
    frames: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        path = _find_table_file(folder, name, mapping)
        if path is None:
            if mapping.get(name, {}).get("columns"):
                raise RetainError(f"a column mapping names table {name}, but {folder} has no {name} file")
            if spec.required_table:
                raise RetainError(
                    f"{folder} has no {name}.parquet or {name}.csv; the {name} table is required"
                )
            continue
        frame = read_table(path, spec)
        frames[name] = _apply_mapping(frame, spec, mapping.get(name, {}).get("columns", {}), path)
    return validate_tables(frames, mode=mode, data_cutoff=data_cutoff, rejects_dir=rejects_dir,
                           date_format=date_format)


# --- validation --------------------------------------------------------------------


class _TableCheck:
    """Collects the problems of one table, the rows they make bad, and its facts. It also
    keeps what is known of each column once read (its Series, its integer codes, its parsed
    array): a check does not redo a pass another check has made (a hash pass over the ids, a
    Series made anew after every assignment to the frame)."""

    def __init__(self, spec: TableSpec, frame: pd.DataFrame):
        self.spec = spec
        given = list(frame.columns)
        keep = given if spec.open_columns else [c for c in spec.columns if c in frame.columns]
        # a shallow copy: every parsed column is assigned anew, the caller's frame is untouched
        # (selecting all columns by a list would copy them all)
        self.frame = (frame if keep == given else frame[keep]).copy(deep=False)
        self.names = set(keep)  # the columns of ``frame`` (a set answers faster than the frame)
        # columns put in as arrays by ``replace``: read back without making a Series of them
        self.arrays: dict[str, np.ndarray] = {}
        # each column's Series, read from the frame once (a frame forgets them at every assignment)
        self._columns: dict[str, pd.Series] = {}
        self.problems: list[Problem] = []
        self.facts: list[Fact] = []
        self._bad = np.zeros(len(frame), dtype=bool)
        self._reason: np.ndarray | None = None  # made at the first problem: most tables have none
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.stripped_ids: tuple | None = None  # ``_stripped_ids`` of ids coded with other tables' ids
        # per column, integers equal exactly where the parsed values are (row keys of duplicates)
        self._equal_codes: dict[str, np.ndarray] = {}

    def flag(self, mask: np.ndarray, column: str | None, reason: str, values=None) -> None:
        """``values``: the Series to take examples from, or a function giving it (called only
        when a row is flagged)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():  # the usual case: nothing to flag
            return
        # a row already rejected keeps its first reason and is not counted twice
        mask = mask & ~self._bad
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        examples = []
        if values is not None:
            values = values() if callable(values) else values
            examples = [values.iloc[i] for i in rows[:3]]
        self.problems.append(Problem(self.spec.name, column, reason, rows, examples))
        label = f"{column}: {reason}" if column else reason
        if self._reason is None:
            self._reason = np.full(len(self.frame), None, dtype=object)
        self._reason[rows] = label
        self._bad[rows] = True

    def note(self, count: int, column: str | None, what: str, unit: str = "row(s)", examples=()) -> None:
        if count:
            self.facts.append(Fact(self.spec.name, column, what, int(count), unit, list(examples)[:3]))

    @property
    def bad(self) -> np.ndarray:
        return self._bad

    @property
    def reason(self) -> np.ndarray:
        """Per row, the first problem found in it (None for good rows)."""
        return self._reason if self._reason is not None else np.full(len(self.frame), None, dtype=object)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """``_codes`` of the column as it now stands in the frame, computed once."""
        if column not in self._codes:
            self._codes[column] = _codes(self.column(column))
        return self._codes[column]

    def column(self, column: str) -> pd.Series:
        """The column as it now stands in the frame (parsed, once parsed)."""
        if column not in self._columns:
            self._columns[column] = self.frame[column]
        return self._columns[column]

    def array(self, column: str) -> np.ndarray:
        """The column's values as an array."""
        if column in self.arrays:
            return self.arrays[column]
        if column in self._columns:
            return self._columns[column].to_numpy()
        return np.asarray(column_array(self.frame, column))

    def share_codes(self, column: str, codes: np.ndarray, uniques: np.ndarray) -> None:
        """Codes of the column into distinct values that other tables' columns share."""
        self._codes[column] = (codes, uniques)

    def replace(self, column: str, values, equal_codes: np.ndarray | None = None) -> None:
        """Put a column's parsed values in place of the ones read (what was known of the old
        values is forgotten)."""
        position = self.frame.columns.get_loc(column)
        if isinstance(position, int):  # assigned by position: pandas does less bookkeeping
            self.frame.isetitem(position, values)
        else:
            self.frame[column] = values
        self._columns.pop(column, None)
        self._codes.pop(column, None)
        self._equal_codes.pop(column, None)
        if column == "customer_id":
            self.stripped_ids = None
        self.arrays.pop(column, None)
        if isinstance(values, np.ndarray):
            self.arrays[column] = values
        if equal_codes is not None:
            self._equal_codes[column] = equal_codes

    def equal_codes(self, column: str) -> np.ndarray | None:
        """Integers equal exactly where the column's values are (missing values equal each
        other), when already known; None otherwise."""
        if column in self._codes:
            return self._codes[column][0]
        return self._equal_codes.get(column)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing) and the distinct values: a categorical column's own
    codes, else one hash pass. Checks then run on the distinct values only."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), np.asarray(values.cat.categories, dtype=object)
    # a plain object column is hashed as its array: the same codes, without the Series' overhead
    codes, uniques = pd.factorize(values.to_numpy() if values.dtype == object else values, sort=False,
                                  use_na_sentinel=True)
    return codes, np.asarray(uniques)


# up to this many distinct values, text is stripped value by value (Arrow's arrays cost more)
_FEW_VALUES = 32


def _stripped(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values as text without surrounding white space, and which are empty.
    Returns ``uniques`` itself (no new strings) when no value had white space to strip."""
    if uniques.dtype != object or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        uniques = uniques.astype(str)  # ids written as numbers are still ids: 42 -> "42"
    if len(uniques) <= _FEW_VALUES and all(value.isascii() for value in uniques):
        # Python's strip removes the same ASCII white space as Arrow's (tested), with no arrays made
        trimmed = [value.strip() for value in uniques]
        empty = np.array([not value for value in trimmed], dtype=bool)
        if all(new == old for new, old in zip(trimmed, uniques)):
            return uniques, empty
        return np.array(trimmed, dtype=object), empty
    text = pa.array(uniques, type=pa.string())
    trimmed = pc.utf8_trim_whitespace(text)
    empty = pc.utf8_length(trimmed).to_numpy(zero_copy_only=False) == 0
    if trimmed.equals(text):  # trimming only removes characters: equal means nothing was trimmed
        return uniques, empty
    return np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object), empty


def _repeated_codes(codes: np.ndarray) -> np.ndarray:
    """Rows whose code (-1 = missing) occurred in an earlier row."""
    return pd.arrays.NumpyExtensionArray(codes).duplicated()


def _blank_codes(codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Rows missing, or empty after stripping white space, of the column with these codes
    (-1 = missing) and distinct values."""
    _, empty = _stripped(uniques)
    return (codes < 0) | np.append(empty, False)[codes]


def _parse_id(check: _TableCheck, column: str) -> None:
    raw = check.column(column)
    # strip the distinct values, not every row: a million ids repeat across many rows
    codes, uniques = check.codes(column)
    text, empty, changed = check.stripped_ids if check.stripped_ids is not None else _stripped_ids(uniques)
    check.flag((codes < 0) | np.append(empty, False)[codes], column, "have no value (ids must be non-empty)")
    if isinstance(raw.dtype, pd.CategoricalDtype):
        if changed is not None:
            stripped = pd.Index(text)
            # " a" and "a" are one customer: categories must stay distinct
            check.replace(column, raw.cat.rename_categories(stripped) if stripped.is_unique
                          else pd.Series(np.append(text, None)[codes], index=raw.index, dtype=object))
        return
    # the distinct values may be shared with other tables (``_code_text_ids``): look at this one's
    if changed is not None and changed[codes[codes >= 0]].any() or raw.dtype != object:
        check.replace(column, pd.Series(np.append(text, None)[codes], index=raw.index, dtype=object))


def _stripped_ids(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``_stripped`` of distinct ids, and which of them it changed (None when none)."""
    text, empty = _stripped(uniques)
    return text, empty, None if text is uniques else text != uniques


def _code_text_ids(checks: list[_TableCheck]) -> None:
    """The id columns held as strings, of all tables, coded together by one hash pass: the
    distinct ids are then stripped once for all tables, and an id of the interactions or
    churn events is found among the transactions' by its code. (Categorical ids have codes
    of their own.) The transactions come first, so their distinct ids keep their order."""
    text_ids = []
    for check in checks:
        if "customer_id" in check.names:
            ids = check.column("customer_id")
            if ids.dtype == object and pd.api.types.infer_dtype(ids.to_numpy(), skipna=True) == "string":
                text_ids.append((check, ids.to_numpy()))
    if len(text_ids) < 2:
        return  # a table alone is coded by its own checks
    codes, uniques = pd.factorize(np.concatenate([ids for _, ids in text_ids]), use_na_sentinel=True)
    stripped = _stripped_ids(uniques)
    end = 0
    for check, ids in text_ids:
        check.share_codes("customer_id", codes[end:end + len(ids)], uniques)
        check.stripped_ids = stripped
        end += len(ids)


_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_DAY_MONTH = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})\b"


_strip = np.frompyfunc(str.strip, 1, 1)  # str.strip of each string of an object array, in numpy's loop


def _stripped_text(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
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


# A date, or a date and time, with no time zone, in the years numpy's nanoseconds hold
# without overflow: numpy reads these exactly as pandas' ISO 8601 parser does
_PLAIN_ISO = re.compile(r"(?:1[7-9]\d\d|2[01]\d\d|22[0-5]\d)-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?")
# up to this many values, matching each against _PLAIN_ISO and letting numpy read them costs
# a tenth of pandas' parser (whose fixed cost per call is most of an HTTP request's dates)
_FEW_DATES = 256


def _parse_naive_iso(text: np.ndarray) -> np.ndarray | None:
    """ISO 8601 dates and datetimes (NaT where not ISO), or None when some carry a time zone."""
    if len(text) <= _FEW_DATES and all(value is None or isinstance(value, str) and _PLAIN_ISO.fullmatch(value)
                                       for value in text):
        try:
            return np.array(text, dtype="datetime64[ns]")
        except ValueError:
            pass  # not a calendar date (2023-02-30): pandas' parser makes it NaT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about mixed offsets; _parse_iso settles them
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    return parsed.to_numpy() if isinstance(parsed, pd.DatetimeIndex) and parsed.tz is None else None


def _parse_iso(text: np.ndarray) -> tuple[np.ndarray, int]:
    """ISO 8601 dates and datetimes, with or without a time zone; aware ones in UTC.
    Returns the naive-UTC values (NaT where not ISO) and how many rows carried a time zone."""
    values = _parse_naive_iso(text)
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


def _iso_dates(checks: list[_TableCheck]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Every date column held as text, of every table: per (table, column), its stripped text,
    which rows have a value, the values read as ISO 8601 (NaT where not) and how many rows
    carried a time zone. When none does, one call of pandas' parser reads all the columns:
    for the few rows of an HTTP request its fixed cost per call is most of the time."""
    texts = {}
    for check in checks:
        for column, kind in check.spec.columns.items():
            if kind == DATETIME and column in check.names:
                raw = check.column(column)
                if not pd.api.types.is_datetime64_any_dtype(raw):
                    texts[(check.spec.name, column)] = _stripped_text(raw)
    if len(texts) > 1:
        values = _parse_naive_iso(np.concatenate([text for text, _ in texts.values()]))
        if values is not None:
            ends = np.cumsum([len(text) for text, _ in texts.values()])
            return {key: (text, present, values[end - len(text):end], 0)
                    for (key, (text, present)), end in zip(texts.items(), ends)}
    return {key: (text, present, *_parse_iso(text)) for key, (text, present) in texts.items()}


def _day_month_order(check: _TableCheck, column: str, text: pd.Series) -> tuple[str | None, list]:
    """'%d' first or '%m' first for dates like 02/01/2023, when a value over 12 settles it."""
    parts = text.str.extract(_DAY_MONTH)
    numeric = parts[0].notna()
    if not numeric.any():
        return None, []
    first, second = parts[0][numeric].astype(int), parts[2][numeric].astype(int)
    day_first, month_first = (first > 12).any(), (second > 12).any()
    where = f"{check.spec.name}.{column}"
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


def _parse_datetime(check: _TableCheck, column: str, required: bool, date_format: str | None,
                    iso: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None) -> None:
    """``iso``: the column's text read by ``_iso_dates`` (None when it holds dates already)."""
    raw = check.column(column)
    if iso is None:
        parsed = raw
        if getattr(parsed.dt, "tz", None) is not None:
            check.note(int(parsed.notna().sum()), column, "carried a time zone and were converted to UTC")
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        values = parsed.to_numpy()
        present = ~np.isnat(values)
    else:
        text, present, values, zoned = iso
        check.note(zoned, column, "carried a time zone and were converted to UTC")
        unparsed = np.isnat(values) & present
        if unparsed.any():
            values, unparsed = _parse_other_dates(check, column, text, values, unparsed, date_format)
        check.flag(unparsed, column, "is not a parseable date", raw)
    if required:
        check.flag(~present, column, "has no value (a date is required)")
    if values.dtype == raw.dtype == "datetime64[ns]":
        return  # read as naive nanosecond dates: the column is kept as it is
    # numpy's unit change is a multiplication; pandas' astype also range-checks every value
    check.replace(column, values if values.dtype == "datetime64[ns]" else values.astype("datetime64[ns]"))


def _parse_other_dates(check: _TableCheck, column: str, text: np.ndarray, values: np.ndarray, unparsed: np.ndarray,
                       date_format: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The dates that are not ISO 8601 (``unparsed``) read with ``date_format``, or with the
    day/month order the data shows; returns all the values and which are still not dates."""
    text = pd.Series(text, dtype="string")
    parsed = pd.Series(values)
    rest = text[unparsed]
    if date_format:
        parsed[unparsed] = pd.to_datetime(rest, errors="coerce", format=date_format)
    else:
        order, examples = _day_month_order(check, column, rest)
        if order:
            check.note(int(unparsed.sum()), column,
                       f"read {'day' if order == '%d' else 'month'} first, as a value over 12 shows",
                       examples=examples)
        # not ISO: pandas' inference, told the day/month order when the data showed it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[unparsed] = pd.to_datetime(rest, errors="coerce", format="mixed", dayfirst=order == "%d")
    return parsed.to_numpy(), (parsed.isna() & text.notna()).to_numpy()


def _parse_float(check: _TableCheck, column: str, required: bool) -> None:
    values = check.array(column)
    raw = lambda: check.column(column)  # noqa: E731 - the Series, made only for a problem's examples
    if values.dtype != np.float64:  # float64: already numbers, nothing to convert, the column is kept
        raw = check.column(column)
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            parsed = raw.astype(float)
        else:
            parsed = pd.to_numeric(raw, errors="coerce").astype(float)
            check.flag((parsed.isna() & raw.notna()).to_numpy(), column, "is not a number", raw)
        values = parsed.to_numpy()
        check.replace(column, parsed)
    check.flag(np.isinf(values), column, "is infinite", raw)
    if required:
        check.flag(np.isnan(values), column, "has no value (a number is required)")


def _parse_bool(check: _TableCheck, column: str) -> None:
    raw = check.column(column)
    if pd.api.types.is_bool_dtype(raw):
        if not isinstance(raw.dtype, pd.BooleanDtype):
            check.replace(column, raw.astype("boolean"))
        return
    # a flag column holds a handful of distinct values: read each once
    codes, uniques = _codes(raw)
    words = [str(value).strip().lower() for value in uniques]
    meaning = np.array([1 if w in _TRUE else 0 if w in _FALSE else -1 for w in words] + [-2], dtype=np.int8)[codes]
    check.flag(meaning == -1, column, "is not true/false", raw)
    missing = meaning < 0
    check.replace(column, pd.arrays.BooleanArray(meaning == 1, missing),
                  equal_codes=np.where(missing, -1, meaning).astype(np.int64))


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{spec.name}: required column(s) {missing} missing; the file has "
            f"{list(frame.columns)}. Rename them in the file, or map them with "
            f"--column {spec.name}.{missing[0]}=YOUR_NAME or a mapping file."
        )
    if len(frame) == 0:  # (it has columns: the required ones)
        raise DataValidationError(f"{spec.name}: the table has a header but no rows")


def _key_part(check: _TableCheck, column: str) -> np.ndarray | None:
    """Integers equal where the column's values are equal (missing equal to missing), when
    they come without a hash pass: codes the checks already made, categories, dates and
    numbers. None for a column that would need one."""
    part = check.equal_codes(column)
    if part is not None:
        return part
    values = check.arrays.get(column)
    if values is None:
        values = column_array(check.frame, column)
        if not isinstance(values, np.ndarray):  # pandas' own types: their Series answers
            values = check.column(column)
    if isinstance(values.dtype, np.dtype):  # its kind answers (pandas' dtype checks cost more than the part)
        kind, array = values.dtype.kind, values if isinstance(values, np.ndarray) else values.to_numpy()
        if kind == "M":
            return array.view(np.int64)
        if kind == "f":
            return (np.asarray(array, dtype=float) + 0.0).view(np.int64)  # + 0.0 makes -0.0 equal 0.0
        if kind in ("i", "u"):
            return array.astype(np.int64)
        return None
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.to_numpy().view(np.int64)
    if pd.api.types.is_float_dtype(values):
        return (values.to_numpy(dtype=float) + 0.0).view(np.int64)
    if pd.api.types.is_integer_dtype(values) and not values.hasnans:
        return values.to_numpy(dtype=np.int64)
    return None


def _with_part(key: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Row keys extended by one more column's integers (different rows may collide; numpy
    wraps an array's integer overflow silently)."""
    return key * np.uint64(1_000_003) + part.astype(np.uint64)


def _shared_keys(key: np.ndarray) -> np.ndarray:
    """Positions whose key occurs more than once."""
    # the array's own duplicated: a Series' hashes the same, with the cost of two Series
    return np.flatnonzero(pd.arrays.NumpyExtensionArray(key).duplicated(keep=False))


def _duplicates(check: _TableCheck, columns: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Of ``rows`` (default all), those equal in ``columns`` to an earlier one (pandas'
    ``duplicated``). Rows are compared exactly only among the few whose 64-bit keys repeat;
    the keys are made from the columns whose integers come cheap, then, for those few rows
    only, from the columns that need a hash pass (text that no check has coded)."""
    key = np.zeros(len(check.frame) if rows is None else len(rows), dtype=np.uint64)
    hashed = []
    for column in columns:
        part = _key_part(check, column)
        if part is None:
            hashed.append(column)
        else:
            key = _with_part(key, part if rows is None else part[rows])
    candidates = _shared_keys(key)
    if candidates.size and hashed:
        where = candidates if rows is None else rows[candidates]
        narrowed = key[candidates]
        for column in hashed:
            narrowed = _with_part(narrowed, pd.factorize(check.column(column).iloc[where], use_na_sentinel=True)[0])
        candidates = candidates[_shared_keys(narrowed)]
    duplicate = np.zeros(len(key), dtype=bool)
    if candidates.size:
        where = candidates if rows is None else rows[candidates]
        duplicate[candidates] = check.frame.iloc[where].duplicated(subset=columns).to_numpy()
    return duplicate


def _shared_values(values: pd.Series) -> np.ndarray:
    """Rows whose value occurs more than once. Integer ids in a dense range (order numbers
    usually are) are counted directly, without a hash table."""
    if pd.api.types.is_integer_dtype(values) and len(values):
        numbers = values.to_numpy(dtype=np.int64)
        low, high = int(numbers.min()), int(numbers.max())
        if high - low < 4 * len(numbers) + 1024:
            counts = np.bincount(numbers - low)
            return counts[numbers - low] > 1
    return values.duplicated(keep=False).to_numpy()


def _check_duplicates(check: _TableCheck) -> None:
    """Identical rows with nothing to tell them apart are kept (two identical orders on one
    day happen); the same order_id twice is the same order twice, a defect."""
    frame = check.frame
    columns = [c for c in check.spec.columns if c in check.names]
    without_order = None  # every row
    if "order_id" in check.names:
        order = check.column("order_id")
        codes = None  # of the order_ids, when text
        if pd.api.types.is_numeric_dtype(order):
            has_order = order.notna().to_numpy()
            shared = _shared_values(order)
        else:
            codes, uniques = check.codes("order_id")
            has_order = ~_blank_codes(codes, uniques)
            # rows whose order_id occurs more than once, counted on the codes already made
            shared = (np.bincount(codes + 1, minlength=len(uniques) + 1) > 1)[codes + 1]
        # only rows sharing an order_id with another row can be either defect
        shared = np.flatnonzero(shared & has_order & ~check.bad)
        exact = np.zeros(len(frame), dtype=bool)
        if shared.size:  # most inputs share no order_id at all
            exact[shared] = _duplicates(check, columns, shared)
        check.flag(exact, "order_id", "duplicate an earlier row exactly, order_id included (the same order twice)",
                   order)
        # a return may carry the order_id of the purchase it refunds; two purchases may not share one
        purchases = shared[(check.array("amount")[shared] >= 0) & ~check.bad[shared]]
        repeated = np.zeros(len(frame), dtype=bool)
        if purchases.size:
            repeated[purchases] = (order.iloc[purchases].duplicated().to_numpy() if codes is None
                                   else _repeated_codes(codes[purchases]))
        check.flag(repeated, "order_id", "repeat the order_id of an earlier purchase (one row per order: "
                   "sum the lines of an order first)", order)
        without_order = np.flatnonzero(~has_order)
        if len(without_order) == len(frame):
            without_order = None
    if without_order is None:
        duplicate = _duplicates(check, columns)
    else:
        duplicate = np.zeros(len(frame), dtype=bool)
        if len(without_order):
            duplicate[without_order] = _duplicates(check, columns, without_order)
    check.note(int((duplicate & ~check.bad).sum()), None, "duplicate an earlier row exactly and have no order_id "
               "to tell them apart: kept, counted as separate events")


def _check_table(check: _TableCheck, frame: pd.DataFrame, cutoff: pd.Timestamp, date_format: str | None,
                 iso_dates: dict) -> None:
    """The checks of one table (``frame`` as given); ``iso_dates``: ``_iso_dates`` of all."""
    spec = check.spec
    _check_columns(spec, frame)
    for column, kind in spec.columns.items():
        if column not in check.names:
            continue
        required = column in spec.required
        if kind == ID:
            _parse_id(check, column)
        elif kind == DATETIME:
            _parse_datetime(check, column, required, date_format, iso_dates.get((spec.name, column)))
        elif kind == FLOAT:
            _parse_float(check, column, required)
        elif kind == BOOL:
            _parse_bool(check, column)
        elif kind == TEXT and required:
            check.flag(_blank_codes(*check.codes(column)), column, "has no value")
    if spec.time_column:
        check.flag(
            check.array(spec.time_column) > np.datetime64(cutoff),
            spec.time_column,
            f"are dated after the data cutoff {cutoff.date()} (events in the future)",
            lambda: check.column(spec.time_column),
        )
        _check_duplicates(check)


def _check_transactions(check: _TableCheck) -> None:
    frame = check.frame
    if "discount" in check.names:
        discount = check.column("discount")  # numbers by now: compared as an array
        check.flag(discount.to_numpy() < 0, "discount", "is negative", discount)
    if check.bad.any():
        good = frame.loc[~check.bad, ["customer_id", "timestamp", "amount"]]
        only_returns = np.asarray(customers_with_only_returns(good), dtype=object)
    else:  # every row counts: the id codes made while checking the ids serve
        codes, ids = check.codes("customer_id")
        only_returns = _only_returns(codes, ids, check.array("amount"), codes >= 0)
    check.note(len(only_returns), "customer_id", "have only returns (negative amounts) and no purchase: kept, "
               "not scored (reason 'only returns before as_of')", unit="customer(s)", examples=only_returns[:3])


def _check_interactions(check: _TableCheck) -> None:
    if "resolution_hours" in check.names:
        hours = check.column("resolution_hours")  # numbers by now: compared as an array
        check.flag(hours.to_numpy() < 0, "resolution_hours", "is negative", hours)
    if "satisfaction" in check.names:
        score = check.column("satisfaction")
        values = score.to_numpy(dtype=float)
        on_scale = np.isnan(values)
        for level in SATISFACTION_LEVELS:  # seven comparisons beat a generic isin on millions of rows
            on_scale |= values == level
        check.flag(
            ~on_scale,
            "satisfaction",
            f"is not on the 7-level scale {list(SATISFACTION_LEVELS)}",
            score,
        )


def _known_customers(check: _TableCheck) -> tuple[_TableCheck, np.ndarray]:
    """The transactions' check and, per distinct id, whether it has at least one good row."""
    codes, uniques = check.codes("customer_id")
    return check, np.bincount(codes[(codes >= 0) & ~check.bad], minlength=len(uniques)) > 0


def _flag_unknown_customers(check: _TableCheck, known: tuple[_TableCheck, np.ndarray]) -> None:
    transactions, has_row = known
    known_ids = transactions.column("customer_id")
    ids = check.column("customer_id")
    codes, uniques = check.codes("customer_id")  # look up each distinct id once
    if (isinstance(ids.dtype, pd.CategoricalDtype) and isinstance(known_ids.dtype, pd.CategoricalDtype)
            and ids.cat.categories.equals(known_ids.cat.categories)):
        found = has_row  # tables written together share their categories: no lookup needed
    elif isinstance(known_ids.dtype, pd.CategoricalDtype):
        # the categories' hash table is already built (Categorical checked them): look up in it
        position = known_ids.cat.categories.get_indexer(uniques)
        found = (position >= 0) & np.append(has_row, False)[position]
    elif uniques is transactions.codes("customer_id")[1]:
        found = has_row  # coded together with the transactions' ids (``_code_text_ids``)
    else:
        found = pd.Index(uniques).isin(transactions.codes("customer_id")[1][has_row])
    unknown = ~np.append(found, False)[codes] & ~check.bad
    check.flag(unknown, "customer_id", "name customers with no transaction", ids)


def validate_tables(
    frames: dict[str, pd.DataFrame],
    *,
    mode: str = STRICT,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
    date_format: str | None = None,
) -> Dataset:
    """Check in-memory tables against the contract; see the module docstring."""
    if mode not in (STRICT, LENIENT):
        raise RetainError(f"validation mode must be {STRICT!r} or {LENIENT!r}, not {mode!r}")
    if "transactions" not in frames:
        raise RetainError("the transactions table is required")
    cutoff = pd.Timestamp(data_cutoff) if data_cutoff is not None else pd.Timestamp.now()
    checks = {name: _TableCheck(TABLES[name], frames[name]) for name in TABLES if name in frames}
    iso_dates = _iso_dates(list(checks.values()))
    _code_text_ids(list(checks.values()))
    for name, check in checks.items():
        _check_table(check, frames[name], cutoff, date_format, iso_dates)
    _check_transactions(checks["transactions"])
    tx = checks["transactions"]
    known = _known_customers(tx)
    if "customers" in checks:
        customers = checks["customers"]
        dup = _repeated_codes(customers.codes("customer_id")[0])
        customers.flag(dup, "customer_id", "repeat a customer already listed")
    if "interactions" in checks:
        _check_interactions(checks["interactions"])
        _flag_unknown_customers(checks["interactions"], known)
    if "churn_events" in checks:
        events = checks["churn_events"]
        _flag_unknown_customers(events, known)
        repeated = _repeated_codes(events.codes("customer_id")[0]) & ~events.bad
        events.flag(repeated, "customer_id", "are a second churn event for the same customer")

    report = ValidationReport(
        problems=[p for c in checks.values() for p in c.problems],
        rows_read={name: len(c.frame) for name, c in checks.items()},
        facts=[f for c in checks.values() for f in c.facts],
    )
    if not report.ok and mode == STRICT:
        raise DataValidationError(
            "the data breaks the contract (docs/data-contract.md):\n"
            + report.text()
            + "\nFix the rows, or run with --lenient to set them aside in a rejects file."
        )
    clean: dict[str, pd.DataFrame] = {}
    for name, check in checks.items():
        bad = check.bad
        report.rows_rejected[name] = int(bad.sum())
        if bad.any():
            if rejects_dir is None:
                raise RetainError("lenient mode needs a rejects folder to write set-aside rows to")
            report.rejects_dir = Path(rejects_dir)
            report.rejects_dir.mkdir(parents=True, exist_ok=True)
            rejected = frames[name].loc[bad].copy()
            rejected.insert(0, "row", np.flatnonzero(bad) + 1)
            rejected.insert(1, "reason", check.reason[bad])
            rejected.to_csv(report.rejects_dir / f"{name}.rejects.csv", index=False)
            clean[name] = check.frame.loc[~bad].reset_index(drop=True)
        else:
            clean[name] = check.frame
    return Dataset(
        transactions=clean["transactions"],
        customers=clean.get("customers"),
        interactions=clean.get("interactions"),
        churn_events=clean.get("churn_events"),
        report=report,
    )
