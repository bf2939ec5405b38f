"""Point-in-time features: lifetimes equivalence, no leakage, subset invariance, rules."""

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from retain.data import Dataset, validate_tables
from retain.data.cdnow import cdnow_transactions
from retain.features import (
    FeatureConfig,
    LifecycleRules,
    build_features,
    calibration_holdout,
    customer_features,
    rfm_summary,
)
from retain.features.eligibility import distinct_ids, input_customers, not_scored_reasons, scorable_features
from retain.features.segments import lifecycle_stage
from retain.data.frames import frame_of
from retain.features.tables import text_order


def string_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


AS_OF = pd.Timestamp("2025-03-01")


def lifetimes_summary(tx, as_of, unit):
    tx = string_ids(tx[tx["timestamp"] < as_of])
    return summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", "amount",
        observation_period_end=as_of - pd.Timedelta(days=1), freq="D", freq_multiplier=unit,
    )


@pytest.mark.parametrize("unit", [1, 7])
def test_rfm_equals_lifetimes_on_cdnow(unit):
    tx = cdnow_transactions("master")
    as_of = pd.Timestamp("1997-10-01")
    ours = rfm_summary(tx, as_of, FeatureConfig(time_unit_days=unit)).sort_index()
    theirs = lifetimes_summary(tx, as_of, unit).sort_index()
    assert len(ours) == len(theirs) == 23570
    assert (ours.index == theirs.index).all()
    for column in ("frequency", "recency", "T"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-12)
    np.testing.assert_allclose(ours["monetary"], theirs["monetary_value"], rtol=1e-9)


def test_rfm_equals_lifetimes_on_generated(generated):
    tx = generated["transactions"]
    purchases = tx[tx["amount"] >= 0]  # lifetimes has no notion of returns
    ours = rfm_summary(tx, AS_OF).sort_index()
    theirs = lifetimes_summary(purchases, AS_OF, 1).sort_index()
    assert (ours.index == theirs.index).all()
    np.testing.assert_allclose(ours[["frequency", "recency", "T"]], theirs[["frequency", "recency", "T"]])
    np.testing.assert_allclose(ours["monetary"], theirs["monetary_value"], rtol=1e-9)


@pytest.mark.slow
def test_calibration_holdout_equals_lifetimes_on_cdnow():
    tx = cdnow_transactions("master")
    cal_end, end = pd.Timestamp("1997-10-01"), pd.Timestamp("1998-07-01")
    ours, _ = calibration_holdout(tx, cal_end, end, config=FeatureConfig(time_unit_days=7))
    theirs = calibration_and_holdout_data(
        string_ids(tx), "customer_id", "timestamp",
        calibration_period_end=cal_end - pd.Timedelta(days=1), observation_period_end=end - pd.Timedelta(days=1),
        freq="D", freq_multiplier=7, monetary_value_col="amount",
    ).reindex(ours["customer_id"])
    np.testing.assert_allclose(ours["holdout_purchases"], theirs["frequency_holdout"])
    # lifetimes averages holdout rows, but its calibration monetary averages purchase days;
    # retain uses purchase days in both periods, so compare the spend itself
    window = tx[(tx["timestamp"] >= cal_end) & (tx["timestamp"] < end)]
    spend = window.groupby("customer_id")["amount"].sum().reindex(ours["customer_id"]).fillna(0)
    np.testing.assert_allclose(ours["holdout_spend"], spend, rtol=1e-9)
    one_a_day = window.groupby(["customer_id", "timestamp"]).size().groupby(level=0).max()
    simple = one_a_day[one_a_day == 1].index
    mask = ours["customer_id"].isin(simple).to_numpy()
    np.testing.assert_allclose(ours["holdout_monetary"][mask], theirs["monetary_value_holdout"][mask], rtol=1e-9)
    np.testing.assert_allclose(ours["holdout_duration"], theirs["duration_holdout"])
    np.testing.assert_allclose(ours["frequency"], theirs["frequency_cal"])


def full_features(tables, as_of=AS_OF, reference=None):
    return build_features(
        tables["transactions"], as_of,
        customers=tables["customers"], interactions=tables["interactions"], reference=reference,
    )


def assert_same_rows(left, right):
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True), check_exact=False, rtol=1e-9)


