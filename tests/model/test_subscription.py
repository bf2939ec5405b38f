"""The subscription family: the shifted-beta-geometric model with covariates, its value
outputs, detection of a subscription base and the train / score path on one."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from retain.data.synthetic import SubscriptionConfig, generate_subscription
from retain.errors import RetainError
from retain.features import calibration_holdout
from retain.models.value import FitError, ProbabilisticValueModel, SubscriptionValueModel, ValueConfig
from retain.models.value.subscription import (
    ShiftedBetaGeometric, detect_business, sbg_log_likelihood, survival_ratio,
)
from retain.training.evaluate import naive_value_forecast, value_metrics

CALIBRATION_END = pd.Timestamp("2025-01-01")
DATA_END = pd.Timestamp("2026-01-01")


def cohort(still_active: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One cohort's survivor counts per year -> (bills paid, lapsed) per customer: those lost
    between year t-1 and t paid t bills and lapsed; the last year's survivors are censored."""
    alive = np.array(still_active)
    lost = -np.diff(alive)
    bills = np.concatenate([np.arange(1, len(alive)), [len(alive)]])
    lapsed = np.concatenate([np.ones(len(lost), bool), [False]])
    counts = np.concatenate([lost, [alive[-1]]])
    return np.repeat(bills, counts), np.repeat(lapsed, counts)


@pytest.mark.parametrize("survivors, alpha, beta, log_likelihood", [
    # [FH2007], Table 1 and section 4. The brief gives 0.668/3.806 for
    # "regular"; the paper and its data give them to the high-end cohort (86.9% renew in year 1).
    ([1000, 631, 468, 382, 326, 289, 262, 241], 0.704, 1.182, -1680.3),  # regular
    ([1000, 869, 743, 653, 593, 551, 517, 491], 0.668, 3.806, -1611.2),  # high end
])
def test_sbg_recovers_the_published_estimates(survivors, alpha, beta, log_likelihood):
    bills, lapsed = cohort(survivors)
    model = ShiftedBetaGeometric().fit(bills, lapsed)
    assert model.params_["alpha"] == pytest.approx(alpha, abs=5e-4)
    assert model.params_["beta"] == pytest.approx(beta, abs=5e-4)
    assert model.log_likelihood_ == pytest.approx(log_likelihood, abs=0.05)
    # the fitted survival curve follows the cohort's (the paper's Figure 2)
    curve = model.retention_curve(7)
    assert 1000 * curve[1:] == pytest.approx(survivors[1:], rel=0.06)


def test_sbg_gradient_is_the_derivative_of_its_likelihood():
    alpha, beta = np.array([0.7, 2.5]), np.array([1.2, 0.4])
    t, churned = np.array([3.0, 1.0]), np.array([True, False])
    _, d_alpha, d_beta = sbg_log_likelihood(alpha, beta, t, churned)
    step = 1e-6
    numeric_alpha = (sbg_log_likelihood(alpha + step, beta, t, churned)[0]
                     - sbg_log_likelihood(alpha - step, beta, t, churned)[0]) / (2 * step)
    numeric_beta = (sbg_log_likelihood(alpha, beta + step, t, churned)[0]
                    - sbg_log_likelihood(alpha, beta - step, t, churned)[0]) / (2 * step)
    assert d_alpha == pytest.approx(numeric_alpha, rel=1e-6)
    assert d_beta == pytest.approx(numeric_beta, rel=1e-6)
    # the likelihood is the probability of the observed history: sum over all histories of one t is 1
    survive = np.exp(sbg_log_likelihood(0.7, 1.2, 5.0, False)[0])
    lost = sum(np.exp(sbg_log_likelihood(0.7, 1.2, float(k), True)[0]) for k in range(1, 6))
    assert survive + lost == pytest.approx(1.0)


