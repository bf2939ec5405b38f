"""The numbers the report and ``retain models`` show, apart from how they are shown.

Reading comes first: the MLflow registry (through ``retain.models.registry.registered_models``),
a training run's artifacts, the score store's runs, the scores file and its drift report.
The rest are pure functions of those frames and dicts: counts, sums and tables, testable
without drawing anything (``retain.report.html`` and ``retain.report.text`` draw them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retain.errors import RetainError
from retain.features.drift import AGE_COLUMNS
from retain.features.segments import LIFECYCLE_STAGES
from retain.models.churn.config import RETAINED
from retain.models.registry import (
    CHAMPION, CHURN_MODEL_NAME, KEY_METRICS, VALUE_MODEL_NAME, parse_version_label, registered_models,
)
from retain.vocabulary import GateOutcome
from retain.models.value.tiers import PYRAMID, QUADRANT_ORDER, QUADRANTS
from retain.settings import Settings

# Holdout metrics shown per version by `retain models` and the report's registry tables.
REQUIRED_SCORE_COLUMNS = ("customer_id", "as_of", "not_scored_reason", "clv", "value_tier", "value_quadrant",
                          "rfm_segment", "lifecycle_stage", "p_churn", "will_churn", "churn_type", "top_drivers",
                          "recommended_action")
# The order categories are shown in (None: most customers first): best quadrant first, the
# reverse of the quadrants' index order in retain.models.value.tiers.
DISPLAY_ORDER = {
    "rfm_segment": None,
    "lifecycle_stage": LIFECYCLE_STAGES,
    "value_tier": PYRAMID,
    "value_quadrant": tuple(reversed(QUADRANT_ORDER)),
}
AT_RISK_ROWS_PER_TYPE = 15
LAST_RUN_FIELDS = ("as_of", "loaded_at", "output", "clv_model_version", "churn_model_version", "customers", "scored",
                   "drift_alert")


# --- reading ---------------------------------------------------------------------------------


def read_run_artifacts(settings: Settings, run_id: str, folder: Path) -> tuple[dict | None, dict[str, bytes]]:
    """A training run's evaluation.json (None when it has none) and its logged plots (PNG
    bytes by file name), downloaded into ``folder``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=settings.resolved_tracking_uri, registry_uri=settings.resolved_tracking_uri)
    folder.mkdir(parents=True, exist_ok=True)
    evaluation = None
    try:
        evaluation = json.loads(Path(client.download_artifacts(run_id, "evaluation.json", str(folder))).read_text())
    except (MlflowException, OSError, ValueError):
        pass
    plots = {}
    try:
        plots_dir = Path(client.download_artifacts(run_id, "plots", str(folder)))
        plots = {p.name: p.read_bytes() for p in sorted(plots_dir.glob("*.png"))}
    except (MlflowException, OSError):
        pass
    return evaluation, plots


def score_runs(settings: Settings) -> pd.DataFrame:
    """The score store's ``runs`` table (empty when no run was loaded)."""
    from retain.serving.store import ScoreStore

    try:
        return ScoreStore(settings.score_store_path).runs()
    except Exception as exc:  # duckdb raises its own error types; name the file instead
        raise RetainError(f"cannot read the runs table of the score store {settings.score_store_path}: {exc}") from None


def default_scores_path(settings: Settings) -> Path:
    """The output of the last score run recorded in the score store."""
    runs = score_runs(settings)
    if runs.empty:
        raise RetainError(f"no score run is recorded in the score store {settings.score_store_path}: run "
                          "`retain score` first, or give --scores PATH")
    return Path(runs.iloc[-1]["output"])


