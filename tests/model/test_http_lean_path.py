"""The per-request path of the churn model: one float matrix instead of a frame built column
by column, with the very same inputs for the trees and the same words for the drivers."""

import numpy as np
import pandas as pd

from retain.features import build_features

AS_OF = pd.Timestamp("2025-12-01")


def test_matrix_path_gives_the_trees_what_the_training_frame_gives(trained):
    pair = trained.pair()
    churn = pair.churn
    data = trained.dataset
    features, _ = build_features(data.transactions, AS_OF, customers=data.customers, interactions=data.interactions,
                                 config=pair.feature_config, reference=pair.reference)
    features = features.head(1500)
    features.loc[features.index[:5], "attr_region"] = "atlantis"  # unseen category: missing for the trees
    frame, frame_notes = churn.prepare(features)
    matrix, notes = churn._model_inputs(features)
    assert isinstance(matrix, np.ndarray) and matrix.shape == frame.shape
    assert notes == frame_notes and notes.unknown_categories["attr_region"] == 5
    booster = churn.classifier_.booster_
    np.testing.assert_array_equal(booster.predict(matrix, pred_leaf=True, num_iteration=churn.best_rounds_),
                                  booster.predict(frame, pred_leaf=True, num_iteration=churn.best_rounds_))
    rows = np.arange(len(features))
    for name in ("attr_region", "rfm_segment", "frequency", "complaints_90d"):
        np.testing.assert_array_equal(pd.Series(churn._column_values(matrix, name, rows)).astype(str),
                                      pd.Series(frame[name].to_numpy(dtype=object)).astype(str))


def test_a_missing_feature_column_is_missing_in_both_paths(trained):
    pair = trained.pair()
    data = trained.dataset
    features, _ = build_features(data.transactions, AS_OF, config=pair.feature_config, reference=pair.reference)
    frame, frame_notes = pair.churn.prepare(features.head(200))
    matrix, notes = pair.churn._model_inputs(features.head(200))
    assert "attr_region" in notes.missing_features and notes == frame_notes
    np.testing.assert_array_equal(np.isnan(matrix), frame.isna().to_numpy())


def test_a_few_rows_get_the_category_codes_of_the_hashed_lookup(trained, monkeypatch):
    """Up to a few rows, categories are looked up value by value; the codes and the unseen
    counts equal those of the hash pass, for unseen, blank, padded and missing values."""
    from retain.data import fast_paths

    pair = trained.pair()
    data = trained.dataset
    features, _ = build_features(data.transactions, AS_OF, customers=data.customers, interactions=data.interactions,
                                 config=pair.feature_config, reference=pair.reference)
    features = features.head(6).copy()
    known = pair.churn.categories_["attr_region"][0]
    features["attr_region"] = ["atlantis", None, "  ", f" {known} ", known, np.nan]
    assert fast_paths.is_small(len(features))
    matrix, notes = pair.churn._model_inputs(features)
    monkeypatch.setattr(fast_paths, "SMALL_INPUT", -1)
    hashed, hashed_notes = pair.churn._model_inputs(features)
    np.testing.assert_array_equal(matrix, hashed)
    assert notes == hashed_notes and notes.unknown_categories["attr_region"] == 1
