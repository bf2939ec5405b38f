"""The /score request body: its pydantic model, and the errors that name a customer.

The body (docs/http-api.md) is kept as integrations were written against it:
``{"as_of": "2026-01-01", "customers": [{"customer_id": "c1", "transactions": [...],
"attributes": {...}, "interactions": [...], "churn_events": [...]}]}``. Its shape is checked
here. What belongs to the request fails the whole request with 400, naming the field:
malformed JSON, a body nested deeper than ``MAX_DEPTH``, an empty or too long list, an as_of
that is not a date between ``FIRST_AS_OF`` and ``LAST_AS_OF``, a customer that is not an
object or has no usable id, an id sent twice (ids are stripped of surrounding white space,
as the data contract strips them). What belongs to one customer (a missing or unknown field,
a value of the wrong JSON type, such as a text or null amount) sets that customer aside
with a ``not_scored_reason`` and the others are scored (``_setting_aside_broken_customers``).
Numbers are strict: ``"20.5"`` or ``true`` is not a number. Values are checked by the data
contract (``tables.validated``), customer by customer.
"""
from __future__ import annotations

import json
import re
from typing import Annotated

import numpy as np

from typing_extensions import NotRequired, TypedDict

import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from retain.serving.http.columnar import ColumnReader, RequestTables
from retain.vocabulary import NotScored

# The deepest valid body nests 5 levels (body, customers, customer, transactions, row); a body
# nested deeper is refused before any parser recurses into it (Arrow's JSON reader, used for
# large bodies, overflows the C stack at some 20,000 levels and kills the worker).
MAX_DEPTH = 16
# Below this size the shape is left to pydantic: its parser refuses a body nested over 200
# levels by itself, such a body's customers cost little memory, and counting brackets would
# cost a small request more than parsing it.
SHAPE_CHECKED_FROM = 32_768
# as_of must be a day the feature code can move a year around (pandas' nanosecond range)
FIRST_AS_OF = pd.Timestamp("1900-01-01")
LAST_AS_OF = pd.Timestamp("2199-12-31")
MAX_ID_LENGTH = 200

_STRICT = ConfigDict(extra="forbid")


# The customers and their rows are TypedDicts, validated into plain dicts straight from the
# JSON: a request of 1,000 customers holds tens of thousands of rows, and a model object per
# row, or a Python validator per customer, dominated the time of reading the body.
# An error inside a customer is named after the customer when the request fails
# (``_naming_customers``), off the path of a valid body.

