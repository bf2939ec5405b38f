"""The churn-type classifier: who will leave within the horizon, and why.

LightGBM multiclass over the feature table (plus, optionally, value-model outputs), with
class weights for rare types, early stopping and native categorical handling; probabilities
calibrated on customers the trees never saw (calibration.py); per-customer drivers from path
attributions (retain.models.attribution, read from the same ``pred_leaf`` pass that gives the
probabilities) put in words (retain.models.drivers).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import softmax

from retain.data.frames import column_array
from retain.errors import RetainError
from retain.models.actions import CHURN_ACTIONS, GENERIC_ACTION, LOW_RISK_ACTION
from retain.models.attribution import TreeTables
from retain.models.churn.calibration import ScikitLearnCalibration, fit_calibration
from retain.models.churn.config import RETAINED, ChurnConfig
from retain.models.churn.inputs import (
    CORE_FEATURES, VALUE_FEATURES, InputNotes, InputSchema, ValueFeatureSource, learn_schema,
    require_core_features, value_feature_columns, with_value_features,
)
from retain.models.churn.decision import choose_decision, decide
from retain.models.churn.labels import merge_rare
from retain.models.drivers import top_drivers


class ChurnTypeModel:
    """``config`` is the only parameter; ``fit`` sets the fitted state: ``labels_`` (class
    order; ``retained`` first), ``feature_names_``, ``categories_`` (the training categories
    of each categorical feature), ``classifier_`` (LGBMClassifier), ``best_rounds_``,
    ``tables_`` (the trees' path attributions), ``calibrator_`` (None: uncalibrated) and
    ``calibration_note_``, ``threshold_`` (the one p_churn threshold of ``will_churn``) and
    ``decision_weights_`` (per-class multipliers that choose the churn type among flagged
    customers), both chosen for the decision's macro-F1 on the calibration customers
    (decision.py), with ``decision_quality_`` (macro-F1, precision and recall there),
    ``merged_labels_`` (rare types merged into ``other``) and ``value_model_`` (or None)."""

    def __init__(self, config: ChurnConfig | None = None):
        self.config = config or ChurnConfig()

    @property
    def churn_labels(self) -> list[str]:
        return [label for label in self.labels_ if label != RETAINED]

    @property
    def input_columns(self) -> tuple[str, ...]:
        value_inputs = self.value_model_.input_columns if self.value_model_ else ()
        names = [n for n in self.feature_names_ if n not in VALUE_FEATURES]
        return tuple(dict.fromkeys(["customer_id", "as_of", *CORE_FEATURES, *value_inputs, *names]))

    # --- fitting -------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, train_labels, valid: pd.DataFrame, valid_labels,
            calibration: pd.DataFrame, calibration_labels, value_model: ValueFeatureSource | None = None,
            progress=None) -> "ChurnTypeModel":
        """Trees on ``train`` with early stopping on ``valid``; probabilities calibrated and
        decision weights chosen on ``calibration``. Three disjoint sets of customers."""
        self.value_model_ = value_model if self.config.value_features else None
        labels = [pd.Series(np.asarray(y, dtype=object)) for y in (train_labels, valid_labels, calibration_labels)]
        labels, self.merged_labels_ = merge_rare(labels, self.config.min_class_examples)
        present = set(labels[0])
        if len(present) < 2 or RETAINED not in present:
            raise RetainError(
                f"the training labels hold only {sorted(present)}: a classifier needs retained customers and at "
                "least one churn type; check the churn events, --as-of and --horizon-days"
            )
        self.labels_ = [RETAINED] + sorted(present - {RETAINED})
        codes = [pd.Categorical(y, categories=self.labels_).codes for y in labels]
        if any((c < 0).any() for c in codes[1:]):
            unseen = sorted(set(labels[1]).union(labels[2]) - set(self.labels_))
            raise RetainError(f"churn types {unseen} occur only outside the training customers; add data or snapshots")
        self.feature_names_, self.categories_ = learn_schema(self._with_value_features(train))
        (x_train, _), (x_valid, _), (x_calibration, _) = (self.prepare(f) for f in (train, valid, calibration))
        self._fit_trees(x_train, codes[0], x_valid, codes[1], progress)
        self.calibrator_, self.calibration_note_ = fit_calibration(
            self.config.calibration,
            [(self._uncalibrated(self._leaves(x_calibration)), codes[2]),
             (self._uncalibrated(self._leaves(x_valid)), codes[1])],
            len(self.labels_))
        self._choose_decision(self.predict_proba(calibration), codes[2])
        return self

    def _choose_decision(self, probabilities: np.ndarray, codes: np.ndarray) -> None:
        decision = choose_decision(probabilities, codes)
        self.threshold_, self.decision_weights_ = decision.threshold, decision.type_weights
        self.decision_quality_ = {"macro_f1": decision.macro_f1, "precision": decision.precision,
                                  "recall": decision.recall}

    def _fit_trees(self, x_train: pd.DataFrame, train_codes, x_valid: pd.DataFrame, valid_codes, progress) -> None:
        config = self.config
        counts = np.bincount(train_codes, minlength=len(self.labels_))
        weights = dict(enumerate((counts.max() / counts) ** config.class_weight_power))
        self.classifier_ = lgb.LGBMClassifier(
            # num_class given even for two labels (retained + one type): the wrapper only sets it above two
            objective="multiclass", num_class=len(self.labels_), n_estimators=config.max_rounds,
            learning_rate=config.learning_rate,
            num_leaves=config.num_leaves,
            min_child_samples=config.min_child_samples or int(np.clip(len(x_train) / 500, 20, 200)),
            max_bin=config.max_bin, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=config.reg_lambda, class_weight=weights, n_jobs=config.n_jobs,
            random_state=config.seed, verbose=-1,
        )
        self.classifier_.fit(
            x_train, train_codes, eval_X=(x_valid,), eval_y=(valid_codes,), eval_class_weight=[weights],
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False,
                                          min_delta=config.early_stopping_min_delta)]
            + ([_every_rounds(25, progress)] if progress else []),
        )
        self.best_rounds_ = int(self.classifier_.best_iteration_ or config.max_rounds)
        self.tables_ = TreeTables.from_booster(self.classifier_.booster_, self.best_rounds_)

    # --- inputs --------------------------------------------------------------------------

    def _with_value_features(self, features: pd.DataFrame) -> pd.DataFrame:
        require_core_features(features)
        frame = features.reset_index(drop=True)
        if self.value_model_ is not None:
            frame = with_value_features(frame, self.value_model_)
        return frame

    def prepare(self, features: pd.DataFrame) -> tuple[pd.DataFrame, InputNotes]:
        """The model matrix as a frame: value features added, columns in training order,
        categorical columns with the training categories (inputs.InputSchema). Unknown
        categories and absent feature columns become missing, counted in the returned notes.
        Changes no state of the model: scoring may run on several threads at once."""
        matrix, notes = self._model_inputs(features)
        return self._lookup().schema.frame(matrix), notes

    def _model_inputs(self, features: pd.DataFrame) -> tuple[np.ndarray, InputNotes]:
        """``prepare``'s matrix as one float array, categorical columns as their training
        category codes: what the trees read when scoring."""
        require_core_features(features)
        return self._lookup().schema.matrix(features, value_feature_columns(features, self.value_model_))

    def _column_values(self, matrix: np.ndarray, name: str, rows: np.ndarray) -> np.ndarray:
        return self._lookup().schema.column_values(matrix, name, rows)

    # --- predicting ---------------------------------------------------------------------

    def _leaves(self, matrix) -> np.ndarray:
        if not len(matrix):  # LightGBM's predict divides by the row count
            return np.zeros((0, self.best_rounds_ * len(self.labels_)), dtype=np.int32)
        # the configured threads: a loaded booster's predict would otherwise start one per core,
        # which stalls when the other core is busy
        return self.classifier_.booster_.predict(matrix, pred_leaf=True, num_iteration=self.best_rounds_,
                                                 num_threads=self.config.n_jobs)

    def _uncalibrated(self, leaves: np.ndarray) -> np.ndarray:
        return softmax(self.tables_.raw_scores(leaves, len(self.labels_)), axis=1)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities from the trees' own (identity when uncalibrated)."""
        return probabilities if self.calibrator_ is None else self.calibrator_.transform(probabilities)

    def predict_proba(self, features: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        probabilities = self._uncalibrated(self._leaves(self.prepare(features)[0]))
        return self.calibrate(probabilities) if calibrated else probabilities

    def predict_label(self, probabilities: np.ndarray) -> np.ndarray:
        """The decision per customer: ``retained`` below the p_churn threshold, else the
        churn type of largest weighted probability (decision.py). Models pickled before the
        threshold existed keep their own rule (weighted argmax over every class)."""
        return np.asarray(self.labels_, dtype=object)[self._decision_codes(probabilities)]

    def _decision_codes(self, probabilities: np.ndarray) -> np.ndarray:
        threshold = self.__dict__.get("threshold_")
        if threshold is None:
            return np.argmax(probabilities * self.decision_weights_, axis=1)
        return decide(probabilities, threshold, self.decision_weights_)

    @property
    def low_risk_action(self) -> str:
        """The action of customers not flagged, with the reason in words."""
        threshold = self.__dict__.get("threshold_")
        if threshold is None:
            return LOW_RISK_ACTION
        return LOW_RISK_ACTION.replace(": ", f": low churn risk (below the {threshold:.0%} threshold); ", 1)

    def _drivers(self, matrix: np.ndarray, leaves: np.ndarray, type_index: np.ndarray) -> np.ndarray:
        """The features pushing each customer most towards their likely churn type rather
        than staying: path contributions to that class's raw score minus the retained
        class's, the top ``config.top_drivers`` positive ones, in words."""
        contributions = self.tables_.contributions(leaves, type_index, 0, len(self.feature_names_))
        return top_drivers(contributions, matrix, self.feature_names_, self._lookup().schema.category_text,
                           self.config.top_drivers)

    def score(self, features: pd.DataFrame, chunk: int = 100_000) -> pd.DataFrame:
        """One row per input row: p_churn, will_churn, churn_type, p_type_<label>,
        top_drivers and recommended_action. Warns when feature columns are missing."""
        table, notes = self.score_with_notes(features, chunk)
        if notes.missing_features:
            warnings.warn(f"features missing at scoring time, treated as unknown: {notes.missing_features}",
                          stacklevel=2)
        return table

    def score_with_notes(self, features: pd.DataFrame, chunk: int = 100_000) -> tuple[pd.DataFrame, InputNotes]:
        """``score`` plus what the input lacked (missing features, unseen categories)."""
        columns, notes = self.score_columns_with_notes(features, chunk)
        return pd.DataFrame(columns), notes

    def score_columns_with_notes(self, features: pd.DataFrame, chunk: int = 100_000
                                 ) -> tuple[dict[str, np.ndarray], InputNotes]:
        """``score_with_notes``'s columns as arrays (no frame built: the scoring core
        assembles its own)."""
        notes = InputNotes()
        parts = []
        for start in range(0, max(len(features), 1), chunk):
            part = features if len(features) <= chunk else features.iloc[start:start + chunk]
            columns, part_notes = self._score_chunk(part)
            parts.append(columns)
            notes.missing_features = part_notes.missing_features
            for column, count in part_notes.unknown_categories.items():
                notes.unknown_categories[column] = notes.unknown_categories.get(column, 0) + count
        if len(parts) == 1:
            return parts[0], notes
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}, notes

    def _score_chunk(self, features: pd.DataFrame) -> tuple[dict[str, np.ndarray], InputNotes]:
        """``will_churn``: ``p_churn`` at or above the model's one threshold (``predict_label``).
        ``churn_type``, ``top_drivers`` and the retention action are filled for those
        customers only: the most likely type by the decision's type weights, the features
        that pushed the customer towards it, its move. The others get no type, no drivers
        and ``low_risk_action`` (which says why)."""
        matrix, notes = self._model_inputs(features)
        leaves = self._leaves(matrix)
        probabilities = self.calibrate(self._uncalibrated(leaves))
        # the columns gathered as arrays and made into one frame (cheaper than inserting each)
        columns = {"customer_id": column_array(features, "customer_id")}
        if "as_of" in features.columns:
            columns["as_of"] = column_array(features, "as_of")
        columns["p_churn"] = 1.0 - probabilities[:, 0]
        decided = self._decision_codes(probabilities)
        will_churn = decided != 0  # retained is the first class
        columns["will_churn"] = will_churn
        columns.update(self._reasons(features, matrix, leaves, probabilities, decided, will_churn))
        return columns, notes

    def _reasons(self, features: pd.DataFrame, matrix: np.ndarray, leaves: np.ndarray, probabilities: np.ndarray,
                 decided: np.ndarray, will_churn: np.ndarray) -> dict[str, np.ndarray]:
        """churn_type, p_type_<label>, top_drivers and recommended_action (see ``_score_chunk``);
        ``decided``: each customer's class code."""
        lookup = self._lookup()
        at_risk = np.flatnonzero(will_churn)
        type_index = decided[at_risk]
        churn_type = np.full(len(decided), None, dtype=object)
        churn_type[at_risk] = lookup.labels[type_index]
        columns = {"churn_type": churn_type}
        for i in lookup.churn_columns:
            columns[f"p_type_{self.labels_[i]}"] = probabilities[:, i]
        drivers = np.full(len(decided), "", dtype=object)
        if len(at_risk):
            drivers[at_risk] = self._drivers(matrix[at_risk], leaves[at_risk], type_index)
        columns["top_drivers"] = drivers
        action = np.full(len(decided), self.low_risk_action, dtype=object)
        action[at_risk] = lookup.actions[type_index]
        columns["recommended_action"] = action
        return columns

    def importances(self) -> pd.Series:
        gain = self.classifier_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)

    # --- derived state and pickling -----------------------------------------------------

    def _lookup(self) -> "_ScoringLookup":
        """What every scoring call reads from the fitted model, derived once (lazily: models
        pickled before it existed load unchanged) and again only if the model is refitted."""
        lookup = self.__dict__.get("_scoring_lookup")
        if lookup is None or not lookup.derived_from(self):
            lookup = _ScoringLookup.of(self)
            self.__dict__["_scoring_lookup"] = lookup
        return lookup

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_scoring_lookup", None)  # derived: not pickled
        return state

    def __setstate__(self, state):
        if "calibrated_" in state:  # pickled when scikit-learn's CalibratedClassifierCV held the calibration
            calibrated = state.pop("calibrated_")
            state["calibrator_"] = None if calibrated is None else ScikitLearnCalibration.fitted(calibrated)
        self.__dict__.update(state)


