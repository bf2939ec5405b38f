"""The learned value model: trained inside the calibration period only, same outputs as the
probabilistic families, and better than the naive baseline where the data is visible."""

import pickle

import numpy as np
import pandas as pd
import pytest

from retain.data.cdnow import cdnow_transactions
from retain.features import FeatureConfig, calibration_holdout
from retain.models.value import FitError, LearnedValueModel, ProbabilisticValueModel
from retain.models.value.learned import inner_window_days
from retain.training.evaluate import naive_value_forecast, value_metrics

CALIBRATION_END = pd.Timestamp("2025-01-01")


@pytest.fixture(scope="module")
def calibration(generated):
    transactions = generated["transactions"]
    table, _ = calibration_holdout(transactions, CALIBRATION_END, "2026-01-01")
    return transactions, table


@pytest.fixture(scope="module")
def learned(calibration):
    transactions, table = calibration
    return LearnedValueModel(window_days=365).fit(transactions, CALIBRATION_END, table)


def test_holdout_rows_do_not_change_the_fitted_model(calibration, learned):
    transactions, table = calibration
    after = transactions["timestamp"] >= CALIBRATION_END
    assert after.sum() > 1000
    changed = transactions.copy()
    changed.loc[after, "amount"] = changed.loc[after, "amount"] * 7 + 100  # every holdout purchase rewritten
    extra = changed[after].head(500).assign(timestamp=pd.Timestamp("2025-03-01"))  # and more of them
    changed = pd.concat([changed[~after | (changed.index % 2 == 0)], extra], ignore_index=True)
    # the calibration table built from the changed rows: same features, other holdout outcomes
    changed_table, _ = calibration_holdout(changed, CALIBRATION_END, "2026-01-01")
    assert not np.allclose(changed_table["holdout_spend"], table["holdout_spend"])
    refit = LearnedValueModel(window_days=365).fit(changed, CALIBRATION_END, changed_table)
    assert refit.purchases_booster_.model_to_string() == learned.purchases_booster_.model_to_string()
    assert refit.spend_booster_.model_to_string() == learned.spend_booster_.model_to_string()
    assert (refit.count_dispersion_, refit.spend_log_sd_) == (learned.count_dispersion_, learned.spend_log_sd_)
    pd.testing.assert_frame_equal(refit.score(table), learned.score(table))
    # trained on the inner window: features a year before the calibration end, targets up to it
    assert learned.window_days_ == 365 and learned.inner_cutoff_ == "2024-01-02"
    # and the rows before the calibration end do matter (the check above can fail)
    earlier = transactions["timestamp"] < CALIBRATION_END - pd.Timedelta(days=30)
    shifted = transactions.copy()
    shifted.loc[~earlier & ~after, "amount"] *= 3
    other = LearnedValueModel(window_days=365).fit(shifted, CALIBRATION_END, table)
    assert other.spend_booster_.model_to_string() != learned.spend_booster_.model_to_string()


def test_same_score_columns_as_the_probabilistic_family_and_it_pickles(calibration, learned):
    _, table = calibration
    probabilistic = ProbabilisticValueModel("bgnbd").fit(table)
    ours, theirs = learned.score(table), probabilistic.score(table)
    assert list(ours.columns) == list(theirs.columns)
    assert ours["customer_id"].tolist() == table["customer_id"].tolist()
    for column in ("p_alive", "expected_purchases", "clv", "clv_low", "clv_high", "expected_order_value"):
        assert ours[column].notna().all() and (ours[column] >= 0).all(), column
    assert (ours["clv_low"] <= ours["clv"] + 1e-9).mean() > 0.99
    assert (ours["expected_purchases_low"] <= ours["expected_purchases_high"]).all()
    assert (ours["clv_low"] <= ours["clv_high"]).all()
    # P(alive) is the probabilistic model's, fitted on the same table
    np.testing.assert_allclose(ours["p_alive"], theirs["p_alive"], rtol=1e-9)
    restored = pickle.loads(pickle.dumps(learned))
    pd.testing.assert_frame_equal(restored.score(table.head(50)), learned.score(table.head(50)))


def test_a_longer_horizon_follows_the_probabilistic_curve(calibration, learned):
    _, table = calibration
    year = learned.expected_over(365, table)
    two = learned.expected_over(730, table)
    ratio = learned.base.expected_over(730, table) / learned.base.expected_over(365, table)
    np.testing.assert_allclose(two, year * ratio, rtol=1e-9)
    assert (two >= year).all()


def test_interval_holds_about_its_level_on_the_holdout(calibration, learned):
    _, table = calibration
    coverage = learned.interval_coverage(table, 365, table["holdout_purchases"], table["holdout_spend"])
    assert 0.75 <= coverage["purchases_interval_coverage"] <= 0.85, coverage
    assert 0.75 <= coverage["spend_interval_coverage"] <= 0.85, coverage


