"""The churn-type classifier: who will leave within the horizon, and why.

LightGBM multiclass over the feature table (plus, optionally, value-model outputs), with
class weights for rare types, early stopping, native categorical handling, probabilities
calibrated on customers the trees never saw (scikit-learn's CalibratedClassifierCV on the
frozen model), and per-customer drivers from LightGBM's ``pred_contrib`` put in words.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import f1_score
from scipy.special import expit, softmax

from retain.data.frames import column_array
from retain.errors import RetainError
from retain.models.actions import CHURN_ACTIONS, GENERIC_ACTION, LOW_RISK_ACTION
from retain.models.attribution import TreeTables
from retain.models.drivers import describe_feature
from retain.models.value import ValueModel

RETAINED = "retained"
NOT_FEATURES = {"customer_id", "as_of", "rfm_code"}  # keys, and a code already split into rfm_r/f/m
CORE_FEATURES = ("frequency", "recency", "T", "monetary")
VALUE_FEATURES = ("p_alive", "p_alive_horizon", "p_no_purchase_horizon", "expected_purchases")


@dataclass(frozen=True)
class ChurnConfig:
    """Classifier settings. ``n_jobs`` is 1 by default: on shared 2-core machines more
    threads can stall LightGBM (measured here: a 3 s fit took over 200 s with the other core busy). ``class_weight_power`` 0.5 weights each class
    by sqrt(largest class / its size). A churn type with fewer than ``min_class_examples``
    training customers is merged into ``other``."""

    horizon_days: float = 90.0
    value_features: bool = True
    n_jobs: int = 1
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_child_samples: int | None = None  # None: training rows / 500, between 20 and 200
    reg_lambda: float = 0.0
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    max_bin: int = 63
    class_weight_power: float = 0.5
    min_class_examples: int = 20
    calibration: str = "sigmoid"
    top_drivers: int = 3
    seed: int = 0


def with_value_features(features: pd.DataFrame, value_model: ValueModel) -> pd.DataFrame:
    """The feature table plus the value model's outputs that the classifier reads."""
    values = value_model.predict_values(features, with_interval=False)
    return features.assign(**{name: values[name] for name in VALUE_FEATURES})



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



# up to this many rows, category values are looked up one by one: a hash pass over them
# (pd.factorize) costs more than the lookups it saves
_FEW_ROWS = 32


def _category_codes(values: np.ndarray, code_of: dict[str, int]) -> np.ndarray:
    """Each value as stripped text (blank: missing, as in _category_text) looked up among the
    training categories: its code, -1 unseen, -2 missing. Each distinct value is looked up
    once."""
    if len(values) <= _FEW_ROWS:
        value_codes, distinct = np.arange(len(values)), values
    else:
        value_codes, distinct = pd.factorize(values)  # a missing value's code -1 picks the final -2
    distinct_codes = np.array([-2 if pd.isna(value) else code_of.get(text, -1) if (text := str(value).strip())
                               else -2 for value in distinct] + [-2], dtype=np.int64)
    return distinct_codes[value_codes]


@dataclass
class InputNotes:
    """What scoring had to make up for in its input: feature columns absent (scored as
    unknown) and, per categorical feature, how many values were not seen in training."""

    missing_features: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)


# --- the model ---------------------------------------------------------------------------

