"""``retain train churn``: label customers by the churn events in the horizon after each
cutoff, train the churn-type classifier on some customers, evaluate it on others against
two baselines and the current champion, log to MLflow, register ``retain-churn-type``."""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Callable

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support, roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from retain.data import Dataset
from retain.errors import RetainError
from retain.settings import Settings
from retain.features import FeatureConfig, FeatureReference, build_features
from retain.models.churn import (
    RETAINED, ChurnConfig, ChurnTypeModel, ValueFeatureSource, with_value_features,
)
from retain.models.churn.decision import choose_decision, decide
from retain.models.churn.lapse import LAPSE_MAX_ROWS, LAPSED, LapseChurnModel, default_horizon, lapse_config, lapse_labels
from retain.models.value import FitError, ProbabilisticValueModel, SubscriptionValueModel, ValueConfig
from retain.models.value.subscription import SUBSCRIPTION, detect_business
from retain.training import plots
from retain.training.publish import Candidate, publish
from retain.console import strict_json
from retain.models.registry import CHURN_MODEL_NAME, display_uri
from retain.training.gate import Decision, Gate
from retain.training.publish import fingerprint

EXPERIMENT = "retain-churn-type"
CHURN_GATE = Gate(primary="macro_f1", required=("churn_roc_auc",))
# the lapse model is promoted only when it beats every baseline on ROC-AUC and on Brier score
LAPSE_GATE = Gate(primary="churn_roc_auc", secondary=("churn_brier",), strict_secondary=True,
                  required=("churn_roc_auc",))
LAPSE_DEFINITION_REASON = ("no churn_events table: nothing records who churned or why, so a customer churns when "
                           "they make no purchase within the horizon (the lapse)")
RFM_ONLY = ["frequency", "recency", "T", "monetary"]
# Shares of customers, by a hash of their id: the same customer is always in the same set.
SPLITS = (("test", 0.20), ("calibration", 0.10), ("valid", 0.10), ("train", 0.60))


@dataclass
class ChurnTrainingResult:
    run_id: str
    model_version: str | None
    labels: list[str]
    metrics: dict
    baseline_metrics: dict[str, dict]
    champion_metrics: dict | None
    calibration: dict[str, float]
    promoted: bool
    reason: str
    rows: dict[str, int]
    ceiling: dict | None = None
    warnings: list[str] = field(default_factory=list)
    tracking_uri: str = ""  # the MLflow store the run and version went to (no password)
    # which churn the model learned and why (churn events, or the lapse without them)
    definition: str = "churn events"
    definition_reason: str = ""
    horizon_days: float = 0.0
    horizon_reason: str = ""
    cutoffs: list[str] = field(default_factory=list)
    label_share: float = float("nan")  # share of training rows labelled churned (lapsed)
    will_churn_threshold: float = float("nan")

    def to_json(self) -> str:
        return strict_json(asdict(self))


# --- labels and splits ---------------------------------------------------------------------

# customer ids, cutoff, horizon in days -> each customer's label (None: excluded)
LabelSource = Callable[[pd.Series, pd.Timestamp, float], pd.Series]

def churn_labels(customer_ids: pd.Series, churn_events: pd.DataFrame, as_of: pd.Timestamp,
                 horizon_days: float) -> pd.Series:
    """Per customer: the churn type of their (first) churn event if it falls in
    [as_of, as_of + horizon), ``retained`` if none does, and missing (excluded) if they had
    already churned before as_of."""
    first = churn_events.sort_values("churn_date").drop_duplicates("customer_id")
    first = first.assign(customer_id=first["customer_id"].astype(str)).set_index("customer_id")
    when = first["churn_date"].reindex(customer_ids.astype(str)).to_numpy()
    kind = first["churn_type"].astype(object).reindex(customer_ids.astype(str)).to_numpy()
    end = as_of + pd.Timedelta(days=horizon_days)
    labels = np.full(len(customer_ids), RETAINED, dtype=object)
    known = ~pd.isna(when)
    in_horizon = known & (when >= np.datetime64(as_of)) & (when < np.datetime64(end))
    labels[in_horizon] = kind[in_horizon]
    labels[known & (when < np.datetime64(as_of))] = None
    return pd.Series(labels, index=customer_ids.index, dtype=object)


def label_window_end(dataset: Dataset, observed_until=None) -> tuple[pd.Timestamp, str]:
    """The last observed day and what says so: the user's ``observed_until``, else the
    latest date in any table. Snapshot data (bills up to a date, churn events recorded in
    the quarter after) is observed until its last churn event, not its last bill."""
    if observed_until is not None:
        return pd.Timestamp(observed_until).normalize(), "observed until"
    latest = {
        "last transaction": dataset.transactions["timestamp"].max(),
        "last churn event": dataset.churn_events["churn_date"].max() if dataset.churn_events is not None else None,
        "last interaction": dataset.interactions["timestamp"].max() if dataset.interactions is not None else None,
    }
    source, when = max(((k, v) for k, v in latest.items() if v is not None and pd.notna(v)), key=lambda kv: kv[1])
    return pd.Timestamp(when).normalize(), source