@dataclass(frozen=True)
class _ScoringLookup:
    """A fitted model's input schema, labels, churn columns and actions as scoring reads
    them. ``sources`` are the fitted attributes they were derived from."""

    sources: tuple
    schema: InputSchema
    labels: np.ndarray
    churn_columns: np.ndarray
    actions: np.ndarray

    @staticmethod
    def _sources(model: ChurnTypeModel) -> tuple:
        return model.feature_names_, model.categories_, model.labels_

    def derived_from(self, model: ChurnTypeModel) -> bool:
        return all(a is b for a, b in zip(self.sources, self._sources(model)))

    @classmethod
    def of(cls, model: ChurnTypeModel) -> "_ScoringLookup":
        return cls(
            sources=cls._sources(model),
            schema=InputSchema.of(model.feature_names_, model.categories_),
            labels=np.asarray(model.labels_, dtype=object),
            churn_columns=np.asarray([i for i, label in enumerate(model.labels_) if label != RETAINED], dtype=np.intp),
            actions=np.array([CHURN_ACTIONS.get(label, GENERIC_ACTION) for label in model.labels_], dtype=object),
        )


def _every_rounds(every: int, progress):
    """A LightGBM callback that reports the validation loss every ``every`` rounds."""
    def report(env):
        if (env.iteration + 1) % every == 0 and env.evaluation_result_list:
            _, metric, value, _ = env.evaluation_result_list[0][:4]
            progress(f"  round {env.iteration + 1}: validation {metric} {value:.4f}")
    return report
