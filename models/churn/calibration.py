"""Calibrating the trees' class probabilities on customers the trees never saw.

``SigmoidCalibration`` is the default: one Platt sigmoid ([Platt1999]) per class (one-vs-rest), rows then
normalised. It is fitted and applied here, to scikit-learn's recipe for
``CalibratedClassifierCV(method="sigmoid")`` (Platt's target priors, the same optimiser and
tolerances), so a model calibrates exactly as it did when scikit-learn fitted it
(tests/model/test_churn_calibration.py compares the two); its parameters are ours to read, and
applying them is a few array operations with no per-call input checks, which matters when
one customer is scored. Any other method goes through ``CalibratedClassifierCV``'s public
``fit`` and ``predict_proba`` (``ScikitLearnCalibration``).
"""

from __future__ import annotations

import warnings
from math import log
from typing import Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator


class Calibration(Protocol):
    """A fitted calibration: the trees' class probabilities in, calibrated ones out."""

    def transform(self, probabilities: np.ndarray) -> np.ndarray: ...


class SigmoidCalibration:
    """One-vs-rest Platt sigmoids ([Platt1999]), fitted on (probabilities, class codes);
    ``slope_`` and ``intercept_`` per calibrated column. With two classes one sigmoid
    calibrates the second column and the first is its complement."""

    def fit(self, probabilities: np.ndarray, codes: np.ndarray) -> "SigmoidCalibration":
        n_classes = probabilities.shape[1]
        columns = [1] if n_classes == 2 else range(n_classes)
        fitted = [_platt_sigmoid(probabilities[:, k], (codes == k).astype(int)) for k in columns]
        self.slope_ = np.array([slope for slope, _ in fitted], dtype=float)
        self.intercept_ = np.array([intercept for _, intercept in fitted], dtype=float)
        return self

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        # the arithmetic of scikit-learn's predict_proba, in its order: sigmoids, rows
        # normalised (uniform where all are 0), values a hair above 1 set to 1
        if len(self.slope_) == 1:
            calibrated = np.zeros_like(probabilities, dtype=float)
            calibrated[:, 1] = expit(-(self.slope_[0] * probabilities[:, 1] + self.intercept_[0]))
            calibrated[:, 0] = 1.0 - calibrated[:, 1]
        else:
            calibrated = expit(-(self.slope_ * probabilities + self.intercept_))
            denominator = np.sum(calibrated, axis=1)[:, np.newaxis]
            uniform = np.full_like(calibrated, 1 / calibrated.shape[1])
            calibrated = np.divide(calibrated, denominator, out=uniform, where=denominator != 0)
        calibrated[(1.0 < calibrated) & (calibrated <= 1.0 + 1e-5)] = 1.0
        return calibrated


