"""The churn-type classifier: who will leave within the horizon, and why.

LightGBM multiclass over the feature table (plus, optionally, value-model outputs), with
class weights for rare types, early stopping, native categorical handling, probabilities
calibrated on customers the trees never saw (scikit-learn's CalibratedClassifierCV on the
frozen model), and per-customer drivers from LightGBM's ``pred_contrib`` put in words.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import f1_score
from scipy.special import softmax

from retain.errors import RetainError
from retain.models.value import ValueConfig, ValueModel

RETAINED = "retained"
NOT_FEATURES = {"customer_id", "as_of", "rfm_code"}  # keys, and a code already split into rfm_r/f/m
CORE_FEATURES = ("frequency", "recency", "T", "monetary")
VALUE_FEATURES = ("p_alive", "p_alive_horizon", "p_no_purchase_horizon", "expected_purchases")

# What to do about each churn type (domain.md); types not listed get the generic move.
ACTIONS = {
    "price": "make a targeted offer: discount, price match or a cheaper plan",
    "service": "apologise and fix: resolve open complaints quickly, service-recovery call",
    "competition": "win on product: show upgrades and what competitors lack, loyalty benefits",
    "need": "re-engage with a new need: cross-sell from the categories they moved to",
    "natural": "no retention spend: the loss is not preventable; keep the goodbye friendly",
}
GENERIC_ACTION = "contact the customer to learn why they may leave"
LOW_RISK_ACTION = "no churn action: keep normal contact"


@dataclass(frozen=True)
class ChurnConfig:
    """Classifier settings. ``n_jobs`` is 1 by default: on shared 2-core machines more
    threads can stall LightGBM (stack notes). ``class_weight_power`` 0.5 weights each class
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
    action_threshold: float = 0.25
    seed: int = 0


def with_value_features(features: pd.DataFrame, value_model: ValueModel) -> pd.DataFrame:
    """The feature table plus the value model's outputs that the classifier reads."""
    values = value_model.predict_values(features, with_interval=False)
    return features.assign(**{name: values[name] for name in VALUE_FEATURES})


# --- drivers in words ------------------------------------------------------------------

def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:,.2g}"