@dataclass
class ChurnTypeModel:
    """Fitted state: ``labels_`` (class order; ``retained`` first), ``feature_names_``,
    ``categories_`` (the training categories of each categorical feature),
    ``classifier_`` (LGBMClassifier), ``calibrated_`` (CalibratedClassifierCV),
    ``decision_weights_`` (per-class multipliers of the calibrated probabilities that
    maximise macro-F1 on the calibration customers), ``value_model_`` (or None)."""

    config: ChurnConfig = field(default_factory=ChurnConfig)
    labels_: list[str] = field(default_factory=list)
    feature_names_: list[str] = field(default_factory=list)
    categories_: dict[str, list[str]] = field(default_factory=dict)
    classifier_: lgb.LGBMClassifier | None = None
    calibrated_: CalibratedClassifierCV | None = None
    decision_weights_: np.ndarray | None = None
    tables_: TreeTables | None = None
    value_model_: ValueModel | None = None
    best_rounds_: int = 0
    merged_labels_: dict[str, int] = field(default_factory=dict)
    calibration_note_: str = ""

    @property
    def churn_labels(self) -> list[str]:
        return [label for label in self.labels_ if label != RETAINED]

    @property
    def input_columns(self) -> tuple[str, ...]:
        value_inputs = self.value_model_.input_columns if self.value_model_ else ()
        names = [n for n in self.feature_names_ if n not in VALUE_FEATURES]
        return tuple(dict.fromkeys(["customer_id", "as_of", *CORE_FEATURES, *value_inputs, *names]))

    # --- preparing inputs --------------------------------------------------------------

    def _with_value_features(self, features: pd.DataFrame) -> pd.DataFrame:
        missing_core = [c for c in CORE_FEATURES if c not in features.columns]
        if missing_core:
            raise RetainError(f"the churn model needs the columns {missing_core}; build features with retain.features")
        frame = features.reset_index(drop=True)
        if self.value_model_ is not None:
            frame = with_value_features(frame, self.value_model_)
        return frame

    def _learn_schema(self, features: pd.DataFrame) -> None:
        """Feature names and the training categories of each categorical feature (fit time only)."""
        frame = self._with_value_features(features)
        self.feature_names_ = [c for c in frame.columns if c not in NOT_FEATURES]
        self.categories_ = {}
        for name in self.feature_names_:
            values = frame[name]
            if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
                continue
            text = _category_text(values).dropna()
            # numbers written as text (a CSV column with blanks) are read as numbers, blanks
            # missing; a leading zero ("02139") marks a code, which stays a category
            if (len(text) and pd.to_numeric(text, errors="coerce").notna().all()
                    and not text.str.match(r"[+-]?0\d").any()):
                continue
            self.categories_[name] = sorted(text.unique())

    def prepare(self, features: pd.DataFrame) -> tuple[pd.DataFrame, "InputNotes"]:
        """The model matrix: value features added, columns in training order, categorical
        columns with the training categories. Unknown categories become missing (LightGBM
        routes missing values down the learned default branch); missing feature columns
        are filled with missing values. Both are counted in the returned notes. Changes no
        state of the model: scoring may run on several threads at once."""
        matrix, notes = self._model_inputs(features)
        table = pd.DataFrame(matrix, columns=self.feature_names_)
        for column, known in self.categories_.items():
            codes = table[column].to_numpy()
            table[column] = pd.Categorical.from_codes(np.where(np.isnan(codes), -1, codes).astype(int), categories=known)
        return table, notes

    def _model_inputs(self, features: pd.DataFrame) -> tuple[np.ndarray, "InputNotes"]:
        """``prepare``'s matrix as one float array, categorical columns as their training
        category codes (what LightGBM makes of the categorical frame): the per-request path
        reads each column once and makes no per-column frame (``prepare`` builds on it)."""
        missing_core = [c for c in CORE_FEATURES if c not in features.columns]
        if missing_core:
            raise RetainError(f"the churn model needs the columns {missing_core}; build features with retain.features")
        value_columns = {}
        if self.value_model_ is not None:
            values = self.value_model_.predict_values(features, with_interval=False)
            value_columns = {name: np.asarray(values[name], dtype=float) for name in VALUE_FEATURES}
        names = self.feature_names_
        lookup = self._lookup()
        position = lookup.position
        present = set(features.columns)
        notes = InputNotes(missing_features=[c for c in names if c not in present and c not in value_columns])
        matrix = np.full((len(features), len(names)), np.nan)
        other = []
        for name in names:
            if name in self.categories_ or name not in present or name in value_columns:
                continue
            # each column's array put in place (a frame of the numeric columns costs twice that)
            values = column_array(features, name)
            if isinstance(values, np.ndarray) and values.dtype.kind in "biufc":  # pandas' numeric dtypes
                matrix[:, position[name]] = values
            elif not isinstance(values, np.ndarray) and pd.api.types.is_numeric_dtype(values.dtype) and not (
                    isinstance(values.dtype, pd.CategoricalDtype)):  # nullable numbers: missing is NaN
                matrix[:, position[name]] = values.to_numpy(dtype=float, na_value=np.nan)
            else:
                other.append(name)
        for name in other:
            matrix[:, position[name]] = pd.to_numeric(_category_text(features[name]), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        for name, values in value_columns.items():
            if name in position:
                matrix[:, position[name]] = values
        for column, code_of in lookup.category_codes.items():
            if column not in present:
                continue
            codes = _category_codes(np.asarray(column_array(features, column), dtype=object), code_of)
            unknown = codes == -1
            if unknown.any():
                notes.unknown_categories[column] = int(unknown.sum())
            matrix[:, position[column]] = np.where(codes < 0, np.nan, codes)
        return matrix, notes

    def _column_values(self, matrix: np.ndarray, name: str, rows: np.ndarray) -> np.ndarray:
        """The values of one input column as the drivers phrase them (categories as text)."""
        values = matrix[rows, self.feature_names_.index(name)]
        if name not in self.categories_:
            return values.astype(object)
        known = np.asarray(self.categories_[name], dtype=object)
        return np.where(np.isnan(values), np.nan, known[np.nan_to_num(values).astype(int)]).astype(object)

    # --- fitting -------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, train_labels, valid: pd.DataFrame, valid_labels,
            calibration: pd.DataFrame, calibration_labels, value_model: ValueModel | None = None,
            progress=None) -> "ChurnTypeModel":
        """Trees on ``train`` with early stopping on ``valid``; probabilities calibrated and
        decision weights chosen on ``calibration``. Three disjoint sets of customers."""
        self.value_model_ = value_model if self.config.value_features else None
        labels = [pd.Series(np.asarray(y, dtype=object)) for y in (train_labels, valid_labels, calibration_labels)]
        labels = self._merge_rare(labels)
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
        self._learn_schema(train)
        (x_train, _), (x_valid, _), (x_calibration, _) = (self.prepare(f) for f in (train, valid, calibration))
        counts = np.bincount(codes[0], minlength=len(self.labels_))
        weights = (counts.max() / counts) ** self.config.class_weight_power
        self.classifier_ = lgb.LGBMClassifier(
            # num_class given even for two labels (retained + one type): the wrapper only sets it above two
            objective="multiclass", num_class=len(self.labels_), n_estimators=self.config.max_rounds,
            learning_rate=self.config.learning_rate,
            num_leaves=self.config.num_leaves,
            min_child_samples=self.config.min_child_samples or int(np.clip(len(x_train) / 500, 20, 200)),
            max_bin=self.config.max_bin, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=self.config.reg_lambda, class_weight=dict(enumerate(weights)), n_jobs=self.config.n_jobs, random_state=self.config.seed,
            verbose=-1,
        )
        self.classifier_.fit(
            x_train, codes[0], eval_X=(x_valid,), eval_y=(codes[1],), eval_class_weight=[dict(enumerate(weights))],
            callbacks=[lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)]
            + ([_every_rounds(25, progress)] if progress else []),
        )
        self.best_rounds_ = int(self.classifier_.best_iteration_ or self.config.max_rounds)
        self.tables_ = TreeTables.from_booster(self.classifier_.booster_, self.best_rounds_)
        self._fit_calibration([(x_calibration, codes[2]), (x_valid, codes[1])])
        self.decision_weights_ = _macro_f1_weights(self.predict_proba(calibration), codes[2])
        return self

    def _fit_calibration(self, candidates: list[tuple[pd.DataFrame, np.ndarray]]) -> None:
        """Calibrate on the calibration customers; on a small base where a churn type is
        missing there, on the calibration and early-stopping customers together (neither
        was used to grow the trees); if a type is missing even then, leave the
        probabilities uncalibrated and say so (``calibration_note_``)."""
        n = len(self.labels_)
        matrix, codes = candidates[0]
        note = ""
        if np.bincount(codes, minlength=n).min() == 0:
            matrix = pd.concat([m for m, _ in candidates], ignore_index=True)
            codes = np.concatenate([c for _, c in candidates])
            note = "calibrated on the calibration and early-stopping customers together (a churn type was too rare)"
        if np.bincount(codes, minlength=n).min() == 0:
            self.calibrated_ = None
            self.calibration_note_ = "probabilities left uncalibrated: a churn type has no customer outside training"
            warnings.warn(self.calibration_note_, stacklevel=3)
            return
        given = FrozenEstimator(_GivenProbabilities(n).fit())
        # one split over every row: the frozen trees are not refitted, so folds would only
        # starve rare types of calibration examples
        every_row = np.arange(len(codes))
        self.calibrated_ = CalibratedClassifierCV(given, method=self.config.calibration, cv=[(every_row, every_row)])
        self.calibrated_.fit(self._uncalibrated(self._leaves(matrix)), codes)
        self.calibration_note_ = note

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities from the trees' own (identity when uncalibrated).
        Sigmoid calibration ([Platt1999]) of three or more classes is applied here from the fitted
        calibrators' parameters: the same arithmetic as scikit-learn's ``predict_proba``
        without its per-call input checks, which cost more than the sums for one customer."""
        if self.calibrated_ is None:
            return probabilities
        sigmoid = self._lookup().sigmoid
        if sigmoid is None:
            return self.calibrated_.predict_proba(probabilities)
        slope, intercept = sigmoid
        # scikit-learn's _CalibratedClassifier.predict_proba: one-vs-rest sigmoids, rows
        # normalised (uniform where all are 0), values a hair above 1 set to 1
        calibrated = expit(-(slope * probabilities + intercept))
        denominator = np.sum(calibrated, axis=1)[:, np.newaxis]
        uniform = np.full_like(calibrated, 1 / calibrated.shape[1])
        calibrated = np.divide(calibrated, denominator, out=uniform, where=denominator != 0)
        calibrated[(1.0 < calibrated) & (calibrated <= 1.0 + 1e-5)] = 1.0
        return calibrated

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

    def _merge_rare(self, labels: list[pd.Series]) -> list[pd.Series]:
        counts = labels[0].value_counts()
        rare = [label for label, n in counts.items() if label != RETAINED and n < self.config.min_class_examples]
        self.merged_labels_ = {label: int(counts[label]) for label in rare}
        if not rare:
            return labels
        merged = [y.where(~y.isin(rare), "other") for y in labels]
        if (merged[0] == "other").sum() < self.config.min_class_examples:
            detail = ", ".join(f"{k} ({v})" for k, v in self.merged_labels_.items())
            raise RetainError(
                f"churn types with too few training customers: {detail}; each needs at least "
                f"{self.config.min_class_examples}: add snapshots (--snapshots), lengthen --horizon-days or relabel"
            )
        warnings.warn(f"rare churn types merged into 'other': {self.merged_labels_}", stacklevel=3)
        return merged

    # --- predicting ---------------------------------------------------------------------

    def _leaves(self, matrix: pd.DataFrame) -> np.ndarray:
        if not len(matrix):  # LightGBM's predict divides by the row count
            return np.zeros((0, self.best_rounds_ * len(self.labels_)), dtype=np.int32)
        # the configured threads: a loaded booster's predict would otherwise start one per core,
        # which stalls when the other core is busy (1,000 customers: 1 ms became 16 ms here)
        return self.classifier_.booster_.predict(matrix, pred_leaf=True, num_iteration=self.best_rounds_,
                                                 num_threads=self.config.n_jobs)

    def _uncalibrated(self, leaves: np.ndarray) -> np.ndarray:
        return softmax(self.tables_.raw_scores(leaves, len(self.labels_)), axis=1)

    def predict_proba(self, features: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        probabilities = self._uncalibrated(self._leaves(self.prepare(features)[0]))
        return self.calibrate(probabilities) if calibrated else probabilities

    def predict_label(self, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(self.labels_, dtype=object)[np.argmax(probabilities * self.decision_weights_, axis=1)]

    def _drivers(self, matrix: np.ndarray, leaves: np.ndarray, type_index: np.ndarray) -> np.ndarray:
        """The features pushing each customer most towards their likely churn type rather
        than staying: path contributions to that class's raw score minus the retained
        class's, the top ``config.top_drivers`` positive ones, in words."""
        n_features = len(self.feature_names_)
        contributions = self.tables_.contributions(leaves, type_index, 0, n_features)
        top = min(self.config.top_drivers, contributions.shape[1])
        order = np.argsort(-contributions, axis=1)[:, :top]
        phrases = np.full((len(matrix), top), "", dtype=object)
        # every (position, customer) whose chosen feature pushes towards the type, position by
        # position and customers in order within each
        position, row = np.nonzero((np.take_along_axis(contributions, order, axis=1) > 0).T)
        column = order[row, position]
        value = matrix[row, column]
        if len(row):
            # counts and categories repeat: each distinct (position, feature, value) is phrased
            # once, from its first customer's value (as a loop over them would)
            value_codes, distinct_values = pd.factorize(value, use_na_sentinel=False)
            key = (position * n_features + column) * len(distinct_values) + value_codes
            key_codes, distinct_keys = pd.factorize(key)
            first = np.empty(len(distinct_keys), dtype=np.int64)
            first[key_codes[::-1]] = np.arange(len(key_codes))[::-1]
            names, categories = self.feature_names_, self._lookup().category_text
            phrased = np.array([
                describe_feature(names[c], categories[names[c]][int(v)] if names[c] in categories and v == v else v)
                for c, v in zip(column[first].tolist(), value[first].tolist())], dtype=object)
            phrases[row, position] = phrased[key_codes]
        # "; " between the non-empty phrases, one position at a time over all customers
        drivers = phrases[:, 0] if top else np.full(len(matrix), "", dtype=object)
        for position in range(1, top):
            following = phrases[:, position]
            separator = np.where((drivers != "") & (following != ""), "; ", "")
            drivers = drivers + separator + following
        return drivers.astype(object)

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
        """``will_churn`` is the model's own decision (the macro-F1 decision weights):
        the customer leaves within the horizon; ``churn_type`` is the most likely reason
        if they leave, whatever the decision. The retention action goes to customers the
        model says will leave; the others get ``LOW_RISK_ACTION``."""
        matrix, notes = self._model_inputs(features)
        leaves = self._leaves(matrix)
        probabilities = self.calibrate(self._uncalibrated(leaves))
        lookup = self._lookup()
        churn_columns = lookup.churn_columns
        type_index = churn_columns[np.argmax(probabilities[:, churn_columns], axis=1)]
        # the columns gathered as arrays and made into one frame (cheaper than inserting each)
        columns = {"customer_id": column_array(features, "customer_id")}
        if "as_of" in features.columns:
            columns["as_of"] = column_array(features, "as_of")
        columns["p_churn"] = 1.0 - probabilities[:, 0]
        will_churn = self.predict_label(probabilities) != RETAINED
        columns["will_churn"] = will_churn
        columns["churn_type"] = lookup.labels[type_index]
        for i in churn_columns:
            columns[f"p_type_{self.labels_[i]}"] = probabilities[:, i]
        columns["top_drivers"] = self._drivers(matrix, leaves, type_index)
        columns["recommended_action"] = np.where(will_churn, lookup.actions[type_index], LOW_RISK_ACTION).astype(object)
        return columns, notes

    def importances(self) -> pd.Series:
        gain = self.classifier_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)


