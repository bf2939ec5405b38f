"""Requests handed to the scoring core: nothing here computes a feature or a score.

Requests waiting together are scored in one call of ``retain.serving.score_customers``
where they can be (the fixed cost of a call is paid once), and each result belongs to its
request alone: its score rows in request order, or the error that request would raise by
itself. When no customer of a request could be scored because of its input, the request
answers 422 with every customer's reason (``Unscorable``).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from retain.data import Dataset
from retain.errors import RetainError
from retain.serving.http.columnar import RequestTables
from retain.serving.http.schema import Customer
from retain.serving.http.tables import as_tables, orders_of_their_customer, validate, validated, with_empty_tables
from retain.serving.scoring import ModelPair, ScoredBatch, conform_arrays, missing_values, score_customers
from retain.vocabulary import NotScored

log = logging.getLogger("retain.serving")


class Unscorable(Exception):
    """No customer of the request could be scored because of its input (HTTP 422)."""

    def __init__(self, reasons: dict[str, str], codes: list[NotScored] = ()):
        self.reasons = reasons  # customer id -> not_scored_reason
        self.codes = list(codes)
        shown = "; ".join(f"customer {json.dumps(cid)}: {why}" for cid, why in list(reasons.items())[:20])
        more = f"; and {len(reasons) - 20} more" if len(reasons) > 20 else ""
        super().__init__(f"no customer could be scored: {shown}{more}")


def score_request(customers: list[Customer] | RequestTables, as_of: pd.Timestamp, pair: ModelPair) -> pd.DataFrame:
    """One score row per request customer, in request order, from the scoring core."""
    result = score_requests([(customers, as_of)], pair)[0]
    if isinstance(result, Exception):
        raise result
    return result.scores


def score_requests(requests: list[tuple[list[Customer] | RequestTables, pd.Timestamp]], pair: ModelPair) -> list:
    """Several requests scored together, each result what ``score_request`` gives for it
    alone: its score rows (a ``ScoredBatch`` in request order), or the
    ``Unscorable``/``RetainError`` it would raise.

    Requests with the same as_of and the same tables and columns are scored in one call of
    the scoring core (the fixed cost of a call is paid once); their customer ids are made
    distinct by a request prefix, and every step before the models is per customer, so a
    customer's row does not depend on who shares the call. Anything else goes alone."""
    read = [as_tables(customers) for customers, _ in requests]
    frames = [orders_of_their_customer(tables.frames, len(tables)) for tables in read]
    groups: dict[tuple, list[int]] = {}
    for i, ((_, as_of), tables) in enumerate(zip(requests, frames)):
        # a request without interactions or churn events scores as one whose customers have
        # no such rows (``with_empty_tables``); the transactions' optional columns and the
        # attributes sent change how columns are read, so those must agree
        shape = tuple(sorted((name, tuple(sorted(frame.columns))) for name, frame in tables.items()
                             if name in ("transactions", "customers")))
        groups.setdefault((as_of, shape), []).append(i)
    results: list = [None] * len(requests)
    for (as_of, _), members in groups.items():
        ids = {i: read[i].ids for i in members}
        rejected = {i: read[i].rejected for i in members}
        together = _score_together({i: frames[i] for i in members}, ids, rejected, as_of, pair) \
            if len(members) > 1 else None
        for i in members:
            scores = together[i] if together is not None else _error_of(
                lambda: _score_tables(frames[i], ids[i], rejected[i], as_of, pair))
            results[i] = scores if isinstance(scores, Exception) else _scorable_or_error(scores)
    return results