def _platt_sigmoid(predictions: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of P(positive) = expit(-(slope * prediction + intercept)) that
    minimise the log-loss against Platt's smoothed targets (his section 2.2 priors); each step
    as scikit-learn's ``_sigmoid_calibration`` takes it, so the optimiser sees the same numbers."""
    # contiguous: a strided column would give a differently rounded dot product
    F = np.ascontiguousarray(predictions, dtype=float)
    scale = 1.0
    largest = np.max(np.abs(F))
    if largest >= 30:  # brought into range; the slope is scaled back at the end
        scale = largest
        F = F / scale
    negatives = float(np.sum(positive <= 0))
    positives = positive.shape[0] - negatives
    target = np.zeros_like(positive, dtype=F.dtype)
    target[positive > 0] = (positives + 1.0) / (positives + 2.0)
    target[positive <= 0] = 1.0 / (negatives + 2.0)

    def loss_and_gradient(parameters):
        raw = -(parameters[0] * F + parameters[1])
        loss, gradient = _half_binomial(target, raw)
        return loss.sum(), np.asarray([-gradient @ F, -gradient.sum()], dtype=np.float64)

    start = np.array([0.0, log((negatives + 1.0) / (positives + 1.0))])
    result = minimize(loss_and_gradient, start, method="L-BFGS-B", jac=True,
                      options={"gtol": 1e-6, "ftol": 64 * np.finfo(float).eps})
    return float(result.x[0] / scale), float(result.x[1])


def _half_binomial(target: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the binomial log-loss of ``expit(raw)`` against ``target`` and its gradient
    in ``raw``, in four numerically safe ranges of ``raw`` (scikit-learn's HalfBinomialLoss)."""
    loss, gradient = np.empty_like(raw), np.empty_like(raw)
    ranges = (raw <= -37, (raw > -37) & (raw <= -2), (raw > -2) & (raw <= 18), raw > 18)
    for k, rows in enumerate(ranges):
        x, y = raw[rows], target[rows]
        if k == 0:
            e = np.exp(x)
            loss[rows], gradient[rows] = e - y * x, e - y
        elif k == 1:
            e = np.exp(x)
            loss[rows], gradient[rows] = np.log1p(e) - y * x, ((1 - y) * e - y) / (1 + e)
        else:
            e = np.exp(-x)
            first = np.log1p(e) if k == 2 else e
            loss[rows], gradient[rows] = first + (1 - y) * x, ((1 - y) - y * e) / (1 + e)
    return loss, gradient


class ScikitLearnCalibration:
    """scikit-learn's ``CalibratedClassifierCV`` of ``method`` over the given probabilities
    (``calibrated_``), fitted and applied through its public ``fit`` and ``predict_proba``:
    calibration methods other than ``sigmoid``, and models pickled when scikit-learn held the
    sigmoid calibration too (``fitted``)."""

    def __init__(self, method: str):
        self.method = method

    def fit(self, probabilities: np.ndarray, codes: np.ndarray) -> "ScikitLearnCalibration":
        given = FrozenEstimator(_GivenProbabilities(probabilities.shape[1]).fit())
        # one split over every row: the frozen trees are not refitted, so folds would only
        # starve rare types of calibration examples
        every_row = np.arange(len(codes))
        calibrated = CalibratedClassifierCV(given, method=self.method, cv=[(every_row, every_row)])
        self.calibrated_ = calibrated.fit(probabilities, codes)
        return self

    @classmethod
    def fitted(cls, calibrated: CalibratedClassifierCV) -> "ScikitLearnCalibration":
        """One that scikit-learn has fitted already."""
        calibration = cls(calibrated.method)
        calibration.calibrated_ = calibrated
        return calibration

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        return self.calibrated_.predict_proba(probabilities)


class _GivenProbabilities(ClassifierMixin, BaseEstimator):
    """Returns its input as the class probabilities: lets scikit-learn's calibrator be
    fitted and applied on probabilities computed from the trees' leaves."""

    def __init__(self, n_classes: int = 2):
        self.n_classes = n_classes

    def fit(self, X=None, y=None):
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X):
        return np.asarray(X, dtype=float)

    def predict(self, X):
        return np.argmax(np.asarray(X), axis=1)


UNCALIBRATED_NOTE = "probabilities left uncalibrated: a churn type has no customer outside training"
POOLED_NOTE = "calibrated on the calibration and early-stopping customers together (a churn type was too rare)"


def fit_calibration(method: str, candidates: list[tuple[np.ndarray, np.ndarray]], n_classes: int,
                    ) -> tuple[Calibration | None, str]:
    """The calibration and a note on how it was fitted. ``candidates``: (probabilities, class
    codes) of the calibration customers, then of the early-stopping customers. Calibrated on
    the first; on a small base where a class is missing there, on both together (neither was
    used to grow the trees); if a class is missing even then, none (probabilities are left
    uncalibrated, with a warning)."""
    probabilities, codes = candidates[0]
    note = ""
    if np.bincount(codes, minlength=n_classes).min() == 0:
        probabilities = np.concatenate([p for p, _ in candidates])
        codes = np.concatenate([c for _, c in candidates])
        note = POOLED_NOTE
    if np.bincount(codes, minlength=n_classes).min() == 0:
        warnings.warn(UNCALIBRATED_NOTE, stacklevel=3)
        return None, UNCALIBRATED_NOTE
    if method == "sigmoid":
        return SigmoidCalibration().fit(probabilities, codes), note
    return ScikitLearnCalibration(method).fit(probabilities, codes), note
