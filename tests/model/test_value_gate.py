"""The value models' holdout metrics and the rule that promotes and chooses them (issue 26)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from retain.training.evaluate import decile_calibration, normalized_gini, revenue_capture, value_metrics
from retain.training.gate import decide
from retain.training.value import VALUE_GATE, select_family, selection_scores


def test_normalized_gini_counts_ties_at_their_expectation():
    """For a buy / no-buy outcome the normalized Gini is 2 AUC - 1 with ties counted half,
    and reordering customers inside a tie changes nothing."""
    rng = np.random.default_rng(1)
    bought = (rng.random(4000) < 0.3).astype(float)
    forecast = np.round(bought * 0.4 + rng.random(4000), 1)  # coarse: many ties
    assert normalized_gini(bought, forecast) == pytest.approx(2 * roc_auc_score(bought, forecast) - 1, abs=1e-9)
    spend = bought * rng.gamma(2.0, 20.0, 4000)
    shuffled = rng.permutation(4000)
    assert normalized_gini(spend, forecast) == pytest.approx(normalized_gini(spend[shuffled], forecast[shuffled]))
    assert normalized_gini(spend, spend) == pytest.approx(1.0)
    # a forecast that ties everyone is worth chance, whatever order the rows arrive in
    assert normalized_gini(np.sort(spend)[::-1], np.zeros(4000)) == pytest.approx(0.0, abs=1e-12)
    assert revenue_capture(np.sort(spend)[::-1], np.zeros(4000), 0.1) == pytest.approx(0.1)


def test_decile_calibration_and_capture_read_the_forecast_order():
    actual = np.arange(100, dtype=float)
    deciles = decile_calibration(actual, actual * 2)
    assert list(deciles["customers"]) == [10] * 10
    np.testing.assert_allclose(deciles["actual"], [94.5 - 10 * k for k in range(10)])
    np.testing.assert_allclose(deciles["forecast"], 2 * deciles["actual"])
    assert revenue_capture(actual, actual, 0.2) == pytest.approx(actual[80:].sum() / actual.sum())
    metrics = value_metrics(actual, actual, actual, actual * 1.5)
    assert metrics["total_spend_pct_error"] == pytest.approx(50.0)
    assert metrics["spend_gini"] == pytest.approx(1.0) and metrics["top5_revenue_share"] > metrics["top10_revenue_share"] / 2


# The pattern measured on CDNOW's master file (39/39 weeks): the naive baseline ranks
# purchases best by Spearman (its ties line up with the non-buyers) and over-forecasts by 47%.
NAIVE = {"spend_gini": 0.683, "purchases_spearman": 0.485, "purchases_mae": 1.04, "total_purchases_abs_pct_error": 47.4}
LEARNED = {"spend_gini": 0.710, "purchases_spearman": 0.450, "purchases_mae": 0.82, "total_purchases_abs_pct_error": 7.9}


def test_a_model_that_ranks_better_without_a_worse_total_beats_the_naive_baseline():
    decision = decide(VALUE_GATE, LEARNED, {"naive": NAIVE}, champion=None)
    assert decision.promote, decision.reason
    # ranking best is not enough when the total is 50% too high
    overshoot = {**LEARNED, "spend_gini": 0.75, "total_purchases_abs_pct_error": 50.0}
    assert not VALUE_GATE.beats(overshoot, LEARNED)[0]
    # and the same model again does not displace the champion
    assert not decide(VALUE_GATE, LEARNED, {"naive": NAIVE}, champion=dict(LEARNED)).promote


def test_auto_does_not_choose_a_family_that_ranks_best_but_overforecasts_the_total():
    means = {
        "bgnbd": {"spend_gini": 0.672, "total_purchases_abs_pct_error": 14.3},
        "pareto": {"spend_gini": 0.720, "total_purchases_abs_pct_error": 50.0},
        "learned": {"spend_gini": 0.710, "total_purchases_abs_pct_error": 7.9},
    }
    scores = selection_scores(means)
    assert select_family({name: {"selection_score": s} for name, s in scores.items()}) == "learned"
    # when every family is off, the band widens to the best total: ranking decides among those
    means = {"bgnbd": {"spend_gini": 0.60, "total_purchases_abs_pct_error": 30.0},
             "pareto": {"spend_gini": 0.65, "total_purchases_abs_pct_error": 25.0}}
    scores = selection_scores(means)
    assert select_family({name: {"selection_score": s} for name, s in scores.items()}) == "pareto"


def test_no_model_to_serve_names_only_options_the_command_has(tmp_path, monkeypatch):
    """`retain serve` has no --models option: the error no longer tells it to use one."""
    from retain.errors import RetainError
    from retain.models.registry import load_models
    from retain.settings import Settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RetainError) as error:
        load_models(Settings(home=tmp_path / "home"))
    message = str(error.value)
    assert "retain promote clv --version N" in message
    assert "retain score --models clv=N,churn=M" in message and "or name versions with --models" not in message
