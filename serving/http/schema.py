"""The /score request body: its pydantic model, and the errors that name a customer.

The body (docs/http-api.md) is kept as integrations were written against it:
``{"as_of": "2026-01-01", "customers": [{"customer_id": "c1", "transactions": [...],
"attributes": {...}, "interactions": [...], "churn_events": [...]}]}``. Its shape is checked
here (malformed JSON, missing fields, wrong JSON types, unknown fields, an empty or too long
list, a repeated customer id, an as_of that is not a date: the whole request fails with 400,
naming the customer and the field). Its values are checked by the data contract
(``tables.validated``), customer by customer.
"""
from __future__ import annotations

import json
from typing import Annotated

from typing_extensions import NotRequired, TypedDict

import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from retain.serving.http.columnar import ColumnReader

_STRICT = ConfigDict(extra="forbid")


# The customers and their rows are TypedDicts, validated into plain dicts straight from the
# JSON: a request of 1,000 customers holds tens of thousands of rows, and a model object per
# row, or a Python validator per customer, dominated the time of reading the body.
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