@dataclass(frozen=True)
class _ScoringLookup:
    """A fitted model's positions, category codes, labels, actions and sigmoid calibration
    as scoring reads them. ``sources`` are the fitted attributes it was derived from."""

    sources: tuple
    position: dict[str, int]
    category_codes: dict[str, dict[str, int]]
    category_text: dict[str, np.ndarray]
    labels: np.ndarray
    churn_columns: np.ndarray
    actions: np.ndarray
    sigmoid: tuple[np.ndarray, np.ndarray] | None

    @staticmethod
    def _sources(model: "ChurnTypeModel") -> tuple:
        return model.feature_names_, model.categories_, model.labels_, model.calibrated_

    def derived_from(self, model: "ChurnTypeModel") -> bool:
        return all(a is b for a, b in zip(self.sources, self._sources(model)))

    @classmethod
    def of(cls, model: "ChurnTypeModel") -> "_ScoringLookup":
        labels = np.asarray(model.labels_, dtype=object)
        return cls(
            sources=cls._sources(model),
            position={name: i for i, name in enumerate(model.feature_names_)},
            category_codes={column: {text: i for i, text in enumerate(known)}
                            for column, known in model.categories_.items()},
            category_text={column: np.asarray(known, dtype=object) for column, known in model.categories_.items()},
            labels=labels,
            churn_columns=np.asarray([i for i, label in enumerate(model.labels_) if label != RETAINED], dtype=np.intp),
            actions=np.array([CHURN_ACTIONS.get(label, GENERIC_ACTION) for label in model.labels_], dtype=object),
            sigmoid=_sigmoid_parameters(model.calibrated_),
        )


