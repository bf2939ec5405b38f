"""Value-model quality on CDNOW's full master file (23,570 customers), the issue-13 bar.

    python benchmarks/bench_value_cdnow.py [--time-unit-days 7]

Calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout 1997-10-01 .. 1998-06-30 (39 weeks).
Prints, for the naive baseline, lifetimes' BG/NBD (BetaGeoFitter + GammaGammaFitter) and each
retain family: purchases MAE, aggregate purchase error, spend Spearman, top-10% revenue
capture and the 80% predictive interval coverage; then the family `--model auto` chooses.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter

from retain.data.cdnow import cdnow_transactions
from retain.features import FeatureConfig, calibration_holdout
from retain.models.purchase import FAMILIES
from retain.models.spend import SpendModel
from retain.models.value import ValueConfig
from retain.training.evaluate import naive_value_forecast, value_metrics
from retain.training.value import _fit_families, _rolling_origin, select_family

COLUMNS = ("purchases_mae", "total_purchases_pct_error", "spend_spearman", "top10_revenue_share")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-unit-days", type=float, default=7.0)
    args = parser.parse_args()
    transactions = cdnow_transactions("master")
    feature_config = FeatureConfig(time_unit_days=args.time_unit_days)
    table, _ = calibration_holdout(transactions, "1997-10-01", "1998-07-01", config=feature_config)
    duration = float(table["holdout_duration"].iloc[0])
    actual = (table["holdout_purchases"], table["holdout_spend"])
    print(f"CDNOW master: {len(table):,} customers, time unit {args.time_unit_days:g} days, holdout {duration:g} units")
    rows = {"naive baseline": value_metrics(*actual, *naive_value_forecast(table, duration))}

    columns = [table[c] for c in ("frequency", "recency", "T")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(*columns)
        repeat = (table["frequency"] > 0) & (table["monetary"] > 0)  # as retain's SpendModel
        ggf = GammaGammaFitter().fit(table.loc[repeat, "frequency"], table.loc[repeat, "monetary"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(duration, *columns).to_numpy()
    order_value = ggf.conditional_expected_average_profit(table["frequency"], table["monetary"]).to_numpy()
    rows["lifetimes BG/NBD + Gamma-Gamma"] = value_metrics(*actual, purchases, purchases * order_value)

    config = ValueConfig()
    spend = SpendModel().fit(table["frequency"], table["monetary"])
    fitted, _, comparison = _fit_families(table, list(FAMILIES), spend, config, args.time_unit_days,
                                          strict=False, progress=lambda message: None)
    _rolling_origin(transactions, [], fitted, comparison, config, feature_config, lambda message: None)
    for name, entry in comparison.items():
        rows[f"retain {FAMILIES[name][0]}"] = entry.get("metrics", {})
    print(f"{'model':34s} " + " ".join(f"{c:>26s}" for c in COLUMNS) + f" {'80% coverage (purch/spend)':>28s}")
    for name, metrics in rows.items():
        if not metrics:
            print(f"{name:34s} failed: {comparison}")
            continue
        coverage = (f"{metrics['purchases_interval_coverage']:.3f} / {metrics['spend_interval_coverage']:.3f}"
                    if "purchases_interval_coverage" in metrics else "")
        print(f"{name:34s} " + " ".join(f"{metrics[c]:26.4f}" for c in COLUMNS) + f" {coverage:>28s}")
    chosen = select_family(comparison)
    print(f"--model auto chooses {FAMILIES[chosen][0]} (selection scores: "
          + ", ".join(f"{n} {e['selection_score']:.3f}" for n, e in comparison.items() if "selection_score" in e) + ")")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
