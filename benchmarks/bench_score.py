"""End-to-end batch scoring (`retain score`) on a large generated base, against the same job
written with the anchors (pandas + lifetimes' summary and customer_lifetime_value + LightGBM's
predict) in the same run.

    retain generate --customers 1000000 --seed 1 --out /tmp/gen1m
    python benchmarks/bench_score.py --data /tmp/gen1m

Models are trained once on a separate 60,000-customer generated base (throw-away store), so
the figures measure scoring only. `retain score` runs in a child process, so its peak memory
(max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", default="2026-01-01")
    parser.add_argument("--chunk-customers", type=int, default=250_000)
    parser.add_argument("--skip-anchors", action="store_true")
    parser.add_argument("--train-customers", type=int, default=60_000)
    args = parser.parse_args()

    from retain.data import load_dataset
    from retain.data.synthetic import GeneratorConfig, generate, write_dataset
    from retain.settings import Settings
    from retain.training.churn import train_churn_model
    from retain.training.value import train_value_model

    work = Path(tempfile.mkdtemp(prefix="bench-score-"))
    settings = Settings(home=work / "home")
    write_dataset(generate(GeneratorConfig(customers=args.train_customers, seed=99)), work / "train")
    dataset = load_dataset(work / "train", data_cutoff="2026-01-01")
    end = pd.Timestamp("2026-01-01")
    started = time.perf_counter()
    value = train_value_model(dataset, end - pd.Timedelta(days=365), family="bgnbd", settings=settings)  # lifetimes has it
    churn = train_churn_model(dataset, end - pd.Timedelta(days=120), snapshots=2, settings=settings)
    print(f"models trained on {args.train_customers:,} customers in {time.perf_counter() - started:.0f} s "
          f"(retain-clv v{value.model_version}, retain-churn-type v{churn.model_version})")

    out = work / "scores.parquet"
    env = {**os.environ, "RETAIN_HOME": str(settings.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "retain.cli", "score", "--data", str(args.data), "--as-of", args.as_of,
                    "--out", str(out), "--chunk-customers", str(args.chunk_customers), "--json",
                    "--models", f"clv={value.model_version},churn={churn.model_version}"],
                   env=env, check=True, stdout=open(work / "summary.json", "w"))
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    summary = json.loads((work / "summary.json").read_text())
    print(f"\nretain score, {summary['customers']:,} customers ({summary['scored']:,} scored), "
          f"chunks of {args.chunk_customers:,}:")
    print(f"  wall time (process, model loading included): {wall:.1f} s; "
          f"{summary['customers'] / wall:,.0f} customers/s; peak memory {peak:.2f} GiB")
    for stage, seconds in summary["stage_seconds"].items():
        print(f"  {stage:22s} {seconds:7.1f} s")
    if args.skip_anchors:
        return
    started = time.perf_counter()
    anchor_scores = anchor_job(args.data, pd.Timestamp(args.as_of), settings, value.model_version,
                               churn.model_version)
    anchors = time.perf_counter() - started
    print(f"\nthe same job with the anchors: {anchors:.1f} s -> retain score takes "
          f"{wall / anchors:.2f}x the anchors' time ({anchors / wall:.2f}x faster)")
    compare(anchor_scores, pd.read_parquet(out))


def compare(anchor: pd.DataFrame, scores: pd.DataFrame) -> None:
    """The anchors must compute the same value columns as retain, or the timing compares two
    different jobs: print the largest difference per column over the customers both scored."""
    scores = scores.assign(customer_id=scores["customer_id"].astype(str)).set_index("customer_id")
    both = anchor.index.intersection(scores.index[scores["not_scored_reason"].fillna("") == ""])
    print(f"\nsame answers? {len(both):,} customers scored by both")
    for column in ("frequency", "recency", "T", "monetary", "p_alive", "expected_purchases", "clv"):
        ours = scores.loc[both, column].astype(float).to_numpy()
        theirs = anchor.loc[both, column].astype(float).to_numpy()
        scale = np.maximum(np.abs(theirs), 1e-9)
        worst = float(np.nanmax(np.abs(ours - theirs) / scale)) if len(both) else float("nan")
        print(f"  {column:20s} largest relative difference {worst:.2e}")


def anchor_job(data: Path, as_of: pd.Timestamp, settings, clv_version, churn_version) -> pd.DataFrame:
    """What a user of lifetimes and LightGBM would write: pandas reads, lifetimes'
    summary_data_from_transaction_data, BG/NBD expected purchases, P(alive) and Gamma-Gamma
    order value with the fitted parameters, discounted into CLV on retain's schedule, LightGBM's predict on the feature matrix (features built with retain's
    own code: the anchors have none), one Parquet write."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from retain.features import build_features
    from retain.models.value.config import discount_schedule
    from retain.serving import load_model_pair

    pair = load_model_pair(settings, f"clv={clv_version},churn={churn_version}").pair
    timings = {}
    clock = time.perf_counter
    tick = clock()
    tables = {name: pd.read_parquet(data / f"{name}.parquet") for name in ("transactions", "customers", "interactions")}
    tx = tables["transactions"]
    # Plain string ids, as a user would pass them: Parquet gives a categorical column, and
    # lifetimes' summary then groups every category against every date (slow and wrong).
    tx = tx[tx["timestamp"] < as_of].assign(customer_id=lambda frame: frame["customer_id"].astype(str))
    timings["read (pandas)"] = clock() - tick
    tick = clock()
    summary = summary_data_from_transaction_data(tx[tx["amount"] >= 0], "customer_id", "timestamp", "amount",
                                                 observation_period_end=as_of - pd.Timedelta(days=1), freq="D")
    timings["lifetimes summary"] = clock() - tick
    tick = clock()
    purchase = BetaGeoFitter()
    purchase.params_ = pd.Series(pair.value.purchase.params_)
    spend = GammaGammaFitter()
    spend.params_ = pd.Series(pair.value.spend.params_)
    config = pair.value.config
    frequency, recency, age = summary["frequency"], summary["recency"], summary["T"]
    # lifetimes' customer_lifetime_value discounts monthly at a monthly rate; retain's CLV
    # uses its own step schedule (ValueConfig), so the anchor sums lifetimes' expected
    # purchases over the same steps: the same formula, lifetimes doing the work.
    ends, factors = discount_schedule(config)
    cumulative = [purchase.conditional_expected_number_of_purchases_up_to_time(end, frequency, recency, age)
                  for end in ends]
    steps = np.diff(np.column_stack([np.zeros(len(summary))] + [np.asarray(c) for c in cumulative]), axis=1)
    order_value = spend.conditional_expected_average_profit(frequency, summary["monetary_value"])
    anchor = pd.DataFrame({
        "frequency": frequency, "recency": recency, "T": age, "monetary": summary["monetary_value"],
        "p_alive": purchase.conditional_probability_alive(frequency, recency, age),
        "expected_purchases": np.asarray(cumulative[-1]),
        "clv": config.margin * (steps * factors).sum(axis=1) * order_value.to_numpy(),
    }, index=summary.index)
    timings["lifetimes CLV + P(alive)"] = clock() - tick
    tick = clock()
    features, _ = build_features(tables["transactions"], as_of, customers=tables["customers"],
                                 interactions=tables["interactions"], config=pair.feature_config,
                                 reference=pair.reference)
    timings["features (retain's)"] = clock() - tick
    tick = clock()
    matrix, _ = pair.churn.prepare(features)
    probabilities = pair.churn.classifier_.predict_proba(matrix)
    timings["LightGBM predict"] = clock() - tick
    tick = clock()
    anchor.to_parquet(Path(tempfile.mkdtemp()) / "anchor.parquet")
    pd.DataFrame(probabilities).to_parquet(Path(tempfile.mkdtemp()) / "anchor_churn.parquet")
    timings["write"] = clock() - tick
    for stage, seconds in timings.items():
        print(f"  anchor {stage:28s} {seconds:7.1f} s")
    return anchor


if __name__ == "__main__":
    main()
