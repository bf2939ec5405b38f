"""The HTTP request body as the data contract's tables, and the scores as the response body.

The body (docs/http-api.md) is kept as integrations were written against it:
``{"as_of": "2026-01-01", "customers": [{"customer_id": "c1", "transactions": [...],
"attributes": {...}, "interactions": [...], "churn_events": [...]}]}``. It is parsed into a
``retain.data.Dataset`` by the same contract checks as a dataset folder
(``validate_tables``) and scored by ``retain.serving.score_customers``; nothing here
computes a feature or a score.

Two kinds of bad input are told apart (docs/http-api.md, "Errors"):
- the body's shape (malformed JSON, missing fields, wrong JSON types, unknown fields, an
  empty or too long list, a repeated customer id, an as_of that is not a date) fails the
  whole request with 400, naming the customer and the field;
- a well-formed customer whose values break the contract (a NaN amount, a date that does
  not parse, a negative discount...) or who cannot be scored as of that date (no purchase
  before as_of) gets a row whose ``not_scored_reason`` names the field, and the others are
  scored. When no customer of the request could be scored for such reasons, the request
  answers 422 with every customer's reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Annotated

from typing_extensions import NotRequired, TypedDict

import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from retain.data import Dataset, validate_tables
from retain.data.frames import frame_of
from retain.errors import DataValidationError, RetainError
from retain.features.eligibility import NO_TRANSACTIONS
from retain.serving.http_columnar import ColumnReader, RequestTables
from retain.serving.scoring import ModelPair, ScoredBatch, conform_arrays, missing_values, score_customers

# not_scored_reason prefixes that mean the input was unusable (not that the customer left)
INVALID = "invalid input: "
_UNUSABLE = (INVALID, NO_TRANSACTIONS, "no purchase before", "only returns before")

_STRICT = ConfigDict(extra="forbid")


# The customers and their rows are TypedDicts, validated into plain dicts straight from the
# JSON: a request of 1,000 customers holds tens of thousands of rows, and a model object per
# row, or a Python validator per customer, took more than half the time of reading the body.
# An error inside a customer is named after the customer when the request fails
# (``_naming_customers``), off the path of a valid body.

class Transaction(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    timestamp: Annotated[str, Field(description="date or date-time of the order, ISO 8601")]
    amount: Annotated[float, Field(description="order value; negative for a return")]
    order_id: NotRequired[str | None]
    discount: NotRequired[float | None]
    category: NotRequired[str | None]
    channel: NotRequired[str | None]


class Interaction(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    timestamp: str
    kind: Annotated[str, Field(description="complaint, ticket, ...")]
    resolved: NotRequired[bool | None]
    resolution_hours: NotRequired[float | None]
    satisfaction: NotRequired[Annotated[float | None, Field(description="on the 7-level scale -90..90")]]


class ChurnEvent(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    churn_date: str
    churn_type: str


AttributeValue = str | float | bool | None


class Customer(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    customer_id: Annotated[str, Field(min_length=1, max_length=200)]
    transactions: list[Transaction]
    attributes: NotRequired[dict[str, AttributeValue] | None]
    interactions: NotRequired[Annotated[list[Interaction] | None,
                                        Field(description="omitted or [] both mean none recorded")]]
    churn_events: NotRequired[list[ChurnEvent] | None]


def _naming_customers(exc: ValidationError, body) -> ValidationError:
    """The same errors, those inside a customer gathered into one per customer that names
    it by its id, not only by its position in the list."""
    try:
        customers = orjson.loads(body).get("customers")
    except (orjson.JSONDecodeError, AttributeError):
        return exc  # not JSON or not an object: pydantic's own message says so
    by_customer: dict[int, list[str]] = {}
    errors = []
    for error in exc.errors():
        loc = error["loc"]
        if len(loc) >= 2 and loc[0] == "customers" and isinstance(loc[1], int) and isinstance(customers, list):
            if loc[1] not in by_customer:
                by_customer[loc[1]] = []
                errors.append(loc[1])
            by_customer[loc[1]].append(f"{'.'.join(map(str, loc[2:])) or 'customer'}: {error['msg']}")
        else:
            errors.append(error)
    details = []
    for error in errors:
        if isinstance(error, int):
            data = customers[error] if error < len(customers) else None
            who = data.get("customer_id") if isinstance(data, dict) else None
            details.append({"type": PydanticCustomError("customer", "customer {who}: {details}", {
                "who": json.dumps(who) if who is not None else "(no customer_id)",
                "details": "; ".join(by_customer[error])}), "loc": ("customers", error), "input": data})
        else:
            details.append({"type": PydanticCustomError(error["type"], "{msg}", {"msg": error["msg"]}),
                            "loc": error["loc"], "input": error.get("input")})
    return ValidationError.from_exception_data(exc.title, details)


def request_model(max_customers: int):
    """The request body model, with the configured customer limit in its schema."""
    reader = ColumnReader(max_customers, _is_date_or_none)

    class ScoreRequest(BaseModel):
        model_config = _STRICT
        as_of: str | None = Field(None, description="score as of this date (YYYY-MM-DD); default: today in UTC")
        customers: list[Customer] = Field(min_length=1, max_length=max_customers)

        @classmethod
        def model_validate_json(cls, json_data, **kwargs):
            columns = reader.read(json_data) if isinstance(json_data, bytes) and not kwargs else None
            if columns is not None:
                # a large body pydantic would accept unchanged, read into columns directly
                return cls.model_construct(as_of=columns[0], customers=columns[1])
            try:
                return super().model_validate_json(json_data, **kwargs)
            except ValidationError as exc:
                raise _naming_customers(exc, json_data) from None

        @field_validator("as_of")
        @classmethod
        def _is_a_date(cls, value):
            if value is not None:
                parse_as_of(value)
            return value

        @model_validator(mode="after")
        def _ids_once(self):
            seen, repeated = set(), []
            for customer in self.customers:
                if customer["customer_id"] in seen:
                    repeated.append(customer["customer_id"])
                seen.add(customer["customer_id"])
            if repeated:
                raise PydanticCustomError("repeated", "customers.customer_id: {ids} appear more than once",
                                          {"ids": ", ".join(sorted(set(repeated))[:5])})
            return self

    return ScoreRequest


def _is_date_or_none(text: str | None) -> bool:
    try:
        parse_as_of(text)
    except PydanticCustomError:
        return False
    return True


def parse_as_of(text: str | None) -> pd.Timestamp:
    if text is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise PydanticCustomError("date", "as_of: {text} is not a date (use YYYY-MM-DD)", {"text": repr(text)})
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


# --- request -> tables ---------------------------------------------------------------------------

# Each table is built column by column from the rows, with the dtype the contract's field
# has: a frame made from a list of dicts infers every column and costs ~1 ms even for one row.
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


def _validate(frames: dict[str, pd.DataFrame]) -> Dataset:
    # rows on or after as_of are ignored by the features, so no date is "in the future" here
    return validate_tables(frames, data_cutoff=pd.Timestamp.max)


def _problems(exc: DataValidationError) -> str:
    """The contract problems of a validation error, without the report's header and the
    command-line hints ("- table.column: N row(s) ..." lines; the whole text when it has none)."""
    lines = [line[2:] for line in str(exc).splitlines() if line.startswith("- ")]
    return "; ".join(lines) if lines else str(exc)


def validated(frames: dict[str, pd.DataFrame], ids: list[str]) -> tuple[Dataset | None, dict[str, str]]:
    """The contract-checked tables of the customers whose rows pass, and for every other
    customer the reason (the table, field and rows that broke the contract).

    The whole request is checked at once; only when that fails is each customer checked
    alone, to find who broke what (the common, clean request pays for one check)."""
    if "transactions" not in frames:
        return None, {}
    try:
        return _validate(frames), {}
    except DataValidationError:
        pass
    bad: dict[str, str] = {}
    for cid in ids:
        own = _only(frames, [cid])
        if "transactions" not in own:
            continue  # no transactions: the scoring core says so
        try:
            _validate(own)
        except DataValidationError as exc:
            bad[cid] = INVALID + _problems(exc)
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
        return _validate(rest), bad
    except DataValidationError as exc:  # not expected: every customer passed alone
        return None, {**bad, **{cid: INVALID + _problems(exc) for cid in good}}


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


class Unscorable(Exception):
    """No customer of the request could be scored because of its input (HTTP 422)."""

    def __init__(self, reasons: dict[str, str]):
        self.reasons = reasons
        shown = "; ".join(f"customer {json.dumps(cid)}: {why}" for cid, why in list(reasons.items())[:20])
        more = f"; and {len(reasons) - 20} more" if len(reasons) > 20 else ""
        super().__init__(f"no customer could be scored: {shown}{more}")


def as_tables(customers: list[Customer] | RequestTables) -> RequestTables:
    """A request's customers as tables: read by pydantic (``list[Customer]``) or already
    read into columns (``ColumnReader.read``)."""
    if isinstance(customers, RequestTables):
        return customers
    return RequestTables([c["customer_id"] for c in customers], request_tables(customers))


def score_request(customers: list[Customer] | RequestTables, as_of: pd.Timestamp, pair: ModelPair) -> pd.DataFrame:
    """One score row per request customer, in request order, from the scoring core."""
    result = score_requests([(customers, as_of)], pair)[0]
    if isinstance(result, Exception):
        raise result
    return result.scores


def score_requests(requests: list[tuple[list[Customer] | RequestTables, pd.Timestamp]], pair: ModelPair) -> list:
    """Several requests scored together, each result what ``score_request`` gives for it
    alone: its score rows (a ``ScoredBatch`` in request order), or the
    ``Unscorable``/``RetainError`` it would raise.

    Requests with the same as_of and the same tables and columns are scored in one call of
    the scoring core (the fixed cost of a call is paid once); their customer ids are made
    distinct by a request prefix, and every step before the models is per customer, so a
    customer's row does not depend on who shares the call. Anything else goes alone."""
    read = [as_tables(customers) for customers, _ in requests]
    frames = [tables.frames for tables in read]
    groups: dict[tuple, list[int]] = {}
    for i, ((_, as_of), tables) in enumerate(zip(requests, frames)):
        # a request without interactions or churn events scores as one whose customers have
        # no such rows (``with_empty_tables``); the transactions' optional columns and the
        # attributes sent change how columns are read, so those must agree
        shape = tuple(sorted((name, tuple(sorted(frame.columns))) for name, frame in tables.items()
                             if name in ("transactions", "customers")))
        groups.setdefault((as_of, shape), []).append(i)
    results: list = [None] * len(requests)
    for (as_of, _), members in groups.items():
        ids = {i: read[i].ids for i in members}
        together = _score_together({i: frames[i] for i in members}, ids, as_of, pair) if len(members) > 1 else None
        for i in members:
            scores = together[i] if together is not None else _error_of(
                lambda: _score_tables(frames[i], ids[i], as_of, pair))
            results[i] = scores if isinstance(scores, Exception) else _scorable_or_error(scores)
    return results


