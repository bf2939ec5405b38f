"""Value-model quality on CDNOW's full master file (23,570 customers), the issue-26 bar.

    python benchmarks/bench_value_cdnow.py [--time-unit-days 7]

Calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout 1997-10-01 .. 1998-06-30 (39 weeks).
Prints, for the naive baseline, lifetimes' BG/NBD (BetaGeoFitter + GammaGammaFitter) and each
retain family (the three probabilistic ones and the learned LightGBM model): purchases MAE,
aggregate purchase and spend error, normalized Gini of holdout spend and purchases (ties at
their expectation), top-5/10/20% revenue capture, decile calibration error, spend Spearman
(reported only) and the randomized-PIT coverage of the 80% intervals; then the family
`--model auto` chooses and whether it clears the bar (beats naive and lifetimes on spend Gini
and top-10% capture, aggregate within 15%, PIT coverage 75-85%).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from retain.data.cdnow import cdnow_transactions
from retain.features import FeatureConfig, calibration_holdout
from retain.models.value.spend import SpendModel
from retain.models.value import ValueConfig
from retain.training.evaluate import naive_value_forecast, value_metrics
from retain.training.value import (
    FAMILY_LABELS, VALUE_FAMILIES, WindowTables, _fit_families, _rolling_origin, select_family,
)

COLUMNS = ("purchases_mae", "total_purchases_pct_error", "total_spend_pct_error", "spend_gini", "purchases_gini",
           "top5_revenue_share", "top10_revenue_share", "top20_revenue_share", "spend_decile_calibration_error",
           "spend_spearman")
SHORT = ("MAE", "agg purch %", "agg spend %", "spend Gini", "purch Gini", "top5%", "top10%", "top20%", "decile err",
         "spend Spearman")


def tie_diagnostics(table, predicted_spend: dict[str, np.ndarray]) -> None:
    """Spend Spearman rewards tied predictions: 70% of CDNOW's customers spend nothing in the
    holdout (one tied rank), and the naive forecast gives every one-time buyer (60%) exactly 0.
    The same rankings without that advantage: ties broken at random, Spearman among the
    customers who did buy, and the AUC of who buys at all."""
    actual = table["holdout_spend"].to_numpy(dtype=float)
    buyers = actual > 0
    jitter = np.random.default_rng(0).random(len(actual)) * 1e-9
    print("  tie diagnostics (spend): Spearman with ties broken at random / Spearman among holdout buyers / "
          "AUC of buying in the holdout")
    for name, spend in predicted_spend.items():
        print(f"    {name:40s} {spearmanr(spend + jitter, actual).statistic:.4f} / "
              f"{spearmanr(spend[buyers], actual[buyers]).statistic:.4f} / {roc_auc_score(buyers, spend):.4f}")


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
    naive_purchases, naive_spend = naive_value_forecast(table, duration)
    rows = {"naive baseline": value_metrics(*actual, naive_purchases, naive_spend)}

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
    windows = WindowTables(transactions, feature_config)
    started = time.perf_counter()
    fitted, predicted, comparison = _fit_families(table, list(VALUE_FAMILIES), spend, config, args.time_unit_days,
                                          strict=False, progress=lambda message: None, windows=windows)
    elapsed = time.perf_counter() - started
    _rolling_origin(transactions, [], fitted, comparison, config, feature_config, lambda message: None, windows)
    for name, entry in comparison.items():
        rows[f"retain {FAMILY_LABELS[name]}"] = entry.get("metrics", {})
    print(f"{'model':34s} " + " ".join(f"{c:>12s}" for c in SHORT) + f" {'PIT 80% (purch/spend)':>22s}")
    for name, metrics in rows.items():
        if not metrics:
            print(f"{name:34s} failed: {comparison}")
            continue
        coverage = (f"{metrics['purchases_interval_coverage']:.3f} / {metrics['spend_interval_coverage']:.3f}"
                    if "purchases_interval_coverage" in metrics else "")
        print(f"{name:34s} " + " ".join(f"{metrics[c]:12.4f}" for c in COLUMNS) + f" {coverage:>22s}")
    chosen = select_family(comparison)
    print(f"all families fitted and scored in {elapsed:.1f} s; learned: {comparison['learned'].get('params')}")
    print(f"--model auto chooses {FAMILY_LABELS[chosen]} (selection scores, highest wins: "
          + ", ".join(f"{n} {e['selection_score']:.3f}" for n, e in comparison.items() if "selection_score" in e) + ")")
    ours, naive, theirs = (rows[f"retain {FAMILY_LABELS[chosen]}"], rows["naive baseline"],
                           rows["lifetimes BG/NBD + Gamma-Gamma"])
    for metric in ("spend_gini", "top10_revenue_share"):
        verdict = "beats" if ours[metric] > max(naive[metric], theirs[metric]) else "does NOT beat"
        print(f"  {metric}: chosen {ours[metric]:.4f} {verdict} naive {naive[metric]:.4f} and lifetimes {theirs[metric]:.4f}")
    tie_diagnostics(table, {"naive baseline": naive_spend, "lifetimes BG/NBD": purchases * order_value,
                            f"retain {FAMILY_LABELS[chosen]}": predicted[chosen][1]})
    within = abs(ours["total_purchases_pct_error"]) <= 15
    print(f"  aggregate holdout purchases {ours['total_purchases_pct_error']:+.1f}% "
          f"(spend {ours['total_spend_pct_error']:+.1f}%): {'within' if within else 'NOT within'} 15%")
    coverage = ours["purchases_interval_coverage"]
    print(f"  80% purchase intervals: randomized-PIT coverage {coverage:.1%} "
          f"({'within' if 0.75 <= coverage <= 0.85 else 'NOT within'} 75-85%), plain share inside "
          f"{ours['purchases_interval_share_inside']:.1%}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