def test_no_leakage_from_rows_at_or_after_the_cutoff(generated_tables):
    before, reference = full_features(generated_tables)
    changed = {name: frame.copy() for name, frame in generated_tables.items()}
    tx = changed["transactions"]
    late = tx["timestamp"] >= AS_OF
    assert late.sum() > 1000
    rng = np.random.default_rng(0)
    tx.loc[late, "amount"] = rng.uniform(-50, 500, late.sum())
    tx.loc[late, "discount"] = 99.0
    tx.loc[late, "category"] = "books"
    # a burst of extra purchases exactly at the cutoff for existing customers
    extra = tx[~late].drop_duplicates("customer_id").head(500).assign(timestamp=AS_OF)
    changed["transactions"] = pd.concat([tx, extra], ignore_index=True)
    inter = changed["interactions"]
    late_i = inter["timestamp"] >= AS_OF
    inter.loc[late_i, "resolved"] = False
    inter.loc[late_i, "satisfaction"] = -90.0
    changed["interactions"] = pd.concat(
        [inter, inter[~late_i].head(300).assign(timestamp=AS_OF + pd.Timedelta(hours=1), kind="complaint")]
    )
    after, _ = full_features(changed, reference=reference)
    assert_same_rows(before, after)


def test_features_do_see_rows_just_before_the_cutoff(generated_tables):
    """The leakage test above would pass on a pipeline that ignores all data; this one would not."""
    before, reference = full_features(generated_tables)
    changed = dict(generated_tables)
    tx = generated_tables["transactions"]
    extra = tx[tx["timestamp"] < AS_OF].head(1).assign(timestamp=AS_OF - pd.Timedelta(seconds=1), amount=1000.0)
    changed["transactions"] = pd.concat([tx, extra], ignore_index=True)
    after, _ = full_features(changed, reference=reference)
    who = str(extra["customer_id"].iloc[0])
    row_before = before.set_index("customer_id").loc[who]
    row_after = after.set_index("customer_id").loc[who]
    assert row_after["days_since_last"] == 1 and row_before["days_since_last"] > 1
    assert row_after["spend_30d"] == pytest.approx(row_before["spend_30d"] + 1000)


def test_a_subset_of_customers_gives_the_same_rows(generated_tables):
    whole, reference = full_features(generated_tables)
    rng = np.random.default_rng(1)
    chosen = rng.choice(whole["customer_id"].to_numpy(), 300, replace=False)

    def only(frame):
        return frame[frame["customer_id"].astype(str).isin(chosen)]

    subset = {name: only(frame) for name, frame in generated_tables.items()}
    # as plain strings, shuffled: the way an HTTP request or a Spark partition delivers them
    subset = {name: string_ids(frame.sample(frac=1.0, random_state=2)) for name, frame in subset.items()}
    part, _ = full_features(subset, reference=reference)
    expected = whole[whole["customer_id"].isin(chosen)]
    assert len(part) == 300
    assert_same_rows(expected, part)


def test_segments_scores_and_abc_are_sensible(generated_tables):
    table, reference = full_features(generated_tables)
    assert set(table["rfm_r"]) <= {1, 2, 3, 4, 5} and table["rfm_r"].nunique() == 5
    champions = table[table["rfm_segment"] == "champions"]
    lost = table[table["rfm_segment"] == "lost"]
    assert champions["days_since_last"].median() < lost["days_since_last"].median()
    assert champions["purchase_days"].median() > lost["purchase_days"].median()
    revenue = table.groupby("abc_class")["total_spend"].sum() / table["total_spend"].sum()
    assert revenue["A"] == pytest.approx(0.8, abs=0.02)
    assert (table["rfm_code"] == table[["rfm_r", "rfm_f", "rfm_m"]].astype(str).agg("".join, axis=1)).all()


def test_lifecycle_rules():
    rules = LifecycleRules()
    rows = pd.DataFrame(
        [
            # since, mean_gap, tenure, purchase_days, trend_n, trend_s -> expected
            (400, np.nan, 400, 1, 0, 0),  # one-day buyer a year+ ago
            (200, 20, 500, 10, -1, -1),  # 10x overdue
            (10, np.nan, 30, 1, 1, 1),  # brand new
            (50, 20, 400, 12, 0, 0),  # 2.5x overdue
            (10, 20, 400, 12, 0.5, 0.5),  # buying more
            (10, 20, 400, 12, 0.0, 0.1),  # steady
        ],
        columns=["days_since_last", "mean_gap_days", "tenure_days", "purchase_days",
                 "purchase_trend_90d", "spend_trend_90d"],
    )
    stages = lifecycle_stage(rows, rules)
    assert list(stages) == ["termination", "termination", "acquisition", "decline", "growth", "maturity"]


def test_customers_with_no_purchase_before_the_cutoff_are_absent(generated_tables):
    tx = generated_tables["transactions"]
    early = tx["timestamp"].min() + pd.Timedelta(days=30)
    table = customer_features(tx, early)
    first = tx[tx["amount"] >= 0].groupby("customer_id", observed=True)["timestamp"].min()
    assert set(table["customer_id"]) == set(first[first < early.normalize()].index.astype(str))


