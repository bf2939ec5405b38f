"""Checking tables against the data contract (docs/data-contract.md).

Two kinds of findings (``retain.data.findings``). A *problem* is a defect (a date that is not
a date, the same order twice): it is reported with its table, column, row numbers (1-based
data rows, the header not counted) and a count; ``strict`` fails with that report,
``lenient`` sets the bad rows aside in a rejects file with one reason per row. A *fact* is an
ordinary feature of real exports (two identical orders on one day, a customer with only
returns, time zones): the rows are kept and the fact is counted in the report. Guest sales
(transactions without a customer id, in a dataset folder) are counted and kept out of every
customer's table. Nothing is dropped silently. A line-item export's lines are checked as
transactions, then summed into orders (``retain.data.line_items``). Text is read into the contract's kinds by ``retain.data.parse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retain.data import parse
from retain.data.contract import (
    BOOL,
    DATETIME,
    FLOAT,
    ID,
    SATISFACTION_LEVELS,
    TABLES,
    TEXT,
    TRANSACTION_LINES,
    TableSpec,
)
from retain.data.findings import Fact, TableCheck, ValidationReport
from retain.data.frames import column_array
from retain.data.line_items import is_line_items, line_amounts, orders_from_lines
from retain.errors import DataValidationError, RetainError

STRICT = "strict"
LENIENT = "lenient"


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
    codes, ids = parse.codes(transactions["customer_id"])
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


# --- ids ------------------------------------------------------------------------------------


def _check_ids(check: TableCheck, column: str) -> None:
    """Ids must be non-empty; they are kept as text stripped of surrounding white space."""
    raw = check.column(column)
    # strip the distinct values, not every row: a million ids repeat across many rows
    codes, uniques = check.codes(column)
    text, empty, changed = check.stripped_ids if check.stripped_ids is not None else parse.stripped_ids(uniques)
    blank = (codes < 0) | np.append(empty, False)[codes]
    if check.guest_sales:
        check.set_aside(blank)  # guest sales: noted with their orders and money by ``_note_guest_sales``
    else:
        check.flag(blank, column, "have no value (ids must be non-empty)")
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


def _code_text_ids(checks: list[TableCheck]) -> None:
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
    stripped = parse.stripped_ids(uniques)
    end = 0
    for check, ids in text_ids:
        check.share_codes("customer_id", codes[end:end + len(ids)], uniques)
        check.stripped_ids = stripped
        end += len(ids)


# --- dates, numbers, flags ---------------------------------------------------------------------


def _iso_dates(checks: list[TableCheck]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """``parse.iso_dates`` of every date column held as text, of every table, by (table, column):
    read together, so that the few rows of an HTTP request are parsed in one call."""
    texts = {}
    for check in checks:
        for column, kind in check.spec.columns.items():
            if kind == DATETIME and column in check.names:
                raw = check.column(column)
                if not pd.api.types.is_datetime64_any_dtype(raw):
                    texts[(check.spec.name, column)] = raw
    return parse.iso_dates(texts)


def _check_dates(check: TableCheck, column: str, required: bool, date_format: str | None,
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
            not_iso = int(unparsed.sum())
            values, unparsed, order, examples = parse.parse_other_dates(
                text, values, unparsed, date_format, where=f"{check.spec.name}.{column}")
            if order:
                check.note(not_iso, column, f"read {'day' if order == '%d' else 'month'} first, as a value over 12 shows",
                           examples=examples)
        check.flag(unparsed, column, "is not a parseable date", raw)
    if required:
        check.flag(~present, column, "has no value (a date is required)")
    if values.dtype == raw.dtype == "datetime64[ns]":
        return  # read as naive nanosecond dates: the column is kept as it is
    # numpy's unit change is a multiplication; pandas' astype also range-checks every value
    check.replace(column, values if values.dtype == "datetime64[ns]" else values.astype("datetime64[ns]"))


def _check_numbers(check: TableCheck, column: str, required: bool) -> None:
    values = check.array(column)
    raw = lambda: check.column(column)  # noqa: E731 - the Series, made only for a problem's examples
    if values.dtype != np.float64:  # float64: already numbers, nothing to convert, the column is kept
        raw = check.column(column)
        parsed, not_a_number = parse.parse_numbers(raw)
        if not_a_number is not None:
            check.flag(not_a_number, column, "is not a number", raw)
        values = parsed.to_numpy()
        check.replace(column, parsed)
    check.flag(np.isinf(values), column, "is infinite", raw)
    if required:
        check.flag(np.isnan(values), column, "has no value (a number is required)")


def _check_flags(check: TableCheck, column: str) -> None:
    raw = check.column(column)
    if pd.api.types.is_bool_dtype(raw):
        if not isinstance(raw.dtype, pd.BooleanDtype):
            check.replace(column, raw.astype("boolean"))
        return
    meaning = parse.flag_meanings(raw)
    check.flag(meaning == parse.NOT_A_FLAG, column, "is not true/false", raw)
    missing = meaning < 0
    check.replace(column, pd.arrays.BooleanArray(meaning == 1, missing),
                  equal_codes=np.where(missing, -1, meaning).astype(np.int64))


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        if spec.lines:
            layout = (" A line-item export (one row per product line) gives quantity and unit_price in place "
                      "of amount, and the order_id (invoice number) that groups an order's lines.")
        elif spec.name == "transactions" and "amount" in missing:
            layout = (" For one row per product line, map quantity and unit_price instead of amount "
                      "(docs/data-contract.md, 'Line-item exports').")
        else:
            layout = ""
        raise DataValidationError(
            f"{spec.name}: required column(s) {missing} missing; the file has "
            f"{list(frame.columns)}. Rename them in the file, or map them with "
            f"--column {spec.name}.{missing[0]}=YOUR_NAME or a mapping file.{layout}"
        )
    if len(frame) == 0:  # (it has columns: the required ones)
        raise DataValidationError(f"{spec.name}: the table has a header but no rows")


# --- duplicates ---------------------------------------------------------------------------------


def _repeated_codes(codes: np.ndarray) -> np.ndarray:
    """Rows whose code (-1 = missing) occurred in an earlier row."""
    return pd.arrays.NumpyExtensionArray(codes).duplicated()


def _key_part(check: TableCheck, column: str) -> np.ndarray | None:
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


def _duplicates(check: TableCheck, columns: list[str], rows: np.ndarray | None = None) -> np.ndarray:
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


def _check_lines(check: TableCheck) -> None:
    """An order's lines share its order_id, and identical lines inside one order are ordinary
    (the same product scanned twice); an order_id whose lines name two customers is a defect."""
    columns = [c for c in check.spec.columns if c in check.names]
    duplicate = _duplicates(check, columns)
    check.note(int((duplicate & ~check.dropped).sum()), None, "repeat an earlier line of the same order in every "
               "contract column: kept and summed (the same product scanned twice, or two products of one price)")
    orders, customers = check.codes("order_id")[0], check.codes("customer_id")[0]
    kept = ~check.dropped
    pairs = pd.DataFrame({"order": orders[kept], "customer": customers[kept]}).drop_duplicates()
    shared = pairs["order"][pairs["order"].duplicated()].unique()
    if len(shared):
        check.flag(np.isin(orders, shared) & kept, "order_id", "are lines of an order whose lines name more "
                   "than one customer", check.column("order_id"))


def _check_duplicates(check: TableCheck) -> None:
    """Identical rows with nothing to tell them apart are kept (two identical orders on one
    day happen); the same order_id twice is the same order twice, a defect."""
    if check.spec.lines:
        _check_lines(check)
        return
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
            has_order = ~parse.blank_codes(codes, uniques)
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
    check.note(int((duplicate & ~check.dropped).sum()), None, "duplicate an earlier row exactly and have no order_id "
               "to tell them apart: kept, counted as separate events")


# --- the tables -------------------------------------------------------------------------------


def _check_table(check: TableCheck, frame: pd.DataFrame, cutoff: pd.Timestamp, date_format: str | None,
                 iso_dates: dict) -> None:
    """The checks of one table (``frame`` as given); ``iso_dates``: ``_iso_dates`` of all."""
    spec = check.spec
    _check_columns(spec, frame)
    for column, kind in spec.columns.items():
        if column not in check.names:
            continue
        required = column in spec.required
        if kind == ID:
            _check_ids(check, column)
        elif kind == DATETIME:
            _check_dates(check, column, required, date_format, iso_dates.get((spec.name, column)))
        elif kind == FLOAT:
            _check_numbers(check, column, required)
        elif kind == BOOL:
            _check_flags(check, column)
        elif kind == TEXT and required:
            check.flag(parse.blank_codes(*check.codes(column)), column, "has no value")
    if spec.time_column:
        check.flag(
            check.array(spec.time_column) > np.datetime64(cutoff),
            spec.time_column,
            f"are dated after the data cutoff {cutoff.date()} (events in the future)",
            lambda: check.column(spec.time_column),
        )
        _check_duplicates(check)


def _check_transactions(check: TableCheck) -> None:
    frame = check.frame
    if "discount" in check.names:
        discount = check.column("discount")  # numbers by now: compared as an array
        check.flag(discount.to_numpy() < 0, "discount", "is negative", discount)
    if check.dropped.any():
        good = frame.loc[~check.dropped, ["customer_id", "timestamp", "amount"]]
        only_returns = np.asarray(customers_with_only_returns(good), dtype=object)
    else:  # every row counts: the id codes made while checking the ids serve
        codes, ids = check.codes("customer_id")
        only_returns = _only_returns(codes, ids, check.array("amount"), codes >= 0)
    check.note(len(only_returns), "customer_id", "have only returns (negative amounts) and no purchase: kept, "
               "not scored (reason 'only returns before as_of')", unit="customer(s)", examples=only_returns[:3])


def _check_interactions(check: TableCheck) -> None:
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


def _known_customers(check: TableCheck) -> tuple[TableCheck, np.ndarray]:
    """The transactions' check and, per distinct id, whether it has at least one good row."""
    codes, uniques = check.codes("customer_id")
    return check, np.bincount(codes[(codes >= 0) & ~check.dropped], minlength=len(uniques)) > 0