def test_learned_model_beats_the_naive_baseline_on_cdnow_sample():
    transactions = cdnow_transactions("sample")
    weeks = FeatureConfig(time_unit_days=7)
    table, _ = calibration_holdout(transactions, "1997-10-01", "1998-07-01", config=weeks)
    model = LearnedValueModel(window_days=273, feature_config=weeks).fit(transactions, "1997-10-01", table)
    # 39 weeks of calibration: the inner window is half of it, not the 39-week holdout
    assert model.window_days_ == 136
    purchases = model.expected_over(273, table)
    ours = value_metrics(table["holdout_purchases"], table["holdout_spend"], purchases,
                         purchases * model.expected_order_value(table))
    naive = value_metrics(table["holdout_purchases"], table["holdout_spend"],
                          *naive_value_forecast(table, float(table["holdout_duration"].iloc[0])))
    for metric in ("purchases_mae", "purchases_rmse", "spend_mae", "spend_rmse"):
        assert ours[metric] < 0.9 * naive[metric], metric
    assert abs(ours["total_purchases_pct_error"]) < 15 < abs(naive["total_purchases_pct_error"])


def test_too_little_history_and_missing_columns_are_named(calibration, learned):
    transactions, table = calibration
    with pytest.raises(FitError, match="at least 56"):
        inner_window_days(transactions, transactions["timestamp"].min() + pd.Timedelta(days=40), 365)
    # an optional feature missing at scoring time is unknown to the boosters, with a warning
    with pytest.warns(UserWarning, match="purchases_90d"):
        partial = learned.score(table.drop(columns=["purchases_90d"]))
    assert partial["clv"].notna().all() and not np.allclose(partial["clv"], learned.score(table)["clv"])
    with pytest.raises(ValueError, match="frequency"):
        learned.score(table.drop(columns=["frequency"]))


def test_a_learned_champion_scores_through_the_scoring_core(trained, tmp_path, monkeypatch, capsys):
    import json

    from retain.cli import main
    from retain.features.eligibility import scorable_features
    from retain.serving import load_model_pair, score_customers
    from retain.settings import Settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    code = main(["train", "clv", "--data", str(trained.data), "--data-cutoff", "2026-01-01",
                 "--calibration-end", "2025-01-01", "--model", "learned", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["chosen_model"] == "learned" and result["promoted"], result["reason"]
    assert set(result["comparison"]) == {"learned"}
    assert result["params"]["window_days"] == 365 and result["params"]["purchases_trees"] > 0
    assert 0.75 <= result["metrics"]["purchases_interval_coverage"] <= 0.85
    assert result["metrics"]["purchases_mae"] < result["baseline_metrics"]["purchases_mae"]

    loaded = load_model_pair(Settings(home=tmp_path / "home"))
    assert isinstance(loaded.pair.value, LearnedValueModel) and loaded.pair.churn is None
    as_of = pd.Timestamp("2025-12-01")
    scores = score_customers(trained.dataset, as_of, loaded.pair).scores
    scored = scores[scores["not_scored_reason"] == ""].set_index("customer_id")
    assert len(scored) > 1000 and scored["clv"].notna().all() and scored["clv_high"].notna().all()
    assert (scores["clv_model_version"] == "retain-clv/v1").all()
    features, _ = scorable_features(trained.dataset, as_of, loaded.pair.feature_config, loaded.pair.reference)
    direct = loaded.pair.value.score(features).set_index("customer_id")
    np.testing.assert_allclose(scored.loc[direct.index, "clv"], direct["clv"], rtol=1e-12)
    # a longer CLV horizon is a new pair whose CLV is larger, as for the probabilistic families
    longer = score_customers(trained.dataset, as_of, loaded.pair.with_value_horizon(730)).scores
    assert (longer["clv"].fillna(0) >= scores["clv"].fillna(0) - 1e-9).all()
    assert longer["clv"].sum() > 1.3 * scores["clv"].sum()


def test_count_quantiles_and_cdf_are_the_negative_binomial():
    from scipy.stats import nbinom

    from retain.models.value.learned import CountSpendOutcomes

    rng = np.random.default_rng(0)
    mean = np.concatenate([rng.gamma(0.5, 3.0, 5000), [0.0, 1e-9, 40.0]])
    outcomes = CountSpendOutcomes(mean, mean * 10, 0.6, 0.8)
    reference = nbinom(0.6, 0.6 / (0.6 + np.maximum(mean, 1e-12)))
    for level in (0.1, 0.5, 0.9):
        np.testing.assert_array_equal(outcomes.count_quantile(level), reference.ppf(level))
    counts = rng.integers(-1, 12, len(mean))
    np.testing.assert_allclose(outcomes.count_cdf(counts), np.where(counts < 0, 0, reference.cdf(counts)), atol=1e-12)


def test_earlier_window_tables_sample_the_same_customers_on_large_bases(calibration):
    from retain.training.value import WindowTables

    transactions, table = calibration
    sampled = WindowTables(transactions, FeatureConfig(), max_customers=1000)
    first = sampled.table("2024-07-01", "2025-01-01")
    second = sampled.table("2025-01-01", "2026-01-01")
    assert sampled.table("2024-07-01", "2025-01-01") is first  # built once
    assert 600 < len(second) < 1400 and set(first["customer_id"]) <= set(second["customer_id"])
    # the sampled customers' rows are what the full table says about them
    full = table.set_index("customer_id").loc[second["customer_id"]]
    for column in ("frequency", "recency", "T", "monetary", "spend_180d", "holdout_purchases", "holdout_spend"):
        np.testing.assert_allclose(second[column].to_numpy(), full[column].to_numpy(), err_msg=column)
    everyone = WindowTables(transactions, FeatureConfig(), max_customers=10_000)
    assert len(everyone.table("2025-01-01", "2026-01-01")) == len(table)
