"""A large /score body read straight into the data contract's columns.

Reading a large body into Python objects and then into columns is dominated by creating
one dict, float and string per value. Arrow's JSON reader (C++) parses it into columns
directly, with the body's types declared (measured in docs/benchmarks.md, "HTTP
service").

It is a shortcut, not a second set of rules: it takes a body only when it can tell that
pydantic (``ScoreRequest``, the body's one definition) would accept it as it stands and
would give the same tables (``request_tables``). Any doubt (a pretty-printed body, a value
of another JSON type, an unknown or missing field, a null where one is not allowed, a
repeated, over-long or white-space-padded id, too many customers) returns ``None``, and the body goes
through pydantic, which accepts it or names what is wrong. tests/unit/test_http_columnar.py
checks both halves on valid and broken bodies.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from retain.data.frames import frame_of

# Below this size Arrow's reader is no faster than pydantic and request_tables (the crossover
# benchmarks/bench_request.py measures; docs/benchmarks.md).
MIN_BYTES = 131_072
MAX_ID_LENGTH = 200  # as Customer.customer_id

_TRANSACTION = pa.struct([("timestamp", pa.string()), ("amount", pa.float64()), ("order_id", pa.string()),
                          ("discount", pa.float64()), ("category", pa.string()), ("channel", pa.string())])
_INTERACTION = pa.struct([("timestamp", pa.string()), ("kind", pa.string()), ("resolved", pa.bool_()),
                          ("resolution_hours", pa.float64()), ("satisfaction", pa.float64())])
_EVENT = pa.struct([("churn_date", pa.string()), ("churn_type", pa.string())])
_CUSTOMER_FIELDS = [("customer_id", pa.string()), ("transactions", pa.list_(_TRANSACTION)),
                    ("interactions", pa.list_(_INTERACTION)), ("churn_events", pa.list_(_EVENT))]
# attributes are free-form (any names): left out of the declared types and read as found
_BODY = pa.schema([("as_of", pa.string()), ("customers", pa.list_(pa.struct(_CUSTOMER_FIELDS)))])
_INFER = pa_json.ParseOptions(explicit_schema=_BODY, unexpected_field_behavior="infer")

# (table, its row type, fields that must not be null, optional fields left out when no row sends them)
_TABLES = {
    "transactions": (_TRANSACTION, ("timestamp", "amount"), ("order_id", "discount", "category", "channel")),
    "interactions": (_INTERACTION, ("timestamp", "kind"), ()),
    "churn_events": (_EVENT, ("churn_date", "churn_type"), ()),
}
_ATTRIBUTE_TYPES = (pa.string(), pa.float64(), pa.int64(), pa.bool_(), pa.null())


@dataclass(frozen=True)
class RequestTables:
    """A request's customers as raw data-contract tables (not yet validated), with their
    ids in request order."""

    ids: list[str]
    frames: dict[str, pd.DataFrame]
    # customers set aside before their rows became tables (a field of the wrong JSON type...):
    # id -> not_scored_reason; they are in ``ids`` and have no rows in ``frames``
    rejected: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


class ColumnReader:
    """Reads large /score bodies into columns (``read``). One per service: it remembers the
    attributes (names and types) of the last body it read, so that a body shaped like the
    last one is parsed once with every field declared."""

    def __init__(self, max_customers: int, as_of_is_valid: Callable[[str | None], bool],
                 min_bytes: int = MIN_BYTES):
        self.max_customers = max_customers
        self.as_of_is_valid = as_of_is_valid
        self.min_bytes = min_bytes
        self._declared: pa_json.ParseOptions | None = None  # the last body's fields, attributes included

    def read(self, body: bytes) -> tuple[str | None, RequestTables] | None:
        """(as_of as sent, the tables) of a body pydantic would accept as it stands; None
        when the body should go through pydantic instead (see the module's docstring)."""
        if len(body) < self.min_bytes or b"\n" in body or b"\r" in body:
            return None  # one line is one JSON value for Arrow's reader: no newline, no doubt
        if not body.isascii() and not _is_utf8(body):
            return None  # Arrow does not check, pydantic refuses it
        table = _parsed(body, self._declared) if self._declared is not None else None
        if table is None or _attributes_unclear(table):
            table = _parsed(body, _INFER)
            if table is None or table.num_rows != 1 or table.schema.names != _BODY.names:
                return None
            declared = _with_attributes_as_sent(table.schema)
            self._declared = pa_json.ParseOptions(explicit_schema=declared, unexpected_field_behavior="error")
            if declared != table.schema:
                # Arrow reads an attribute whose values all look like dates as timestamps (it
                # has no switch for that): read again with it declared as text, as sent
                table = _parsed(body, self._declared)
                if table is None:
                    return None
        read = _tables(table, self.max_customers)
        return read if read is not None and self.as_of_is_valid(read[0]) else None


def _tables(table: pa.Table, max_customers: int) -> tuple[str | None, RequestTables] | None:
    if table.num_rows != 1:
        return None
    as_of, customers = table.column("as_of").chunk(0), table.column("customers").chunk(0)
    if customers.null_count or not 1 <= len(customers[0]) <= max_customers:
        return None
    customers = customers.flatten()
    fields = {customers.type.field(i).name for i in range(customers.type.num_fields)}
    if fields - {name for name, _ in _CUSTOMER_FIELDS} - {"attributes"}:
        return None
    ids = customers.field("customer_id")
    if ids.null_count or customers.field("transactions").null_count:
        return None
    lengths = pc.utf8_length(ids)
    if pc.min(lengths).as_py() < 1 or pc.max(lengths).as_py() > MAX_ID_LENGTH:
        return None
    id_list = ids.to_pylist()
    if len(set(id_list)) != len(id_list) or any(cid != cid.strip() for cid in id_list):
        return None  # pydantic names the repeated id, or strips the white space
    owners = np.asarray(id_list, dtype=object)
    frames = {}
    for name, (row_type, required, optional) in _TABLES.items():
        rows = customers.field(name)
        if rows.type.value_type != row_type:  # an unknown field in a row
            return None
        frame = _rows_frame(rows, owners, required, optional)
        if frame is False:
            return None
        if frame is not None:
            frames[name] = frame
    if "attributes" in fields:
        attributes = _attributes_frame(customers.field("attributes"), id_list)
        if attributes is False:
            return None
        if attributes is not None:
            frames["customers"] = attributes
    return as_of[0].as_py(), RequestTables(id_list, frames)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parsed(body: bytes, options: pa_json.ParseOptions) -> pa.Table | None:
    try:
        return pa_json.read_json(io.BytesIO(body), read_options=pa_json.ReadOptions(
            block_size=len(body) + 1, use_threads=False), parse_options=options)
    except (pa.ArrowException, ValueError):
        return None


def _with_attributes_as_sent(schema: pa.Schema) -> pa.Schema:
    """The body's schema as read, but every attribute read as a timestamp declared as text."""
    customer = schema.field("customers").type.value_type
    index = customer.get_field_index("attributes")
    if index < 0 or not pa.types.is_struct(customer.field(index).type):
        return schema
    fields = [pa.field(f.name, pa.string()) if pa.types.is_timestamp(f.type) else f
              for f in customer.field(index).type]
    customer = pa.struct([customer.field(i) if i != index else pa.field("attributes", pa.struct(fields))
                          for i in range(customer.num_fields)])
    return pa.schema([schema.field("as_of"), pa.field("customers", pa.list_(customer))])


def _attributes_unclear(table: pa.Table) -> bool:
    """Whether a body read with the last body's fields declared may differ from what pydantic
    gives: an attribute that is null for every customer may not have been sent at all (then
    pydantic's tables have no such column), which only reading it as found can tell."""
    customers = pc.list_flatten(table.column("customers").chunk(0))
    if customers.type.get_field_index("attributes") < 0:
        return False
    attributes = customers.field("attributes")
    if not pa.types.is_struct(attributes.type):
        return False  # null for every customer: no customers table either way
    return any(attributes.field(i).null_count == len(attributes) for i in range(attributes.type.num_fields))


def _rows_frame(lists: pa.ListArray, ids: np.ndarray, required, optional):
    """One table's rows, with the column of their customer: None when no customer sent a
    row, False when a row is not what pydantic would accept unchanged."""
    rows = pc.list_flatten(lists)
    if not len(rows):
        return None
    columns = {"customer_id": ids[pc.list_parent_indices(lists).to_numpy()]}
    for i in range(rows.type.num_fields):
        name = rows.type.field(i).name
        values = rows.field(i)
        if name in required and values.null_count:
            return False
        if name in optional and values.null_count == len(values):
            continue  # as a file without that column (request_tables does the same)
        if pa.types.is_floating(values.type):
            array = values.to_numpy(zero_copy_only=False)  # null -> NaN, as pydantic's None does
        else:
            array = values.to_numpy(zero_copy_only=False).astype(object, copy=False)
        columns[name] = array
    return frame_of(columns)


def _attributes_frame(attributes: pa.Array, ids: list[str]):
    """The customers table as ``request_tables`` builds it from pydantic's attribute dicts
    (numbers as floats, pandas inferring each column from the Python values): None when
    no customer sent attributes, False when a value is not a text, number or boolean."""
    if pa.types.is_null(attributes.type):
        return None  # every customer sent null or nothing
    if not pa.types.is_struct(attributes.type):
        return False
    if attributes.null_count == len(attributes):
        return None
    columns = {"customer_id": ids}
    for i in range(attributes.type.num_fields):
        field = attributes.type.field(i)
        if field.type not in _ATTRIBUTE_TYPES:
            return False
        values = pc.struct_field(attributes, [i])
        if pa.types.is_integer(field.type):
            values = values.cast(pa.float64())  # pydantic reads a JSON integer here as a float
        columns[field.name] = values.to_pylist()
    return pd.DataFrame(columns)
