"""Customers of a test Dataset as ``/score`` request bodies carry them, for the tests that
call the HTTP service (tests/system) and those that score requests in-process (tests/model);
and one request sent to an ASGI app in-process (``call_asgi``)."""

import asyncio
import math

import pandas as pd

AS_OF = "2025-12-01"


def _iso(value):
    return None if pd.isna(value) else pd.Timestamp(value).isoformat()


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def customer_body(dataset, customer_id: str) -> dict:
    """One customer of a Dataset as the /score body carries it."""
    def rows(frame):
        return frame[frame["customer_id"].astype(str) == customer_id] if frame is not None else frame.iloc[:0]

    body = {"customer_id": customer_id, "transactions": [
        {"timestamp": _iso(r.timestamp), "amount": float(r.amount), "order_id": str(r.order_id),
         "discount": _plain(r.discount), "category": _plain(r.category), "channel": _plain(r.channel)}
        for r in rows(dataset.transactions).itertuples()]}
    body["interactions"] = [
        {"timestamp": _iso(r.timestamp), "kind": str(r.kind), "resolved": _plain(r.resolved),
         "resolution_hours": _plain(r.resolution_hours), "satisfaction": _plain(r.satisfaction)}
        for r in rows(dataset.interactions).itertuples()]
    body["churn_events"] = [{"churn_date": _iso(r.churn_date), "churn_type": r.churn_type}
                            for r in rows(dataset.churn_events).itertuples()]
    attributes = rows(dataset.customers)
    if len(attributes):
        first = attributes.iloc[0]
        body["attributes"] = {k: (_iso(v) if k == "signup_date" else _plain(v)) for k, v in first.items()
                              if k != "customer_id"}
    return body


def with_everything(dataset, n):
    """Customers with attributes, interactions and purchases, not churned before AS_OF."""
    inter = set(dataset.interactions["customer_id"].astype(str))
    churned = set(dataset.churn_events.loc[dataset.churn_events["churn_date"] < AS_OF, "customer_id"].astype(str))
    ids = sorted(set(dataset.customers["customer_id"].astype(str)) & inter - churned)
    return ids[:n]


def call_asgi(app, path, method="GET", headers=()):
    """(status, body) of one request with an empty body sent to ``app``."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": method, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]
