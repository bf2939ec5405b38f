"""The models' per-call scoring path: what a loaded model derives once (category codes,
sigmoid calibration), drivers phrased over all customers at once, the value outputs
computed once per call and assembled into one frame; each checked against the plain
definition it replaces."""

import pickle

import numpy as np
import pandas as pd
import pytest

from retain.features import build_features
from retain.features.segments import stage_given_p_alive
from retain.models.churn.calibration import ScikitLearnCalibration, SigmoidCalibration
from retain.models.drivers import MIN_DRIVER_SHARE, describe_feature
from retain.models.value.purchase import collapse, distinct_pairs
from retain.models.value.scores import PASSTHROUGH_COLUMNS, score_table
from retain.models.value.tiers import PYRAMID, QUADRANT_ORDER, QUADRANTS, TierEdges

AS_OF = pd.Timestamp("2025-12-01")


@pytest.fixture(scope="module")
def scored(trained):
    pair = trained.pair()
    data = trained.dataset
    features, _ = build_features(data.transactions, AS_OF, customers=data.customers, interactions=data.interactions,
                                 config=pair.feature_config, reference=pair.reference)
    return pair, features.head(600).reset_index(drop=True)


def test_sigmoid_calibration_is_scikit_learns_to_the_last_bit(scored):
    """retain fits and applies the sigmoid calibration itself (no per-call input checks when
    one customer is scored); on the same probabilities and classes it gives the numbers of
    scikit-learn's CalibratedClassifierCV to the last bit."""
    pair, features = scored
    churn = pair.churn
    raw = churn.predict_proba(features, calibrated=False)
    assert isinstance(churn.calibrator_, SigmoidCalibration)  # the trained model takes retain's own path
    rng = np.random.default_rng(0)
    codes = np.where(rng.random(len(raw)) < 0.7, np.argmax(raw, axis=1), rng.integers(0, raw.shape[1], len(raw)))
    ours = SigmoidCalibration().fit(raw, codes)
    theirs = ScikitLearnCalibration("sigmoid").fit(raw, codes)
    raw[0] = 0.0  # a row whose sigmoids are all at their intercepts
    np.testing.assert_array_equal(ours.transform(raw), theirs.transform(raw))


def test_the_derived_lookup_is_not_pickled_and_follows_a_refit(scored):
    pair, features = scored
    churn = pair.churn
    before = churn.score(features.head(50))
    assert "_scoring_lookup" in churn.__dict__
    loaded = pickle.loads(pickle.dumps(churn))
    assert "_scoring_lookup" not in loaded.__dict__  # as a model pickled before it existed
    pd.testing.assert_frame_equal(loaded.score(features.head(50)), before)
    # a fitted attribute replaced (as fitting does) makes the lookup derive again
    loaded.calibrator_ = None
    raw = loaded.predict_proba(features.head(5), calibrated=False)
    np.testing.assert_array_equal(loaded.calibrate(raw), raw)


def test_drivers_are_each_customers_top_positive_features_in_words(scored):
    """The drivers phrased once per distinct value over all customers equal phrasing each
    customer's own top positive contributions (those of at least a share of the strongest)
    one by one."""
    pair, features = scored
    churn = pair.churn
    matrix, _ = churn._model_inputs(features)
    leaves = churn._leaves(matrix)
    probabilities = churn.calibrate(churn._uncalibrated(leaves))
    churn_columns = churn._lookup().churn_columns
    type_index = churn_columns[np.argmax(probabilities[:, churn_columns], axis=1)]
    drivers = churn._drivers(matrix, leaves, type_index)
    contributions = churn.tables_.contributions(leaves, type_index, 0, len(churn.feature_names_))
    expected = []
    for row in range(len(matrix)):
        phrases = []
        strongest = contributions[row].max()
        for column in np.argsort(-contributions[row])[:churn.config.top_drivers]:
            # a driver moved the prediction at least MIN_DRIVER_SHARE of the strongest one
            if contributions[row, column] > 0 and contributions[row, column] >= MIN_DRIVER_SHARE * strongest:
                name = churn.feature_names_[column]
                phrases.append(describe_feature(name, churn._column_values(matrix, name, np.array([row]))[0]))
        expected.append("; ".join(p for p in phrases if p))
    assert drivers.dtype == object and drivers.tolist() == expected
    assert sum(bool(d) for d in expected) > 100


def test_category_codes_treat_blanks_as_missing_and_count_unseen_values(scored):
    pair, features = scored
    churn = pair.churn
    known = churn.categories_["attr_region"]
    features = features.head(6).copy()
    features["attr_region"] = [f"  {known[1]} ", "", "   ", None, "atlantis", known[0]]
    matrix, notes = churn._model_inputs(features)
    column = matrix[:, churn.feature_names_.index("attr_region")]
    np.testing.assert_array_equal(column, [1, np.nan, np.nan, np.nan, np.nan, 0])
    assert notes.unknown_categories == {"attr_region": 1}


