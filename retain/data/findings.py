"""What validation finds: *problems* (defects: a row that breaks the contract) and *facts*
(ordinary features of real exports, kept and counted), the report of both, and
``TableCheck``, which collects them for one table while its columns are checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retain.data import parse
from retain.data.contract import TableSpec
from retain.data.frames import column_array

_SHOWN_ROWS = 5


@dataclass
class Problem:
    """A defect: rows of one table (or one column) that break the contract for one reason."""

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
    """Every problem and fact of the tables checked together, and the rows read and rejected."""

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


class TableCheck:
    """Collects the problems of one table, the rows they make bad, and its facts. It also
    keeps what is known of each column once read (its Series, its integer codes, its parsed
    array): a check does not redo a pass another check has made (a hash pass over the ids, a
    Series made anew after every assignment to the frame)."""

    def __init__(self, spec: TableSpec, frame: pd.DataFrame, guest_sales: bool = False):
        self.spec = spec
        # rows without a customer id are guest sales (set aside, counted), not defects
        self.guest_sales = guest_sales
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
        # rows kept out of the clean table without being defects (guest sales): no check flags them
        self._aside = np.zeros(len(frame), dtype=bool)
        self._reason: np.ndarray | None = None  # made at the first problem: most tables have none
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.stripped_ids: tuple | None = None  # ``parse.stripped_ids`` of ids coded with other tables' ids
        # per column, integers equal exactly where the parsed values are (row keys of duplicates)
        self._equal_codes: dict[str, np.ndarray] = {}

    def flag(self, mask: np.ndarray, column: str | None, reason: str, values=None) -> None:
        """``values``: the Series to take examples from, or a function giving it (called only
        when a row is flagged)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():  # the usual case: nothing to flag
            return
        # a row already rejected keeps its first reason and is not counted twice
        mask = mask & ~self._bad & ~self._aside
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

    def set_aside(self, mask: np.ndarray) -> None:
        """Keep these rows out of the clean table, without calling them defects (the caller
        notes the fact)."""
        self._aside |= np.asarray(mask, dtype=bool)

    @property
    def bad(self) -> np.ndarray:
        return self._bad

    @property
    def aside(self) -> np.ndarray:
        return self._aside

    @property
    def dropped(self) -> np.ndarray:
        """Rows not in the clean table: defects and rows set aside."""
        return self._bad | self._aside

    @property
    def reason(self) -> np.ndarray:
        """Per row, the first problem found in it (None for good rows)."""
        return self._reason if self._reason is not None else np.full(len(self.frame), None, dtype=object)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """``parse.codes`` of the column as it now stands in the frame, computed once."""
        if column not in self._codes:
            self._codes[column] = parse.codes(self.column(column))
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