def customer_split(customer_ids: pd.Series, seed: int = 0) -> np.ndarray:
    """'train', 'valid', 'calibration' or 'test' for each id, from a hash of the id alone."""
    position = (pd.util.hash_array(customer_ids.astype(str).to_numpy(dtype=object), hash_key=f"retain{seed:012d}"[:16])
                % 10_000) / 10_000
    names = np.empty(len(customer_ids), dtype=object)
    start = 0.0
    for name, share in SPLITS:
        names[(position >= start) & (position < start + share)] = name
        start += share
    return names


# --- metrics -------------------------------------------------------------------------------

def churn_metrics(truth, probabilities: np.ndarray, labels: list[str], predicted) -> dict:
    """Multiclass and binary-churn metrics on string labels; ``probabilities`` columns follow
    ``labels`` (retained first)."""
    truth = np.asarray(truth, dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    codes = pd.Categorical(truth, categories=labels).codes
    known = codes >= 0  # a champion may not know a label of this run
    churned = truth != RETAINED
    p_churn = 1.0 - probabilities[:, 0]
    metrics = {
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(np.mean(truth == predicted)),
        "log_loss": float(log_loss(codes[known], probabilities[known], labels=range(len(labels)))),
        "brier": float(np.mean(np.sum((probabilities[known] - np.eye(len(labels))[codes[known]]) ** 2, axis=1))),
        "churn_roc_auc": float(roc_auc_score(churned, p_churn)) if 0 < churned.sum() < len(truth) else float("nan"),
        "churn_pr_auc": float(average_precision_score(churned, p_churn)) if churned.any() else float("nan"),
        # binary: P(churn) against churned or not (what the lapse model is gated on)
        "churn_brier": float(np.mean((p_churn - churned) ** 2)),
        # will_churn (any churn type decided) against churned, and the share that churned
        "will_churn_precision": float(np.mean(churned[predicted != RETAINED])) if (predicted != RETAINED).any()
        else float("nan"),
        "will_churn_recall": float(np.mean(predicted[churned] != RETAINED)) if churned.any() else float("nan"),
        "churned_share": float(np.mean(churned)),
    }
    metrics["churn_top_decile_lift"] = top_decile_lift(churned, p_churn)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0)
    metrics["per_class"] = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    if churned.any() and len(labels) > 2:
        types = [i for i, label in enumerate(labels) if label != RETAINED]
        likely_type = np.asarray(labels, dtype=object)[np.asarray(types)[np.argmax(probabilities[:, types], axis=1)]]
        metrics["type_accuracy_among_churners"] = float(np.mean(likely_type[churned] == truth[churned]))
        metrics["type_macro_f1_among_churners"] = float(f1_score(
            truth[churned], likely_type[churned], labels=[labels[i] for i in types], average="macro", zero_division=0))
    return metrics