_PHRASES: list[tuple[str, object]] = [
    (r"unresolved_(complaint|ticket)s_(\d+)d", lambda m, v: f"{_number(v)} unresolved {m[1]}s in the last {m[2]} days"),
    (r"(complaint|ticket)s_(\d+)d", lambda m, v: f"{_number(v)} {m[1]}s in the last {m[2]} days"),
    (r"(complaint|ticket)_resolution_hours_(\d+)d",
     lambda m, v: f"{m[1]}s took {_number(v)} hours to resolve (last {m[2]} days)"),
    (r"days_since_last_(complaint|ticket)", lambda m, v: f"last {m[1]} {_number(v)} days ago"),
    (r"days_since_last", lambda m, v: f"no purchase for {_number(v)} days"),
    (r"recency_vs_rhythm", lambda m, v: f"current gap is {v:.1f}x their usual time between purchases"),
    (r"last_gap_vs_rhythm", lambda m, v: f"last gap was {v:.1f}x their usual time between purchases"),
    (r"mean_gap_days", lambda m, v: f"usually buys every {_number(v)} days"),
    (r"(purchase|spend)_trend_(\d+)d",
     lambda m, v: f"{'purchases' if m[1] == 'purchase' else 'spend'} {'up' if v > 0 else 'down' if v < 0 else 'flat'} "
                  f"in the last {m[2]} days vs the {m[2]} before (trend {v:+.2f})"),
    (r"purchases_prev_(\d+)d", lambda m, v: f"{_number(v)} purchases in the {m[1]} days before the last {m[1]}"),
    (r"purchases_(\d+)d", lambda m, v: f"{_number(v)} purchases in the last {m[1]} days"),
    (r"spend_prev_(\d+)d", lambda m, v: f"spent {_number(v)} in the {m[1]} days before the last {m[1]}"),
    (r"spend_(\d+)d", lambda m, v: f"spent {_number(v)} in the last {m[1]} days"),
    (r"discounted_orders_share_(\d+)d", lambda m, v: f"{v:.0%} of orders in the last {m[1]} days used a discount"),
    (r"discounted_orders_share_before_(\d+)d",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} days used a discount"),
    (r"discounted_orders_share_last_(\d+)_orders", lambda m, v: f"{v:.0%} of the last {m[1]} orders used a discount"),
    (r"discounted_orders_share_before_last_(\d+)_orders",
     lambda m, v: f"{v:.0%} of orders before the last {m[1]} used a discount"),
    (r"gap_direction_last_(\d+)",
     lambda m, v: f"time between purchases {'growing' if v > 0 else 'shrinking' if v < 0 else 'steady'} "
                  f"over the last {m[1]} purchases ({v:+.1f})"),
    (r"order_value_direction_last_(\d+)",
     lambda m, v: f"order values {'rising' if v > 0 else 'falling' if v < 0 else 'steady'} "
                  f"over the last {m[1]} purchases ({v:+.1f})"),
    (r"order_value_last_(\d+)_vs_before", lambda m, v: f"last {m[1]} orders {v:+.0%} in value vs earlier ones"),
    (r"last_(complaint|ticket)_after_last_purchase_days",
     lambda m, v: f"last {m[1]} {_number(abs(v))} days {'after' if v >= 0 else 'before'} the last purchase"),
    (r"discounted_orders_share", lambda m, v: f"{v:.0%} of orders used a discount"),
    (r"discount_share", lambda m, v: f"{v:.0%} of the gross price was discounted"),
    (r"order_value_change_90d", lambda m, v: f"order value {v:+.0%} in the last 90 days vs before"),
    (r"categories_last_4_orders", lambda m, v: f"{_number(v)} categories in the last 4 orders"),
    (r"categories_before_last_4_orders", lambda m, v: f"{_number(v)} categories before the last 4 orders"),
    (r"last_satisfaction", lambda m, v: f"last satisfaction score {_number(v)} (-90..90)"),
    (r"satisfaction_index_365d", lambda m, v: f"satisfaction index {_number(v)} over the last year (-90..90)"),
    (r"returns_share", lambda m, v: f"{v:.0%} of spend returned"),
    (r"p_alive_horizon", lambda m, v: f"{v:.0%} chance of still being active at the horizon"),
    (r"p_alive", lambda m, v: f"{v:.0%} chance of still being an active customer"),
    (r"p_no_purchase_horizon", lambda m, v: f"{v:.0%} chance of no purchase within the horizon"),
    (r"expected_purchases", lambda m, v: f"{v:.1f} purchases expected within the horizon"),
    (r"frequency", lambda m, v: f"{_number(v)} repeat purchases so far"),
    (r"tenure_days", lambda m, v: f"customer for {_number(v)} days"),
    (r"attr_(.+)_days", lambda m, v: f"{m[1].replace('_', ' ')} {_number(v)} days ago"),
]