def test_service_features_reflect_interactions(generated_tables):
    table, _ = full_features(generated_tables)
    inter = generated_tables["interactions"]
    window = inter[(inter["timestamp"] >= AS_OF - pd.Timedelta(days=90)) & (inter["timestamp"] < AS_OF)]
    complaints = window[window["kind"] == "complaint"].groupby("customer_id", observed=True).size()
    got = table.set_index("customer_id")["complaints_90d"]
    expected = complaints.reindex(got.index.astype(str)).fillna(0)
    expected.index = got.index
    # the window starts on the day 90 days before the cutoff, inclusive
    assert (got - expected).abs().sum() <= 0.01 * expected.sum() + 2
    assert got.sum() > 0


def test_validated_and_raw_generated_tables_give_the_same_features(generated_tables):
    ds = validate_tables(generated_tables, data_cutoff="2026-01-01")
    raw, reference = full_features(generated_tables)
    clean, _ = build_features(ds.transactions, AS_OF, customers=ds.customers, interactions=ds.interactions,
                              reference=reference)
    assert_same_rows(raw, clean)


def test_cdnow_sample_summary_reproduces_the_published_bgnbd_fit():
    """Features from raw CDNOW transactions (39-week calibration, weeks) give [FHL2005a]'s
    BG/NBD estimates: the conventions, not just self-consistency, are right."""
    from lifetimes import BetaGeoFitter

    summary = rfm_summary(cdnow_transactions("sample"), "1997-10-01", FeatureConfig(time_unit_days=7))
    assert len(summary) == 2357
    fitted = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name


def test_lines_of_one_order_give_the_same_row_alone_as_in_the_base(generated_tables):
    """Order lines share a timestamp; their order within the customer (category streak,
    last-N-orders shares) must not depend on which other customers the table holds."""
    tx = generated_tables["transactions"]
    lines = tx[tx["timestamp"] < AS_OF].groupby("customer_id", observed=True).head(3).head(600).copy()
    lines["category"] = np.where(np.arange(len(lines)) % 2 == 0, "books", "music")
    lines["discount"] = np.where(np.arange(len(lines)) % 3 == 0, 5.0, 0.0)
    tx = pd.concat([tx, lines], ignore_index=True)
    whole, reference = build_features(tx, AS_OF)
    chosen = lines["customer_id"].astype(str).unique()[:100]
    part, _ = build_features(tx[tx["customer_id"].astype(str).isin(chosen)], AS_OF, reference=reference)
    pd.testing.assert_frame_equal(whole[whole["customer_id"].isin(chosen)].reset_index(drop=True), part)


def request_dataset(tables, chosen):
    """The rows of some customers, ids as plain text, as an HTTP request delivers them."""
    def only(frame):
        return string_ids(frame[frame["customer_id"].astype(str).isin(chosen)])
    return Dataset(only(tables["transactions"]), only(tables["customers"]), only(tables["interactions"]),
                   only(tables["churn_events"]))


def test_one_customer_scored_alone_gets_its_row_of_the_base(generated_tables):
    whole, reference = full_features(generated_tables)
    reasons = not_scored_reasons(input_customers(Dataset(generated_tables["transactions"])),
                                 generated_tables["transactions"], AS_OF, generated_tables["churn_events"])
    interactions = generated_tables["interactions"]
    # one with service interactions, one without any (counts 0, not unknown)
    quiet = whole["customer_id"][~whole["customer_id"].isin(interactions["customer_id"].astype(str))]
    for who in (str(interactions["customer_id"].iloc[0]), quiet.iloc[0]):
        if reasons[who] != "":
            continue
        features, got_reasons = scorable_features(request_dataset(generated_tables, [who]), AS_OF, FeatureConfig(),
                                                  reference)
        assert list(got_reasons.words.index) == [who] and got_reasons.words[who] == ""
        pd.testing.assert_frame_equal(features, whole[whole["customer_id"] == who].reset_index(drop=True))


def test_tables_without_rows_for_a_customer():
    """A customer missing from the customers table gets unknown attributes; one without
    interactions gets zero counts; an empty interactions table gives the same columns."""
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 20.0, 5.0],
                       "timestamp": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-02-01"])})
    customers = pd.DataFrame({"customer_id": ["a", "a", "z"], "plan": ["gold", "silver", "x"],
                              "seats": [3, 4, 5], "trial": [True, False, True]})
    interactions = pd.DataFrame({"customer_id": ["a"], "timestamp": pd.to_datetime(["2024-02-01"]),
                                 "kind": ["complaint"]})
    table = customer_features(tx, "2024-06-01", customers=customers, interactions=interactions)
    assert list(table["customer_id"]) == ["a", "b"]
    assert table["attr_plan"].tolist() == ["gold", None]  # a customer's first row counts
    assert table["attr_seats"].tolist()[0] == 3.0 and np.isnan(table["attr_seats"].iloc[1])
    # as a reindexed column: booleans with a gap are objects, read as a category
    assert table["attr_trial"].tolist() == [True, None]
    assert table["complaints_365d"].tolist() == [1.0, 0.0]
    empty = customer_features(tx, "2024-06-01", customers=customers, interactions=interactions.iloc[:0])
    assert list(empty.columns) == list(table.columns)
    assert empty["complaints_365d"].tolist() == [0.0, 0.0]


