"""The HTTP scoring service (BentoML 1.4): a thin adapter over the scoring core.

Start it with ``retain serve`` (docs/http-api.md). Each endpoint parses its body into the
data-contract tables and calls what ``retain score`` calls: ``score_customers`` with the
served ``ModelPair``, or the score store's ``lookup``. The pair is read once per request
from the ``ModelHolder``, so a response comes wholly from one pair and names its versions.

Configuration is read once, at import, from the environment ``retain serve`` sets
(serving/http/config.py): BentoML's class decorator needs the worker count and the tracing
settings when the module is imported. Size limits, API keys and readiness are ASGI middleware
(serving/http/guard.py), in front of every endpoint.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter

import bentoml
import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from retain.errors import RetainError
from retain.serving.http.batching import RequestBatcher
from retain.serving.http.config import options_from_environment, tracing_config
from retain.serving.http.connections import limit_header_time, quiet_refusals
from retain.serving.http.dispatch import Unscorable, score_requests
from retain.serving.http.guard import Guard
from retain.serving.http.response import score_rows
from retain.serving.http import openapi
from retain.serving.http.schema import EXAMPLE_BODY, Customer, parse_as_of, read_off_the_loop, request_model
from retain.models.registry import champion_versions
from retain.serving.http.served import ModelHolder, ServingState, load_bento_pair, load_champions
from retain.serving.store import ScoreStore

log = logging.getLogger("retain.serving")

OPTIONS = options_from_environment()
ScoreRequest = request_model(OPTIONS.settings.max_request_customers)
limit_header_time(OPTIONS.header_seconds)
quiet_refusals()
MAX_LOOKUP_IDS = 10_000

CUSTOMERS_COUNTER = bentoml.metrics.Counter(
    name="retain_customers",
    documentation="Customers in /score requests: outcome scored or not_scored, with the reason's kind",
    labelnames=["outcome", "reason"],
)
BATCH_REQUESTS = bentoml.metrics.Histogram(
    name="retain_score_batch_requests",
    documentation="/score requests scored together in one call (requests that arrived while the server was busy)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


def _observe_batch(requests: int, customers: int) -> None:
    BATCH_REQUESTS.observe(requests)


# --- bodies ---------------------------------------------------------------------------------------

class ScoreResponse(BaseModel):
    as_of: str = Field(description="the date scored as of (today in UTC when the request gave none)")
    clv_model_version: str | None
    churn_model_version: str | None
    customers: list[dict] = Field(description="one object per request customer, in request order, with the "
                                              "score columns of `retain score` (docs/http-api.md)")


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[str] = Field(min_length=1, max_length=MAX_LOOKUP_IDS)


class LookupResponse(BaseModel):
    customers: list[dict] = Field(description="the latest stored batch scores of the customers found")
    not_found: list[str]


class ModelsResponse(BaseModel):
    models: list[dict]
    source: str
    loaded_at: str


class ReloadResponse(BaseModel):
    previous: dict | None
    current: dict


def _json(body: dict, status: int = 200) -> Response:
    # score_rows has already made NaN null; orjson writes the shortest exact float, as json does
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _not_ready(holder: ModelHolder) -> Response:
    return JSONResponse({"error": f"the models are not loaded yet: {holder.problem}"}, status_code=503)


# --- the service ----------------------------------------------------------------------------------

# What this worker process serves. BentoML builds the ASGI middleware (readiness, GET /models)
# before it makes the service instance, so the two meet here; a built Bento's entry module
# fills in the models imported into it (``use_bento_models``).
STATE = ServingState()


@bentoml.service(
    name="retain",
    workers=OPTIONS.workers,
    traffic={"timeout": 120},
    http={"port": 3000},
    tracing=tracing_config(OPTIONS),
)
class Retain:
    """Scores customers with the champion value and churn-type models."""

    def __init__(self) -> None:
        if STATE.bento_models:
            self.holder = ModelHolder(lambda: load_bento_pair(STATE.bento_models))
        else:
            settings = OPTIONS.settings
            self.holder = ModelHolder(lambda: load_champions(settings), lambda: champion_versions(settings),
                                      poll_seconds=OPTIONS.reload_seconds)
        self.store = ScoreStore(OPTIONS.settings.score_store_path)
        self.batcher = RequestBatcher(self._score_batch, OPTIONS.settings.max_request_customers,
                                      on_batch=_observe_batch)
        STATE.holder = self.holder
        self.holder.start()

    def __is_ready__(self) -> bool:
        return self.holder.ready

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, customers: list[Customer], as_of: str | None = None) -> ScoreResponse:
        """Score customers from their history (the data contract as JSON); one row per customer."""
        if self.holder.served is None:
            return _not_ready(self.holder)
        day = parse_as_of(as_of)
        try:
            served, not_scored, rows = await self.batcher.submit((customers, day), len(customers))
        except Unscorable as exc:
            self._count(exc.codes)
            return _json({"error": str(exc), "customers": [{"customer_id": k, "not_scored_reason": v}
                                                            for k, v in exc.reasons.items()]}, 422)
        except RetainError as exc:
            return _json({"error": str(exc)}, 422)
        except Exception:  # noqa: BLE001 - this request's own failure (dispatch logged it): its 500 alone
            return _json({"error": "the request could not be scored because of an error in the server; "
                                   "the server log says why"}, 500)
        self._count(not_scored)
        return _json({"as_of": day.strftime("%Y-%m-%d"), **served.versions, "customers": rows})

    def _score_batch(self, requests: list) -> list:
        """The requests waiting together, scored by one pair (each response names it)."""
        served = self.holder.served  # this batch's pair, whatever a reload does meanwhile
        results = score_requests(requests, served.pair)
        # the response rows are made here too, off the event loop that reads the next requests
        return [result if isinstance(result, Exception) else
                (served, result.not_scored, score_rows(result.columns, served.pair.columns))
                for result in results]

    @staticmethod
    def _count(codes) -> None:
        """Customers by outcome, ``codes`` the not-scored code of each (None: scored)."""
        # one increment per kind of outcome: a counter's inc is a locked write to shared memory
        for (outcome, reason), customers in Counter(
                ("not_scored", code.value) if code is not None else ("scored", "") for code in codes).items():
            CUSTOMERS_COUNTER.labels(outcome=outcome, reason=reason).inc(customers)

    @bentoml.api(route="/lookup", input_spec=LookupRequest)
    def lookup(self, customer_ids: list[str]) -> LookupResponse:
        """The latest stored batch scores (retain score's score store) of these customers."""
        from retain.serving.scoring import conform

        found, missing = self.store.lookup(customer_ids)
        rows = []
        if len(found):
            from retain.data.contract import score_columns

            labels = [c[len("p_type_"):] for c in found.columns if c.startswith("p_type_")]
            columns = score_columns(labels)
            rows = score_rows(conform(found, columns), columns)
        return _json({"customers": rows, "not_found": missing})

    @bentoml.api(route="/models")
    def models(self) -> ModelsResponse:
        """The served models: names, versions, aliases, training dates, key holdout metrics
        (also ``GET /models``)."""
        status, body = STATE.models_body()
        return _json(body, status)

    @bentoml.api(route="/admin/reload")
    def reload(self) -> ReloadResponse:
        """Load the champions now and swap them in whole (the alias is also polled)."""
        try:
            previous, current = self.holder.reload()
        except RetainError as exc:
            return _json({"error": str(exc)}, 503)
        return _json({"previous": previous.versions if previous else None, "current": current.versions})


read_off_the_loop(Retain.apis["score"].input_spec)


@functools.cache
def openapi_document() -> dict:
    """BentoML's OpenAPI document, completed (serving/http/openapi.py); made once."""
    return openapi.complete(Retain.openapi_spec.asdict(), {
        "/score": EXAMPLE_BODY, "/lookup": {"customer_ids": [c["customer_id"] for c in EXAMPLE_BODY["customers"]]}})


Retain.add_asgi_middleware(Guard, api_keys=OPTIONS.api_keys, no_auth=OPTIONS.no_auth,
                           max_bytes=OPTIONS.settings.max_request_bytes, readiness=STATE.readiness,
                           get_routes={"/models": STATE.models_body}, body_seconds=OPTIONS.body_seconds,
                           documents={"/docs.json": openapi_document})


def use_bento_models(entries: dict) -> None:
    """Serve the models imported into a Bento (called by the Bento's entry module) and
    declare them, so that ``bentoml build`` packages them."""
    from bentoml.models import BentoModel

    STATE.bento_models.update(entries)
    for entry in entries.values():
        if all(str(m.tag) != entry["tag"] for m in getattr(Retain, "models", [])):
            Retain.models.append(BentoModel(entry["tag"]))


__all__ = ["Retain", "use_bento_models"]
