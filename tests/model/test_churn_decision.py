"""Who is flagged, and why, only where it means something (issue 23, the churn side), and the
churn training's guards (issue 24): one threshold on p_churn, types and drivers for flagged
customers only, drivers that truly moved the prediction, metric names MLflow accepts, no
promotion without a measurable separation."""

import numpy as np
import pandas as pd
import pytest

from retain.models.churn.decision import choose_decision, decide, macro_f1
from retain.models.churn.reasons import UNKNOWN, infer_reasons
from retain.models.drivers import top_drivers
from retain.serving import score_customers
from retain.training.churn import CHURN_GATE, LAPSE_GATE, flat
from retain.training.gate import decide as gate_decide

AS_OF = pd.Timestamp("2025-12-01")


@pytest.fixture(scope="module")
def scored(trained):
    scores = score_customers(trained.dataset, AS_OF, trained.pair()).scores
    return scores[scores["p_churn"].notna()]


def test_will_churn_is_one_threshold_on_p_churn(scored, trained):
    """Failed before: per-type decision weights flagged customers at p_churn 0.046 and left
    one at 0.318 unflagged. Now everyone flagged is above everyone not flagged."""
    flagged = scored["will_churn"].astype(bool).to_numpy()
    assert 0 < flagged.sum() < len(scored)
    assert scored.loc[flagged, "p_churn"].min() > scored.loc[~flagged, "p_churn"].max()
    threshold = trained.churn.will_churn_threshold
    assert scored.loc[flagged, "p_churn"].min() >= threshold > scored.loc[~flagged, "p_churn"].max()


def test_the_threshold_is_reported_with_precision_and_recall(trained):
    metrics = trained.churn.metrics
    assert 0 < trained.churn.will_churn_threshold < 1
    assert 0 < metrics["will_churn_precision"] <= 1 and 0 < metrics["will_churn_recall"] <= 1


def test_type_drivers_and_action_only_for_customers_at_risk(scored):
    """Failed before: churn_type was filled for every customer ("service" for two thirds)."""
    flagged = scored["will_churn"].astype(bool).to_numpy()
    calm, risky = scored[~flagged], scored[flagged]
    assert calm["churn_type"].isna().all() and (calm["top_drivers"].fillna("") == "").all()
    assert calm["recommended_action"].str.match(r"no churn action: low churn risk \(below the \d+% threshold\)").all()
    assert risky["churn_type"].notna().all() and (risky["top_drivers"].str.len() > 0).all()
    assert not risky["recommended_action"].str.startswith("no churn action: low").any()


def test_a_sliver_of_attribution_is_not_a_driver():
    """Failed before: any positive contribution among the top three was named, so static
    attributes with a sliver of attribution filled driver lists."""
    names = ["days_since_last", "attr_region", "complaints_90d"]
    contributions = np.array([[1.2, 0.01, 0.5], [0.02, 0.9, 0.0]])
    matrix = np.array([[40.0, 0.0, 2.0], [3.0, 1.0, 0.0]])
    drivers = top_drivers(contributions, matrix, names, {"attr_region": np.array(["north", "west"], dtype=object)}, 3)
    assert drivers[0] == "no purchase for 40 days; 2 complaints in the last 90 days"
    assert drivers[1] == "region: west"  # here the attribute truly moved the prediction


def test_the_decision_searches_one_threshold_for_macro_f1():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 3000)
    p = np.where(codes[:, None] == np.arange(3), 0.6, 0.2) + rng.uniform(0, 0.3, (3000, 3))
    p /= p.sum(axis=1, keepdims=True)
    rule = choose_decision(p, codes)
    decided = decide(p, rule.threshold, rule.type_weights)
    assert ((decided != 0) == (1 - p[:, 0] >= rule.threshold)).all()
    assert macro_f1(codes, decided, 3) == pytest.approx(rule.macro_f1)
    from sklearn.metrics import f1_score
    assert rule.macro_f1 == pytest.approx(f1_score(codes, decided, average="macro"))


def test_label_text_never_breaks_mlflow_metric_names(tmp_path):
    """Failed before: "didn't need it" or "price (too high)" inside a metric name made
    MLflow reject the run after the whole fit."""
    import mlflow

    metrics = {"macro_f1": 0.5, "per_class": {
        label: {"precision": 0.5, "recall": 0.5, "f1": 0.5} for label in ("didn't need it", "price (too high)", "ok")}}
    keys = flat(metrics, "baseline_x_")
    assert "baseline_x_f1_didn_t need it" in keys and "baseline_x_f1_price _too high_" in keys
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        mlflow.set_experiment("metric-names")
        with mlflow.start_run():
            mlflow.log_metrics(keys)
    finally:
        mlflow.set_tracking_uri(before)


def test_no_promotion_when_the_holdout_cannot_show_a_separation():
    """Failed before: with every held-out customer churned, ROC-AUC is undefined and the
    model was promoted on macro-F1 alone."""
    candidate = {"macro_f1": 0.6, "churn_roc_auc": float("nan"), "churn_brier": 0.1}
    baseline = {"macro_f1": 0.2, "churn_roc_auc": float("nan"), "churn_brier": 0.3}
    for gate in (CHURN_GATE, LAPSE_GATE):
        decision = gate_decide(gate, candidate, {"majority": baseline}, None)
        assert not decision.promote and "churn_roc_auc is undefined" in decision.reason


def test_the_lapse_gate_needs_both_roc_auc_and_brier_strictly_better():
    baseline = {"churn_roc_auc": 0.70, "churn_brier": 0.15}
    assert gate_decide(LAPSE_GATE, {"churn_roc_auc": 0.72, "churn_brier": 0.14}, {"b": baseline}, None).promote
    assert not gate_decide(LAPSE_GATE, {"churn_roc_auc": 0.72, "churn_brier": 0.15}, {"b": baseline}, None).promote
    assert not gate_decide(LAPSE_GATE, {"churn_roc_auc": 0.70, "churn_brier": 0.10}, {"b": baseline}, None).promote


def test_reasons_are_inferred_from_evidence_and_said_in_words():
    features = pd.DataFrame({
        "unresolved_complaints_near_last_purchase": [1, 0, 0, 0, 0],
        "last_satisfaction": [-60, np.nan, np.nan, np.nan, np.nan],
        "discounted_orders_share_before_last_4_orders": [0.0, 0.5, 0.0, 0.0, 0.0],
        "discounted_orders_share_last_4_orders": [0.0, 0.0, 0.0, 0.0, 0.0],
        "order_value_direction_last_6": [0.0, 0.2, -1.0, 0.0, 0.0],
        "gap_direction_last_6": [0.0, 0.0, 1.0, 0.0, 0.0],
        "categories_last_4_orders": [2, 2, 2, 1, 2],
        "categories_before_last_4_orders": [2, 2, 2, 3, 2],
    })
    reasons, evidence = infer_reasons(features)
    assert reasons.tolist() == ["service", "price", "competition", "need", UNKNOWN]
    assert evidence[0] == "1 unresolved complaint around the last purchase; last satisfaction score -60 (-90..90)"
    assert evidence[1] == "50% of orders before the last 4 used a discount; 0% of the last 4 orders used a discount"
    assert "time between purchases growing" in evidence[2] and "order values falling" in evidence[2]
    assert evidence[3] == "1 category in the last 4 orders; 3 categories before the last 4 orders"
    assert evidence[4] == ""
