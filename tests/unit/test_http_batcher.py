"""The request batcher of the HTTP service (serving/http_batching.py): it waits for nothing
when idle, groups what queues behind a batch, and a failing batch fails only its own requests.
Scoring the grouped requests with trained models: tests/model/test_http_batching.py."""

import asyncio
import time

from retain.serving.http.batching import RequestBatcher


def test_the_batcher_waits_for_nothing_when_idle_and_groups_what_queues_behind_a_batch():
    calls = []

    def score_batch(items):
        calls.append(list(items))
        time.sleep(0.2)
        return [ValueError(f"bad {item}") if item == "bad" else item.upper() for item in items]

    async def scenario():
        batcher = RequestBatcher(score_batch, max_customers=5)
        first = asyncio.ensure_future(batcher.submit("a", 1))
        await asyncio.sleep(0.05)  # "a" is being scored; these queue behind it
        rest = [asyncio.ensure_future(batcher.submit(item, 2)) for item in ("b", "bad", "c", "d")]
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        return results

    started = time.monotonic()
    results = asyncio.run(scenario())
    assert results[0] == "A" and results[1] == "B" and results[3] == "C" and results[4] == "D"
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad bad"
    # "a" alone at once; then as many as fit in 5 customers, then the rest
    assert calls == [["a"], ["b", "bad"], ["c", "d"]]
    assert time.monotonic() - started < 0.2 * 3 + 0.5


def test_a_failing_batch_fails_only_its_own_requests():
    def score_batch(items):
        if "boom" in items:
            raise RuntimeError("scoring failed")
        return items

    async def scenario():
        batcher = RequestBatcher(score_batch, max_customers=1)
        return await asyncio.gather(batcher.submit("boom", 1), batcher.submit("fine", 1), return_exceptions=True)

    failed, fine = asyncio.run(scenario())
    assert isinstance(failed, RuntimeError) and fine == "fine"
