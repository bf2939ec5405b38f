"""Value-model speed and quality on a generated base, against lifetimes' defaults in the same run.

    retain generate --customers 1000000 --seed 1 --out /tmp/gen1m
    python benchmarks/bench_value.py --data /tmp/gen1m

Prints: each purchase family's fit (BG/NBD, MBG/NBD, Pareto/NBD; collapsed, with covariance)
vs lifetimes' fitter on the same table (BetaGeoFitter on every customer; ModifiedBetaGeoFitter
and ParetoNBDFitter on the same collapsed histories, the fastest way lifetimes can be run);
CLV for every customer vs lifetimes' customer_lifetime_value with the same horizon and
discounting; the CLV interval; and the AUC of 1 - P(alive) against the generator's truth.
With --learned: the learned value model's training (inner-window features, BG/NBD at both
cutoffs, two boosters) and scoring times on every customer, next to the BG/NBD value model's
in the same run. With --auto: `--model auto` (all four families, rolling origin).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import warnings

from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from sklearn.metrics import roc_auc_score

from retain.features import rfm_summary
from retain.models.value import ProbabilisticValueModel, ValueConfig
from retain.models.value.purchase import FAMILIES, PurchaseModel, collapse


def timed(function, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def auto_selection(transactions: pd.DataFrame, as_of: str, verbose: bool = False) -> None:
    """What ``retain train clv --model auto`` does before logging: features for the given
    window, every family fitted and scored with coverage, and the earlier rolling-origin
    windows (half a year of holdout before ``as_of``, and the two half-years before that)."""
    from retain.features import FeatureConfig, calibration_holdout
    from retain.models.value.spend import SpendModel
    from retain.training.value import (
        VALUE_FAMILIES, WindowTables, _earlier_windows, _fit_families, _rolling_origin, select_family,
    )

    calibration_end = pd.Timestamp(as_of) - pd.Timedelta(days=182)  # three half-year windows fit in the data
    holdout_end = pd.Timestamp(as_of)
    started = time.perf_counter()

    def progress(message: str) -> None:
        if verbose:
            print(f"  [{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    table, _ = calibration_holdout(transactions, calibration_end, holdout_end, config=FeatureConfig())
    config = ValueConfig()
    spend = SpendModel().fit(table["frequency"], table["monetary"])
    tables = WindowTables(transactions, FeatureConfig())
    fitted, _, comparison = _fit_families(table, list(VALUE_FAMILIES), spend, config, 1.0, strict=False,
                                          progress=progress, windows=tables)
    windows = _earlier_windows(transactions, calibration_end, holdout_end, 3)
    _rolling_origin(transactions, windows, fitted, comparison, config, FeatureConfig(), progress, tables)
    elapsed = time.perf_counter() - started
    chosen = select_family(comparison)
    print(f"--model auto comparison ({len(table):,} customers, {1 + len(windows)} windows): {elapsed:.1f} s; chose {chosen}")
    for name, entry in comparison.items():
        if "mean" in entry:
            mean = entry["mean"]
            print(f"  {name}: score {entry['selection_score']:.3f}, spend Gini {mean['spend_gini']:.3f}, total "
                  f"{mean['total_purchases_pct_error']:+.1f}%, MAE {mean['purchases_mae']:.4f}, "
                  f"purchases interval coverage {mean['purchases_interval_coverage']:.3f}")


def learned_timing(transactions: pd.DataFrame, as_of: str) -> None:
    """The learned value model on the base as ``retain train clv`` meets it: calibration end
    half a year before ``as_of``, a half-year holdout (so the inner window is half a year)."""
    from retain.features import FeatureConfig, calibration_holdout
    from retain.models.value import LearnedValueModel

    calibration_end = pd.Timestamp(as_of) - pd.Timedelta(days=182)
    features_time, (table, _) = timed(lambda: calibration_holdout(transactions, calibration_end, as_of))
    print(f"feature table at the calibration end (shared by every family): {features_time:.1f} s")
    base_time, base = timed(lambda: ProbabilisticValueModel("bgnbd").fit(table))
    print(f"BG/NBD value model fit (the baseline in this run): {base_time:.1f} s")
    train_time, model = timed(lambda: LearnedValueModel(window_days=182, base=base).fit(
        transactions, calibration_end, table))
    print(f"learned value model training (inner-window features at {model.inner_cutoff_}, BG/NBD there, "
          f"two boosters on {model.training_rows_:,} sampled customers, "
          f"{model.purchases_booster_.num_trees()}+{model.spend_booster_.num_trees()} trees): {train_time:.1f} s "
          "(target < 120 s)")
    score_time, scores = timed(lambda: model.score(table))
    base_score_time, _ = timed(lambda: base.score(table))
    print(f"learned value model scoring, all {len(scores):,} customers with intervals and tiers: {score_time:.1f} s "
          f"(target < 20 s); BG/NBD value model: {base_score_time:.1f} s")
    coverage = model.interval_coverage(table, 182, table["holdout_purchases"], table["holdout_spend"])
    print(f"  its 80% interval on the half-year holdout: purchases {coverage['purchases_interval_coverage']:.3f}, "
          f"spend {coverage['spend_interval_coverage']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", default="2025-07-01")
    parser.add_argument("--skip-lifetimes", action="store_true", help="only retain's figures")
    parser.add_argument("--auto", action="store_true",
                        help="also time the --model auto comparison (all families, rolling origin; no MLflow)")
    parser.add_argument("--learned", action="store_true", help="also time the learned value model")
    parser.add_argument("--only", action="store_true", help="only the --learned / --auto figures")
    parser.add_argument("--verbose", action="store_true", help="with --auto: each step with the time it began")
    args = parser.parse_args()

    transactions = pd.read_parquet(args.data / "transactions.parquet", columns=["customer_id", "timestamp", "amount"])
    table = rfm_summary(transactions, args.as_of).reset_index()
    table["customer_id"] = table["customer_id"].astype(str)
    table["spend_180d"] = 0.0  # only the value matrix reads it; not timed here
    columns = [table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")]
    print(f"{len(table):,} customers as of {args.as_of}")
    if args.only:
        if args.learned:
            learned_timing(transactions, args.as_of)
        if args.auto:
            auto_selection(transactions, args.as_of, args.verbose)
        return

    fit_time, purchase = timed(lambda: PurchaseModel("bgnbd").fit(*columns), repeat=3)
    print(f"retain BG/NBD fit (collapsed to {purchase.n_patterns_:,} histories, with covariance): {fit_time:.2f} s")
    peers, peer_times = {}, {}
    for family in ("mbgnbd", "pareto"):
        peer_time, peers[family] = timed(lambda: PurchaseModel(family).fit(*columns), repeat=3)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in peers[family].params_.items())
        print(f"retain {FAMILIES[family][0]} fit (collapsed, with covariance): {peer_time:.2f} s ({shown})")
        peer_times[family] = peer_time
    from retain.models.value.spend import SpendModel
    spend_time, spend = timed(lambda: SpendModel().fit(table["frequency"], table["monetary"]), repeat=3)
    repeat = (table["frequency"] > 0) & (table["monetary"] > 0)
    pairs, counts, _ = collapse({"frequency": table.loc[repeat, "frequency"], "monetary": table.loc[repeat, "monetary"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_time, theirs = timed(lambda: GammaGammaFitter().fit(pairs["frequency"], pairs["monetary"], weights=counts,
                                                                   q_constraint=True))
    print(f"retain Gamma-Gamma fit ({int(repeat.sum()):,} repeat buyers, {len(counts):,} distinct pairs, with "
          f"covariance): {spend_time:.2f} s; lifetimes GammaGammaFitter on the same pairs: {theirs_time:.2f} s; "
          f"p, q, v {[round(spend.params_[k], 4) for k in ('p', 'q', 'v')]} vs "
          f"{[round(float(theirs.params_[k]), 4) for k in ('p', 'q', 'v')]}")
    value_fit_time, model = timed(lambda: ProbabilisticValueModel("bgnbd").fit(table))
    print(f"retain value model fit (BG/NBD + Gamma-Gamma + tier edges): {value_fit_time:.2f} s")
    config = ValueConfig(horizon_days=360, discount_step_days=30, annual_discount_rate=(1.01 ** (365 / 30)) - 1)
    model.config = config
    clv_time, values = timed(lambda: model.predict_values(table, with_interval=False), repeat=3)
    print(f"retain CLV + P(alive) + P(alive at horizon) + P(no purchase), all customers: {clv_time:.2f} s")
    interval_time, _ = timed(lambda: model.predict_values(table, with_interval=True), repeat=2)
    print(f"retain CLV with the {config.interval:.0%} predictive interval (purchase-count distribution + "
          f"Gamma-Gamma spend), all customers: {interval_time:.2f} s")
    parameter_time, _ = timed(lambda: model.parameter_interval(table))
    print(f"retain parameter-only interval (delta method), all customers: {parameter_time:.2f} s")

    truth_path = args.data / "truth_customers.parquet"
    if truth_path.exists():
        truth = pd.read_parquet(truth_path, columns=["customer_id", "death_date"])
        truth["customer_id"] = truth["customer_id"].astype(str)
        death = truth.set_index("customer_id")["death_date"].reindex(table["customer_id"])
        churned = (death.notna() & (death < pd.Timestamp(args.as_of))).to_numpy()
        auc = roc_auc_score(churned, 1 - values["p_alive"])
        print(f"AUC of 1 - P(alive) against the truth (churned before {args.as_of}): {auc:.3f} "
              f"({churned.mean():.1%} churned)")
        print("fitted vs true BG/NBD:", json.dumps({k: round(v, 4) for k, v in purchase.params_.items()}),
              json.loads((args.data / "truth.json").read_text())["bgnbd_per_day"])

    if args.learned:
        learned_timing(transactions, args.as_of)
    if args.auto:
        auto_selection(transactions, args.as_of, args.verbose)
    if args.skip_lifetimes:
        return
    lifetimes_fit_time, fitter = timed(lambda: BetaGeoFitter().fit(*columns))
    print(f"lifetimes BetaGeoFitter().fit on every customer: {lifetimes_fit_time:.2f} s "
          f"-> retain is {lifetimes_fit_time / fit_time:.1f}x faster")
    same = all(np.isclose(fitter.params_[k], purchase.params_[k], rtol=1e-4) for k in purchase.params_)
    print(f"  same parameters (rtol 1e-4): {same}")
    distinct, counts, _ = collapse(dict(zip(("frequency", "recency", "T"), columns)))
    for family, fitter_class in (("mbgnbd", ModifiedBetaGeoFitter), ("pareto", ParetoNBDFitter)):
        extra = {"initial_params": np.ones(4)} if family == "pareto" else {}

        def lifetimes_fit():
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                return fitter_class().fit(distinct["frequency"], distinct["recency"], distinct["T"],
                                          weights=counts, **extra)
        started = time.perf_counter()
        try:
            theirs, outcome = lifetimes_fit(), ""
            same = all(np.isclose(theirs.params_[k], v, rtol=1e-3) for k, v in peers[family].params_.items())
            outcome = f"same parameters (rtol 1e-3): {same}"
        except Exception as exc:  # lifetimes' failures are the point of this comparison
            outcome = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
        elapsed = time.perf_counter() - started
        print(f"lifetimes {fitter_class.__name__}().fit on the same collapsed histories: {elapsed:.2f} s "
              f"-> retain is {elapsed / peer_times[family]:.1f}x faster; {outcome}")
    spend = GammaGammaFitter()
    spend.params_ = pd.Series(model.spend.params_)
    frequency, recency, age = (table[c] for c in ("frequency", "recency", "T"))
    lifetimes_clv_time, theirs = timed(lambda: spend.customer_lifetime_value(
        fitter, frequency, recency, age, table["monetary"], time=12, discount_rate=0.01, freq="D"))
    print(f"lifetimes customer_lifetime_value, all customers: {lifetimes_clv_time:.2f} s "
          f"-> retain is {lifetimes_clv_time / clv_time:.1f}x faster")
    print(f"  max relative difference of CLV: {np.nanmax(np.abs(values['clv'] - theirs.to_numpy()) / np.maximum(theirs.to_numpy(), 1e-9)):.2e}")


if __name__ == "__main__":
    main()