def test_left_truncated_histories_recover_the_parameters_when_the_data_starts_after_signup():
    """A base whose data begins after many customers joined: only those still paying then
    are seen, having renewed unseen. Conditioning on that (S(earlier) in the denominator)
    recovers alpha and beta; reading every first bill in the data as a sign-up does not."""
    from retain.models.value.subscription import billing_histories

    rng = np.random.default_rng(4)
    n = 60_000
    theta = rng.beta(0.7, 2.5, n)
    renewals_before_cancel = rng.geometric(theta) - 1
    earlier = rng.integers(0, 48, n)  # renewals between sign-up and the start of the data
    seen = renewals_before_cancel >= earlier
    window = 24
    lapsed = renewals_before_cancel < earlier + window
    bills = np.where(lapsed, renewals_before_cancel + 1, earlier + window + 1)
    bills, lapsed, earlier = bills[seen], lapsed[seen], earlier[seen]
    model = ShiftedBetaGeometric().fit(bills, lapsed, earlier=earlier)
    assert model.params_["alpha"] == pytest.approx(0.7, rel=0.1)
    assert model.params_["beta"] == pytest.approx(2.5, rel=0.1)
    naive = ShiftedBetaGeometric().fit(bills - earlier, lapsed)
    assert abs(naive.params_["beta"] / 2.5 - 1) > 0.3
    # the gradient with truncation is the derivative of that likelihood too
    args = (np.array([4.0, 9.0]), np.array([True, False]), np.array([2.0, 5.0]))
    _, d_alpha, d_beta = sbg_log_likelihood(0.7, 2.5, *args)
    step = 1e-6
    assert d_alpha == pytest.approx((sbg_log_likelihood(0.7 + step, 2.5, *args)[0]
                                     - sbg_log_likelihood(0.7 - step, 2.5, *args)[0]) / (2 * step), rel=1e-6)
    assert d_beta == pytest.approx((sbg_log_likelihood(0.7, 2.5 + step, *args)[0]
                                    - sbg_log_likelihood(0.7, 2.5 - step, *args)[0]) / (2 * step), rel=1e-6)
    # from a feature table: signed up 400 days before the cutoff, first bill in the data 100 days before it
    row = pd.DataFrame({"frequency": [3.0], "recency": [90.0], "T": [99.0], "attr_signup_date_days": [400.0]})
    total, since_last, gone, unseen = billing_histories(row, 30.0, 1.0, 0.5)
    assert unseen[0] == 10 and total[0] == 14 and since_last[0] == 10 and not gone[0]


