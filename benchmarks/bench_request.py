"""Where one /score request's time goes, in process: each stage for 1 and 1,000 customers.

    python benchmarks/bench_request.py --home RETAIN_HOME --data DATASET_FOLDER [--as-of 2025-12-01]

The same request bodies as benchmarks/bench_http.py (customers of DATASET_FOLDER with their
transactions, attributes and interactions), taken through the steps the HTTP service runs
(serving/http/schema.py): reading the body into the request's tables (large bodies straight
into columns, serving/http/columnar.py; compared with pydantic and ``request_tables``, the
path of small bodies), the contract checks, the features, the value model, the churn model,
the whole scoring core and the response rows. Printed per stage: median and fastest time
and Python function calls. The baseline,
measured in the same run on the same customers: the registered pyfuncs called in process
(``mlflow.pyfunc.load_model(...).predict`` of raw tables, what `mlflow models serve` runs
per request), the value pyfunc and the churn pyfunc each alone.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import pstats
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_http import customers_json, group_tables, raw_tables_split  # noqa: E402


def measured(call, repeat: int, idle_seconds: float = 0.0) -> tuple[float, float, int]:
    """(median ms, fastest ms, Python calls) of ``call`` over ``repeat`` runs after one warm-up.
    With ``idle_seconds``, each run follows such a pause, as a server's requests do: back-to-back
    runs keep the CPU's caches warm, which requests apart in time do not."""
    call()
    times = []
    for _ in range(repeat):
        if idle_seconds:
            time.sleep(idle_seconds)
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    profile = cProfile.Profile()
    profile.enable()
    call()
    profile.disable()
    return float(np.median(times) * 1000), min(times) * 1000, pstats.Stats(profile).total_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="RETAIN_HOME holding the champion pair")
    parser.add_argument("--data", type=Path, required=True, help="the dataset folder the pair was trained on")
    parser.add_argument("--as-of", default="2025-12-01")
    parser.add_argument("--repeat", type=int, default=200, help="runs per stage for one customer (1,000: a tenth)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{args.home.resolve() / 'mlflow.db'}")

    import mlflow.pyfunc

    from retain.features.eligibility import scorable_features
    from retain.models.value import value_scores
    from retain.serving import load_model_pair
    from retain.serving.http.columnar import MIN_BYTES, ColumnReader
    from retain.serving.http.dispatch import score_requests
    from retain.serving.http.response import score_rows
    from retain.serving.http.schema import request_model
    from retain.serving.http.tables import as_tables, validated, with_empty_tables
    from retain.serving.scoring import _conform_attributes, score_customers
    from retain.settings import Settings

    tables = {name: pd.read_parquet(args.data / f"{name}.parquet") for name in
              ("transactions", "customers", "interactions") if (args.data / f"{name}.parquet").exists()}
    as_of = pd.Timestamp(args.as_of)
    before = tables["transactions"][tables["transactions"]["timestamp"] < as_of]
    ids = sorted(np.random.default_rng(0).choice(sorted(before["customer_id"].astype(str).unique()), 1000,
                                                 replace=False))
    # the single-customer request: the customer of the median number of purchases among them
    purchases = before["customer_id"].astype(str).value_counts().reindex(ids)
    typical = purchases.sort_values(kind="stable").index[len(ids) // 2]
    grouped = group_tables(tables)
    pair = load_model_pair(Settings(home=args.home)).pair
    pyfuncs = {name: mlflow.pyfunc.load_model(f"models:/{name}@champion") for name in ("retain-clv", "retain-churn-type")}
    body_model = request_model(10_000)
    gc.collect()
    gc.freeze()  # as the server does once the models are loaded (serving/http/served.py)
    warnings.simplefilter("ignore")  # the pyfuncs warn per call about inputs they ignore
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    for n in (1, 1000):
        repeat = args.repeat if n == 1 else max(args.repeat // 10, 3)
        chosen = [typical] if n == 1 else ids[:n]
        body = json.dumps({"as_of": args.as_of, "customers": customers_json(grouped, chosen)}).encode()
        customers = body_model.model_validate_json(body).customers
        read = as_tables(customers)
        frames, customer_ids = read.frames, read.ids

        def by_pydantic():  # what the server does with small bodies
            return as_tables(super(body_model, body_model).model_validate_json(body).customers)

        dataset, _ = validated(frames, customer_ids)
        dataset = with_empty_tables(dataset, pair)
        conformed = replace(dataset, customers=_conform_attributes(dataset.customers, pair.churn))
        features, _ = scorable_features(conformed, as_of, pair.feature_config, pair.reference)
        scored = score_requests([(customers, as_of)], pair)[0]
        split = raw_tables_split(tables, chosen)
        raw = pd.DataFrame(split["data"], columns=split["columns"])

        def whole():
            request = body_model.model_validate_json(body)
            result = score_requests([(request.customers, as_of)], pair)[0]
            return score_rows(result.columns, pair.columns)

        stages = {
            "read the body into tables (as the server does)": lambda: as_tables(
                body_model.model_validate_json(body).customers),
            "  for comparison: pydantic, then request tables": by_pydantic,
            "contract checks": lambda: validated(frames, customer_ids),
            "features": lambda: scorable_features(conformed, as_of, pair.feature_config, pair.reference),
            "value model": lambda: value_scores(pair.value, features),
            "churn model": lambda: pair.churn.score_columns_with_notes(features),
            "scoring core (features + models + assembly)": lambda: score_customers(dataset, as_of, pair),
            "response rows": lambda: score_rows(scored.columns, pair.columns),
            "WHOLE REQUEST (read, score, response rows)": whole,
            "baseline: value pyfunc predict": lambda: pyfuncs["retain-clv"].predict(raw, params={"as_of": args.as_of}),
            "baseline: churn pyfunc predict": lambda: pyfuncs["retain-churn-type"].predict(
                raw, params={"as_of": args.as_of}),
        }
        print(f"\n{n:,} customer(s), {len(frames['transactions']):,} transactions, "
              f"{len(frames.get('interactions', [])):,} interactions; {repeat} runs each")
        results = {}
        for name, call in stages.items():
            median, fastest, calls = measured(call, repeat)
            results[name] = median
            print(f"  {name:<46} median {median:8.2f} ms  fastest {fastest:8.2f} ms  {calls:7,d} calls", flush=True)
        whole_ms = results["WHOLE REQUEST (read, score, response rows)"]
        after_idle, _, _ = measured(whole, repeat, idle_seconds=0.005)
        print(f"  {'WHOLE REQUEST, each after 5 ms idle':<46} median {after_idle:8.2f} ms"
              "  (as a server's requests come: caches no longer warm)")
        reading = results["read the body into tables (as the server does)"]
        through_pydantic = results["  for comparison: pydantic, then request tables"]
        if len(body) >= MIN_BYTES:
            print(f"  reading the body into tables / through pydantic: {reading / through_pydantic:.2f}x the time")
        else:
            print(f"  (a body under {MIN_BYTES:,} bytes goes through pydantic: the two readings are one path)")
        for name in ("baseline: value pyfunc predict", "baseline: churn pyfunc predict"):
            print(f"  whole request / {name[len('baseline: '):]}: {whole_ms / results[name]:.2f}x the time")

    # where reading into columns starts to pay (serving/http/columnar.py's MIN_BYTES)
    print("\nreading a body into tables by size: Arrow's reader (columns) / pydantic and request_tables")
    for n in (32, 64, 128, 256, 512, 1000):
        body = json.dumps({"as_of": args.as_of, "customers": customers_json(grouped, ids[:n])}).encode()
        reader = ColumnReader(10_000, lambda as_of: True, min_bytes=0)
        columns, _, _ = measured(lambda: reader.read(body), max(args.repeat // 10, 5))
        pydantic, _, _ = measured(lambda: as_tables(super(body_model, body_model).model_validate_json(body).customers),
                                  max(args.repeat // 10, 5))
        print(f"  {n:5,d} customers, {len(body):9,d} bytes: {columns:7.2f} ms / {pydantic:7.2f} ms = "
              f"{columns / pydantic:.2f}x", flush=True)


if __name__ == "__main__":
    main()