def test_service_kinds_and_resolution_are_read_leniently():
    tx = pd.DataFrame({"customer_id": ["a"], "amount": [10.0], "timestamp": pd.to_datetime(["2024-01-05"])})
    interactions = pd.DataFrame({
        "customer_id": ["a"] * 4,
        "timestamp": pd.to_datetime(["2024-02-01", "2024-02-02", "2024-02-03", "2024-09-01"]),
        "kind": [" Complaint ", "COMPLAINT", "complaint", "complaint"],  # the last one is after the cutoff
        "resolved": pd.array([False, None, True, False], dtype="boolean"),
    })
    table = customer_features(tx, "2024-06-01", interactions=interactions)
    assert table["complaints_365d"].tolist() == [3.0]
    assert table["unresolved_complaints_365d"].tolist() == [1.0]  # unknown is not unresolved
    as_text = customer_features(tx, "2024-06-01", interactions=interactions.astype({"resolved": object}))
    assert as_text["unresolved_complaints_365d"].tolist() == [1.0]


def test_attribute_dates_become_ages_in_days():
    tx = pd.DataFrame({"customer_id": ["a", "b", "c"], "amount": [1.0, 1.0, 1.0],
                       "timestamp": pd.to_datetime(["2024-01-05"] * 3)})
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c"],
        "signup": pd.to_datetime(["2024-05-30 23:00", "2024-05-31 23:00", None]),
        "signup_text": ["2024-05-01", "", "2024-06-01"],
        "first_call": pd.to_datetime(["2024-05-30 01:30"] * 3).tz_localize("Europe/Paris"),
    })
    table = customer_features(tx, "2024-06-01", customers=customers)
    np.testing.assert_array_equal(table["attr_signup_days"], [1.0, np.nan, np.nan])  # under a day: unknown
    np.testing.assert_array_equal(table["attr_signup_text_days"], [31.0, np.nan, np.nan])
    np.testing.assert_array_equal(table["attr_first_call_days"], [1.0] * 3)  # local time, as written (UTC: 2)


def test_feature_frame_is_the_pandas_frame_of_its_columns():
    for n in (0, 1, 3):
        columns = {
            "customer_id": np.array(["a", "b", "c"][:n], dtype=object),
            "as_of": np.full(n, np.datetime64("2025-01-01", "ns")),
            "frequency": np.arange(n, dtype=float),
            "rfm_r": np.arange(n),
            "abc_class": np.array(["A", "B", "C"][:n]),  # numpy text becomes object, as in pandas
            "monetary": np.ones(n),
        }
        pd.testing.assert_frame_equal(frame_of(columns), pd.DataFrame(columns), check_exact=True)
        # pandas' own arrays (validated tables hold them), Series' values, another index
        index = pd.Index([f"r{i}" for i in range(n)])
        columns.update({
            "resolved": pd.array([True, None, False][:n], dtype="boolean"),
            "plan": pd.Categorical(["x", None, "y"][:n]),
            "zoned": pd.array(pd.date_range("2024-01-01", periods=n, tz="Europe/Paris")),
            "dates": pd.array(np.full(n, np.datetime64("2024-02-01", "ns"))),  # a DatetimeArray
            "amount": pd.Series(np.arange(n, dtype=float) / 2, index=index),
        })
        pd.testing.assert_frame_equal(frame_of(columns, index=index), pd.DataFrame(columns, index=index),
                                      check_exact=True)


@pytest.mark.parametrize("longest", [8, 200])  # numpy text sort, and Python's for very long ids
def test_customer_ids_are_sorted_as_text(longest):
    ids = np.array(["b", "a10", "a9", "é", "A", "x" * longest, "a"], dtype=object)
    assert list(ids[text_order(ids)]) == sorted(ids)


def test_distinct_ids_of_a_categorical_column_are_the_used_categories():
    values = pd.Series(pd.Categorical(["c", "a", None, "c"], categories=["a", "b", "c"]))
    assert list(distinct_ids(values)) == ["a", "c"]
    assert list(distinct_ids(values.astype(object))) == ["c", "a", "nan"]  # text, as astype(str) reads it