def _sigmoid_parameters(calibrated: CalibratedClassifierCV | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per class, the slope and intercept of a one-split sigmoid calibration of three or more
    classes (retain's; each class's calibrator at its own column), else None (scikit-learn's
    predict_proba is used then)."""
    if calibrated is None or len(getattr(calibrated, "calibrated_classifiers_", ())) != 1:
        return None
    fitted = calibrated.calibrated_classifiers_[0]
    classes = np.asarray(fitted.classes)
    calibrators = fitted.calibrators
    if (fitted.method != "sigmoid" or len(classes) < 3 or len(calibrators) != len(classes)
            or not all(hasattr(c, "a_") and hasattr(c, "b_") for c in calibrators)
            or not np.array_equal(np.asarray(getattr(fitted.estimator, "classes_", ())), classes)
            or not np.array_equal(classes, np.sort(classes))):
        return None
    return (np.array([c.a_ for c in calibrators], dtype=float), np.array([c.b_ for c in calibrators], dtype=float))


def _category_text(values: pd.Series) -> pd.Series:
    """A categorical input as stripped text; blank text is missing, as an empty cell is.
    Each distinct value is converted once (a category column holds few of them)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([str(value).strip() or None for value in uniques] + [None], dtype=object)
    return pd.Series(text[codes], index=values.index, dtype="string")


def _every_rounds(every: int, progress):
    """A LightGBM callback that reports the validation loss every ``every`` rounds."""
    def report(env):
        if (env.iteration + 1) % every == 0 and env.evaluation_result_list:
            _, metric, value, _ = env.evaluation_result_list[0][:4]
            progress(f"  round {env.iteration + 1}: validation {metric} {value:.4f}")
    return report


def _macro_f1_weights(probabilities: np.ndarray, codes: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class multipliers of the probabilities chosen by coordinate search to maximise
    macro-F1: calibrated probabilities favour the common class, macro-F1 weighs all alike."""
    weights = np.ones(probabilities.shape[1])
    grid = np.exp(np.linspace(np.log(0.25), np.log(100.0), 40))

    def score(w):
        return f1_score(codes, np.argmax(probabilities * w, axis=1), average="macro",
                        labels=range(probabilities.shape[1]), zero_division=0)

    best = score(weights)
    for _ in range(rounds):
        for k in range(1, probabilities.shape[1]):  # the first class is the reference
            for value in grid:
                trial = weights.copy()
                trial[k] = value
                result = score(trial)
                if result > best + 1e-9:
                    best, weights = result, trial
    return weights
