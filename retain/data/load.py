"""Reading a dataset folder and checking it against the data contract.

Every problem is reported with its table, column, row numbers (1-based data rows, the
header not counted) and a count. ``strict`` fails with that report; ``lenient`` drops
the bad rows into a rejects file with one reason per row. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_rejected: dict[str, int] = field(default_factory=dict)
    rejects_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            return "no problems found"
        return "\n".join("- " + p.describe() for p in self.problems)

    def summary(self) -> str:
        parts = [
            f"{t}: {n} rows read, {self.rows_rejected.get(t, 0)} rejected"
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


def read_table(path: Path, spec: TableSpec) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            # ids stay text: "00042" must not become 42
            frame = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise RetainError(f"{spec.name}: file {path} is empty (no header, no rows)") from None
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise RetainError(f"{spec.name}: cannot read {path}: {exc}") from None
    return frame


def load_dataset(
    folder: str | Path,
    *,
    mode: str = STRICT,
    mapping: dict | None = None,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
) -> Dataset:
    """Read and validate every table of a dataset folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetainError(f"dataset folder {folder} does not exist")
    mapping = mapping or {}
    frames: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        path = _find_table_file(folder, name, mapping)
        if path is None:
            if spec.required_table:
                raise RetainError(
                    f"{folder} has no {name}.parquet or {name}.csv; the {name} table is required"
                )
            continue
        frame = read_table(path, spec)
        columns = mapping.get(name, {}).get("columns", {})
        frames[name] = frame.rename(columns={src: dst for dst, src in columns.items()})
    return validate_tables(frames, mode=mode, data_cutoff=data_cutoff, rejects_dir=rejects_dir)


# --- validation --------------------------------------------------------------------


class _TableCheck:
    """Collects the problems of one table and the rows they make bad."""

    def __init__(self, spec: TableSpec, frame: pd.DataFrame):
        self.spec = spec
        self.frame = frame
        self.problems: list[Problem] = []
        self.reason = np.full(len(frame), None, dtype=object)

    def flag(self, mask: np.ndarray, column: str | None, reason: str, values=None) -> None:
        mask = np.asarray(mask, dtype=bool)
        # a row already rejected keeps its first reason and is not counted twice
        mask &= pd.isna(self.reason)
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        examples = []
        if values is not None:
            examples = [values.iloc[i] for i in rows[:3]]
        self.problems.append(Problem(self.spec.name, column, reason, rows, examples))
        label = f"{column}: {reason}" if column else reason
        self.reason[rows] = label

    @property
    def bad(self) -> np.ndarray:
        return ~pd.isna(self.reason)


def _parse_id(check: _TableCheck, column: str) -> None:
    raw = check.frame[column]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        parsed = raw.cat.rename_categories(raw.cat.categories.astype(str).str.strip())
        missing = parsed.isna().to_numpy() | (parsed == "").to_numpy()
    else:
        parsed = raw.astype("string").str.strip()
        missing = (parsed.isna() | (parsed == "")).to_numpy()
        parsed = parsed.astype(object)
    check.flag(missing, column, "have no value (ids must be non-empty)")
    check.frame[column] = parsed


def _parse_datetime(check: _TableCheck, column: str, required: bool) -> None:
    raw = check.frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype("string")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        unparsed = parsed.isna() & text.notna()
        if unparsed.any():
            # not ISO: give pandas' own inference one chance before calling it bad
            parsed[unparsed] = pd.to_datetime(text[unparsed], errors="coerce", format="mixed")
        check.flag(
            (parsed.isna() & text.notna()).to_numpy(), column, "is not a parseable date", raw
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if required:
        check.flag(raw.isna().to_numpy(), column, "has no value (a date is required)")
    check.frame[column] = parsed.astype("datetime64[ns]")


def _parse_float(check: _TableCheck, column: str, required: bool) -> None:
    raw = check.frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        parsed = raw.astype(float)
    else:
        parsed = pd.to_numeric(raw, errors="coerce").astype(float)
        check.flag((parsed.isna() & raw.notna()).to_numpy(), column, "is not a number", raw)
    check.flag(np.isinf(parsed.to_numpy()), column, "is infinite", raw)
    if required:
        check.flag(raw.isna().to_numpy(), column, "has no value (a number is required)")
    check.frame[column] = parsed


def _parse_bool(check: _TableCheck, column: str) -> None:
    raw = check.frame[column]
    if pd.api.types.is_bool_dtype(raw):
        check.frame[column] = raw.astype("boolean")
        return
    text = raw.astype("string").str.strip().str.lower()
    parsed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    parsed[text.isin(_TRUE)] = True
    parsed[text.isin(_FALSE)] = False
    check.flag(
        (parsed.isna() & text.notna()).to_numpy(), column, "is not true/false", raw
    )
    check.frame[column] = parsed


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{spec.name}: required column(s) {missing} missing; the file has "
            f"{list(frame.columns)}. Rename them in the file, or map them with "
            f"--column {spec.name}.{missing[0]}=YOUR_NAME or a mapping file."
        )
    if frame.empty:
        raise DataValidationError(f"{spec.name}: the table has a header but no rows")