def test_scores_follow_the_rows_whatever_their_order_and_index(scored):
    pair, features = scored
    in_order = pd.concat([pair.value.score(features), pair.churn.score(features).drop(columns=["customer_id", "as_of"])],
                         axis=1)
    shuffled = features.sample(frac=1, random_state=3)
    shuffled.index = shuffled.index * 7 + 11
    value, churn = pair.value.score(shuffled), pair.churn.score(shuffled)
    assert isinstance(value.index, pd.RangeIndex) and isinstance(churn.index, pd.RangeIndex)
    again = pd.concat([value, churn.drop(columns=["customer_id", "as_of"])], axis=1)
    again = again.set_index(shuffled.index.to_numpy()).sort_index().reset_index(drop=True)
    expected = in_order.set_index((features.index * 7 + 11).to_numpy()).sort_index().reset_index(drop=True)
    pd.testing.assert_frame_equal(again, expected)


def test_no_customers_give_empty_tables_with_every_column(scored):
    pair, features = scored
    value, churn = pair.value.score(features.head(0)), pair.churn.score(features.head(0))
    assert len(value) == 0 and list(value.columns) == list(pair.value.score(features.head(1)).columns)
    assert len(churn) == 0 and list(churn.columns) == list(pair.churn.score(features.head(1)).columns)


def test_score_table_keeps_the_passthrough_dtypes(scored):
    pair, features = scored
    features = features.head(20).copy()
    features.index = np.arange(100, 120)
    features["rfm_segment"] = features["rfm_segment"].astype("category")
    features["lifecycle_stage"] = features["lifecycle_stage"].astype("string")
    features["as_of"] = features["as_of"].dt.tz_localize("UTC")
    values = pair.value.predict_values(features)
    table = score_table(features, values, pair.value.tier_edges, pair.value.config)
    for name in PASSTHROUGH_COLUMNS:
        if name in features:
            assert table[name].dtype == features[name].dtype, name
            # the lifecycle stage is the features' once P(alive) has decided termination
            expected = features[name].to_numpy() if name != "lifecycle_stage" else stage_given_p_alive(
                features[name].to_numpy(dtype=object), values["p_alive"], pair.value.config.termination_p_alive)
            np.testing.assert_array_equal(table[name].to_numpy(), expected)
    features["lifecycle_stage"] = features["lifecycle_stage"].astype("category")
    table = score_table(features, values, pair.value.tier_edges, pair.value.config)
    assert isinstance(table["lifecycle_stage"].dtype, pd.CategoricalDtype)
    assert table["lifecycle_stage"].notna().all()
    assert list(table.index) == list(range(20))
    assert table["value_tier"].dtype == object and table["value_move"].dtype == object


def test_tier_and_quadrant_indexes_name_what_the_edges_say():
    edges = TierEdges(pyramid=(100.0, 50.0, 10.0), high_current=5.0, high_future=20.0)
    clv = np.array([150.0, 100.0, 60.0, 10.0, 9.99, np.nan, -1.0])
    assert [PYRAMID[i] for i in edges.pyramid_index(clv)] == ["platinum", "platinum", "gold", "iron", "lead",
                                                              "lead", "lead"]
    assert edges.pyramid_tier(clv).tolist() == [PYRAMID[i] for i in edges.pyramid_index(clv)]
    current = np.array([6.0, 6.0, 1.0, 1.0, 5.0, 6.0, np.nan])
    quadrants = [QUADRANT_ORDER[i] for i in edges.quadrant_index(current, clv)]
    # high now: at or above high_current; high later: in the pyramid's top three tiers (CLV >= iron's edge)
    assert quadrants == [QUADRANTS[(True, True)], QUADRANTS[(True, True)], QUADRANTS[(False, True)],
                         QUADRANTS[(False, True)], QUADRANTS[(True, False)], QUADRANTS[(True, False)],
                         QUADRANTS[(False, False)]]
    assert edges.value_quadrant(current, clv).tolist() == quadrants


def test_distinct_pairs_restore_every_row():
    x = np.array([0.0, 3.0, 3.0, 0.0, 5.0])
    T = np.array([10.0, 40.0, 40.0, 12.0, 40.0])
    distinct, inverse = distinct_pairs(x, T)
    np.testing.assert_array_equal(distinct["x"][inverse], x)
    np.testing.assert_array_equal(distinct["T"][inverse], T)
    assert len(distinct["x"]) == 4
    expected, _, expected_inverse = collapse({"x": x, "T": T})  # the pairs every prediction shares
    np.testing.assert_array_equal(inverse, expected_inverse)


def test_value_outputs_shared_within_a_call_equal_each_computed_alone(scored):
    """predict_values computes P(alive), the pairs and the discounted purchases once; each
    output equals the model's own function called on its own."""
    pair, features = scored
    model = pair.value
    values = model.predict_values(features)
    frequency, recency, T = (features[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    horizon = model.config.horizon_days / model.time_unit_days
    np.testing.assert_array_equal(values["p_alive"], model.purchase.p_alive(frequency, recency, T))
    np.testing.assert_allclose(values["p_alive_horizon"], model.purchase.p_alive_at(horizon, frequency, recency, T),
                               rtol=1e-12)
    np.testing.assert_allclose(values["expected_purchases"],
                               model.purchase.expected_purchases(horizon, frequency, recency, T), rtol=1e-12)
    low, high, _, _ = model.predictive_interval(features, model.config.horizon_days)
    np.testing.assert_array_equal(values["expected_purchases_low"], low)
    np.testing.assert_array_equal(values["expected_purchases_high"], high)
