"""Churn without churn events (the lapse): training speed, and the inferred reasons against
the generator's truth.

    retain generate --customers 1000000 --seed 1 --out /tmp/gen1m
    python benchmarks/bench_lapse.py --data /tmp/gen1m --snapshots 2          # speed at 1M
    python benchmarks/bench_lapse.py --customers 20000 --reasons-only          # reasons vs truth

Training runs the whole of ``retain train churn`` on the base with its ``churn_events``
dropped (features and lapse labels at each cutoff, value model, LightGBM with n_jobs=1,
calibration, threshold, baselines, MLflow logging) into a throw-away MLflow store, and
prints the time of each stage from its progress lines. Scoring is the model's ``score`` on
the latest cutoff's feature table.

Reasons: among the customers whose recorded churn (the generator's churn_events, hidden from
training) falls in the horizon after the cutoff, the share whose inferred reason (reasons.py,
from the features at the cutoff) equals the recorded type, against always answering the most
frequent type; also without the ``natural`` churners, whose cause leaves no trace.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def reasons_against_truth(tables: dict, cutoff: pd.Timestamp, horizon_days: float) -> dict:
    from retain.features import build_features
    from retain.models.churn.reasons import infer_reasons

    features, _ = build_features(tables["transactions"], cutoff, customers=tables.get("customers"),
                                 interactions=tables.get("interactions"))
    events = tables["churn_events"]
    window = events[(events["churn_date"] >= cutoff) & (events["churn_date"] < cutoff + pd.Timedelta(days=horizon_days))]
    truth = features["customer_id"].astype(str).map(
        window.sort_values("churn_date").drop_duplicates("customer_id").set_index("customer_id")["churn_type"])
    churners = truth.notna().to_numpy()
    inferred, _ = infer_reasons(features[churners].reset_index(drop=True))
    actual = truth[churners].to_numpy(dtype=object)
    result = {"churners": int(churners.sum()), "accuracy": float(np.mean(inferred == actual)),
              "most_frequent_type": pd.Series(actual).value_counts().index[0],
              "most_frequent_share": float(pd.Series(actual).value_counts(normalize=True).iloc[0])}
    traced = actual != "natural"
    result["accuracy_without_natural"] = float(np.mean(inferred[traced] == actual[traced]))
    result["most_frequent_share_without_natural"] = float(
        pd.Series(actual[traced]).value_counts(normalize=True).iloc[0])
    result["unknown_share"] = float(np.mean(inferred == "unknown"))
    result["confusion"] = pd.crosstab(pd.Series(actual, name="recorded"), pd.Series(inferred, name="inferred"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a generated base (retain generate)")
    source.add_argument("--customers", type=int, help="generate a base of this many customers in memory")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--as-of", default="2025-07-01")
    parser.add_argument("--horizon-days", type=float, default=None, help="default: read from the data")
    parser.add_argument("--snapshots", type=int, default=2)
    parser.add_argument("--reasons-only", action="store_true", help="measure the inferred reasons, train nothing")
    args = parser.parse_args()

    from retain.data import Dataset, load_dataset
    from retain.data.synthetic import GeneratorConfig, generate
    from retain.settings import Settings
    from retain.training.churn import train_churn_model

    started = time.perf_counter()
    if args.data:
        full = load_dataset(args.data)
        tables = {"transactions": full.transactions, "customers": full.customers,
                  "interactions": full.interactions, "churn_events": full.churn_events}
    else:
        tables = generate(GeneratorConfig(customers=args.customers, seed=args.seed))
    print(f"data ready in {time.perf_counter() - started:.1f}s: {tables['transactions']['customer_id'].nunique():,} "
          f"customers, {len(tables['transactions']):,} transactions")
    as_of = pd.Timestamp(args.as_of)

    if tables.get("churn_events") is not None:
        horizon = args.horizon_days or 180.0
        figures = reasons_against_truth(tables, as_of, horizon)
        print(f"\ninferred reasons among the {figures['churners']:,} customers whose recorded churn falls in the "
              f"{horizon:g} days after {as_of.date()}:")
        print(f"  equal to the recorded type: {figures['accuracy']:.3f}; always '{figures['most_frequent_type']}': "
              f"{figures['most_frequent_share']:.3f}")
        print(f"  without natural churners: {figures['accuracy_without_natural']:.3f}; most frequent type: "
              f"{figures['most_frequent_share_without_natural']:.3f}; 'unknown' for {figures['unknown_share']:.1%}")
        print(figures["confusion"].to_string())
    if args.reasons_only:
        return

    dataset = Dataset(tables["transactions"], tables.get("customers"), tables.get("interactions"), None)
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="bench-lapse-")))
    stamps: list[tuple[float, str]] = []

    def progress(message: str) -> None:
        stamps.append((time.perf_counter(), message))
        print(f"[{stamps[-1][0] - began:7.1f}s] {message}", flush=True)

    began = time.perf_counter()
    result = train_churn_model(dataset, as_of, snapshots=args.snapshots, horizon_days=args.horizon_days,
                               settings=settings, progress=progress)
    trained = time.perf_counter() - began
    logging = next((t for t, m in stamps if m.startswith("logging to MLflow")), began + trained) - began
    print(f"\ntrained in {trained:.1f}s ({logging:.1f}s before MLflow logging); rows {result.rows}")
    print(f"ROC-AUC {result.metrics['churn_roc_auc']:.4f}, Brier {result.metrics['churn_brier']:.4f}; baselines: "
          + ", ".join(f"{k} {v['churn_roc_auc']:.4f}/{v['churn_brier']:.4f}" for k, v in result.baseline_metrics.items()))
    print(f"promoted: {result.promoted}: {result.reason}")


if __name__ == "__main__":
    main()
