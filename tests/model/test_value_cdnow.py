"""The issue-26 checks on CDNOW's master file (23,570 customers, 39 weeks of calibration,
39 of holdout): the family `auto` chooses beats lifetimes' BG/NBD and the naive baseline on
spend Gini and top-10% revenue capture, forecasts the total within 15%, and its 80%
purchase intervals hold 75-85% of customers by randomized PIT (docs/value-models.md)."""

import warnings

import numpy as np
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from retain.data.cdnow import cdnow_transactions
from retain.features import FeatureConfig, calibration_holdout
from retain.models.value import ValueConfig
from retain.models.value.spend import SpendModel
from retain.training.evaluate import naive_value_forecast, value_metrics
from retain.training.value import VALUE_FAMILIES, WindowTables, _fit_families, _rolling_origin, select_family


@pytest.mark.slow
def test_the_chosen_model_meets_the_bar_on_cdnow_master():
    transactions = cdnow_transactions("master")
    weeks = FeatureConfig(time_unit_days=7)
    table, _ = calibration_holdout(transactions, "1997-10-01", "1998-07-01", config=weeks)
    actual = (table["holdout_purchases"], table["holdout_spend"])
    duration = float(table["holdout_duration"].iloc[0])
    naive = value_metrics(*actual, *naive_value_forecast(table, duration))
    columns = [table[c] for c in ("frequency", "recency", "T")]
    repeat = (table["frequency"] > 0) & (table["monetary"] > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(*columns)
        ggf = GammaGammaFitter().fit(table.loc[repeat, "frequency"], table.loc[repeat, "monetary"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(duration, *columns).to_numpy()
    order_value = ggf.conditional_expected_average_profit(table["frequency"], table["monetary"]).to_numpy()
    lifetimes = value_metrics(*actual, purchases, purchases * order_value)

    config = ValueConfig()
    spend = SpendModel().fit(table["frequency"], table["monetary"])
    windows = WindowTables(transactions, weeks)
    with np.errstate(all="ignore"):
        fitted, _, comparison = _fit_families(table, list(VALUE_FAMILIES), spend, config, 7.0, strict=True,
                                              progress=lambda message: None, windows=windows)
        _rolling_origin(transactions, [], fitted, comparison, config, weeks, lambda message: None, windows)
    chosen = comparison[select_family(comparison)]["metrics"]
    for metric in ("spend_gini", "top10_revenue_share"):
        assert chosen[metric] > max(naive[metric], lifetimes[metric]), (metric, chosen, naive, lifetimes)
    assert abs(chosen["total_purchases_pct_error"]) <= 15
    assert 0.75 <= chosen["purchases_interval_coverage"] <= 0.85