def _check_table(spec: TableSpec, frame: pd.DataFrame, cutoff: pd.Timestamp) -> _TableCheck:
    _check_columns(spec, frame)
    keep = list(frame.columns) if spec.open_columns else [c for c in spec.columns if c in frame]
    check = _TableCheck(spec, frame[keep].copy())
    for column, kind in spec.columns.items():
        if column not in check.frame:
            continue
        required = column in spec.required
        if kind == ID:
            _parse_id(check, column)
        elif kind == DATETIME:
            _parse_datetime(check, column, required)
        elif kind == FLOAT:
            _parse_float(check, column, required)
        elif kind == BOOL:
            _parse_bool(check, column)
        elif kind == TEXT and required:
            text = check.frame[column].astype("string").str.strip()
            check.flag((text.isna() | (text == "")).to_numpy(), column, "has no value")
    if spec.time_column:
        when = check.frame[spec.time_column]
        check.flag(
            (when > cutoff).to_numpy(),
            spec.time_column,
            f"are dated after the data cutoff {cutoff.date()} (events in the future)",
            when,
        )
        dup = check.frame.duplicated(subset=list(spec.columns.keys() & set(check.frame)))
        check.flag(dup.to_numpy(), None, "duplicate an earlier row exactly")
    return check


def _check_transactions(check: _TableCheck) -> None:
    frame = check.frame
    if "discount" in frame:
        check.flag((frame["discount"] < 0).to_numpy(), "discount", "is negative", frame["discount"])
    good = ~check.bad
    ids = frame["customer_id"]
    has_purchase = (frame["amount"][good] >= 0).groupby(ids[good], observed=True).any()
    only_returns = has_purchase.index[~has_purchase.to_numpy()]
    if len(only_returns):
        check.flag(
            (ids.isin(only_returns).to_numpy() & good),
            "customer_id",
            "belong to customers with only returns (negative amounts) and no purchase",
            ids,
        )


def _check_interactions(check: _TableCheck) -> None:
    frame = check.frame
    if "resolution_hours" in frame:
        hours = frame["resolution_hours"]
        check.flag((hours < 0).to_numpy(), "resolution_hours", "is negative", hours)
    if "satisfaction" in frame:
        score = frame["satisfaction"]
        off_scale = score.notna() & ~score.isin(SATISFACTION_LEVELS)
        check.flag(
            off_scale.to_numpy(),
            "satisfaction",
            f"is not on the 7-level scale {list(SATISFACTION_LEVELS)}",
            score,
        )


def _flag_unknown_customers(check: _TableCheck, known: pd.Index) -> None:
    ids = check.frame["customer_id"]
    unknown = ~ids.isin(known).to_numpy() & ~check.bad
    check.flag(unknown, "customer_id", "name customers with no transaction", ids)


def validate_tables(
    frames: dict[str, pd.DataFrame],
    *,
    mode: str = STRICT,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
) -> Dataset:
    """Check in-memory tables against the contract; see the module docstring."""
    if mode not in (STRICT, LENIENT):
        raise RetainError(f"validation mode must be {STRICT!r} or {LENIENT!r}, not {mode!r}")
    if "transactions" not in frames:
        raise RetainError("the transactions table is required")
    cutoff = pd.Timestamp(data_cutoff) if data_cutoff is not None else pd.Timestamp.now()
    checks: dict[str, _TableCheck] = {}
    for name in TABLES:
        if name in frames:
            checks[name] = _check_table(TABLES[name], frames[name], cutoff)
    _check_transactions(checks["transactions"])
    tx = checks["transactions"]
    known = pd.Index(tx.frame["customer_id"][~tx.bad].unique())
    if "customers" in checks:
        customers = checks["customers"]
        dup = customers.frame.duplicated(subset=["customer_id"]).to_numpy()
        customers.flag(dup, "customer_id", "repeat a customer already listed")
    if "interactions" in checks:
        _check_interactions(checks["interactions"])
        _flag_unknown_customers(checks["interactions"], known)
    if "churn_events" in checks:
        events = checks["churn_events"]
        _flag_unknown_customers(events, known)
        repeated = events.frame["customer_id"].duplicated().to_numpy() & ~events.bad
        events.flag(repeated, "customer_id", "are a second churn event for the same customer")

    report = ValidationReport(
        problems=[p for c in checks.values() for p in c.problems],
        rows_read={name: len(c.frame) for name, c in checks.items()},
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