def read_scores(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise RetainError(f"--scores {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            scores = pd.read_csv(path, dtype={"customer_id": str, "not_scored_reason": str})
        else:
            scores = pd.read_parquet(path)
    except Exception as exc:
        raise RetainError(f"cannot read the scores file {path}: {exc}") from None
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise RetainError(f"the scores file {path} lacks the score columns {missing}; give the output of `retain score`")
    scores["not_scored_reason"] = scores["not_scored_reason"].fillna("").astype(str)
    return scores


def read_drift(scores_path: Path) -> dict | None:
    """The drift report ``retain score`` writes beside the scores (None when there is none)."""
    path = scores_path.with_name(scores_path.name + ".drift.json")
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {"note": f"{path} is not valid JSON"}


# --- the registry ----------------------------------------------------------------------------


def version_number(label) -> str | None:
    """'retain-clv/v3' -> '3'."""
    parsed = parse_version_label(label)
    return parsed[1] if parsed else None


def registry_overview(settings: Settings) -> dict:
    """The store's URI, every registered model with its aliases and versions (gate outcome,
    key holdout metrics), and the versions the last score run used."""
    uri, models = registered_models(settings)
    return overview_of(uri, models, score_runs(settings), settings.score_store_path)


def overview_of(uri: str, models: list[dict], runs: pd.DataFrame, score_store: Path) -> dict:
    """``registry_overview`` of what ``registered_models`` and ``score_runs`` read."""

    last = runs.iloc[-1].to_dict() if len(runs) else None
    used = {}
    if last is not None:
        used = {VALUE_MODEL_NAME: version_number(last.get("clv_model_version")),
                CHURN_MODEL_NAME: version_number(last.get("churn_model_version"))}
    overview = []
    for model in models:
        versions = []
        for version in model["versions"]:
            metrics = version["metrics"] or {}
            tags = version["tags"]
            versions.append({
                "version": version["version"],
                "aliases": version["aliases"],
                "role": tags.get("role"),
                "gate": tags.get("gate"),
                "gate_passed": GateOutcome.from_tags(tags).passed,
                "run_id": version["run_id"],
                "created": pd.Timestamp(version["created"], unit="ms").isoformat(timespec="seconds"),
                "metrics": {k: metrics[k] for k in KEY_METRICS.get(model["name"], ()) if k in metrics},
                "used_by_last_score_run": used.get(model["name"]) == version["version"],
            })
        aliases = {alias: v["version"] for v in versions for alias in v["aliases"]}
        overview.append({"name": model["name"], "aliases": dict(sorted(aliases.items())), "versions": versions})
    last_run = None
    if last is not None:
        last_run = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in last.items() if k in LAST_RUN_FIELDS}
        last_run = {k: (v.item() if hasattr(v, "item") else v) for k, v in last_run.items()}
    return {"tracking_uri": uri, "score_store": str(score_store), "models": overview, "last_score_run": last_run}


def registry_tables(overview: dict) -> list[tuple[str, pd.DataFrame]]:
    """Per registered model with versions, its versions' table: aliases, use by the last score
    run and key metrics."""
    return [(model["name"], pd.DataFrame([
        {"version": v["version"], "aliases": ", ".join(v["aliases"]) or "-",
         "used by the last score run": "yes" if v["used_by_last_score_run"] else "",
         **{k.replace("_", " "): v["metrics"].get(k) for k in KEY_METRICS.get(model["name"], ())}}
        for v in model["versions"]])) for model in overview["models"] if model["versions"]]


@dataclass
class ModelEvidence:
    """What MLflow holds about one model version: run metrics, evaluation.json, logged plots."""

    name: str
    version: str | None = None
    run_id: str | None = None
    is_champion: bool = False
    metrics: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    note: str | None = None  # why something is missing, in words


def model_evidence(settings: Settings, models: list[dict], name: str, label_in_scores: str | None,
                   work: Path) -> ModelEvidence:
    """The evidence of the version of ``name`` the scores name (``NAME/vN``), else of its
    champion; ``models``: what ``registered_models`` read."""
    evidence = ModelEvidence(name)
    model = next((m for m in models if m["name"] == name), None)
    if model is None:
        evidence.note = f"{name} is not registered in this store"
        return evidence
    champion = next((v["version"] for v in model["versions"] if CHAMPION in v["aliases"]), None)
    version = version_number(label_in_scores) or champion
    if version is None:
        evidence.note = f"{name} has no champion and the scores name no version"
        return evidence
    if label_in_scores is None:
        evidence.note = f"the scores were made without {name}: this is its current champion"
    evidence.version = version
    evidence.is_champion = champion == version
    entry = next((v for v in model["versions"] if v["version"] == version), None)
    if entry is not None:
        evidence.run_id = entry["run_id"]
    if entry is None or entry["metrics"] is None:
        evidence.note = f"{name} version {version} or its training run is not in this store"
        return evidence
    evidence.metrics = entry["metrics"]
    evaluation, evidence.plots = read_run_artifacts(settings, evidence.run_id, work / name)
    if evaluation is None:
        evidence.note = "; ".join(filter(None, [
            evidence.note, f"the training run {evidence.run_id} of {name} v{version} has no evaluation.json"]))
    else:
        evidence.evaluation = evaluation
    return evidence


# --- the scores ------------------------------------------------------------------------------


def scores_model_labels(scores: pd.DataFrame) -> dict[str, str | None]:
    """The model versions (``NAME/vN``) most rows of the scores name, by score column."""
    return {column: (scores[column].dropna().astype(str).mode().iat[0] if scores[column].notna().any() else None)
            for column in ("clv_model_version", "churn_model_version") if column in scores.columns}


def scores_horizon(scores: pd.DataFrame) -> float | None:
    """The days the value columns cover, when the scores say."""
    if "value_horizon_days" in scores.columns and scores["value_horizon_days"].notna().any():
        return float(scores["value_horizon_days"].dropna().iat[0])
    return None


def scores_as_of(scores: pd.DataFrame):
    """The scoring date, or '?' when no row has one."""
    return pd.Timestamp(scores["as_of"].dropna().iat[0]).date() if scores["as_of"].notna().any() else "?"


def scored_customers(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows that were scored (the active customers)."""
    return scores[scores["not_scored_reason"] == ""]


def likely_to_churn(scored: pd.DataFrame) -> pd.DataFrame:
    """The scored customers predicted to churn (no prediction counts as no)."""
    will_churn = scored["will_churn"].astype("boolean").fillna(False).astype(bool)
    return scored[will_churn].copy()


@dataclass
class Headline:
    customers: int
    scored: int
    total_clv: float
    likely_to_churn: int
    clv_likely_to_churn: float


def headline(scores: pd.DataFrame, scored: pd.DataFrame, at_risk: pd.DataFrame) -> Headline:
    return Headline(customers=len(scores), scored=len(scored), total_clv=scored["clv"].sum(),
                    likely_to_churn=len(at_risk), clv_likely_to_churn=at_risk["clv"].sum())


def not_scored_groups(scores: pd.DataFrame, counts_of_run: dict[str, int] | None) -> pd.Series | None:
    """Customers not scored, by reason, most first (empty: everyone was scored). The counts
    by reason code come from the score run (the OUT.drift.json ``retain score`` writes beside
    its output); None when the scores file has none that adds up (a file moved or made
    elsewhere): then only the total is known, and each row's reason."""
    total = int((scores["not_scored_reason"] != "").sum())
    if not total:
        return pd.Series(dtype=int)
    if not counts_of_run or sum(counts_of_run.values()) != total:
        return None
    return pd.Series(counts_of_run, dtype=int).sort_values(ascending=False, kind="stable")


def counts_and_value(scored: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Customers per category of ``column`` in ``DISPLAY_ORDER`` (missing: 'unknown'; unlisted
    categories after the listed ones), and their total CLV."""
    counts = scored[column].fillna("unknown").astype(str).value_counts()
    order = DISPLAY_ORDER.get(column)
    if order:
        known = [o for o in order if o in counts.index]
        counts = counts.reindex(known + [c for c in counts.index if c not in order])
    values = scored.groupby(scored[column].fillna("unknown").astype(str))["clv"].sum()
    return counts, values


def clv_by_quadrant(scored: pd.DataFrame) -> pd.DataFrame:
    """Count, sum and mean of CLV per value-matrix quadrant present."""
    return scored.groupby("value_quadrant")["clv"].agg(["count", "sum", "mean"])


def value_matrix(by_quadrant: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and total CLV as 2 x 2 grids: rows value so far, columns future value (low, high)."""
    counts = pd.DataFrame(np.zeros((2, 2)), index=["low", "high"], columns=["low", "high"])
    values = counts.copy()
    for (now, later), name in QUADRANTS.items():
        if name in by_quadrant.index:
            counts.iat[int(now), int(later)] = by_quadrant.at[name, "count"]
            values.iat[int(now), int(later)] = by_quadrant.at[name, "sum"]
    return counts, values


def quadrant_rows(by_quadrant: pd.DataFrame) -> list[dict]:
    """Per quadrant, best first: customers, total and mean CLV (None: no customer), the move."""
    from retain.models.actions import QUADRANT_MOVES

    present = by_quadrant.index
    return [{"quadrant": q, "customers": int(by_quadrant.at[q, "count"]) if q in present else 0,
             "clv": by_quadrant.at[q, "sum"] if q in present else 0.0,
             "mean_clv": by_quadrant.at[q, "mean"] if q in present else None,
             "move": QUADRANT_MOVES.get(q, "")}
            for q in DISPLAY_ORDER["value_quadrant"]]


def interval_words(scored: pd.DataFrame, level: float = 0.8) -> dict | None:
    """What ``clv_low``/``clv_high`` say, in figures a sentence can carry: the share of
    customers whose range starts at 0, and per value tier the median CLV and range (None
    when the scores hold no interval)."""
    if not {"clv", "clv_low", "clv_high"} <= set(scored.columns) or scored["clv_low"].isna().all():
        return None
    rows = scored.dropna(subset=["clv", "clv_low", "clv_high"])
    tiers = [t for t in PYRAMID if t in set(rows.get("value_tier", pd.Series(dtype=object)))]
    by_tier = [{"value tier": tier, "customers": int(len(part)), "median CLV": part["clv"].median(),
                "median low end": part["clv_low"].median(), "median high end": part["clv_high"].median(),
                "range starts at 0": f"{(part['clv_low'] <= 0).mean():.0%}"}
               for tier in tiers for part in [rows[rows["value_tier"] == tier]]]
    return {"level": level, "starts_at_zero": float((rows["clv_low"] <= 0).mean()), "customers": len(rows),
            "by_tier": pd.DataFrame(by_tier)}


def high_value_cuts(scored: pd.DataFrame) -> dict | None:
    """The value matrix's "high" in figures: the share of active customers high on each axis
    and the share of the CLV those high later hold (None without quadrants)."""
    quadrant = scored["value_quadrant"].dropna().astype(str)
    if quadrant.empty:
        return None
    later = quadrant.str.endswith("high later")
    now = quadrant.str.startswith("high now")
    clv = scored.loc[quadrant.index, "clv"].fillna(0.0)
    return {"high_later": float(later.mean()), "high_now": float(now.mean()),
            "clv_of_high_later": float(clv[later].sum() / clv.sum()) if clv.sum() > 0 else float("nan")}


def list_precision(evaluation: dict | None) -> dict[str, dict]:
    """Per churn type, the held-out precision and recall of the model's decision for it (the
    customers it flagged for that type who did leave for it): what to expect of each action
    list. Empty when the training run recorded none."""
    per_class = ((evaluation or {}).get("metrics") or {}).get("per_class") or {}
    return {label: {k: values.get(k) for k in ("precision", "recall", "support")}
            for label, values in per_class.items() if label != RETAINED}


def has_churn_model(scores: pd.DataFrame) -> bool:
    """Whether the scores were made with a churn model."""
    return "churn_model_version" in scores.columns and scores["churn_model_version"].notna().any()


def at_risk_by_type(at_risk: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per churn type, most value at risk (p(churn) x CLV) first: customers, CLV and value at
    risk; and per type its customers, most at stake first (with a ``value at risk`` column)."""
    at_risk = at_risk.assign(**{"value at risk": at_risk["p_churn"] * at_risk["clv"]})
    by_type = at_risk.groupby("churn_type").agg(customers=("customer_id", "size"),
                                                clv=("clv", "sum"), at_risk=("value at risk", "sum"))
    by_type = by_type.sort_values("at_risk", ascending=False)
    rows = {churn_type: at_risk[at_risk["churn_type"] == churn_type].sort_values("value at risk", ascending=False)
            for churn_type in by_type.index}
    return by_type, rows


# --- the models' evaluation --------------------------------------------------------------------

VALUE_METRIC_ROWS = ("spend_gini", "purchases_gini", "top5_revenue_share", "top10_revenue_share",
                     "top20_revenue_share", "total_purchases_pct_error", "total_spend_pct_error",
                     "spend_decile_calibration_error", "purchases_mae", "purchases_rmse", "spend_mae", "spend_rmse",
                     "purchases_spearman", "spend_spearman", "purchases_interval_coverage",
                     "purchases_interval_share_inside")
CHURN_METRIC_ROWS = ("macro_f1", "accuracy", "log_loss", "brier", "churn_roc_auc", "churn_pr_auc",
                     "churn_top_decile_lift", "type_accuracy_among_churners", "type_macro_f1_among_churners")
_LOWER_IS_BETTER = ("_mae", "_rmse", "log_loss", "brier", "abs_pct_error", "_calibration_error")


def _better_when(metric: str) -> str:
    if metric.endswith("_pct_error") and "abs" not in metric:
        return "closer to 0"
    if metric.endswith("_interval_coverage"):
        return "closer to the interval level"
    if metric.endswith(("_share_inside", "_spearman")):
        return "reported only"
    return "lower" if metric.endswith(_LOWER_IS_BETTER) else "higher"


def metric_table(rows: list[str], columns: dict[str, dict]) -> pd.DataFrame:
    """One row per metric, which way is better, and one column per compared model."""
    data = {"metric": rows, "better when": [_better_when(r) for r in rows]}
    for name, values in columns.items():
        data[name] = [values.get(r, float("nan")) if values else float("nan") for r in rows]
    return pd.DataFrame(data)


def value_metrics(evaluation: dict) -> pd.DataFrame:
    """The value model's holdout metrics beside the naive baseline, the other candidates and
    the champion at training time."""
    chosen = evaluation.get("chosen")
    comparison = evaluation.get("comparison", {})
    columns = {f"{chosen} (chosen)": comparison.get(chosen, {}).get("metrics", {}),
               "naive baseline": evaluation.get("baseline") or {}}
    for name, entry in comparison.items():
        if name != chosen and "metrics" in entry:
            columns[name] = entry["metrics"]
    if evaluation.get("champion"):
        columns["champion at training time"] = evaluation["champion"]
    return metric_table(list(VALUE_METRIC_ROWS), columns)


def churn_metrics(evaluation: dict) -> pd.DataFrame:
    """The churn model's held-out metrics beside its baselines and the champion at training
    time (metrics none of them has left out)."""
    columns = {"model": evaluation.get("metrics") or {}}
    for name, values in (evaluation.get("baselines") or {}).items():
        columns[f"{name.replace('_', ' ')} baseline"] = values
    if evaluation.get("champion"):
        columns["champion at training time"] = evaluation["champion"]
    rows = [r for r in CHURN_METRIC_ROWS if any(r in (v or {}) for v in columns.values())]
    return metric_table(rows, columns)


def per_class_metrics(evaluation: dict) -> pd.DataFrame | None:
    """The churn model's metrics per class, one row each (None when not recorded)."""
    per_class = (evaluation.get("metrics") or {}).get("per_class")
    if not per_class:
        return None
    frame = pd.DataFrame(per_class).T.reset_index(names="class")
    frame["support"] = frame["support"].astype(int)
    return frame


# --- drift and runs ----------------------------------------------------------------------------


@dataclass
class Drift:
    """A drift report's columns (PSI per column), the major-shift threshold, the columns above
    it that raise an alert, and those above it that do not (customer age: ``AGE_COLUMNS``),
    as ``retain score`` and the score store decide."""

    columns: pd.DataFrame
    threshold: float
    alert: list[str]
    as_of: str
    shifted_without_alert: list[str] = field(default_factory=list)

    @property
    def psi(self) -> pd.Series:
        """PSI by column, where computed."""
        return self.columns.dropna(subset=["psi"]).set_index("column")["psi"]


def drift_of(report: dict) -> Drift:
    """``report``: a drift report that has columns."""
    frame = pd.DataFrame(report["columns"])
    threshold = float(report.get("threshold_psi", 0.25))
    above = frame.loc[frame["psi"].fillna(0) > threshold, "column"].tolist()
    alert = [c for c in above if c not in AGE_COLUMNS]
    return Drift(frame, threshold, alert, report.get("as_of", "?"), [c for c in above if c in AGE_COLUMNS])


def recent_runs(runs: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The last ``n`` score runs, newest first, with readable dates."""
    shown = runs.tail(n).drop(columns=["details"], errors="ignore").iloc[::-1].copy()
    shown["as_of"] = pd.to_datetime(shown["as_of"]).dt.strftime("%Y-%m-%d")
    shown["loaded_at"] = pd.to_datetime(shown["loaded_at"]).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    return shown
