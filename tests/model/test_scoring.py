"""The scoring core: one row per input customer, who is scored and why not, purity."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
import pickle

import pandas as pd
import pytest

from retain.data.contract import SCORE_COLUMNS, score_columns
from retain.errors import RetainError
from retain.serving import score_customers

AS_OF = pd.Timestamp("2025-12-01")


def _subset(dataset, ids):
    def keep(frame):
        return None if frame is None else frame[frame["customer_id"].astype(str).isin(ids)].reset_index(drop=True)
    return replace(dataset, transactions=keep(dataset.transactions), customers=keep(dataset.customers),
                   interactions=keep(dataset.interactions), churn_events=keep(dataset.churn_events))


def test_every_customer_once_with_the_stable_columns(trained):
    pair = trained.pair()
    scores = score_customers(trained.dataset, AS_OF, pair).scores
    ids = set(trained.dataset.transactions["customer_id"].astype(str))
    assert len(scores) == len(ids) and set(scores["customer_id"]) == ids
    assert scores["customer_id"].is_monotonic_increasing
    assert list(scores.columns) == list(score_columns(pair.churn_labels))
    for name in SCORE_COLUMNS:
        assert name in scores.columns
    assert [c for c in scores.columns if c.startswith("not_scored_reason")] == ["not_scored_reason"]
    scored = scores[scores["not_scored_reason"] == ""]
    assert scored["clv"].notna().all() and scored["p_churn"].notna().all() and scored["will_churn"].notna().all()
    assert (scores["clv_model_version"] == "retain-clv/v1").all()
    assert (scores["churn_model_version"] == "retain-churn-type/v1").all()


def test_customers_who_already_churned_are_not_scored_or_targeted(trained):
    """Before: the demo scored and targeted customers whose churn was recorded years earlier."""
    pair = trained.pair()
    scores = score_customers(trained.dataset, AS_OF, pair).scores.set_index("customer_id")
    events = trained.dataset.churn_events
    gone = events[events["churn_date"] < AS_OF]
    assert len(gone) > 100
    rows = scores.loc[gone["customer_id"].astype(str)]
    expected = ("churned on " + gone["churn_date"].dt.date.astype(str) + " (" + gone["churn_type"] + ")").to_numpy()
    assert (rows["not_scored_reason"].to_numpy() == expected).all()
    assert rows["p_churn"].isna().all() and rows["clv"].isna().all() and rows["will_churn"].isna().all()
    # and nobody who left is among those told to act
    at_risk = scores[scores["will_churn"].eq(True)]
    assert len(at_risk) and not set(at_risk.index) & set(gone["customer_id"].astype(str))
    # churn after as_of does not hide a customer: they are scored
    later = events[events["churn_date"] >= AS_OF]["customer_id"].astype(str)
    assert (scores.loc[scores.index.intersection(later), "not_scored_reason"] == "").all()


def test_no_purchase_and_only_returns_before_as_of_are_listed_with_reasons(trained):
    pair = trained.pair()
    tx = trained.dataset.transactions
    first = tx["customer_id"].astype(str).iloc[0]
    extra = pd.DataFrame({
        "customer_id": ["LATE", "RETURNS", "RETURNS"],
        "timestamp": pd.to_datetime(["2025-12-20", "2025-05-01", "2026-01-10"]),
        "amount": [20.0, -15.0, 30.0],
    })
    data = replace(trained.dataset, transactions=pd.concat([tx[tx["customer_id"].astype(str) == first], extra],
                                                           ignore_index=True), customers=None, interactions=None,
                   churn_events=None)
    scores = score_customers(data, AS_OF, pair).scores.set_index("customer_id")
    assert scores.loc["LATE", "not_scored_reason"] == "no purchase before 2025-12-01 (first purchase 2025-12-20)"
    assert scores.loc["RETURNS", "not_scored_reason"] == "only returns before 2025-12-01"
    assert scores.loc[first, "not_scored_reason"] == "" and scores.loc[first, "clv"] > 0


def test_a_customer_scores_the_same_alone_as_in_the_batch(trained):
    pair = trained.pair()
    whole = score_customers(trained.dataset, AS_OF, pair).scores.set_index("customer_id")
    some = sorted(whole.index[whole["not_scored_reason"] == ""])[:25]
    for customer in some[:3]:
        alone = score_customers(_subset(trained.dataset, {customer}), AS_OF, pair).scores.set_index("customer_id")
        pd.testing.assert_series_equal(alone.loc[customer], whole.loc[customer], check_names=False)
    part = score_customers(_subset(trained.dataset, set(some)), AS_OF, pair).scores.set_index("customer_id")
    pd.testing.assert_frame_equal(part, whole.loc[some])


def test_scoring_is_pure_and_thread_safe(trained):
    """Before: the churn model stored per-call notes on itself while scoring."""
    pair = trained.pair()
    before = pickle.dumps(pair.churn), pickle.dumps(pair.value)
    ids = sorted(set(trained.dataset.transactions["customer_id"].astype(str)))
    batches = [_subset(trained.dataset, set(ids[i::4])) for i in range(4)]
    expected = [score_customers(b, AS_OF, pair).scores for b in batches]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: score_customers(b, AS_OF, pair).scores, batches * 2))
    for got, want in zip(results, expected * 2):
        pd.testing.assert_frame_equal(got, want)
    assert (pickle.dumps(pair.churn), pickle.dumps(pair.value)) == before


def test_value_horizon_override_is_a_new_pair(trained):
    pair = trained.pair()
    longer = pair.with_value_horizon(730)
    assert pair.value.config.horizon_days == 365 and longer.value.config.horizon_days == 730
    short = score_customers(trained.dataset, AS_OF, pair).scores
    long = score_customers(trained.dataset, AS_OF, longer).scores
    scored = short["not_scored_reason"] == ""
    assert (long.loc[scored, "expected_purchases"] > short.loc[scored, "expected_purchases"]).all()
    assert (long.loc[scored, "value_horizon_days"] == 730).all()
    with pytest.raises(RetainError, match="must be positive"):
        pair.with_value_horizon(-1)


def test_value_model_alone_leaves_churn_columns_empty(trained):
    from retain.serving import load_model_pair

    loaded = load_model_pair(trained.settings, "clv=1")
    scores = score_customers(trained.dataset, AS_OF, loaded.pair).scores
    assert scores["p_churn"].isna().all() and scores["churn_model_version"].isna().all()
    assert scores.loc[scores["not_scored_reason"] == "", "clv"].notna().all()
    churn_only = load_model_pair(trained.settings, "churn=1").pair
    scores = score_customers(trained.dataset, AS_OF, churn_only).scores
    assert scores["clv"].isna().all() and scores.loc[scores["not_scored_reason"] == "", "p_churn"].notna().all()
    with pytest.raises(RetainError, match="has no version 7"):
        load_model_pair(trained.settings, "clv=7")
    with pytest.raises(RetainError, match="use 'champion' or clv=N,churn=M"):
        load_model_pair(trained.settings, "value=1")


def test_json_style_attributes_are_read_as_in_training(trained):
    """HTTP and CSV send attributes as text; they must score like the typed Parquet rows."""
    pair = trained.pair()
    ids = set(sorted(trained.dataset.customers["customer_id"].astype(str))[:50])
    typed = _subset(trained.dataset, ids)
    as_text = typed.customers.astype(object).where(typed.customers.notna(), None)
    for column in as_text.columns:
        as_text[column] = as_text[column].map(lambda v: v if v is None else str(v))
    text = replace(typed, customers=as_text)
    pd.testing.assert_frame_equal(score_customers(text, AS_OF, pair).scores,
                                  score_customers(typed, AS_OF, pair).scores)