class Transaction(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    timestamp: Annotated[str, Field(description="date or date-time of the order, ISO 8601")]
    amount: Annotated[float, Field(strict=True, description="order value; negative for a return")]
    order_id: NotRequired[Annotated[str | None, Field(description="the customer's own order id (two customers "
                                                                  "may use the same one)")]]
    discount: NotRequired[Annotated[float | None, Field(strict=True)]]
    category: NotRequired[str | None]
    channel: NotRequired[str | None]


class Interaction(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    timestamp: str
    kind: Annotated[str, Field(description="complaint, ticket, ...")]
    resolved: NotRequired[bool | None]
    resolution_hours: NotRequired[Annotated[float | None, Field(strict=True)]]
    satisfaction: NotRequired[Annotated[float | None, Field(strict=True, description="on the 7-level scale -90..90")]]


class ChurnEvent(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    churn_date: str
    churn_type: str


AttributeValue = str | float | bool | None


class Customer(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    customer_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    transactions: list[Transaction]
    attributes: NotRequired[dict[str, AttributeValue] | None]
    interactions: NotRequired[Annotated[list[Interaction] | None,
                                        Field(description="omitted or [] both mean none recorded")]]
    churn_events: NotRequired[list[ChurnEvent] | None]


# A valid body, shown in the OpenAPI document (and sent by schemathesis as an example)
EXAMPLE_BODY = {
    "as_of": "2025-12-01",
    "customers": [
        {"customer_id": "c1", "transactions": [
            {"timestamp": "2025-03-02T10:15:00", "amount": 42.5, "order_id": "o-1"},
            {"timestamp": "2025-06-20", "amount": 18.0, "order_id": "o-2", "discount": 2.0, "channel": "web"},
            {"timestamp": "2025-10-11", "amount": 61.9, "order_id": "o-3", "category": "books"}],
         "interactions": [{"timestamp": "2025-09-01", "kind": "ticket", "resolved": True,
                           "resolution_hours": 5.0, "satisfaction": 30.0}]},
        {"customer_id": "c2", "transactions": [{"timestamp": "2025-11-02", "amount": 12.0}]},
    ],
}


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
        as_of: str | None = Field(None, description="score as of this date (YYYY-MM-DD, years "
                                                    f"{FIRST_AS_OF.year}-{LAST_AS_OF.year}); default: today in UTC")
        customers: list[Customer] = Field(min_length=1, max_length=max_customers)

        @classmethod
        def model_validate_json(cls, json_data, **kwargs):
            if isinstance(json_data, (bytes, str)):
                _check_shape(json_data.encode() if isinstance(json_data, str) else json_data, max_customers)
            columns = reader.read(json_data) if isinstance(json_data, bytes) and not kwargs else None
            if columns is not None:
                # a large body pydantic would accept unchanged, read into columns directly
                return cls.model_construct(as_of=columns[0], customers=columns[1])
            try:
                return super().model_validate_json(json_data, **kwargs)
            except ValidationError as exc:
                kept = _setting_aside_broken_customers(cls, exc, json_data)
                if kept is None:
                    raise _naming_customers(exc, json_data) from None
                return kept

        @field_validator("as_of")
        @classmethod
        def _is_a_date(cls, value):
            if value is not None:
                parse_as_of(value)
            return value

        @model_validator(mode="after")
        def _ids_once(self):
            if isinstance(self.customers, RequestTables):
                return self
            for customer in self.customers:
                customer["customer_id"] = _stripped_id(customer["customer_id"])
            _check_ids_once([customer["customer_id"] for customer in self.customers])
            return self

    return ScoreRequest


def read_off_the_loop(descriptor: type) -> type:
    """Make BentoML read ``descriptor``'s body (the class it derives from ``ScoreRequest``) in
    a worker thread: BentoML parses a body on the event loop, and parsing a large one takes
    long enough to hold up every other client's request meanwhile. Its ``from_http_request``
    comes first in the class's bases, so it is replaced on the class itself."""

    async def from_http_request(cls, request, serde):
        import anyio

        body = await request.body()
        return await anyio.to_thread.run_sync(cls.model_validate_json, body)

    descriptor.from_http_request = classmethod(from_http_request)
    return descriptor


def _stripped_id(text: str) -> str:
    stripped = text.strip()
    if not stripped:
        raise PydanticCustomError("empty_id", "customers.customer_id: {id} is empty once its white space is "
                                              "stripped", {"id": json.dumps(text)})
    return stripped


def _check_ids_once(ids: list[str]) -> None:
    seen, repeated = set(), []
    for cid in ids:
        if cid in seen:
            repeated.append(cid)
        seen.add(cid)
    if repeated:
        raise PydanticCustomError("repeated", "customers.customer_id: {ids} appear more than once (ids are "
                                              "compared without surrounding white space)",
                                  {"ids": ", ".join(sorted(set(repeated))[:5])})


_BRACKETS_AND_QUOTES = b'[]{}"'
_OTHER_BYTES = bytes(b for b in range(256) if b not in _BRACKETS_AND_QUOTES)


def body_shape(body: bytes) -> tuple[int, int]:
    """(how deep the body's arrays and objects nest, how many objects open at the depth of
    a customer), brackets inside strings not counted: a few passes in C and numpy over the
    brackets and quotes, no recursion, whatever the body holds."""
    if b"\\" in body:
        # drop escaped backslashes, then escaped quotes: the quotes left open and close strings
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = np.frombuffer(body.translate(None, _OTHER_BYTES), dtype=np.uint8)
    quote = marks == ord('"')
    outside = (np.cumsum(quote, dtype=np.int64) & 1) == 0
    brackets = marks[outside & ~quote]
    if not len(brackets):
        return 0, 0
    opens = (brackets == ord("[")) | (brackets == ord("{"))
    depth = np.cumsum(np.where(opens, 1, -1).astype(np.int32))
    # {"customers": [{...}, ...]}: a customer is an object opened at depth 3; in a body pydantic
    # accepts nothing else is (as_of is text, other fields are refused)
    customers = int(np.count_nonzero((depth == 3) & (brackets == ord("{"))))
    return int(depth.max()), customers


# \\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF, or the latter not preceded by the former: a
# lone surrogate, which JSON's escapes allow but no UTF-8 text (the response) can hold
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _check_shape(body: bytes, max_customers: int) -> None:
    """Refuse, before any parser reads it, a large body nested too deep (Arrow's JSON reader
    would overflow the stack) or with more customers than allowed (pydantic would build every
    one of them in memory first), and a body with a lone surrogate escape."""
    depth, customers = body_shape(body) if len(body) >= SHAPE_CHECKED_FROM else (0, 0)
    if depth > MAX_DEPTH:
        error = PydanticCustomError("too_deep", "the body nests {depth} levels deep; a /score body nests 5 and at "
                                                "most {limit} are read", {"depth": depth, "limit": MAX_DEPTH})
    elif customers > max_customers:
        error = PydanticCustomError("too_long", "customers: the body holds {n} customers; at most {limit} are "
                                                "scored per request", {"n": customers, "limit": max_customers})
    elif b"\\u" in body and _LONE_SURROGATE.search(body):
        error = PydanticCustomError("unicode", "the body holds a lone surrogate escape (\\ud800 to \\udfff, unpaired), "
                                               "which is no Unicode character", {})
    else:
        return
    raise ValidationError.from_exception_data("ScoreRequest", [{"type": error, "loc": (), "input": None}])


def _customer_problem(error: dict) -> str:
    where = ".".join(map(str, error["loc"][2:]))
    return f"{where}: {error['msg']}"


def _setting_aside_broken_customers(model, exc: ValidationError, body):
    """The request with the customers whose own fields are wrong set aside, each with its
    reason (``RequestTables.rejected``), when every error lies inside a customer that has a
    usable id; None when an error belongs to the request (then it fails with 400)."""
    broken: dict[int, list[str]] = {}
    for error in exc.errors():
        loc = error["loc"]
        if len(loc) < 3 or loc[0] != "customers" or not isinstance(loc[1], int) or loc[2] == "customer_id":
            return None
        broken.setdefault(loc[1], []).append(_customer_problem(error))
    try:
        data = json.loads(body)  # the standard reader: it takes NaN, as pydantic does
    except (ValueError, RecursionError):
        return None
    customers = data.get("customers") if isinstance(data, dict) else None
    if not isinstance(customers, list):
        return None
    ids = []
    for i, customer in enumerate(customers):
        cid = customer.get("customer_id") if isinstance(customer, dict) else None
        if not isinstance(cid, str) or not cid.strip() or len(cid) > MAX_ID_LENGTH:
            return None
        ids.append(cid.strip())
    try:
        _check_ids_once(ids)
    except PydanticCustomError:
        return None
    kept = [customer for i, customer in enumerate(customers) if i not in broken]
    rejected = {ids[i]: NotScored.INVALID_INPUT.words(problems="; ".join(problems))
                for i, problems in broken.items()}
    frames = {}
    if kept:
        try:
            valid = model.model_validate_json(json.dumps({**data, "customers": kept}))
        except ValidationError:
            return None
        from retain.serving.http.tables import as_tables  # tables reads this module's Customer

        frames = as_tables(valid.customers).frames
    return model.model_construct(as_of=data.get("as_of"), customers=RequestTables(ids, frames, rejected))


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
    if not FIRST_AS_OF.year <= stamp.year <= LAST_AS_OF.year:  # whole years: a comparison of years is enough
        raise PydanticCustomError("date", "as_of: {text} is not a day between {first} and {last}",
                                  {"text": repr(text), "first": FIRST_AS_OF.strftime("%Y-%m-%d"),
                                   "last": LAST_AS_OF.strftime("%Y-%m-%d")})
    return stamp.normalize()
