"""The columnar reading of large /score bodies (serving/http/columnar.py) is a shortcut only:
whenever it takes a body, pydantic accepts that body too and gives the same tables; and it
does take ordinary bodies (else it would be no shortcut)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retain.serving.http.columnar import MIN_BYTES, ColumnReader
from retain.serving.http.schema import _is_date_or_none, request_model
from retain.serving.http.tables import as_tables

MAX = 50
ScoreRequest = request_model(MAX)


def _by_pydantic(body: bytes):
    """What the body gives through pydantic alone (the columnar reader bypassed)."""
    request = super(ScoreRequest, ScoreRequest).model_validate_json(body)
    return request.as_of, as_tables(request.customers)


def _assert_same(got, body: bytes) -> None:
    as_of, tables = _by_pydantic(body)  # raises if pydantic would refuse the body
    assert got[0] == as_of
    assert got[1].ids == tables.ids
    assert sorted(got[1].frames) == sorted(tables.frames)
    for name, frame in tables.frames.items():
        pd.testing.assert_frame_equal(got[1].frames[name], frame, check_exact=True)


def _number(rng) -> float:
    return float(rng.normal() * 10.0 ** rng.integers(-3, 6))  # many significant digits


def _maybe(rng, body: dict, key: str, value) -> None:
    """Sent, sent as null, or left out."""
    roll = rng.random()
    if roll < 0.6:
        body[key] = value
    elif roll < 0.8:
        body[key] = None


ATTRIBUTES = {"region": lambda rng: str(rng.choice(["north", "south", "é\"ast"])),
              "signup_date": lambda rng: f"2023-0{rng.integers(1, 10)}-1{rng.integers(0, 10)}",
              "age": lambda rng: int(rng.integers(18, 90)),
              "score": _number,
              "vip": lambda rng: bool(rng.random() < 0.5),
              "plan": lambda rng: None}


def _customer(rng, i: int) -> dict:
    customer = {"customer_id": f"c{i}-ü{rng.integers(1000)}", "transactions": []}
    for k in range(int(rng.integers(0, 6))):
        row = {"timestamp": f"2025-0{rng.integers(1, 10)}-0{rng.integers(1, 10)}T1{k}:00:00", "amount": _number(rng)}
        _maybe(rng, row, "order_id", f"o{i}-{k}")
        _maybe(rng, row, "discount", abs(_number(rng)))
        _maybe(rng, row, "category", str(rng.choice(["books", "music"])))
        _maybe(rng, row, "channel", "web")
        customer["transactions"].append(row)
    roll = rng.random()
    if roll < 0.5:
        customer["interactions"] = []
        for _ in range(int(rng.integers(0, 3))):
            row = {"timestamp": "2025-03-01", "kind": str(rng.choice(["complaint", "survey"]))}
            _maybe(rng, row, "resolved", bool(rng.random() < 0.5))
            _maybe(rng, row, "resolution_hours", abs(_number(rng)))
            _maybe(rng, row, "satisfaction", float(rng.integers(-90, 91)))
            customer["interactions"].append(row)
    elif roll < 0.6:
        customer["interactions"] = None
    if rng.random() < 0.2:
        customer["churn_events"] = [{"churn_date": "2025-06-01", "churn_type": "price"}]
    roll = rng.random()
    if roll < 0.7:
        names = list(ATTRIBUTES)
        rng.shuffle(names)
        customer["attributes"] = {name: ATTRIBUTES[name](rng) for name in names[:int(rng.integers(0, len(names) + 1))]}
    elif roll < 0.8:
        customer["attributes"] = None
    return customer


def _body(rng, customers: int = 30) -> dict:
    body = {"customers": [_customer(rng, i) for i in range(customers)]}
    if rng.random() < 0.7:
        body["as_of"] = "2025-12-01"
    return body


def _text(body) -> bytes:
    return json.dumps(body).encode()


def test_ordinary_bodies_are_read_into_the_same_tables_as_pydantic_reads():
    rng = np.random.default_rng(0)
    reader = ColumnReader(MAX, _is_date_or_none, min_bytes=0)
    taken = 0
    for _ in range(60):
        body = _text(_body(rng))
        got = reader.read(body)
        if got is not None:
            taken += 1
            _assert_same(got, body)
    assert taken >= 55  # only bodies in doubt (e.g. an attribute null for everyone) go to pydantic


def test_a_body_shaped_like_the_last_is_read_once_and_a_new_shape_is_learned():
    rng = np.random.default_rng(1)
    reader = ColumnReader(MAX, _is_date_or_none, min_bytes=0)
    first = _body(rng)
    for customer in first["customers"]:
        customer["attributes"] = {"region": "north", "signup_date": "2023-01-05"}
    reader.read(_text(first))
    second = copy.deepcopy(first)
    second["customers"][0]["attributes"] = {"region": "south", "signup_date": "2023-01-05T00:00:00"}
    got = reader.read(_text(second))
    _assert_same(got, _text(second))
    assert got[1].frames["customers"]["signup_date"].iloc[0] == "2023-01-05T00:00:00"  # text as sent
    third = copy.deepcopy(first)
    third["customers"][1]["attributes"] = {"tier": 3}  # a new attribute: learned, not dropped
    got = reader.read(_text(third))
    _assert_same(got, _text(third))
    assert got[1].frames["customers"]["tier"].iloc[1] == 3.0
    # an attribute null for every customer: sent as null (a column) or not sent (none)
    for customer in third["customers"]:
        customer["attributes"] = {"region": "north", "plan": None}
    _assert_same(reader.read(_text(third)), _text(third))
    for customer in third["customers"]:
        customer["attributes"] = {"region": "north"}
    got = reader.read(_text(third))
    _assert_same(got, _text(third))
    assert "plan" not in got[1].frames["customers"]


def _mutations(body: dict):
    """Bodies that pydantic refuses or reads differently (coerced), one change each."""
    def change(edit):
        changed = copy.deepcopy(body)
        edit(changed)
        return _text(changed)

    first = body["customers"][0]
    tx = lambda b: b["customers"][0]["transactions"][0]  # noqa: E731
    yield "amount as text", change(lambda b: tx(b).update(amount="12.5"))
    yield "amount true", change(lambda b: tx(b).update(amount=True))
    yield "amount null", change(lambda b: tx(b).update(amount=None))
    yield "amount missing", change(lambda b: tx(b).pop("amount"))
    yield "amount NaN", change(lambda b: tx(b).update(amount=float("nan")))
    yield "discount infinite", change(lambda b: tx(b).update(discount=float("inf")))
    yield "timestamp a number", change(lambda b: tx(b).update(timestamp=20250101))
    yield "unknown transaction field", change(lambda b: tx(b).update(amont=1.0))
    yield "transaction null", change(lambda b: b["customers"][0]["transactions"].append(None))
    yield "transactions null", change(lambda b: b["customers"][0].update(transactions=None))
    yield "transactions missing", change(lambda b: b["customers"][0].pop("transactions"))
    yield "transactions an object", change(lambda b: b["customers"][0].update(transactions=tx(b)))
    yield "customer id a number", change(lambda b: b["customers"][0].update(customer_id=5))
    yield "customer id empty", change(lambda b: b["customers"][0].update(customer_id=""))
    yield "customer id too long", change(lambda b: b["customers"][0].update(customer_id="x" * 201))
    yield "customer id repeated", change(lambda b: b["customers"][1].update(customer_id=first["customer_id"]))
    yield "unknown customer field", change(lambda b: b["customers"][0].update(segment="a"))
    yield "unknown body field", change(lambda b: b.update(limit=5))
    yield "interaction kind missing", change(lambda b: b["customers"][0].update(
        interactions=[{"timestamp": "2025-01-01"}]))
    yield "resolved as text", change(lambda b: b["customers"][0].update(
        interactions=[{"timestamp": "2025-01-01", "kind": "complaint", "resolved": "yes"}]))
    yield "churn type missing", change(lambda b: b["customers"][0].update(churn_events=[{"churn_date": "2025-01-01"}]))
    yield "attribute an object", change(lambda b: b["customers"][0].update(attributes={"a": {"b": 1}}))
    yield "attribute a list", change(lambda b: b["customers"][0].update(attributes={"a": [1]}))
    yield "attributes text", change(lambda b: b["customers"][0].update(attributes="north"))
    yield "attribute text and number", change(lambda b: [c.update(attributes={"a": i if i % 2 else "x"})
                                                         for i, c in enumerate(b["customers"])])
    yield "attribute huge integer", change(lambda b: b["customers"][0].update(attributes={"a": 10 ** 30}))
    yield "as_of not a date", change(lambda b: b.update(as_of="someday"))
    yield "as_of a number", change(lambda b: b.update(as_of=20250101))
    yield "no customers", change(lambda b: b.update(customers=[]))
    yield "too many customers", change(lambda b: b.update(customers=[
        {**b["customers"][0], "customer_id": f"n{i}"} for i in range(MAX + 1)]))
    yield "customers null", change(lambda b: b.update(customers=None))
    text = _text(body)
    yield "two bodies", text + b" " + text
    yield "trailing text", text + b"x"
    yield "a list of bodies", b"[" + text + b"]"
    yield "repeated key", text.replace(b'"amount": ', b'"amount": 1.0, "amount": ', 1)
    yield "pretty-printed", json.dumps(body, indent=1).encode()
    yield "not UTF-8", text.replace(b'"c0-', b'"c0-\xff', 1)


def test_no_body_that_pydantic_refuses_or_reads_differently_is_taken():
    rng = np.random.default_rng(2)
    body = _body(rng)
    body["customers"][0]["transactions"] = [{"timestamp": "2025-01-01", "amount": 10.0, "discount": 1.0}]
    reader = ColumnReader(MAX, _is_date_or_none, min_bytes=0)
    assert reader.read(_text(body)) is not None  # the body before each change is taken
    for name, changed in _mutations(body):
        got = reader.read(changed)
        if got is None:
            continue
        try:
            _assert_same(got, changed)
        except ValidationError as exc:
            pytest.fail(f"{name}: taken by the columnar reader, refused by pydantic: {exc}")


def test_small_bodies_go_through_pydantic_and_large_ones_are_read_into_columns():
    rng = np.random.default_rng(3)
    small = _text(_body(rng, customers=2))
    assert len(small) < MIN_BYTES
    assert isinstance(ScoreRequest.model_validate_json(small).customers, list)
    large = _text(_body(rng, customers=MAX))
    while len(large) < MIN_BYTES:  # more rows per customer until the body is large
        body = json.loads(large)
        for customer in body["customers"]:
            customer["transactions"] = customer["transactions"] * 2 or [{"timestamp": "2025-01-01", "amount": 1.0}]
        large = _text(body)
    request = ScoreRequest.model_validate_json(large)
    assert not isinstance(request.customers, list)  # read into columns
    _assert_same((request.as_of, request.customers), large)
