"""A request's customers as the data contract's tables, checked as a dataset folder is.

A well-formed customer whose values break the contract (a NaN amount, a date that does not
parse, a negative discount...) is set aside with a ``not_scored_reason`` that names the
field, and the others are scored (docs/http-api.md, "Errors"). Each customer's history
stands alone: its order ids are its own (``orders_of_their_customer``), and finding who broke
the contract is one pass over the request's rows (``validated``).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from retain.data import Dataset, validate_tables
from retain.data.validate import LENIENT
from retain.data.frames import frame_of
from retain.errors import DataValidationError
from retain.serving.http.columnar import RequestTables
from retain.serving.http.schema import Customer
from retain.serving.scoring import ModelPair
from retain.vocabulary import NotScored

# Each table is built column by column from the rows, with the dtype the contract's field
# has: a frame made from a list of dicts infers every column, a fixed cost even for one row.
_TX = {"timestamp": object, "amount": float, "order_id": object, "discount": float, "category": object,
       "channel": object}
_INTERACTION = {"timestamp": object, "kind": object, "resolved": object, "resolution_hours": float,
                "satisfaction": float}
_EVENT = {"churn_date": object, "churn_type": object}
_TX_OPTIONAL = ("order_id", "discount", "category", "channel")


def _column_frame(rows: list[dict], owner: list[str], fields: dict[str, type],
                  optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows as a table; a field a row left out is missing, as null is. An ``optional``
    field that no row sent is left out, as a file without that column would be."""
    columns = {"customer_id": np.array(owner, dtype=object)}
    for name, dtype in fields.items():
        values = [row.get(name) for row in rows]
        if name in optional and all(value is None for value in values):
            continue
        columns[name] = np.array(values, dtype=dtype)  # None reads as NaN in a float column
    return frame_of(columns)


def request_tables(customers: list[Customer]) -> dict[str, pd.DataFrame]:
    """The customers' rows as data-contract tables (raw, not yet validated)."""
    tx, tx_owner, inter, inter_owner, events, event_owner = [], [], [], [], [], []
    attributes, any_attributes = [], False
    for customer in customers:
        cid, rows = customer["customer_id"], customer["transactions"]
        tx.extend(rows)
        tx_owner.extend([cid] * len(rows))
        if rows := customer.get("interactions"):
            inter.extend(rows)
            inter_owner.extend([cid] * len(rows))
        if rows := customer.get("churn_events"):
            events.extend(rows)
            event_owner.extend([cid] * len(rows))
        if (row := customer.get("attributes")) is not None:
            any_attributes = True
        attributes.append(row or {})
    frames = {}
    if tx:
        frames["transactions"] = _column_frame(tx, tx_owner, _TX, optional=_TX_OPTIONAL)
    if inter:
        frames["interactions"] = _column_frame(inter, inter_owner, _INTERACTION)
    if events:
        frames["churn_events"] = _column_frame(events, event_owner, _EVENT)
    if any_attributes:
        names = dict.fromkeys(name for row in attributes for name in row)
        frames["customers"] = pd.DataFrame({"customer_id": [c["customer_id"] for c in customers],
                                            **{name: [row.get(name) for row in attributes] for name in names}})
    return frames


def _only(frames: dict[str, pd.DataFrame], ids) -> dict[str, pd.DataFrame]:
    out = {}
    for name, frame in frames.items():
        rows = frame[frame["customer_id"].isin(ids)].reset_index(drop=True)
        if len(rows):
            out[name] = rows
    return out


_strip = np.frompyfunc(str.strip, 1, 1)