def _error_of(score):
    try:
        return score()
    except RetainError as exc:
        return exc


def _score_together(frames: dict[int, dict[str, pd.DataFrame]], ids: dict[int, list[str]], as_of, pair
                    ) -> dict[int, ScoredBatch] | None:
    """The requests' rows in one call, customer and order ids prefixed by their request (two
    requests may name the same customer or order). None when their rows break the contract
    or the call fails: then each request goes alone, and its errors name its own rows."""
    prefixes = {i: f"{i}:" for i in frames}
    combined: dict[str, list[pd.DataFrame]] = {}
    for i, tables in frames.items():
        for name, frame in tables.items():
            frame = frame.copy(deep=False)
            for column in ("customer_id", "order_id"):
                if column in frame:
                    frame[column] = (prefixes[i] + frame[column].astype(str)).where(frame[column].notna(), None)
            combined.setdefault(name, []).append(frame)
    every_id = [prefixes[i] + cid for i in frames for cid in ids[i]]
    try:
        dataset = _validate({name: pd.concat(parts, ignore_index=True) for name, parts in combined.items()})
        scores = _scores_of(dataset, {}, every_id, as_of, pair)
    except RetainError:
        return None
    parts, start = {}, 0
    for i in frames:
        rows = slice(start, start + len(ids[i]))
        columns = {name: values[rows] for name, values in scores.columns.items()}
        columns["customer_id"] = np.asarray(ids[i], dtype=object)
        parts[i], start = ScoredBatch(columns), start + len(ids[i])
    return parts