def _error_of(score):
    """The request's scores, or the error its own scoring raised: it belongs to that request
    alone, never to the others scored in the same batch."""
    try:
        return score()
    except RetainError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a defect met by this request only: its 500, logged
        log.error("scoring a request failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return exc


def _score_together(frames: dict[int, dict[str, pd.DataFrame]], ids: dict[int, list[str]],
                    rejected: dict[int, dict[str, str]], as_of, pair) -> dict[int, ScoredBatch] | None:
    """The requests' rows in one call, customer and order ids prefixed by their request (two
    requests may name the same customer or order). None when their rows break the contract
    or the call fails: then each request goes alone, and its errors name its own rows."""
    prefixes = {i: f"{i}:" for i in frames}
    combined: dict[str, list[pd.DataFrame]] = {}
    for i, tables in frames.items():
        for name, frame in tables.items():
            frame = frame.copy(deep=False)
            for column in ("customer_id", "order_id"):
                if column in frame:
                    frame[column] = (prefixes[i] + frame[column].astype(str)).where(frame[column].notna(), None)
            combined.setdefault(name, []).append(frame)
    every_id = [prefixes[i] + cid for i in frames for cid in ids[i]]
    bad = {prefixes[i] + cid: why for i in frames for cid, why in rejected[i].items()}
    if "transactions" not in combined:
        return None
    try:
        dataset = validate({name: pd.concat(parts, ignore_index=True) for name, parts in combined.items()})
        scores = _scores_of(dataset, bad, every_id, as_of, pair)
    except Exception:  # noqa: BLE001 - each request goes alone: an error is then its own
        return None
    parts, start = {}, 0
    for i in frames:
        rows = slice(start, start + len(ids[i]))
        columns = {name: values[rows] for name, values in scores.columns.items()}
        columns["customer_id"] = np.asarray(ids[i], dtype=object)
        parts[i], start = ScoredBatch(columns, scores.not_scored[rows]), start + len(ids[i])
    return parts


def _score_tables(frames: dict[str, pd.DataFrame], ids: list[str], rejected: dict[str, str], as_of,
                  pair: ModelPair) -> ScoredBatch:
    """One score row per id, in the order of ``ids``, from one request's tables."""
    dataset, bad = validated(frames, ids, rejected)
    return _scores_of(dataset, bad, ids, as_of, pair)


def _scores_of(dataset: Dataset | None, bad: dict[str, str], ids: list[str], as_of, pair: ModelPair) -> ScoredBatch:
    wanted = np.asarray(ids, dtype=object)
    if dataset is not None:
        batch = score_customers(with_empty_tables(dataset, pair), as_of, pair)
        scored, codes = batch.columns, batch.not_scored
        got = scored["customer_id"]
        if len(got) == len(wanted) and (got == wanted).all():
            return batch  # every customer, already in request order (always so for one)
        position = pd.Index(got).get_indexer(wanted)
    else:
        scored, codes, position = conform_arrays({}, pair.columns), np.empty(0, dtype=object), np.full(len(wanted), -1)
    lost = position < 0
    if not lost.any():
        return ScoredBatch({name: values[position] for name, values in scored.items()}, codes[position])
    # rejected by validation, or no rows in any table: an empty row that says why
    kept = ~lost
    columns = {}
    for name, values in scored.items():
        columns[name] = missing_values(pair.columns[name], len(wanted))
        columns[name][kept] = values[position[kept]]
    columns["customer_id"] = wanted
    columns["as_of"][lost] = pd.Timestamp(as_of).to_datetime64()
    not_scored = np.full(len(wanted), None, dtype=object)
    not_scored[kept] = codes[position[kept]]
    not_scored[lost] = [NotScored.INVALID_INPUT if cid in bad else NotScored.NO_TRANSACTIONS for cid in wanted[lost]]
    columns["not_scored_reason"][lost] = [bad.get(cid, NotScored.NO_TRANSACTIONS.words()) for cid in wanted[lost]]
    columns["clv_model_version"][lost] = pair.clv_version
    columns["churn_model_version"][lost] = pair.churn_version
    return ScoredBatch(columns, not_scored)


def _scorable_or_error(scores: ScoredBatch):
    if all(code is not None and code.input_unusable for code in scores.not_scored):
        reasons = map(str, scores.columns["not_scored_reason"].tolist())
        return Unscorable(dict(zip(scores.columns["customer_id"].tolist(), reasons)), list(scores.not_scored))
    return scores
