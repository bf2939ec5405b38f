"""Requests that arrive while the server is busy are scored together, each answered as if
it had been scored alone (serving/http/batching.py, serving/http/dispatch.score_requests)."""

import pandas as pd
import pytest

from retain.errors import RetainError
from retain.serving.http.dispatch import Unscorable, _score_together, score_request, score_requests
from retain.serving.http.schema import request_model
from retain.serving.http.tables import request_tables

AS_OF = pd.Timestamp("2025-12-01")
EARLIER = AS_OF - pd.Timedelta(days=90)


def _requests(trained):
    from http_bodies import customer_body, with_everything as _with_everything

    dataset = trained.dataset
    ids = _with_everything(dataset, 8)  # not churned, with attributes and interactions
    bodies = [customer_body(dataset, cid) for cid in ids]
    shorter = dict(bodies[0], transactions=bodies[0]["transactions"][:2])  # same id, other history
    bad_discount = dict(bodies[3], transactions=[dict(t, discount=-5.0) for t in bodies[3]["transactions"]])
    too_early = dict(bodies[5], transactions=[dict(t, timestamp="2026-06-01") for t in bodies[5]["transactions"]])
    no_interactions = {k: v for k, v in bodies[6].items() if k != "interactions"}
    model = request_model(100)
    parse = lambda customers, as_of=AS_OF: (model.model_validate({"customers": customers}).customers, as_of)
    return [
        parse(bodies[:3]),
        parse([shorter, bodies[4]]),                          # customer 0 again, with two purchases only
        parse([too_early]),                                   # nobody scorable: 422 for this request only
        parse([bad_discount, bodies[2]], EARLIER),            # one customer breaks the contract...
        parse(bodies[:2], EARLIER),                           # ...so its group is scored request by request
        parse([no_interactions]),                             # no interactions table: scored with the others
        parse([{k: v for k, v in bodies[7].items() if k != "attributes"}]),  # no attributes: its own call
    ]


def _same(result, alone):
    if isinstance(alone, Exception):
        assert type(result) is type(alone) and str(result) == str(alone)
    else:
        pd.testing.assert_frame_equal(result.scores, alone)


def test_requests_scored_together_equal_each_scored_alone(trained):
    pair = trained.pair()
    requests = _requests(trained)
    together = score_requests(requests, pair)
    for (customers, as_of), result in zip(requests, together):
        try:
            alone = score_request(customers, as_of, pair)
        except (Unscorable, RetainError) as exc:
            alone = exc
        _same(result, alone)
    assert isinstance(together[2], Unscorable)
    assert together[3].scores.loc[0, "not_scored_reason"].startswith("invalid input: transactions.discount")
    assert together[3].scores.loc[1, "not_scored_reason"] == ""
    # the repeated id kept its own history
    assert together[0].scores.loc[0, "frequency"] != together[1].scores.loc[0, "frequency"]
    # the requests as of AS_OF with attributes, interactions or not, go through one call of the core
    together_ids = [0, 1, 2, 5]
    frames = {i: request_tables(requests[i][0]) for i in together_ids}
    ids = {i: [c["customer_id"] for c in requests[i][0]] for i in together_ids}
    assert _score_together(frames, ids, {i: {} for i in together_ids}, AS_OF, pair) is not None