def _score_tables(frames: dict[str, pd.DataFrame], ids: list[str], as_of, pair: ModelPair) -> ScoredBatch:
    """One score row per id, in the order of ``ids``, from one request's tables."""
    dataset, bad = validated(frames, ids)
    return _scores_of(dataset, bad, ids, as_of, pair)


def _scores_of(dataset: Dataset | None, bad: dict[str, str], ids: list[str], as_of, pair: ModelPair) -> ScoredBatch:
    wanted = np.asarray(ids, dtype=object)
    if dataset is not None:
        scored = score_customers(with_empty_tables(dataset, pair), as_of, pair).columns
        got = scored["customer_id"]
        if len(got) == len(wanted) and (got == wanted).all():
            return ScoredBatch(scored)  # every customer, already in request order (always so for one)
        position = pd.Index(got).get_indexer(wanted)
    else:
        scored, position = conform_arrays({}, pair.columns), np.full(len(wanted), -1)
    lost = position < 0
    if not lost.any():
        return ScoredBatch({name: values[position] for name, values in scored.items()})
    # rejected by validation, or no rows in any table: an empty row that says why
    kept = ~lost
    columns = {}
    for name, values in scored.items():
        columns[name] = missing_values(pair.columns[name], len(wanted))
        columns[name][kept] = values[position[kept]]
    columns["customer_id"] = wanted
    columns["as_of"][lost] = pd.Timestamp(as_of).to_datetime64()
    columns["not_scored_reason"][lost] = [bad.get(cid, NO_TRANSACTIONS) for cid in wanted[lost]]
    columns["clv_model_version"][lost] = pair.clv_version
    columns["churn_model_version"][lost] = pair.churn_version
    return ScoredBatch(columns)


