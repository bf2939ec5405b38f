"""Requests that arrive while the server is busy are scored together.

Scoring a request has a fixed cost (building the tables, the contract checks, the feature
and model calls) that hardly grows with its customers. When requests queue up, scoring
them in one call pays that cost once. The queue never waits on purpose: an idle server
scores a request at once, alone; requests that arrive while a batch is being scored join
the next batch, up to a number of customers. So batching costs no latency when traffic is
light and keeps the server up with it when traffic is heavy.

Why not BentoML's adaptive batching (``@bentoml.api(batchable=True)``): it batches an
endpoint whose whole body is one list, and /score's body (``as_of`` plus ``customers``) is
fixed by the integrations written against it. Its dispatcher also holds requests back for
a batching window and answers 503 to those that wait past ``max_latency_ms``; here a
request waits only for the batch already running (docs/http-api.md, "Throughput").
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Sequence

import anyio


class RequestBatcher:
    """Runs ``score_batch(items) -> results`` (one result or exception per item, in order)
    in a worker thread, one batch at a time, over the items submitted meanwhile."""

    def __init__(self, score_batch: Callable[[list], Sequence[Any]], max_customers: int,
                 on_batch: Callable[[int, int], None] | None = None):
        self._score_batch = score_batch
        self._max_customers = max_customers
        self._on_batch = on_batch  # (requests, customers) of each batch, for the metrics
        self._waiting: deque = deque()
        self._draining = False
        self._task: asyncio.Task | None = None

    async def submit(self, item, customers: int):
        """The result for ``item`` (or its exception raised), once its batch is scored."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, customers, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    def _next_batch(self) -> list:
        batch, customers = [], 0
        while self._waiting:
            item, size, future = self._waiting[0]
            if batch and customers + size > self._max_customers:
                break
            self._waiting.popleft()
            if future.cancelled():  # the client went away while waiting
                continue
            batch.append((item, future))
            customers += size
        if self._on_batch is not None and batch:
            self._on_batch(len(batch), customers)
        return batch

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._next_batch()
                if not batch:
                    continue
                items = [item for item, _ in batch]
                try:
                    results = await anyio.to_thread.run_sync(self._score_batch, items)
                except Exception:  # noqa: BLE001 - whose error it is, only scoring each alone can tell
                    results = [await self._alone(item) for item in items]
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False

    async def _alone(self, item):
        """The result of ``item`` scored by itself, or the error it raises by itself: one
        request's error never reaches the requests batched with it."""
        try:
            [result] = await anyio.to_thread.run_sync(self._score_batch, [item])
        except Exception as exc:  # noqa: BLE001 - this request's own error, answered to it alone
            return exc
        return result
