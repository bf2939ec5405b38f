"""``retain score --engine spark`` against the local engine, and how Spark's time grows.

    python benchmarks/bench_spark.py [--data DIR] [--customers 1000000] [--sizes 100000,300000,1000000]

Trains both model families on a small generated base (in a temporary store), then scores
the large base with the local engine and with Spark in local mode (local[2], loopback) in
the same run, and prints the two times and their ratio (target: Spark within 2x of local).
Then scores the first N customers of the base for each size with Spark and prints the time
per customer, which should stay flat (linear growth). Spark's start-up (JVM, about 6 s) is
printed apart: a nightly job pays it once. DIR is a dataset from
``retain generate --customers 1000000``; without it one is generated.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from retain.data import load_dataset
from retain.data.contract import TABLES
from retain.data.synthetic import GeneratorConfig, generate, write_dataset
from retain.serving import load_model_pair
from retain.serving.jobs import ScoreJob, run_score_job
from retain.serving.jobs.spark import SparkConfig, run_spark_score_job, spark_session
from retain.settings import Settings
from retain.training.churn import train_churn_model
from retain.training.value import train_value_model

AS_OF = pd.Timestamp("2025-12-01")


def train_pair(root: Path):
    data = root / "train-data"
    write_dataset(generate(GeneratorConfig(customers=20_000, seed=3)), data)
    dataset = load_dataset(data, data_cutoff="2026-01-01")
    settings = Settings(home=root / "home")
    end = pd.Timestamp("2026-01-01")
    train_value_model(dataset, end - pd.Timedelta(days=365), family="bgnbd", settings=settings)
    train_churn_model(dataset, end - pd.Timedelta(days=120), snapshots=1, settings=settings)
    return load_model_pair(settings).pair


def first_customers(data: Path, n: int, out: Path) -> Path:
    """The first n customers (by id) of the base with all their rows, as a dataset folder."""
    out.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    connection.execute(f"CREATE TABLE ids AS SELECT DISTINCT CAST(customer_id AS VARCHAR) AS id "
                       f"FROM read_parquet('{data}/transactions.parquet') ORDER BY id LIMIT {n}")
    for name in TABLES:
        source = data / f"{name}.parquet"
        if source.exists():
            connection.execute(f"COPY (SELECT * FROM read_parquet('{source}') WHERE CAST(customer_id AS VARCHAR) "
                               f"IN (SELECT id FROM ids)) TO '{out / source.name}' (FORMAT parquet)")
    return out


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, help="an existing generated dataset to reuse")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--spark-master", default="local[2]")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    data = args.data
    if data is None:
        data = root / "data"
        write_dataset(generate(GeneratorConfig(customers=args.customers, seed=1)), data)
    print(f"training models on 20,000 generated customers in {root}", flush=True)
    pair = train_pair(root)

    _, local_seconds = timed(lambda: run_score_job(ScoreJob(data=data, as_of=AS_OF, out=root / "local.parquet"),
                                                   pair))
    print(f"local engine, whole base: {local_seconds:.1f} s", flush=True)
    config = SparkConfig(master=args.spark_master, java_home=os.environ.get("JAVA_HOME"))
    started = time.perf_counter()
    with spark_session(config) as spark:
        print(f"Spark start-up ({args.spark_master}): {time.perf_counter() - started:.1f} s", flush=True)
        summary, spark_seconds = timed(lambda: run_spark_score_job(
            ScoreJob(data=data, as_of=AS_OF, out=root / "spark.parquet"), pair, spark))
        same = pd.read_parquet(root / "local.parquet").equals(pd.read_parquet(root / "spark.parquet"))
        print(f"\n| engine | customers | seconds | customers/s |\n|---|---|---|---|\n"
              f"| local | {summary.customers:,} | {local_seconds:.1f} | {summary.customers / local_seconds:,.0f} |\n"
              f"| spark {args.spark_master} | {summary.customers:,} | {spark_seconds:.1f} | "
              f"{summary.customers / spark_seconds:,.0f} |\n"
              f"Spark / local: {spark_seconds / local_seconds:.2f}x (target <= 2x); identical output: {same}\n",
              flush=True)

        print("| customers | Spark seconds | microseconds per customer |\n|---|---|---|", flush=True)
        for size in [int(s) for s in args.sizes.split(",")]:
            if size >= summary.customers:  # the whole base: measured above
                result, seconds = summary, spark_seconds
            else:
                subset = first_customers(data, size, root / f"first-{size}")
                result, seconds = timed(lambda: run_spark_score_job(
                    ScoreJob(data=subset, as_of=AS_OF, out=root / f"spark-{size}.parquet"), pair, spark))
            print(f"| {result.customers:,} | {seconds:.1f} | {seconds / result.customers * 1e6:.0f} |", flush=True)
    print(f"\n(work folder {root}; delete it when done)")


if __name__ == "__main__":
    main()