def _scorable_or_error(scores: ScoredBatch):
    reasons = scores.columns["not_scored_reason"].tolist()
    if all(str(reason).startswith(_UNUSABLE) for reason in reasons):
        return Unscorable(dict(zip(scores.columns["customer_id"].tolist(), map(str, reasons))))
    return scores


# --- scores -> response ---------------------------------------------------------------------------

def _json_values(values, kind: str) -> list:
    if kind == "float":
        array = np.asarray(values, dtype=float)
        return [None if math.isnan(v) else v for v in array.tolist()]
    if kind == "datetime":
        days = np.datetime_as_string(np.asarray(values, dtype="datetime64[ns]"), unit="D")
        return [None if day == "NaT" else day for day in days.tolist()]
    if kind == "bool":
        if not isinstance(values, pd.arrays.BooleanArray):
            values = pd.array(values, dtype="boolean")
        return values.to_numpy(dtype=object, na_value=None).tolist()
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]


def score_rows(scores, columns: dict[str, str]) -> list[dict]:
    """The score rows as JSON-ready dicts, the score column names as keys (NaN -> null).
    ``scores`` is a frame or a dict of arrays."""
    n = len(scores) if isinstance(scores, pd.DataFrame) else len(next(iter(scores.values())))
    names = list(columns)
    lists = [_json_values(scores[name] if name in scores else [None] * n, columns[name]) for name in names]
    return [dict(zip(names, row)) for row in zip(*lists)]
