"""The subscription family's speed and fit at 1M subscribers, against BG/NBD on the same table.

    retain generate --business subscription --customers 1000000 --seed 1 --out /tmp/sub1m
    python benchmarks/bench_subscription.py --data /tmp/sub1m

Prints: the feature table's build time (not part of the fit), detection of the base, the
sBG fit with the attributes as covariates (``SubscriptionValueModel(...).fit``: collapsed
histories, covariance, bill amounts and tier edges), the scores of every customer with the
80% interval, the fitted coefficients against the generator's, the holdout forecast against
the naive baseline, and, as the baseline measured in the same run, what the non-contractual
path did on this base before: retain's BG/NBD fit on the same calibration table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from retain.features import calibration_holdout
from retain.models.value import FitError, ProbabilisticValueModel, SubscriptionValueModel
from retain.models.value.subscription import detect_business
from retain.training.evaluate import naive_value_forecast, value_metrics

from bench_value import timed  # the benchmarks' one timer (run from this folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--calibration-end", default="2025-01-01")
    parser.add_argument("--holdout-end", default="2026-01-01")
    args = parser.parse_args()

    transactions = pd.read_parquet(args.data / "transactions.parquet", columns=["customer_id", "timestamp", "amount"])
    customers = pd.read_parquet(args.data / "customers.parquet")
    feature_time, (table, _) = timed(lambda: calibration_holdout(
        transactions, args.calibration_end, args.holdout_end, customers=customers))
    print(f"{len(table):,} subscribers before {args.calibration_end} ({len(transactions):,} bills); "
          f"calibration features + holdout: {feature_time:.1f} s (not part of the fit)")

    detect_time, choice = timed(lambda: detect_business(table), repeat=3)
    print(f"detection: {detect_time:.3f} s -> {choice.kind}: {choice.reason}")

    fit_time, model = timed(lambda: SubscriptionValueModel(period_days=choice.period_days).fit(table), repeat=3)
    print(f"sBG value model fit (covariates {model.purchase.design_.columns}, collapsed, covariance, bills, "
          f"tier edges): {fit_time:.2f} s")
    score_time, _ = timed(lambda: model.predict_values(table), repeat=2)
    print(f"scores with the 80% interval, all subscribers: {score_time:.2f} s")
    truth = json.loads((args.data / "truth.json").read_text()).get("sbg", {})
    print("coefficients:", {k: round(v, 3) for k, v in model.purchase.coef_.items()},
          f"kappa={model.purchase.kappa_:.3f}; reference levels {model.purchase.design_.reference}")
    print("generator (against basic, organic, store, ...):", truth)

    days = (pd.Timestamp(args.holdout_end) - pd.Timestamp(args.calibration_end)).days
    bills = model.expected_over(days, table)
    actual = table["holdout_purchases"]
    metrics = value_metrics(actual, table["holdout_spend"], bills, bills * model.expected_order_value(table))
    naive = value_metrics(actual, table["holdout_spend"], *naive_value_forecast(table, float(days)))
    coverage = model.interval_coverage(table, days, actual, table["holdout_spend"])
    print(f"holdout bills: MAE {metrics['purchases_mae']:.3f} (naive {naive['purchases_mae']:.3f}), total "
          f"{metrics['total_purchases_pct_error']:+.1f}% (naive {naive['total_purchases_pct_error']:+.1f}%), "
          f"Spearman {metrics['purchases_spearman']:.3f} (naive {naive['purchases_spearman']:.3f}); "
          f"80% interval coverage {coverage['purchases_interval_coverage']:.3f}")

    started = time.perf_counter()
    try:
        baseline = ProbabilisticValueModel("bgnbd").fit(table)
        outcome = "params " + ", ".join(f"{k}={v:.4g}" for k, v in baseline.purchase.params_.items())
        b_bills = baseline.expected_over(days, table)
        b_metrics = value_metrics(actual, table["holdout_spend"], b_bills, b_bills * baseline.expected_order_value(table))
        outcome += (f"; holdout MAE {b_metrics['purchases_mae']:.3f}, total {b_metrics['total_purchases_pct_error']:+.1f}%,"
                    f" Spearman {b_metrics['purchases_spearman']:.3f}")
    except FitError as exc:
        outcome = f"failed: {exc}"
    print(f"baseline, BG/NBD + Gamma-Gamma on the same table: {time.perf_counter() - started:.2f} s, {outcome}")


if __name__ == "__main__":
    main()
