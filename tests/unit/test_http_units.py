"""Pieces of the HTTP service that a running server cannot easily show: the holder keeping
the old pair when a reload fails, the guard, body errors, tracing (a missing champion named
in the readiness answer needs trained models: tests/model/test_http_champions.py)."""


import pytest

from retain.errors import RetainError
from retain.serving.http.guard import Guard
from retain.serving.http.served import ModelHolder
from retain.settings import Settings

from http_bodies import call_asgi as _call


def test_a_failed_reload_keeps_the_pair_being_served():
    from types import SimpleNamespace

    served = SimpleNamespace(pair=SimpleNamespace(clv_version="retain-clv/v1", churn_version="retain-churn-type/v1"))
    calls = iter([served, RuntimeError("store unreachable")])

    def load():
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    holder = ModelHolder(load)
    holder.reload()
    with pytest.raises(RetainError, match="store unreachable"):
        holder.reload()
    assert holder.served is served and holder.ready


def test_keys_are_checked_before_anything_else_and_bodies_by_size():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = Guard(app, api_keys=("k1", "k2"), max_bytes=100)
    assert _call(guard, "/score", "POST")[0] == 401
    assert _call(guard, "/score", "POST", [(b"authorization", b"Bearer k3")])[0] == 401
    assert _call(guard, "/score", "POST", [(b"authorization", b"Bearer k2")]) == (200, b"ok")
    too_big = [(b"authorization", b"Bearer k1"), (b"content-length", b"101")]
    assert _call(guard, "/score", "POST", too_big)[0] == 413
    assert _call(guard, "/metrics")[0] == 200


def test_body_errors_name_each_customer_by_id_and_keep_the_others():
    import json

    from pydantic import ValidationError

    from retain.serving.http.schema import request_model

    body = json.dumps({"as_of": "not a date", "customers": [
        {"customer_id": "ok", "transactions": [{"timestamp": "2025-01-01", "amount": 1.0}]},
        {"customer_id": "B{1}", "transactions": [{"timestamp": "2025-01-01", "amount": "lots"}], "colour": 1},
        {"transactions": []}]})
    with pytest.raises(ValidationError) as caught:
        request_model(10).model_validate_json(body)
    messages = {tuple(e["loc"]): e["msg"] for e in caught.value.errors()}
    assert messages[("customers", 1)] == ('customer "B{1}": transactions.0.amount: Input should be a valid number; '
                                          "colour: Extra inputs are not permitted")
    assert messages[("customers", 2)] == "customer (no customer_id): customer_id: Field required"
    assert "not a date" in messages[("as_of",)] and ("customers", 0) not in messages


def test_the_served_pair_is_kept_out_of_full_garbage_collections():
    import gc
    import weakref
    from types import SimpleNamespace

    class Node:  # models hold many objects in reference cycles
        def __init__(self):
            self.me = self

    def load():
        nodes = [Node() for _ in range(1_000)]
        return SimpleNamespace(pair=SimpleNamespace(clv_version="v", churn_version="v"), nodes=nodes)

    holder = ModelHolder(load)
    holder.reload()
    first = weakref.ref(holder.served.nodes[0])
    # frozen: tracked, yet in none of the generations a collection scans
    assert gc.is_tracked(first()) and not any(o is first() for o in gc.get_objects())
    holder.reload()
    holder.reload()  # the first pair, replaced two reloads ago, has been released
    assert first() is None
    gc.unfreeze()


def test_the_api_routes_are_left_out_of_tracing_unless_asked_for(tmp_path):
    """BentoML's OpenTelemetry middleware records nothing unless tracing is configured, and
    costs CPU on every /score request: the API routes skip it unless --trace-requests."""
    from retain.cli import _service_environment, build_parser
    from retain.serving.http.config import options_from_environment, tracing_config

    base = {"RETAIN_HOME": str(tmp_path), "RETAIN_API_KEYS": "k"}
    default = tracing_config(options_from_environment(base))
    assert {"/score", "/lookup", "/models", "/admin/reload"} <= set(default["excluded_urls"])
    settings = Settings(home=tmp_path, api_keys=("k",))
    for flags, traced in (([], False), (["--trace-requests"], True)):
        args = build_parser().parse_args(["serve", *flags])
        options = options_from_environment(_service_environment(args, settings))
        assert options.trace_requests is traced
        assert tracing_config(options) == ({} if traced else default)