def top_decile_lift(churned: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the top tenth by score over the overall rate. Customers tied at the
    decile's edge count with equal weight (their average), so a constant score gives
    exactly 1.0 whatever the row order. Integer arithmetic keeps that 1.0 exact."""
    churned = np.asarray(churned, dtype=bool)
    n, total = len(churned), int(churned.sum())
    if n == 0 or total == 0:
        return float("nan")
    k = max(1, n // 10)
    edge = np.sort(score)[::-1][k - 1]
    above, tied = score > edge, score == edge
    n_above, n_tied = int(above.sum()), int(tied.sum())
    # churners expected in the top k = churners above + (places left) x churn share of the tied
    numerator = (int(churned[above].sum()) * n_tied + (k - n_above) * int(churned[tied].sum())) * n
    return numerator / (k * n_tied * total)


def metric_key(name: str) -> str:
    """A metric name MLflow accepts whatever the label text in it ("didn't need it", "price
    (too high)"): characters other than letters, digits, ``_ - . /`` and spaces become ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


def flat(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Metrics for MLflow: per-class entries become ``f1_<label>`` and so on, every key one
    that MLflow accepts (``metric_key``)."""
    result = {metric_key(f"{prefix}{k}"): v for k, v in metrics.items()
              if not isinstance(v, dict) and np.isfinite(v)}
    for label, values in metrics.get("per_class", {}).items():
        for name in ("precision", "recall", "f1"):
            result[metric_key(f"{prefix}{name}_{label}")] = values[name]
    return result


# --- training ------------------------------------------------------------------------------

def _snapshot(dataset: Dataset, cutoff: pd.Timestamp, config: ChurnConfig, feature_config: FeatureConfig,
              progress, labels_of: "LabelSource | None" = None,
              ) -> tuple[pd.DataFrame, pd.Series, FeatureReference, ValueFeatureSource | None, list[str]]:
    """Features at ``cutoff`` and labels from the horizon after it: by the churn events, or
    by ``labels_of`` (customer ids, cutoff, horizon -> labels; the lapse)."""
    notes = []
    table, reference = build_features(dataset.transactions, cutoff, customers=dataset.customers,
                                      interactions=dataset.interactions, config=feature_config)
    if labels_of is None:
        labels = churn_labels(table["customer_id"], dataset.churn_events, cutoff, config.horizon_days)
    else:
        labels = labels_of(table["customer_id"], cutoff, config.horizon_days)
    value_model = None
    if config.value_features:
        try:
            value_model = _value_model(table, config, feature_config, cutoff, progress)
        except FitError as exc:
            notes.append(f"value features left out at {cutoff.date()}: {exc}")
    keep = labels.notna().to_numpy()
    excluded = f" ({(~keep).sum():,} already churned, excluded)" if labels_of is None else ""
    progress(f"  cutoff {cutoff.date()}: {keep.sum():,} customers{excluded}; "
             + ", ".join(f"{k} {v:,}" for k, v in labels[keep].value_counts().items()))
    return table[keep].reset_index(drop=True), labels[keep].reset_index(drop=True), reference, value_model, notes


def _value_model(table, config: ChurnConfig, feature_config: FeatureConfig, cutoff, progress):
    """The value model whose outputs are churn features: the sBG on a subscription base
    (BG/NBD would run to boundary parameters there and the features would be lost), else BG/NBD."""
    value_config = ValueConfig(horizon_days=config.horizon_days)
    choice = detect_business(table)
    if choice.kind == SUBSCRIPTION:
        progress(f"  value features at {cutoff.date()} from the subscription model (sBG): {choice.reason}")
        return SubscriptionValueModel(value_config, feature_config.time_unit_days, period_days=choice.period_days,
                                      business_reason=choice.reason).fit(table)
    return ProbabilisticValueModel("bgnbd", value_config, feature_config.time_unit_days).fit(table)


def train_churn_model(
    dataset: Dataset,
    as_of,
    *,
    snapshots: int = 1,
    snapshot_step_days: float = 90.0,
    config: ChurnConfig | None = None,
    feature_config: FeatureConfig | None = None,
    ceiling: dict | None = None,
    settings: Settings,
    progress: Callable[[str], None] = lambda message: None,
    observed_until=None,
    horizon_days: float | None = None,
) -> ChurnTrainingResult:
    """``observed_until``: the last day up to which churn events (or, without them,
    purchases) were recorded (the label window must end by then); default: the latest date
    in any table (without churn events: the last transaction).

    With a ``churn_events`` table the classifier learns the recorded churn types. Without
    one it learns the lapse (no purchase within the horizon; models/churn/lapse.py) from
    the base's own history. ``horizon_days`` overrides ``config.horizon_days``; for the
    lapse, when neither is given (the config's horizon left at its default), the horizon is
    read from the data (``default_horizon``)."""
    as_of = pd.Timestamp(as_of).normalize()
    if dataset.churn_events is None or dataset.churn_events.empty:
        return _train_lapse_model(dataset, as_of, snapshots=snapshots, snapshot_step_days=snapshot_step_days,
                                  config=config, feature_config=feature_config or FeatureConfig(),
                                  horizon_days=horizon_days, settings=settings, progress=progress,
                                  observed_until=observed_until)
    config = config or ChurnConfig()
    if horizon_days is not None:
        config = replace(config, horizon_days=float(horizon_days))
    feature_config = feature_config or FeatureConfig()
    _check_label_window(dataset, as_of, config.horizon_days, observed_until, snapshots, snapshot_step_days)
    progress(f"churn definition: the recorded churn events (churn_events table, {len(dataset.churn_events):,} "
             "events): the classifier learns their churn types")

    progress(f"features and labels at {snapshots} cutoff(s), horizon {config.horizon_days:g} days")
    sets = _training_sets(dataset, as_of, snapshots, snapshot_step_days, config, feature_config, progress)
    data, labels, notes = sets.data, sets.labels, list(sets.notes)
    rows = {name: len(frame) for name, frame in data.items()}
    progress("rows by set: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))

    progress(f"training LightGBM (n_jobs={config.n_jobs})")
    model = ChurnTypeModel(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data["train"], labels["train"], data["valid"], labels["valid"],
                  data["calibration"], labels["calibration"], value_model=None, progress=progress)
    notes += [str(w.message) for w in caught if "merged" in str(w.message)]
    notes += [model.calibration_note_] if model.calibration_note_ else []
    # the stored model computes value features itself from the latest cutoff's value model
    model.value_model_ = sets.latest_value_model if config.value_features else None
    progress(f"  {model.best_rounds_} rounds; labels {model.labels_}; will_churn at p_churn >= "
             f"{model.threshold_:.3f}")

    evaluation = _evaluate(model, data, labels)
    params = {
        "as_of": str(as_of.date()), "horizon_days": config.horizon_days, "snapshots": snapshots,
        "snapshot_step_days": snapshot_step_days, "value_features": config.value_features,
        "n_jobs": config.n_jobs, "learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
        "class_weight_power": config.class_weight_power, "calibration": config.calibration,
        "best_rounds": model.best_rounds_, "labels": ",".join(model.labels_),
        "will_churn_threshold": model.threshold_, "definition": "churn events",
        **{f"rows_{k}": v for k, v in rows.items()},
    }
    return _publish_churn(
        model, evaluation, _RunRecord(params, dataset, tuple(notes), ceiling), sets.latest_reference, feature_config,
        run_name=f"churn-{as_of.date()}-h{config.horizon_days:g}", gate=CHURN_GATE,
        score_champion=partial(_score_champion, evaluation), rows=rows, settings=settings, progress=progress,
        definition="churn events", definition_reason="a churn_events table records churn dates and types",
        horizon_days=config.horizon_days, horizon_reason="given" if horizon_days is not None else "the default",
        cutoffs=[str((as_of - pd.Timedelta(days=snapshot_step_days * k)).date()) for k in range(snapshots)],
        label_share=float(np.mean(pd.concat(labels.values()).to_numpy() != RETAINED)),
    )


def _publish_churn(model, evaluation, record: "_RunRecord", reference, feature_config, *, run_name: str, gate,
                   score_champion, rows: dict[str, int], settings: Settings, progress,
                   **definition) -> ChurnTrainingResult:
    """Log, register and gate a churn model of either definition (churn events or the lapse);
    ``definition``: the result's fields saying which churn it learned (definition, its reason,
    horizon, cutoffs, label share)."""
    published = publish(Candidate(
        model_name=CHURN_MODEL_NAME, experiment=EXPERIMENT, run_name=run_name,
        gate=gate, metrics=evaluation.metrics, baselines=evaluation.baselines,
        score_champion=score_champion, log_run=partial(_log_run, evaluation, record),
        model=model, feature_config=feature_config, reference=reference,
        version_column="churn_model_version", example=evaluation.test,
    ), settings=settings, progress=progress)
    return ChurnTrainingResult(
        run_id=published.run_id, model_version=published.version, labels=model.labels_, metrics=evaluation.metrics,
        baseline_metrics=evaluation.baselines, champion_metrics=published.champion_metrics,
        calibration=evaluation.calibration, promoted=published.decision.promote, reason=published.decision.reason,
        tracking_uri=display_uri(published.tracking_uri), rows=rows, ceiling=record.ceiling, warnings=list(record.notes),
        will_churn_threshold=model.threshold_, **definition,
    )


def _check_label_window(dataset: Dataset, as_of: pd.Timestamp, horizon_days: float, observed_until,
                        snapshots: int, snapshot_step_days: float) -> None:
    """Errors that say what to change when the labels could not be right or would teach nothing."""
    if dataset.churn_events is None or dataset.churn_events.empty:
        raise RetainError("training the churn model needs a churn_events table with recorded churn dates and types")
    last_day, source = label_window_end(dataset, observed_until)
    horizon_end = as_of + pd.Timedelta(days=horizon_days)
    if horizon_end > last_day + pd.Timedelta(days=1):
        raise RetainError(
            f"the {horizon_days:g}-day horizon after {as_of.date()} runs to {horizon_end.date()}, past the "
            f"data ({source} {last_day.date()}): customers could not be labelled retained; use --as-of "
            f"{(last_day + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)).date()} or earlier, or "
            "state with --observed-until DATE up to when churn events were recorded"
        )
    events = dataset.churn_events["churn_date"]
    if not ((events >= as_of) & (events < horizon_end)).any():
        raise RetainError(
            f"no churn event falls in the horizon {as_of.date()} .. {horizon_end.date()}: there is nothing to learn; "
            "choose another --as-of or a longer --horizon-days"
        )
    if snapshots < 1:
        raise RetainError("--snapshots must be at least 1")
    if snapshots > 1 and snapshot_step_days <= 0:
        raise RetainError("--snapshot-step-days must be above 0: stacked cutoffs must differ")


@dataclass(frozen=True)
class _TrainingSets:
    """Feature rows and labels per set (``SPLITS``), and what the stored model keeps of the
    latest cutoff: its RFM reference and value model."""

    data: dict[str, pd.DataFrame]
    labels: dict[str, pd.Series]
    latest_reference: FeatureReference
    latest_value_model: ValueFeatureSource | None
    notes: tuple[str, ...]


def _training_sets(dataset: Dataset, as_of: pd.Timestamp, snapshots: int, snapshot_step_days: float,
                   config: ChurnConfig, feature_config: FeatureConfig, progress,
                   labels_of: LabelSource | None = None) -> _TrainingSets:
    notes: list[str] = []
    parts = []
    for k in range(snapshots):
        cutoff = as_of - pd.Timedelta(days=snapshot_step_days * k)
        table, labels, reference, value_model, more = _snapshot(dataset, cutoff, config, feature_config, progress,
                                                                labels_of)
        notes += more
        if k == 0:
            latest_reference, latest_value_model = reference, value_model
        if value_model is not None:
            table = with_value_features(table, value_model)
        parts.append((k, table, labels))

    # every row carries its own snapshot's value features, so the model reads them as given
    frames = {name: [] for name, _ in SPLITS}
    targets = {name: [] for name, _ in SPLITS}
    for k, table, labels in parts:
        split = customer_split(table["customer_id"], config.seed)
        for name, _ in SPLITS:
            chosen = split == name
            if name == "test" and k > 0:
                continue  # evaluation is on the latest cutoff only
            frames[name].append(table[chosen])
            targets[name].append(labels[chosen])
    return _TrainingSets(
        data={name: pd.concat(frames[name], ignore_index=True) for name, _ in SPLITS},
        labels={name: pd.concat(targets[name], ignore_index=True) for name, _ in SPLITS},
        latest_reference=latest_reference, latest_value_model=latest_value_model, notes=tuple(notes),
    )


@dataclass(frozen=True)
class _Evaluation:
    """The trained model on the held-out customers: probabilities before and after
    calibration, metrics, and the baselines' metrics on the same customers."""

    model: ChurnTypeModel
    test: pd.DataFrame
    truth: np.ndarray
    raw: np.ndarray
    calibrated: np.ndarray
    metrics: dict
    calibration: dict[str, float]
    baselines: dict[str, dict]


def _evaluate(model: ChurnTypeModel, data: dict[str, pd.DataFrame], labels: dict[str, pd.Series],
              baselines_of=None) -> _Evaluation:
    """``baselines_of(data, labels, test, truth, model labels)``: the baselines' metrics
    (default: majority class and a logistic regression on RFM)."""
    test, truth = data["test"], labels["test"].to_numpy(dtype=object)
    raw = model.predict_proba(test, calibrated=False)
    calibrated = model.calibrate(raw)
    metrics = churn_metrics(truth, calibrated, model.labels_, model.predict_label(calibrated))
    before = churn_metrics(truth, raw, model.labels_, model.predict_label(raw))
    calibration = {"log_loss_before": before["log_loss"], "log_loss_after": metrics["log_loss"],
                   "brier_before": before["brier"], "brier_after": metrics["brier"]}
    if baselines_of is None:
        baselines = _baselines(data["train"], labels["train"], test, truth, model.labels_)
    else:
        baselines = baselines_of(data, labels, test, truth, model.labels_)
    return _Evaluation(model, test, truth, raw, calibrated, metrics, calibration, baselines)


def _score_champion(evaluation: _Evaluation, champion: ChurnTypeModel) -> dict:
    """The champion's metrics on the candidate's held-out customers, in the candidate's labels."""
    probabilities = champion.predict_proba(evaluation.test)
    labels = evaluation.model.labels_
    return churn_metrics(evaluation.truth, _align(probabilities, champion.labels_, labels), labels,
                         champion.predict_label(probabilities))


@dataclass(frozen=True)
class _RunRecord:
    """What the MLflow run records besides the evaluation."""

    params: dict
    dataset: Dataset
    notes: tuple[str, ...]
    ceiling: dict | None


def _log_run(evaluation: _Evaluation, record: _RunRecord, decision: Decision, champion_metrics: dict | None) -> None:
    """Params, data fingerprint, metrics, evaluation.json and plots; called inside the run."""
    model, metrics, baselines = evaluation.model, evaluation.metrics, evaluation.baselines
    dataset = record.dataset
    mlflow.log_params(record.params)
    mlflow.set_tags(fingerprint(
        {"transactions": dataset.transactions[["customer_id", "timestamp", "amount"]],
         "churn_events": dataset.churn_events, "interactions": dataset.interactions, "customers": dataset.customers},
        {"transactions": "timestamp", "churn_events": "churn_date", "interactions": "timestamp"}))
    mlflow.log_metrics(flat(metrics))
    mlflow.log_metrics(evaluation.calibration)
    for name, values in baselines.items():
        mlflow.log_metrics(flat(values, f"baseline_{name}_"))
    if champion_metrics:
        mlflow.log_metrics(flat(champion_metrics, "champion_"))
    importances = model.importances()
    mlflow.log_dict({"metrics": metrics, "baselines": baselines, "champion": champion_metrics,
                     "calibration": evaluation.calibration, "decision": decision.reason, "notes": list(record.notes),
                     "importances": importances.to_dict(), "ceiling": record.ceiling}, "evaluation.json")
    _log_plots(model, evaluation.truth, evaluation.calibrated, evaluation.raw, importances)


def _align(probabilities: np.ndarray, from_labels: list[str], to_labels: list[str]) -> np.ndarray:
    """Probabilities re-ordered to another label list (labels the other model lacks get 0)."""
    out = np.zeros((len(probabilities), len(to_labels)))
    for i, label in enumerate(from_labels):
        if label in to_labels:
            out[:, to_labels.index(label)] = probabilities[:, i]
    out = np.clip(out, 1e-12, None)
    return out / out.sum(axis=1, keepdims=True)


def _baselines(train, train_labels, test, truth, labels) -> dict[str, dict]:
    """Majority class, and a logistic regression on RFM alone."""
    counts = train_labels.value_counts()
    prior = np.array([counts.get(label, 0) for label in labels], dtype=float)
    prior = np.clip(prior / prior.sum(), 1e-12, None)
    majority = churn_metrics(truth, np.tile(prior, (len(truth), 1)), labels,
                             np.full(len(truth), counts.idxmax(), dtype=object))
    regression = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    codes = pd.Categorical(train_labels, categories=labels).codes
    regression.fit(train[RFM_ONLY].to_numpy(dtype=float), codes)
    probabilities = _align(regression.predict_proba(test[RFM_ONLY].to_numpy(dtype=float)),
                           [labels[c] for c in regression.classes_], labels)
    predicted = np.asarray(labels, dtype=object)[np.argmax(probabilities, axis=1)]
    return {"majority": majority, "logistic_rfm": churn_metrics(truth, probabilities, labels, predicted)}


def raw_attribute_baselines(dataset: Dataset, as_of, labels: list[str], *, snapshots: int = 1,
                            snapshot_step_days: float = 90.0, horizon_days: float = 90.0,
                            seed: int = 0) -> dict[str, float]:
    """Macro-F1 over ``labels`` of a plain LightGBM on the customers table alone (numbers
    parsed, ISO dates as ages, text as categories; LightGBM's defaults, argmax), of the same
    with balanced class weights, and with the churn model's decision weights: trained on the
    customers and cutoffs the churn model learns from (its train, valid and calibration sets),
    tested on its held-out customers at the latest cutoff. What the churn model must beat on
    attribute-heavy data (benchmarks/bench_churn.py)."""
    if dataset.customers is None or dataset.customers.shape[1] < 2:
        raise RetainError("a baseline on the raw attributes needs a customers table with attribute columns")
    as_of = pd.Timestamp(as_of).normalize()
    customers = dataset.customers.drop_duplicates("customer_id")
    customers = customers.set_axis(customers["customer_id"].astype(str)).drop(columns="customer_id")
    raw = pd.DataFrame(index=customers.index)
    for name, values in customers.items():
        text = values.astype("string").str.strip().replace("", pd.NA)
        number = pd.to_numeric(text, errors="coerce")
        if pd.api.types.is_datetime64_any_dtype(values):
            raw[name] = values
        elif pd.api.types.is_numeric_dtype(values) or number.notna().sum() == text.notna().sum():
            raw[name] = number.astype(float)
        elif text.dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}.*").all():
            raw[name] = pd.to_datetime(text, errors="coerce", format="ISO8601")
        else:
            raw[name] = text.astype("category")
    parts = []
    config = ChurnConfig(horizon_days=horizon_days, value_features=False, seed=seed)
    for k in range(snapshots):
        cutoff = as_of - pd.Timedelta(days=snapshot_step_days * k)
        table, truth, *_ = _snapshot(dataset, cutoff, config, FeatureConfig(), lambda message: None)
        rows = raw.reindex(table["customer_id"]).reset_index(drop=True)
        for name in rows.columns:  # dates as ages at this cutoff, as the features give them
            if pd.api.types.is_datetime64_any_dtype(rows[name]):
                rows[name] = (cutoff - rows[name]).dt.days.astype(float)
        rows["_set"], rows["_latest"], rows["_label"] = customer_split(table["customer_id"], seed), k == 0, truth.to_numpy()
        parts.append(rows)
    frame = pd.concat(parts, ignore_index=True)
    train = (frame["_set"] != "test").to_numpy()
    test = ((frame["_set"] == "test") & frame["_latest"]).to_numpy()
    columns = [c for c in frame.columns if not c.startswith("_")]
    truth = frame["_label"].astype(str).to_numpy()

    def macro_f1(predicted) -> float:
        return float(f1_score(truth[test], predicted, labels=labels, average="macro", zero_division=0))

    scores = {}
    for name, weights in (("plain", None), ("balanced", "balanced")):
        classifier = lgb.LGBMClassifier(class_weight=weights, n_jobs=1, verbose=-1, random_state=seed)
        classifier.fit(frame.loc[train, columns], truth[train])
        scores[name] = macro_f1(classifier.predict(frame.loc[test, columns]))
    # the churn model's own decision rule on top: per-class weights for macro-F1 chosen on
    # the calibration customers, the trees grown on the others
    grow = train & (frame["_set"] != "calibration").to_numpy()
    tune = (frame["_set"] == "calibration").to_numpy()
    classifier = lgb.LGBMClassifier(n_jobs=1, verbose=-1, random_state=seed).fit(frame.loc[grow, columns], truth[grow])
    # retained first, as the decision rule reads the probabilities
    order = np.argsort([label != RETAINED for label in classifier.classes_], kind="stable")
    classes = np.asarray(classifier.classes_, dtype=object)[order]
    codes = pd.Categorical(truth[tune], categories=classes).codes
    rule = choose_decision(classifier.predict_proba(frame.loc[tune, columns])[:, order], codes)
    scores["decision_weights"] = macro_f1(classes[decide(classifier.predict_proba(frame.loc[test, columns])[:, order],
                                                         rule.threshold, rule.type_weights)])
    return scores


def _log_plots(model: ChurnTypeModel, truth, calibrated, raw, importances) -> None:
    predicted = model.predict_label(calibrated)
    matrix = confusion_matrix(truth, predicted, labels=model.labels_)
    churned = truth != RETAINED
    curves = {}
    for name, probabilities in (("before calibration", raw), ("after calibration", calibrated)):
        p_churn = 1 - probabilities[:, 0]
        bins = np.minimum((p_churn * 10).astype(int), 9)
        frame = pd.DataFrame({"bin": bins, "p": p_churn, "y": churned}).groupby("bin").mean()
        curves[name] = (frame["p"].to_numpy(), frame["y"].to_numpy())
    figures = {
        "confusion_matrix.png": plots.confusion(matrix, model.labels_),
        "feature_importance.png": plots.importances(importances.index, importances.to_numpy()),
        "churn_calibration.png": plots.calibration_curves(curves, "P(churn in horizon): reliability"),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plots.close(figure)


# --- the lapse: churn without churn events -------------------------------------------------

def _train_lapse_model(dataset: Dataset, as_of: pd.Timestamp, *, snapshots: int, snapshot_step_days: float,
                       config: ChurnConfig | None, feature_config: FeatureConfig, horizon_days: float | None,
                       settings: Settings, progress, observed_until) -> ChurnTrainingResult:
    """The churn model of the lapse (models/churn/lapse.py): features at each cutoff,
    labels from the purchases in the horizon after it, every label window ending by
    ``as_of`` + horizon and by the last observed day; gated on ROC-AUC and Brier score
    against the hiatus, the purchase rate and the value model's P(no purchase)."""
    progress(f"churn definition: {LAPSED_DEFINITION}; why: {LAPSE_DEFINITION_REASON}")
    if horizon_days is not None:
        horizon, horizon_reason = float(horizon_days), "given (--horizon-days)"
    elif config is not None and config.horizon_days != ChurnConfig.horizon_days:
        horizon, horizon_reason = config.horizon_days, "given in the churn settings"
    else:
        horizon, horizon_reason = default_horizon(dataset.transactions, as_of)
        horizon_reason = f"read from the data: {horizon_reason} (--horizon-days overrides it)"
    config = lapse_config(replace(config or ChurnConfig(), horizon_days=horizon))
    progress(f"horizon {horizon:g} days: {horizon_reason}")
    _check_lapse_window(dataset, as_of, horizon, observed_until, snapshots, snapshot_step_days)
    cutoffs = [as_of - pd.Timedelta(days=snapshot_step_days * k) for k in range(snapshots)]
    progress("cutoffs " + ", ".join(str(c.date()) for c in cutoffs) + "; each labelled by the purchases in the "
             f"{horizon:g} days after it (the last window ends {(as_of + pd.Timedelta(days=horizon)).date()})")

    sets = _training_sets(dataset, as_of, snapshots, snapshot_step_days, config, feature_config, progress,
                          labels_of=partial(lapse_labels, dataset.transactions))
    data, labels, notes = sets.data, sets.labels, list(sets.notes)
    share = float(np.mean(pd.concat(labels.values()).to_numpy() == LAPSED))
    data, labels = _sampled_down(data, labels, LAPSE_MAX_ROWS, config.seed, progress)
    rows = {name: len(frame) for name, frame in data.items()}
    progress("rows by set: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + f"; lapsed share {share:.1%}")

    progress(f"training LightGBM (n_jobs={config.n_jobs})")
    model = LapseChurnModel(config)
    model.fit(data["train"], labels["train"], data["valid"], labels["valid"],
              data["calibration"], labels["calibration"], value_model=None, progress=progress)
    notes += [model.calibration_note_] if model.calibration_note_ else []
    model.value_model_ = sets.latest_value_model if config.value_features else None
    quality = model.decision_quality_
    progress(f"  {model.best_rounds_} rounds; will_churn at p_churn >= {model.threshold_:.3f} (macro-F1 of retained vs "
             f"lapsed on the calibration customers; precision {quality['precision']:.2f}, recall {quality['recall']:.2f})")

    evaluation = _evaluate(model, data, labels, baselines_of=_lapse_baselines)
    if not any(name == "value_model" for name in evaluation.baselines):
        notes.append("the value model's P(no purchase) baseline was left out: no value features (--no-value-features "
                     "or the value model did not fit)")
    params = {
        "as_of": str(as_of.date()), "horizon_days": horizon, "horizon_reason": horizon_reason[:500],
        "snapshots": snapshots, "snapshot_step_days": snapshot_step_days, "value_features": config.value_features,
        "n_jobs": config.n_jobs, "learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
        "calibration": config.calibration, "best_rounds": model.best_rounds_, "labels": ",".join(model.labels_),
        "definition": "lapse", "will_churn_threshold": model.threshold_, "lapsed_share": share,
        "cutoffs": ",".join(str(c.date()) for c in cutoffs), **{f"rows_{k}": v for k, v in rows.items()},
    }
    return _publish_churn(
        model, evaluation, _RunRecord(params, dataset, tuple(notes), None), sets.latest_reference, feature_config,
        run_name=f"lapse-{as_of.date()}-h{horizon:g}", gate=LAPSE_GATE,
        score_champion=partial(_score_champion_on_lapse, evaluation), rows=rows, settings=settings,
        progress=progress, definition="lapse", definition_reason=LAPSE_DEFINITION_REASON, horizon_days=horizon,
        horizon_reason=horizon_reason, cutoffs=[str(c.date()) for c in cutoffs], label_share=share,
    )


LAPSED_DEFINITION = "the lapse: no purchase within the horizon"


def _sampled_down(data: dict[str, pd.DataFrame], labels: dict[str, pd.Series], most: dict[str, int], seed: int,
                  progress) -> tuple[dict[str, pd.DataFrame], dict[str, pd.Series]]:
    """Each set in ``most`` with more rows than its limit sampled down to it (rows drawn at
    random with the seed, kept in order). The held-out customers are a random sample too
    when there are more than their limit: 100,000 measure ROC-AUC and Brier to the third
    decimal, and evaluation and the drift profile then cost the same at any size."""
    data, labels = dict(data), dict(labels)
    for name, limit in most.items():
        if len(data[name]) > limit:
            keep = np.sort(np.random.default_rng(seed).choice(len(data[name]), limit, replace=False))
            progress(f"  {name}: a random {limit:,} of its {len(data[name]):,} rows")
            data[name] = data[name].iloc[keep].reset_index(drop=True)
            labels[name] = labels[name].iloc[keep].reset_index(drop=True)
    return data, labels


def _check_lapse_window(dataset: Dataset, as_of: pd.Timestamp, horizon_days: float, observed_until,
                        snapshots: int, snapshot_step_days: float) -> None:
    """The last label window must end by the last observed day: purchases are observed
    until ``observed_until``, else until the last transaction."""
    if observed_until is not None:
        last_day, source = pd.Timestamp(observed_until).normalize(), "observed until"
    else:
        last_day, source = pd.Timestamp(dataset.transactions["timestamp"].max()).normalize(), "last transaction"
    horizon_end = as_of + pd.Timedelta(days=horizon_days)
    if horizon_end > last_day + pd.Timedelta(days=1):
        raise RetainError(
            f"the {horizon_days:g}-day horizon after {as_of.date()} runs to {horizon_end.date()}, past the data "
            f"({source} {last_day.date()}): a customer with no purchase seen there could still buy; use --as-of "
            f"{(last_day + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)).date()} or earlier, or a shorter "
            "--horizon-days"
        )
    if snapshots < 1:
        raise RetainError("--snapshots must be at least 1")
    if snapshots > 1 and snapshot_step_days <= 0:
        raise RetainError("--snapshot-step-days must be above 0: stacked cutoffs must differ")


# each baseline's score: higher means more likely to lapse
LAPSE_BASELINE_SCORES = {
    # days since the last purchase (the hiatus rule, [WW2008]), in the features' time unit
    "hiatus": lambda table: table["T"].to_numpy(dtype=float) - table["recency"].to_numpy(dtype=float),
    # purchase days per unit of time since the first purchase (the fewer, the likelier a lapse)
    "purchase_rate": lambda table: -(table["frequency"].to_numpy(dtype=float) + 1)
    / (table["T"].to_numpy(dtype=float) + 1),
    # the value model's P(no purchase within the horizon) at the cutoff
    "value_model": lambda table: table["p_no_purchase_horizon"].to_numpy(dtype=float),
}


def _lapse_baselines(data, labels, test, truth, model_labels) -> dict[str, dict]:
    """Each baseline score made a probability by isotonic regression on the calibration
    customers (as the model is calibrated on them), then measured on the held-out ones. The
    value model's baseline needs the value features (absent: left out)."""
    calibration = data["calibration"]
    lapsed = labels["calibration"].to_numpy(dtype=object) == LAPSED
    results = {}
    for name, score_of in LAPSE_BASELINE_SCORES.items():
        if name == "value_model" and "p_no_purchase_horizon" not in test.columns:
            continue
        fitted = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
            np.nan_to_num(score_of(calibration)), lapsed)
        p = fitted.predict(np.nan_to_num(score_of(test)))
        results[name] = churn_metrics(truth, np.column_stack([1 - p, p]), model_labels,
                                      np.where(p >= 0.5, LAPSED, RETAINED).astype(object))
        # the ranking before calibration (isotonic steps tie customers)
        raw = np.nan_to_num(score_of(test))
        results[name]["churn_roc_auc_raw_score"] = float(roc_auc_score(truth == LAPSED, raw)) if (
            0 < np.sum(truth == LAPSED) < len(truth)) else float("nan")
    return results


def _score_champion_on_lapse(evaluation: _Evaluation, champion: ChurnTypeModel) -> dict:
    """The champion (of either kind) on the candidate's held-out customers: its p_churn
    against the lapse, its will_churn as the decision."""
    probabilities = champion.predict_proba(evaluation.test)
    p = 1.0 - probabilities[:, 0]
    predicted = np.where(champion.predict_label(probabilities) != RETAINED, LAPSED, RETAINED).astype(object)
    return churn_metrics(evaluation.truth, np.column_stack([1 - p, p]), evaluation.model.labels_, predicted)