def orders_of_their_customer(frames: dict[str, pd.DataFrame], customers: int) -> dict[str, pd.DataFrame]:
    """The transactions with each order id read as its customer's own: in a request every
    customer's history stands alone, so two customers naming the same order id are two
    orders (a customer's row never depends on who else is in the request). When customers
    do share one, the customer's position is put in front of every order id (``7:o-1``; a
    blank one stays blank); otherwise (one customer, the usual case) nothing is copied."""
    tx = frames.get("transactions")
    if customers < 2 or tx is None or "order_id" not in tx.columns:
        return frames
    orders, uniques = pd.factorize(tx["order_id"])  # -1: no order id
    if len(uniques):  # as the contract compares them: stripped of white space
        stripped, _ = pd.factorize(_strip(uniques.astype(str)))
        orders = np.where(orders >= 0, stripped[orders], -1)
    owners, _ = pd.factorize(tx["customer_id"])
    first_owner = np.full(orders.max() + 2 if len(orders) else 1, -1)  # the last slot: rows without one
    first_owner[orders[::-1]] = owners[::-1]  # the owner of each order's first row
    if not ((orders >= 0) & (first_owner[orders] != owners)).any():
        return frames
    given = tx["order_id"]
    text = given.astype(str).str.strip()
    present = given.notna().to_numpy() & (text != "").to_numpy()
    scoped = tx.copy(deep=False)
    scoped["order_id"] = (pd.Series(owners, index=tx.index).astype(str) + ":" + text).where(present, given)
    return {**frames, "transactions": scoped}


def validate(frames: dict[str, pd.DataFrame]) -> Dataset:
    # rows on or after as_of are ignored by the features, so no date is "in the future" here
    return validate_tables(frames, data_cutoff=pd.Timestamp.max)


def _problems(exc: DataValidationError) -> str:
    """The contract problems of a validation error, without the report's header and the
    command-line hints (the whole message when it lists none)."""
    return "; ".join(exc.problems) if exc.problems else str(exc)


_NO_TRANSACTION = "name customers with no transaction"  # the contract's words for rows of unknown customers


def _rows_breaking_the_contract(frames: dict[str, pd.DataFrame], ids: list[str]) -> dict[str, str]:
    """Each customer with a row that breaks the contract, and why in words: one lenient check
    of the whole request (its rejects say which rows broke what), so finding them costs one
    pass over the rows, not one check per customer. A problem of a whole column rather than
    of rows (dates written two ways) is found by halving the customers until it is in the
    customers who cause it: a few checks per such customer."""
    if "transactions" not in frames:
        return {}  # these customers have no transactions: the scoring core says so
    try:
        found = _rejected_rows(frames)
    except Exception as exc:  # noqa: BLE001 - a column's problem, or rejects that do not read back
        if len(ids) == 1:
            try:
                validate(frames)
            except DataValidationError as problem:
                return {ids[0]: NotScored.INVALID_INPUT.words(problems=_problems(problem))}
            if isinstance(exc, DataValidationError):
                return {ids[0]: NotScored.INVALID_INPUT.words(problems=_problems(exc))}
            return {}
        half = len(ids) // 2
        return {**_rows_breaking_the_contract(_only(frames, ids[:half]), ids[:half]),
                **_rows_breaking_the_contract(_only(frames, ids[half:]), ids[half:])}
    order = {name: i for i, name in enumerate(("transactions", "customers", "interactions", "churn_events"))}
    words = {}
    for owner, reasons in found.items():
        parts = []
        for (table, reason), rows in sorted(reasons.items(), key=lambda item: order.get(item[0][0], 9)):
            column, _, what = reason.partition(": ")
            if what == _NO_TRANSACTION and len(reasons) > 1:
                continue  # a consequence of its transactions' problems, named before
            parts.append(f"{table}.{column}: {rows} row(s) {what}" if what else f"{table}: {rows} row(s) {reason}")
        words[owner] = NotScored.INVALID_INPUT.words(problems="; ".join(parts))
    return words


