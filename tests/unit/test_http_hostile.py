"""Requests built to break the HTTP service, and the pieces that stop them, in-process: the
body's shape checked before any parser recurses into it, one client's error kept to that
client, per-customer defects set aside, bodies read within a time limit, credentials never
shown. The same catalogue against a running server: tests/system/test_http.py ("hostile")."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from pydantic import ValidationError

from retain.serving.http.batching import RequestBatcher
from retain.serving.http.columnar import MIN_BYTES, RequestTables
from retain.serving.http.guard import Guard
from retain.serving.http.schema import EXAMPLE_BODY, MAX_DEPTH, SHAPE_CHECKED_FROM, body_shape, request_model

from http_bodies import call_asgi

SECRET = "S3cretPW"


def _deep(levels: int, size: int = 0) -> bytes:
    """A valid-looking body whose one attribute nests ``levels`` objects deep, padded to ``size``."""
    padding = [{"customer_id": f"p{i}", "transactions": [{"timestamp": "2025-01-01", "amount": 1.0}]}
               for i in range(max(0, size // 70))]
    head = json.dumps({"as_of": "2025-12-01", "customers": padding})[:-2]
    return (head.encode() + (b", " if padding else b"") + b'{"customer_id": "deep", "transactions": [], '
            b'"attributes": ' + b'{"a": ' * levels + b"1" + b"}" * levels + b"}]}")


# --- the body's shape, before any parser ---------------------------------------------------------

@pytest.mark.slow
def test_a_body_nested_20000_levels_deep_is_refused_not_fatal():
    """Before: bodies of 128 KB and more went to Arrow's JSON reader, which overflowed the C
    stack on this one and killed the process (in-flight requests lost, nothing logged)."""
    body = _deep(20_000, size=MIN_BYTES)
    assert MIN_BYTES <= len(body) < 400_000
    code = ("import sys\nfrom retain.serving.http.schema import request_model\n"
            "try:\n    request_model(10_000).model_validate_json(sys.stdin.buffer.read())\n"
            "except Exception as exc:\n    print(type(exc).__name__, str(exc).splitlines()[1])\n")
    done = subprocess.run([sys.executable, "-c", code], input=body, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"ValidationError" in done.stdout and b"20003 levels deep" in done.stdout


def test_the_shape_is_read_without_recursion_and_ignores_brackets_in_text():
    body = json.dumps({"customers": [{"customer_id": 'x[{"\\', "transactions": [{"category": "{{{[[["}]},
                                     {"customer_id": "y", "transactions": []}], "as_of": "]]}}"}).encode()
    assert body_shape(body) == (5, 2)  # body, customers, customer, transactions, row
    assert body_shape(_deep(100_000)) == (100_003, 1)
    assert body_shape(b"[" * 1_000_000 + b"]" * 1_000_000)[0] == 1_000_000  # no recursion, no stack
    fine = request_model(10_000).model_validate_json(_deep(MAX_DEPTH - 3, size=SHAPE_CHECKED_FROM))
    assert isinstance(fine.customers, RequestTables) and fine.customers.rejected  # deep attributes: its own reason
    with pytest.raises(ValidationError, match="levels deep"):
        request_model(10_000).model_validate_json(_deep(MAX_DEPTH, size=SHAPE_CHECKED_FROM))


def test_more_customers_than_allowed_are_refused_before_parsing():
    body = json.dumps({"customers": [{"customer_id": f"c{i}", "transactions": []} for i in range(2_001)]}).encode()
    assert len(body) > SHAPE_CHECKED_FROM
    with pytest.raises(ValidationError, match="holds 2001 customers; at most 2000"):
        request_model(2_000).model_validate_json(body)


def test_a_small_body_nested_deep_is_refused_by_pydantic_itself():
    body = _deep(4_000)
    assert len(body) < SHAPE_CHECKED_FROM
    with pytest.raises(ValidationError, match="recursion limit exceeded"):
        request_model(10).model_validate_json(body)


@pytest.mark.parametrize("as_of", ["0000-01-01", "-2026-01-01", "9999-12-31", "1677-09-21"])
def test_an_impossible_as_of_is_refused_naming_the_field(as_of):
    """Before: "0000-01-01" or "-2026-01-01" raised inside the feature code (500 for every
    request batched with it), 9999-12-31 was "before the data"."""
    with pytest.raises(ValidationError) as caught:
        request_model(10).model_validate_json(json.dumps({**EXAMPLE_BODY, "as_of": as_of}).encode())
    [error] = caught.value.errors()
    assert error["loc"] == ("as_of",) and as_of in error["msg"] and "1900-01-01" in error["msg"]


# --- one customer's defects are that customer's ------------------------------------------------------

def _customer(cid, amount=12.5, **row):
    return {"customer_id": cid, "transactions": [{"timestamp": "2025-06-01", "amount": amount, **row}]}


@pytest.mark.parametrize("amount", ["20.5", True, None, "lots"])
def test_a_customer_with_an_amount_that_is_no_number_is_set_aside_alone(amount):
    """Before: a text, boolean or null amount failed the whole request (400), or "20.5" and
    true were taken as numbers."""
    body = json.dumps({"as_of": "2025-12-01", "customers": [_customer("good"), _customer("bad", amount),
                                                             _customer("also good")]}).encode()
    got = request_model(10).model_validate_json(body).customers
    assert isinstance(got, RequestTables) and got.ids == ["good", "bad", "also good"]
    assert list(got.rejected) == ["bad"] and "transactions.0.amount" in got.rejected["bad"]
    assert set(got.frames["transactions"]["customer_id"]) == {"good", "also good"}


def test_request_level_defects_still_fail_the_request():
    model = request_model(3)
    for body in ([_customer("a"), {"transactions": []}], [_customer("a"), _customer(42)], [_customer("a"), "x"],
                 [_customer("a"), _customer(" a ", "1")], [_customer("   ")]):
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps({"customers": body}).encode())


def test_ids_are_stripped_of_white_space_as_the_data_contract_strips_them():
    """Before: "  c1  " was scored as "c1" by the contract, then answered "no transactions"
    under its own id; " c1" and "c1" were merged into one customer."""
    got = request_model(10).model_validate_json(json.dumps({"customers": [_customer("  c1  ")]}).encode())
    assert got.customers[0]["customer_id"] == "c1"
    with pytest.raises(ValidationError, match="c1 appear more than once"):
        request_model(10).model_validate_json(json.dumps({"customers": [_customer(" c1"), _customer("c1")]}).encode())


# --- one request's error is that request's ---------------------------------------------------------------

def test_an_error_in_a_batch_reaches_only_the_request_that_raises_it_among_concurrent_clients():
    def score_batch(items):
        time.sleep(0.01)
        if any(item.startswith("poison") for item in items):
            raise OverflowError("date out of range")  # as the feature code raised for as_of 0000-01-01
        return [item.upper() for item in items]

    async def clients():
        batcher = RequestBatcher(score_batch, max_customers=50)

        async def client(name, delay):
            await asyncio.sleep(delay)
            return await batcher.submit(name, 1)

        names = [f"poison{i}" if i % 10 == 3 else f"good{i}" for i in range(200)]
        results = await asyncio.gather(*(client(n, (i % 7) * 0.003) for i, n in enumerate(names)),
                                       return_exceptions=True)
        return dict(zip(names, results))

    results = asyncio.run(clients())
    for name, result in results.items():
        if name.startswith("poison"):
            assert isinstance(result, OverflowError)
        else:
            assert result == name.upper(), (name, result)


# --- the guard --------------------------------------------------------------------------------------------

async def _echo(scope, receive, send):
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(message.get("body", b""))).encode()})


def test_a_form_or_multipart_body_gets_415_not_500():
    guard = Guard(_echo, no_auth=True)
    for media in (b"multipart/form-data", b"multipart/form-data; boundary=x", b"application/x-www-form-urlencoded"):
        status, body = call_asgi(guard, "/score", "POST", [(b"content-type", media)])
        assert status == 415 and b"application/json" in body
    assert call_asgi(guard, "/score", "POST", [(b"content-type", b"application/json; charset=utf-8")])[0] == 200


def test_a_body_that_trickles_in_gets_408_within_the_time_limit():
    guard = Guard(_echo, no_auth=True, body_seconds=0.3)
    sent = []

    async def trickle():
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/score", "method": "POST", "headers": [(b"content-type", b"application/json")]}
    started = time.monotonic()
    asyncio.run(guard(scope, trickle, send))
    assert sent[0]["status"] == 408 and time.monotonic() - started < 1.5
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_refused_body_is_logged_as_one_warning_line_without_its_values(caplog):
    from retain.serving.http.connections import quiet_refusals

    quiet_refusals()
    logger = logging.getLogger("bentoml._internal.server.http_app")
    try:
        request_model(10).model_validate_json(json.dumps({"customers": [{"customer_id": 7, "transactions": [
            {"timestamp": "2025-01-01", "amount": "secret-value-123"}]}]}).encode())
    except ValidationError:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            logger.error("Exception on %s [%s]", "/score", "POST", exc_info=True)
    [record] = [r for r in caplog.records if r.name == logger.name]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "/score" in record.getMessage() and "secret-value-123" not in caplog.text


# --- credentials ---------------------------------------------------------------------------------------------

def test_credentials_in_any_uri_are_masked():
    from retain.models.registry import display_uri

    text = f"API request to http://alice:{SECRET}@mlflow.example:5000/api failed; postgresql://u:{SECRET}@db/m"
    assert display_uri(text) == ("API request to http://alice:***@mlflow.example:5000/api failed; "
                                 "postgresql://u:***@db/m")
    assert display_uri("sqlite:////home/a/mlflow.db") == "sqlite:////home/a/mlflow.db"


def test_readiness_masks_the_password_and_says_the_store_is_unreachable(tmp_path, monkeypatch):
    """Before: /readyz (no key needed) read "no model ... train one first" for a store that
    did not answer."""
    from retain.serving.http.served import ModelHolder, ServingState, load_champions
    from retain.settings import Settings

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    settings = Settings(home=tmp_path, tracking_uri=f"http://alice:{SECRET}@127.0.0.1:{_free_port()}")
    state = ServingState(holder=ModelHolder(lambda: load_champions(settings)))
    with pytest.raises(Exception):
        state.holder.reload()
    ready, details = state.readiness()
    status, models = state.models_body()
    assert not ready and status == 503
    for text in (details["problem"], models["error"]):
        assert "unreachable" in text and "alice:***@127.0.0.1" in text and SECRET not in text
        assert "train one first" not in text


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the score store ------------------------------------------------------------------------------------------

def test_a_killed_load_leaves_no_building_file_behind(tmp_path):
    from retain.serving.store import ScoreStore

    scores = tmp_path / "scores.parquet"
    pd.DataFrame({"customer_id": ["a"], "clv": [1.0]}).to_parquet(scores)
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    store = ScoreStore(tmp_path / "scores.duckdb")
    leftovers = [tmp_path / f".scores.duckdb.building-{killed.pid}", tmp_path / f".scores.duckdb.building-{killed.pid}.wal"]
    alive = tmp_path / f".scores.duckdb.building-{os.getppid()}"  # a load still running elsewhere
    for path in (*leftovers, alive):
        path.write_bytes(b"half a database")
    store.load(scores, "2025-12-01", {})
    assert not any(path.exists() for path in leftovers) and alive.exists()
    assert store.lookup(["a"])[0]["clv"].tolist() == [1.0]


def test_a_body_is_parsed_off_the_event_loop():
    """Before: BentoML parsed each body on the event loop (a 52 MB body held every other
    client for about 4.5 s)."""
    from retain.serving.http.schema import read_off_the_loop

    class Slow:
        @classmethod
        def model_validate_json(cls, body):
            time.sleep(0.5)  # a large body being parsed
            return body

    class Request:
        async def body(self):
            return b"{}"

    read_off_the_loop(Slow)

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        running = asyncio.ensure_future(ticker())
        parsed = await Slow.from_http_request(Request(), None)
        running.cancel()
        return parsed, ticks

    parsed, ticks = asyncio.run(scenario())
    assert parsed == b"{}" and ticks >= 20  # the loop went on while the body was parsed


def test_order_ids_are_scoped_to_their_customer_only_when_customers_share_one():
    from retain.serving.http.tables import orders_of_their_customer

    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "order_id": ["o1", "o2", " o1", None, "o9"],
                       "amount": 1.0})
    scoped = orders_of_their_customer({"transactions": tx}, 3)["transactions"]
    assert scoped["order_id"].tolist() == ["0:o1", "0:o2", "1:o1", None, "2:o9"]
    distinct = tx.assign(order_id=["o1", "o2", "o3", None, "o9"])
    assert orders_of_their_customer({"transactions": distinct}, 3)["transactions"] is distinct
    assert orders_of_their_customer({"transactions": tx}, 1)["transactions"] is tx
