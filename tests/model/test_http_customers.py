"""One customer's defects are that customer's, and one request's error is that request's,
scored with the trained models (serving/http/schema.py, tables.py, dispatch.py): a field of
the wrong JSON type, order ids two customers share, ids padded with white space, a request
that breaks the data contract among thousands of customers."""

import json

import pandas as pd

from retain.serving.http import dispatch
from retain.serving.http.dispatch import Unscorable, score_requests
from retain.serving.http.schema import request_model
from retain.serving.http.tables import as_tables, orders_of_their_customer, validated

AS_OF = pd.Timestamp("2025-12-01")


def _bodies(trained, n):
    from http_bodies import customer_body, with_everything

    return [customer_body(trained.dataset, cid) for cid in with_everything(trained.dataset, n)]


def _scores(trained, customers, limit=10_000):
    body = json.dumps({"as_of": "2025-12-01", "customers": customers}).encode()
    parsed = request_model(limit).model_validate_json(body).customers
    [result] = score_requests([(parsed, AS_OF)], trained.pair())
    return result if isinstance(result, Exception) else result.scores.set_index("customer_id")


def test_customers_sharing_order_ids_are_each_scored_as_alone(trained):
    """Before: two customers naming the same order ids made every customer of the request
    unscorable (422)."""
    bodies = _bodies(trained, 6)
    alone = _scores(trained, bodies)
    for body in bodies[:2]:  # the same order ids for two customers
        for i, row in enumerate(body["transactions"]):
            row["order_id"] = f"o{i}"
    shared = _scores(trained, bodies)
    assert not isinstance(shared, Exception), shared
    assert (shared["not_scored_reason"] == "").all()
    pd.testing.assert_frame_equal(shared.drop(columns=[]), alone)


def test_a_customer_with_a_wrong_json_type_gets_a_reason_and_the_others_are_scored(trained):
    bodies = _bodies(trained, 3)
    bodies[1]["transactions"][0]["amount"] = "20.5"
    bodies[1]["transactions"][-1]["amount"] = None
    got = _scores(trained, bodies)
    assert list(got.index) == [b["customer_id"] for b in bodies]
    reason = got.loc[bodies[1]["customer_id"], "not_scored_reason"]
    assert reason.startswith("invalid input: transactions.0.amount") and "valid number" in reason
    assert pd.isna(got.loc[bodies[1]["customer_id"], "clv"])
    assert (got.drop(index=bodies[1]["customer_id"])["not_scored_reason"] == "").all()
    alone = _scores(trained, [bodies[1]])
    assert isinstance(alone, Unscorable) and bodies[1]["customer_id"] in str(alone)


def test_an_id_padded_with_white_space_is_scored_with_its_transactions(trained):
    """Before: "  c1  " was answered "no transactions" although it sent some."""
    [body] = _bodies(trained, 1)
    plain = _scores(trained, [body])
    padded = _scores(trained, [dict(body, customer_id=f"  {body['customer_id']}\t")])
    pd.testing.assert_frame_equal(padded, plain)


def test_finding_the_customers_who_break_the_contract_is_linear(trained, monkeypatch):
    """Before: each customer was checked alone over the whole request's rows (4,000
    customers took 17 s, other clients waiting): one validation per customer. Now the whole
    request is validated a fixed number of times, whatever its size (timings in
    docs/benchmarks.md, not here)."""
    from retain.serving.http import tables as tables_module

    calls = []
    real_validate = tables_module.validate_tables

    def counted(frames, **kwargs):
        calls.append(sum(len(frame) for frame in frames.values()))
        return real_validate(frames, **kwargs)

    monkeypatch.setattr(tables_module, "validate_tables", counted)
    bodies = _bodies(trained, 100)  # building a body scans the base: a hundred, sent forty times over
    bodies = (bodies * (4_000 // len(bodies) + 1))[:4_000]
    bodies = [dict(b, customer_id=f"{b['customer_id']}-{i}") for i, b in enumerate(bodies)]
    broken = {bodies[i]["customer_id"] for i in range(0, 4_000, 97)}
    for body in bodies:
        if body["customer_id"] in broken:
            body["transactions"] = [dict(body["transactions"][0], discount=-1.0), *body["transactions"][1:]]
    parsed = request_model(10_000).model_validate_json(json.dumps({"customers": bodies}).encode()).customers
    tables = as_tables(parsed)
    dataset, bad = validated(orders_of_their_customer(tables.frames, len(tables)), tables.ids)
    assert set(bad) == broken and all("transactions.discount" in why for why in bad.values())
    assert dataset.transactions["customer_id"].nunique() == 4_000 - len(broken)
    rows = sum(len(frame) for frame in tables.frames.values())
    assert len(calls) <= 4 and sum(calls) <= 3 * rows, calls  # linear: a few passes over the request's rows


def test_an_unexpected_error_in_one_request_is_that_request_alone(trained, monkeypatch):
    bodies = _bodies(trained, 4)
    model = request_model(100)
    requests = [(model.model_validate({"customers": [body]}).customers, AS_OF) for body in bodies]
    poison = bodies[2]["customer_id"]
    real = dispatch.score_customers

    def score_customers(dataset, as_of, pair):  # a defect only this customer's rows meet
        if dataset.transactions["customer_id"].astype(str).str.endswith(poison).any():
            raise OverflowError("Python int too large to convert to C long")
        return real(dataset, as_of, pair)

    monkeypatch.setattr(dispatch, "score_customers", score_customers)
    results = score_requests(requests, trained.pair())
    assert isinstance(results[2], OverflowError)
    for i in (0, 1, 3):
        assert results[i].scores["not_scored_reason"].tolist() == [""], results[i]