def _rejected_rows(frames: dict[str, pd.DataFrame]) -> dict[str, Counter]:
    """Per customer, the (table, reason) of its rows a lenient check sets aside, counted."""
    found: dict[str, Counter] = {}
    with tempfile.TemporaryDirectory(prefix="retain-request-") as folder:
        validate_tables(_csv_safe(frames), mode=LENIENT, data_cutoff=pd.Timestamp.max, rejects_dir=folder)
        for path in sorted(Path(folder).glob("*.rejects.csv")):
            table = path.name.split(".")[0]
            rejects = pd.read_csv(path, usecols=["row", "reason"], dtype={"row": "int64", "reason": str},
                                  keep_default_na=False)
            owners = frames[table]["customer_id"].to_numpy()[rejects["row"].to_numpy() - 1]
            for owner, reason in zip(owners.tolist(), rejects["reason"].tolist()):
                found.setdefault(owner, Counter())[(table, reason)] += 1
    return found


def _csv_safe(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables with a carriage return in text read as a newline: the rejects file writes
    it unquoted, and reading it back would break the row there (white space either way to
    the contract's checks)."""
    safe = {}
    for name, frame in frames.items():
        texts = [c for c in frame.columns if frame[c].dtype == object
                 and frame[c].map(lambda v: isinstance(v, str) and "\r" in v).any()]
        if texts:
            frame = frame.copy(deep=False)
            for column in texts:
                frame[column] = frame[column].map(lambda v: v.replace("\r", "\n") if isinstance(v, str) else v)
        safe[name] = frame
    return safe


def validated(frames: dict[str, pd.DataFrame], ids: list[str],
              rejected: dict[str, str] | None = None) -> tuple[Dataset | None, dict[str, str]]:
    """The contract-checked tables of the customers whose rows pass, and for every other
    customer the reason in words (``NotScored.INVALID_INPUT``: the table, field and rows
    that broke the contract; ``rejected``: those set aside before, with their reasons).

    The whole request is checked at once; only when that fails are the customers whose
    rows broke the contract found (the common, clean request pays for one check)."""
    bad = dict(rejected or {})
    if "transactions" not in frames:
        return None, bad
    try:
        return validate(frames), bad
    except DataValidationError:
        pass
    bad.update(_rows_breaking_the_contract(frames, ids))
    good = [cid for cid in ids if cid not in bad]
    rest = _only(frames, good)
    if "transactions" not in rest:
        return None, bad
    buyers = set(rest["transactions"]["customer_id"])
    for name in ("interactions", "churn_events"):  # of customers with no transactions, who are not scored
        if name in rest:
            rest[name] = rest[name][rest[name]["customer_id"].isin(buyers)].reset_index(drop=True)
            if not len(rest[name]):
                del rest[name]
    try:
        return validate(rest), bad
    except DataValidationError as exc:  # not expected: the customers left broke no row
        return None, {**bad, **{cid: NotScored.INVALID_INPUT.words(problems=_problems(exc)) for cid in good}}


def with_empty_tables(dataset: Dataset, pair: ModelPair) -> Dataset:
    """A request without interactions means none were recorded: when the churn model reads
    interaction features, give it an empty interactions table (counts 0) rather than none
    (features unknown)."""
    if dataset.interactions is not None or pair.churn is None or "interactions" not in pair.churn.feature_names_:
        return dataset
    empty = pd.DataFrame({
        "customer_id": pd.Series([], dtype=object),
        "timestamp": pd.Series([], dtype="datetime64[ns]"),
        "kind": pd.Series([], dtype=object),
        "resolved": pd.Series([], dtype="boolean"),
        "resolution_hours": pd.Series([], dtype=float),
        "satisfaction": pd.Series([], dtype=float),
    })
    return replace(dataset, interactions=empty)


def as_tables(customers: list[Customer] | RequestTables) -> RequestTables:
    """A request's customers as tables: read by pydantic (``list[Customer]``) or already
    read into columns (``ColumnReader.read``)."""
    if isinstance(customers, RequestTables):
        return customers
    return RequestTables([c["customer_id"] for c in customers], request_tables(customers))