def _flag_unknown_customers(check: TableCheck, known: tuple[TableCheck, np.ndarray]) -> None:
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


def _add_line_amounts(check: TableCheck) -> None:
    """A line-item table's amount per line: quantity x unit price."""
    check.frame["amount"] = line_amounts(check.array("quantity"), check.array("unit_price"))
    check.names.add("amount")


def _note_guest_sales(check: TableCheck) -> None:
    """The transactions without a customer id, their orders and money, as a fact."""
    guests = check.aside
    if not guests.any():
        return
    money = f"net amount {np.nansum(check.array('amount')[guests]):,.2f}"
    if "order_id" in check.names:
        money = f"{len(np.unique(check.codes('order_id')[0][guests])):,} order(s); {money}"
    check.note(int(guests.sum()), "customer_id", "have no customer id: guest sales, counted here, in no customer's "
               f"history and not scored ({money})")


def validate_tables(
    frames: dict[str, pd.DataFrame],
    *,
    mode: str = STRICT,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
    date_format: str | None = None,
    guest_sales: bool = False,
) -> Dataset:
    """Check in-memory tables against the contract; see the module docstring.

    ``guest_sales``: transactions without a customer id are guest sales of a shop's export,
    counted and kept out of every customer's history, rather than defects. Loading a dataset
    folder says so; tables made from one request's customers (HTTP, pyfunc) do not, where a
    blank id is the request's defect."""
    if mode not in (STRICT, LENIENT):
        raise RetainError(f"validation mode must be {STRICT!r} or {LENIENT!r}, not {mode!r}")
    if "transactions" not in frames:
        raise RetainError("the transactions table is required")
    cutoff = pd.Timestamp(data_cutoff) if data_cutoff is not None else pd.Timestamp.now()
    specs = dict(TABLES)
    if is_line_items(frames["transactions"]):
        specs["transactions"] = TRANSACTION_LINES
    checks = {name: TableCheck(specs[name], frames[name], guest_sales=guest_sales and name == "transactions")
              for name in TABLES if name in frames}
    iso_dates = _iso_dates(list(checks.values()))
    _code_text_ids(list(checks.values()))
    for name, check in checks.items():
        _check_table(check, frames[name], cutoff, date_format, iso_dates)
    tx = checks["transactions"]
    if tx.spec.lines:
        _add_line_amounts(tx)
    _check_transactions(tx)
    _note_guest_sales(tx)
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
            + "\nFix the rows, or run with --lenient to set them aside in a rejects file.",
            problems=[p.describe() for p in report.problems],
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
        dropped = check.dropped  # defects, and guest sales (in no customer's table)
        clean[name] = check.frame.loc[~dropped].reset_index(drop=True) if dropped.any() else check.frame
    if checks["transactions"].spec.lines:
        lines = clean["transactions"]
        clean["transactions"] = orders_from_lines(lines)
        report.facts.append(Fact("transactions", None, f"became {len(clean['transactions']):,} orders: quantity x "
                                 "unit_price summed per order_id, an order's negative lines summed apart as a "
                                 "return", len(lines), unit="line(s)"))
    return Dataset(
        transactions=clean["transactions"],
        customers=clean.get("customers"),
        interactions=clean.get("interactions"),
        churn_events=clean.get("churn_events"),
        report=report,
    )
