"""The churn model's calibration: retain's sigmoid calibration against scikit-learn's
CalibratedClassifierCV fitted on the same probabilities (to the last bit), and models pickled
when scikit-learn held the calibration."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from retain.features import build_features
from retain.models.churn.calibration import (
    POOLED_NOTE, ScikitLearnCalibration, SigmoidCalibration, fit_calibration,
)


def _probabilities(n_classes: int, rows: int, seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_classes, rows)
    logits = rng.normal(size=(rows, n_classes)) * 2 + np.eye(n_classes)[codes] * 1.5
    return softmax(logits, axis=1) * scale, codes


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_sigmoid_calibration_equals_scikit_learns(n_classes):
    probabilities, codes = _probabilities(n_classes, 3000, seed=n_classes)
    ours = SigmoidCalibration().fit(probabilities, codes)
    theirs = ScikitLearnCalibration("sigmoid").fit(probabilities, codes)
    fresh, _ = _probabilities(n_classes, 500, seed=100 + n_classes)
    fresh[0] = 0.0
    np.testing.assert_array_equal(ours.transform(fresh), theirs.transform(fresh))
    assert len(ours.slope_) == (1 if n_classes == 2 else n_classes)


def test_sigmoid_calibration_of_large_scores_equals_scikit_learns():
    """Inputs of 30 and above are scaled into range while fitting, as scikit-learn does."""
    scores, codes = _probabilities(4, 2000, seed=1, scale=80.0)
    ours = SigmoidCalibration().fit(scores, codes)
    theirs = ScikitLearnCalibration("sigmoid").fit(scores, codes)
    np.testing.assert_array_equal(ours.transform(scores), theirs.transform(scores))


def test_a_class_missing_from_the_calibration_customers_pools_both_sets():
    probabilities, codes = _probabilities(3, 600, seed=2)
    calibration_codes = np.where(codes == 2, 0, codes)  # no class 2 among the calibration customers
    calibration, note = fit_calibration("sigmoid", [(probabilities, calibration_codes), (probabilities, codes)], 3)
    assert note == POOLED_NOTE
    pooled = SigmoidCalibration().fit(np.concatenate([probabilities, probabilities]),
                                      np.concatenate([calibration_codes, codes]))
    np.testing.assert_array_equal(calibration.transform(probabilities), pooled.transform(probabilities))
    with pytest.warns(UserWarning, match="left uncalibrated"):
        none, _ = fit_calibration("sigmoid", [(probabilities, calibration_codes)] * 2, 3)
    assert none is None


def test_other_methods_are_scikit_learns():
    probabilities, codes = _probabilities(3, 1000, seed=3)
    calibration, _ = fit_calibration("isotonic", [(probabilities, codes)], 3)
    assert isinstance(calibration, ScikitLearnCalibration)
    assert np.allclose(calibration.transform(probabilities).sum(axis=1), 1)


def test_a_model_pickled_with_scikit_learns_calibrator_loads_and_scores(trained):
    """Models registered before retain calibrated by itself hold a CalibratedClassifierCV in
    ``calibrated_``: they load and calibrate through its public predict_proba."""
    pair = trained.pair()
    churn = pair.churn
    data = trained.dataset
    features, _ = build_features(data.transactions, pd.Timestamp("2025-12-01"), customers=data.customers,
                                 interactions=data.interactions, config=pair.feature_config, reference=pair.reference)
    features = features.head(100)
    raw = churn.predict_proba(features, calibrated=False)
    codes = np.argmax(raw, axis=1)
    codes[: raw.shape[1]] = np.arange(raw.shape[1])  # every class present
    sklearn_calibrated = ScikitLearnCalibration("sigmoid").fit(raw, codes).calibrated_
    legacy = object.__new__(type(churn))
    state = {k: v for k, v in churn.__getstate__().items() if k != "calibrator_"}
    legacy.__dict__.update(state, calibrated_=sklearn_calibrated)
    loaded = pickle.loads(pickle.dumps(legacy))
    assert "calibrated_" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.calibrate(raw), sklearn_calibrated.predict_proba(raw))
    scores = loaded.score(features)
    assert len(scores) == 100 and scores["p_churn"].between(0, 1).all()