def describe_feature(name: str, value) -> str:
    """A feature and this customer's value of it, in words a marketer reads."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"{name.replace('_', ' ')} unknown"
    if isinstance(value, str):
        label = name[5:] if name.startswith("attr_") else name
        return f"{label.replace('_', ' ')}: {value}"
    phrase = _phrase_for(name)
    return phrase(float(value))


_PHRASE_CACHE: dict[str, object] = {}


def _phrase_for(name: str):
    """The phrase function of a feature name, found once per name."""
    if name not in _PHRASE_CACHE:
        for pattern, phrase in _PHRASES:
            match = re.fullmatch(pattern, name)
            if match:
                _PHRASE_CACHE[name] = lambda v, phrase=phrase, match=match: phrase(match, v)
                break
        else:
            _PHRASE_CACHE[name] = lambda v: f"{name.replace('_', ' ')} = {_number(v)}"
    return _PHRASE_CACHE[name]


# --- one pass over the trees: probabilities and per-customer contributions ----------------

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


@dataclass
class TreeTables:
    """Per tree and leaf: the leaf value and the path attribution of that leaf (Saabas:
    the change of the node value at each split on the way down, credited to the split's
    feature). Summed over a customer's leaves they give the raw class scores, and the
    per-feature contributions, from one ``pred_leaf`` traversal."""

    tree_class: np.ndarray  # (trees,)
    leaf_value: np.ndarray  # (trees, max_leaves)
    # per tree: the features it splits on, and their contribution at each leaf (features x leaves)
    contribution_tables: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_booster(cls, booster: lgb.Booster, rounds: int) -> "TreeTables":
        dump = booster.dump_model(num_iteration=rounds)
        trees = dump["tree_info"]
        max_leaves = max(tree["num_leaves"] for tree in trees)
        leaf_value = np.zeros((len(trees), max_leaves))
        tables = []
        for t, tree in enumerate(trees):
            credit: dict[tuple[int, int], float] = {}  # (feature, leaf) -> summed change

            def walk(node, parent_value, split_feature, trail):
                value = node["leaf_value"] if "leaf_value" in node else node["internal_value"]
                if split_feature is not None:
                    trail = trail + [(split_feature, value - parent_value)]
                if "leaf_value" in node:
                    leaf = node.get("leaf_index", 0)
                    leaf_value[t, leaf] = value
                    for feature, change in trail:
                        credit[feature, leaf] = credit.get((feature, leaf), 0.0) + change
                    return
                for child in ("left_child", "right_child"):
                    walk(node[child], value, node["split_feature"], trail)

            # the root value is the tree's bias: part of the score, credited to no feature
            root = tree["tree_structure"]
            walk(root, root.get("internal_value", root.get("leaf_value", 0.0)), None, [])
            features = np.array(sorted({feature for feature, _ in credit}), dtype=np.int64)
            table = np.zeros((len(features), max_leaves))
            for (feature, leaf), change in credit.items():
                table[np.searchsorted(features, feature), leaf] = change
            tables.append((features, table))
        classes = dump["num_tree_per_iteration"]
        return cls(np.arange(len(trees)) % classes, leaf_value, tables)

    def raw_scores(self, leaves: np.ndarray, n_classes: int) -> np.ndarray:
        per_tree = self.leaf_value[np.arange(leaves.shape[1]), leaves]
        # trees come iteration by iteration, one per class within each iteration
        return per_tree.reshape(len(leaves), -1, n_classes).sum(axis=1)

    def contributions(self, leaves: np.ndarray, toward: np.ndarray, against: int, n_features: int) -> np.ndarray:
        """Per row, the feature contributions to (class ``toward[row]`` score - class
        ``against`` score), accumulated tree by tree over the few features each tree uses."""
        out = np.zeros((n_features, len(leaves)))  # features first: each tree adds whole rows
        by_tree = np.ascontiguousarray(leaves.T)
        for k in np.unique(toward):
            rows = np.flatnonzero(toward == k)
            part = np.zeros((n_features, len(rows)))
            for cls, sign in ((k, 1.0), (against, -1.0)):
                for tree in np.flatnonzero(self.tree_class == cls):
                    features, table = self.contribution_tables[tree]
                    if len(features):
                        part[features] += sign * table[:, by_tree[tree, rows]]
            out[:, rows] = part
        return out.T


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
    last_missing_features_: list[str] = field(default_factory=list)
    last_unknown_categories_: dict[str, int] = field(default_factory=dict)

    @property
    def churn_labels(self) -> list[str]:
        return [label for label in self.labels_ if label != RETAINED]

    @property
    def input_columns(self) -> tuple[str, ...]:
        value_inputs = self.value_model_.input_columns if self.value_model_ else ()
        names = [n for n in self.feature_names_ if n not in VALUE_FEATURES]
        return tuple(dict.fromkeys(["customer_id", "as_of", *CORE_FEATURES, *value_inputs, *names]))

    # --- preparing inputs --------------------------------------------------------------

    def prepare(self, features: pd.DataFrame, *, fitting: bool = False) -> pd.DataFrame:
        """The model matrix: value features added, columns in training order, categorical
        columns with the training categories. Unknown categories become missing (LightGBM
        routes missing values down the learned default branch); missing feature columns
        are filled with missing values and listed in ``last_missing_features_``."""
        missing_core = [c for c in CORE_FEATURES if c not in features.columns]
        if missing_core:
            raise RetainError(f"the churn model needs the columns {missing_core}; build features with retain.features")
        frame = features.reset_index(drop=True)
        if self.value_model_ is not None:
            frame = with_value_features(frame, self.value_model_)
        if fitting:
            self.feature_names_ = [c for c in frame.columns if c not in NOT_FEATURES]
            self.categories_ = {
                c: sorted(map(str, frame[c].dropna().unique())) for c in self.feature_names_
                if not pd.api.types.is_numeric_dtype(frame[c]) or isinstance(frame[c].dtype, pd.CategoricalDtype)
            }
        self.last_missing_features_ = [c for c in self.feature_names_ if c not in frame.columns]
        if self.last_missing_features_:
            warnings.warn(f"features missing at scoring time, treated as unknown: {self.last_missing_features_}",
                          stacklevel=2)
        matrix = frame.reindex(columns=self.feature_names_)
        self.last_unknown_categories_ = {}
        for column, known in self.categories_.items():
            text = matrix[column].astype("string")
            unknown = text.notna() & ~text.isin(known)
            if unknown.any():
                self.last_unknown_categories_[column] = int(unknown.sum())
            matrix[column] = pd.Categorical(text.where(~unknown), categories=known)
        for column in self.feature_names_:
            if column not in self.categories_:
                matrix[column] = pd.to_numeric(matrix[column], errors="coerce").astype(float)
        return matrix

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
        x_train = self.prepare(train, fitting=True)
        x_valid, x_calibration = self.prepare(valid), self.prepare(calibration)
        counts = np.bincount(codes[0], minlength=len(self.labels_))
        weights = (counts.max() / counts) ** self.config.class_weight_power
        self.classifier_ = lgb.LGBMClassifier(
            objective="multiclass", n_estimators=self.config.max_rounds, learning_rate=self.config.learning_rate,
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
        given = FrozenEstimator(_GivenProbabilities(len(self.labels_)).fit())
        self.calibrated_ = CalibratedClassifierCV(given, method=self.config.calibration)
        self.calibrated_.fit(self._uncalibrated(self._leaves(x_calibration)), codes[2])
        self.decision_weights_ = _macro_f1_weights(self.predict_proba(calibration), codes[2])
        return self

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
        return self.classifier_.booster_.predict(matrix, pred_leaf=True, num_iteration=self.best_rounds_)

    def _uncalibrated(self, leaves: np.ndarray) -> np.ndarray:
        return softmax(self.tables_.raw_scores(leaves, len(self.labels_)), axis=1)

    def predict_proba(self, features: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        probabilities = self._uncalibrated(self._leaves(self.prepare(features)))
        return self.calibrated_.predict_proba(probabilities) if calibrated else probabilities

    def predict_label(self, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(self.labels_, dtype=object)[np.argmax(probabilities * self.decision_weights_, axis=1)]

    def _drivers(self, matrix: pd.DataFrame, leaves: np.ndarray, type_index: np.ndarray) -> np.ndarray:
        """The features pushing each customer most towards their likely churn type rather
        than staying: path contributions to that class's raw score minus the retained
        class's, the top ``config.top_drivers`` positive ones, in words."""
        contributions = self.tables_.contributions(leaves, type_index, 0, len(self.feature_names_))
        top = min(self.config.top_drivers, contributions.shape[1])
        order = np.argsort(-contributions, axis=1)[:, :top]
        phrases = np.full((len(matrix), top), "", dtype=object)
        rows = np.arange(len(matrix))
        for position in range(top):
            chosen = order[:, position]
            positive = contributions[rows, chosen] > 0
            for column in np.unique(chosen[positive]):
                who = np.flatnonzero(positive & (chosen == column))
                name = self.feature_names_[column]
                values = matrix[name].iloc[who].to_numpy(dtype=object)
                # counts and categories repeat: phrase each distinct value once
                codes, distinct = pd.factorize(pd.Series(values), use_na_sentinel=False)
                phrased = np.array([describe_feature(name, value) for value in distinct], dtype=object)
                phrases[who, position] = phrased[codes]
        return np.array(["; ".join(p for p in row if p) for row in phrases], dtype=object)

    def score(self, features: pd.DataFrame, chunk: int = 100_000) -> pd.DataFrame:
        """One row per input row: p_churn, churn_type, p_type_<label>, top_drivers and
        recommended_action (``LOW_RISK_ACTION`` below ``config.action_threshold``)."""
        parts = [self._score_chunk(features.iloc[start:start + chunk]) for start in range(0, max(len(features), 1), chunk)]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _score_chunk(self, features: pd.DataFrame) -> pd.DataFrame:
        matrix = self.prepare(features)
        leaves = self._leaves(matrix)
        probabilities = self.calibrated_.predict_proba(self._uncalibrated(leaves))
        churn_columns = [i for i, label in enumerate(self.labels_) if label != RETAINED]
        type_index = np.asarray(churn_columns)[np.argmax(probabilities[:, churn_columns], axis=1)]
        table = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
        if "as_of" in features.columns:
            table["as_of"] = features["as_of"].to_numpy()
        table["p_churn"] = 1.0 - probabilities[:, 0]
        table["churn_type"] = np.asarray(self.labels_, dtype=object)[type_index]
        for i in churn_columns:
            table[f"p_type_{self.labels_[i]}"] = probabilities[:, i]
        table["top_drivers"] = self._drivers(matrix, leaves, type_index)
        actions = table["churn_type"].map(ACTIONS).fillna(GENERIC_ACTION)
        table["recommended_action"] = actions.where(table["p_churn"] >= self.config.action_threshold, LOW_RISK_ACTION)
        return table

    def importances(self) -> pd.Series:
        gain = self.classifier_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)


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