def simulated_subscribers(n=30_000, seed=3):
    """sBG histories with a known logistic effect of a plan and of a numeric score on the
    mean churn, each customer observed for a random number of periods."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.3, 0.2])
    score = rng.normal(5.0, 2.0, n)
    mu = expit(-2.0 + 0.8 * (plan == "plus") - 0.7 * (plan == "premium") + 0.3 * (score - 5.0) / 2.0)
    kappa = 3.0
    theta = rng.beta(mu * kappa, (1 - mu) * kappa)
    renewals_before_cancel = rng.geometric(theta) - 1
    observed = rng.integers(1, 36, n)  # renewals that could be seen
    lapsed = renewals_before_cancel < observed
    bills = np.where(lapsed, renewals_before_cancel + 1, observed + 1)
    # listed so that "basic" is the most common level, the reference
    return bills, lapsed, pd.DataFrame({"attr_plan": plan, "attr_score": score})


def test_sbg_recovers_known_covariate_effects():
    bills, lapsed, features = simulated_subscribers()
    model = ShiftedBetaGeometric().fit(bills, lapsed, features)
    coef, se = model.coef_, model.standard_errors()
    assert set(coef) == {"intercept", "attr_plan=plus", "attr_plan=premium", "attr_score"}
    truth = {"intercept": -2.0, "attr_plan=plus": 0.8, "attr_plan=premium": -0.7, "attr_score": 0.3}
    for name, value in truth.items():
        assert abs(coef[name] - value) < 3.5 * se[name], (name, coef[name], se[name])
    assert model.kappa_ == pytest.approx(3.0, rel=0.15)
    # without covariates the plans' difference is lost in the spread: a worse fit
    pooled = ShiftedBetaGeometric(covariates=()).fit(bills, lapsed, features)
    assert model.log_likelihood_ > pooled.log_likelihood_ + 50


def test_sbg_on_a_churn_rate_the_same_for_everyone_is_a_geometric():
    rng = np.random.default_rng(1)
    renewals_before_cancel = rng.geometric(0.1, 20_000) - 1
    observed = rng.integers(1, 36, 20_000)
    lapsed = renewals_before_cancel < observed
    model = ShiftedBetaGeometric().fit(np.where(lapsed, renewals_before_cancel + 1, observed + 1), lapsed)
    assert model.kappa_ > 100  # no heterogeneity: alpha + beta large, not an error
    assert model.retention_curve(5) == pytest.approx(0.9 ** np.arange(6), abs=0.01)


def test_sbg_stops_with_a_message_when_nobody_churned():
    with pytest.raises(FitError, match="none of 3 subscribers has stopped"):
        ShiftedBetaGeometric().fit([2, 3, 4], [False, False, False])
    with pytest.raises(RetainError, match="lacks the covariate column"):
        ShiftedBetaGeometric(covariates=("attr_plan",)).fit([2, 3], [True, False], pd.DataFrame({"x": [1, 2]}))


@pytest.fixture(scope="module")
def subscription_base():
    return generate_subscription(SubscriptionConfig(customers=4000, seed=5))


@pytest.fixture(scope="module")
def subscription_table(subscription_base):
    table, _ = calibration_holdout(subscription_base["transactions"], CALIBRATION_END, DATA_END,
                                   customers=subscription_base["customers"])
    return table


def test_detection_tells_a_subscription_base_from_a_non_contractual_one(subscription_table, generated):
    choice = detect_business(subscription_table)
    assert choice.kind == "subscription" and choice.period_days == pytest.approx(30.0, abs=0.5)
    assert "regular bills" in choice.reason and choice.regular_share > 0.9
    other, _ = calibration_holdout(generated["transactions"], CALIBRATION_END, DATA_END)
    choice = detect_business(other)
    assert choice.kind == "non-contractual" and "no regular bills" in choice.reason
    assert detect_business(other, "subscription").kind == "subscription"  # --business overrides
    assert detect_business(subscription_table, "non-contractual").kind == "non-contractual"
    with pytest.raises(RetainError, match="--business must be one of"):
        detect_business(other, "contract")


def test_detection_reads_real_non_contractual_data_as_such():
    """CDNOW (shipped with lifetimes): 3% of the sample's customers with 2+ gaps buy at a
    regular rhythm, far from the 60% the rule needs."""
    from retain.data.cdnow import cdnow_transactions
    from retain.features import build_features

    table, _ = build_features(cdnow_transactions("sample"), "1997-10-01")
    choice = detect_business(table)
    assert choice.kind == "non-contractual" and choice.regular_share < 0.1


@pytest.fixture(scope="module")
def subscription_model(subscription_table):
    choice = detect_business(subscription_table)
    return SubscriptionValueModel(period_days=choice.period_days).fit(subscription_table)


def test_subscription_model_recovers_the_generator_and_forecasts_the_holdout(subscription_model, subscription_table):
    coef = subscription_model.purchase.coef_
    # the generator: promo +0.7, premium -0.8 and plus -0.4 against basic, app -0.3 (SUBSCRIPTION_EFFECTS)
    reference = subscription_model.purchase.design_.reference
    plan_effect = {"basic": 0.0, "plus": -0.4, "premium": -0.8}
    for level in ("basic", "plus", "premium"):
        if level != reference["attr_plan"]:
            expected = plan_effect[level] - plan_effect[reference["attr_plan"]]
            assert coef[f"attr_plan={level}"] == pytest.approx(expected, abs=0.3)
    table = subscription_table
    days = (DATA_END - CALIBRATION_END).days
    bills = subscription_model.expected_over(days, table)
    assert bills.sum() == pytest.approx(table["holdout_purchases"].sum(), rel=0.05)
    spend = bills * subscription_model.expected_order_value(table)
    model_metrics = value_metrics(table["holdout_purchases"], table["holdout_spend"], bills, spend)
    naive = value_metrics(table["holdout_purchases"], table["holdout_spend"],
                          *naive_value_forecast(table, float(table["holdout_duration"].iloc[0])))
    assert model_metrics["purchases_mae"] < 0.7 * naive["purchases_mae"]
    assert model_metrics["purchases_spearman"] > naive["purchases_spearman"]
    coverage = subscription_model.interval_coverage(table, days, table["holdout_purchases"], table["holdout_spend"])
    assert 0.72 <= coverage["purchases_interval_coverage"] <= 0.88
    assert coverage["purchases_interval_share_inside"] >= 0.8


def test_subscription_outputs_match_value_model_columns_and_meaning(subscription_model, subscription_table,
                                                                     generated):
    table = subscription_table
    scores = subscription_model.score(table)
    other_table, _ = calibration_holdout(generated["transactions"], CALIBRATION_END, DATA_END)
    other = ProbabilisticValueModel("bgnbd").fit(other_table).score(other_table)
    assert list(scores.columns) == list(other.columns)
    values = subscription_model.predict_values(table)
    for name in ("p_alive", "p_alive_horizon", "p_no_purchase_horizon"):
        assert ((values[name] >= 0) & (values[name] <= 1)).all()
    lapsed = (table["T"] - table["recency"] + 1) > 45  # a 30-day bill more than half a period overdue
    assert (values["p_alive"][lapsed] == 0).all() and (values["clv"][lapsed] == 0).all()
    current = (table["T"] - table["recency"] + 1) <= 30
    assert (values["p_alive"][current] == 1).all()
    # the bill is the plan's price; CLV is the discounted expected bills times it
    assert np.isin(values["expected_order_value"], [20.0, 35.0, 60.0]).all()
    assert (values["clv"] <= values["expected_purchases"] * values["expected_order_value"] + 1e-9).all()
    assert (values["clv_low"] <= values["clv_high"]).all()
    assert ((values["expected_purchases_low"] <= values["expected_purchases_high"])).all()
    # a subscriber of 20 renewals is more likely to stay than one of 1 with the same attributes
    alpha, beta = subscription_model.purchase.params_["alpha"], subscription_model.purchase.params_["beta"]
    assert survival_ratio(alpha, beta + 20, 1.0) > survival_ratio(alpha, beta, 1.0)


def test_subscription_model_reads_missing_and_unseen_attributes_as_the_reference(subscription_model,
                                                                                 subscription_table):
    rows = subscription_table.head(3).copy()
    rows["attr_plan"] = ["a plan nobody had", None, rows["attr_plan"].iloc[2]]
    plain = rows.drop(columns=[c for c in rows.columns if c.startswith("attr_")])
    values = subscription_model.predict_values(rows)
    assert np.isfinite(values["clv"]).all()
    assert np.isfinite(subscription_model.predict_values(plain)["clv"]).all()


@pytest.fixture(scope="module")
def subscription_store(tmp_path_factory):
    """A small subscription base written as a dataset folder, with its own tracking store."""
    from retain.data import load_dataset
    from retain.data.synthetic import write_dataset
    from retain.settings import Settings

    root = tmp_path_factory.mktemp("subscription")
    write_dataset(generate_subscription(SubscriptionConfig(customers=2500, seed=9, mean_churn=0.1, kappa=6.0)), root / "data")
    return load_dataset(root / "data", data_cutoff=DATA_END), Settings(home=root / "home")


@pytest.mark.slow
def test_train_clv_uses_the_subscription_family_on_a_subscription_base_and_it_scores(subscription_store):
    import mlflow

    from retain.serving import load_model_pair, score_customers
    from retain.training.value import train_value_model

    dataset, settings = subscription_store
    # BG/NBD is not used silently on a subscription base
    with pytest.raises(RetainError, match="--model bgnbd is a non-contractual model, but this is a subscription base"):
        train_value_model(dataset, CALIBRATION_END, family="bgnbd", settings=settings)
    lines = []
    result = train_value_model(dataset, CALIBRATION_END, settings=settings, progress=lines.append)
    assert result.business == "subscription" and result.chosen_model == "sbg"
    assert "regular bills" in result.business_reason
    assert any(line.startswith("business: subscription: detected regular bills") for line in lines)
    # the same gate as the other families: against the naive baseline on the holdout
    assert result.promoted, result.reason
    assert result.metrics["purchases_mae"] < result.baseline_metrics["purchases_mae"]
    run = mlflow.get_run(result.run_id)
    assert run.data.params["business"] == "subscription"
    assert "regular bills" in run.data.tags["business_reason"]
    assert "coef_intercept" in run.data.metrics

    pair = load_model_pair(settings).pair
    assert isinstance(pair.value, SubscriptionValueModel)
    batch = score_customers(dataset, DATA_END, pair)
    scores = batch.scores
    assert list(scores.columns) == list(pair.columns)
    scored = scores[scores["not_scored_reason"] == ""]
    assert len(scored) > 1000
    for name in ("p_alive", "expected_purchases", "expected_order_value", "clv", "clv_low", "clv_high"):
        assert scored[name].notna().all(), name
    assert scored["value_tier"].notna().all()
    assert (scored["clv_model_version"] == "retain-clv/v1").all()
    # a different horizon gives fewer bills over a shorter time
    shorter = score_customers(dataset, DATA_END, pair.with_value_horizon(90)).scores
    assert shorter.loc[scored.index, "expected_purchases"].sum() < scored["expected_purchases"].sum()


@pytest.mark.slow
def test_the_churn_model_keeps_its_value_features_on_a_subscription_base(subscription_store):
    from retain.models.churn import VALUE_FEATURES
    from retain.training.churn import train_churn_model

    dataset, settings = subscription_store
    lines = []
    result = train_churn_model(dataset, DATA_END - pd.Timedelta(days=120), settings=settings, progress=lines.append)
    assert not [w for w in result.warnings if "value features left out" in w]
    assert any("value features at" in line and "sBG" in line for line in lines)
    from retain.serving import load_model_pair

    churn = load_model_pair(settings, "clv=1,churn=1").pair.churn
    assert isinstance(churn.value_model_, SubscriptionValueModel)
    assert set(VALUE_FEATURES) <= set(churn.feature_names_)


def test_cli_generates_a_subscription_base_and_train_clv_takes_the_business(tmp_path, monkeypatch, capsys):
    import json

    from retain.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    assert main(["generate", "--business", "subscription", "--customers", "400", "--out", str(data)]) == 0
    assert json.loads((data / "truth.json").read_text())["business"] == "subscription"
    capsys.readouterr()
    # the explicit non-contractual model is refused on regular bills, before anything is logged
    assert main(["train", "clv", "--data", str(data), "--calibration-end", "2025-01-01", "--model", "pareto"]) == 2
    assert "--model pareto is a non-contractual model, but this is a subscription base" in capsys.readouterr().err
    assert not (tmp_path / "home" / "mlflow.db").exists()
    # --business subscription on a base without regular bills is a clear error too
    other = tmp_path / "other"
    assert main(["generate", "--customers", "300", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["train", "clv", "--data", str(other), "--calibration-end", "2025-01-01", "--model", "sbg"]) == 2
    assert "--model sbg is for subscription bases, and no regular bills" in capsys.readouterr().err
