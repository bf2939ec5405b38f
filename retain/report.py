"""``retain report`` and ``retain models``: what the models and the last score run say, for
marketing and for data scientists.

The report is one self-contained HTML file: inline CSS, charts as base64 PNG data URIs, no
script, so it opens anywhere without a network. Its charts come from ``retain.training.plots``
(the module the trainers draw their MLflow figures with); the evaluation figures are the PNGs
the trainers logged to MLflow, embedded as they are.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from retain.errors import RetainError
from retain.models.value.tiers import QUADRANTS
from retain.settings import Settings

VALUE_MODEL = "retain-clv"
CHURN_MODEL = "retain-churn-type"
# Holdout metrics shown per version by `retain models` (name -> better when lower?).
KEY_METRICS = {
    VALUE_MODEL: ("purchases_mae", "baseline_purchases_mae", "purchases_spearman", "total_purchases_pct_error",
                  "top10_revenue_share"),
    CHURN_MODEL: ("macro_f1", "baseline_majority_macro_f1", "baseline_logistic_rfm_macro_f1", "churn_roc_auc",
                  "log_loss"),
}
REQUIRED_SCORE_COLUMNS = ("customer_id", "as_of", "not_scored_reason", "clv", "value_tier", "value_quadrant",
                          "rfm_segment", "lifecycle_stage", "p_churn", "will_churn", "churn_type", "top_drivers",
                          "recommended_action")
LIFECYCLE_ORDER = ("acquisition", "growth", "maturity", "decline", "termination")
TIER_ORDER = ("platinum", "gold", "iron", "lead")
QUADRANT_ORDER = (QUADRANTS[(True, True)], QUADRANTS[(True, False)], QUADRANTS[(False, True)], QUADRANTS[(False, False)])
AT_RISK_ROWS_PER_TYPE = 15


# --- the registry and the score runs ---------------------------------------------------------


def score_runs(settings: Settings) -> pd.DataFrame:
    """The score store's ``runs`` table (empty when no run was loaded)."""
    from retain.serving.store import ScoreStore

    try:
        return ScoreStore(settings.score_store_path).runs()
    except Exception as exc:  # duckdb raises its own error types; name the file instead
        raise RetainError(f"cannot read the runs table of the score store {settings.score_store_path}: {exc}") from None


def _version_number(label) -> str | None:
    """'retain-clv/v3' -> '3'."""
    if not isinstance(label, str) or "/v" not in label:
        return None
    return label.rsplit("/v", 1)[1]


def registry_overview(settings: Settings) -> dict:
    """The store's URI, every registered model with its aliases and versions (gate outcome,
    key holdout metrics), and the versions the last score run used."""
    from mlflow.exceptions import MlflowException

    from retain.training.registry import LOCK_SUFFIX, Registry, configure_tracking, display_uri, gate_passed

    uri = configure_tracking(settings)
    registry = Registry(settings)
    runs = score_runs(settings)
    last = runs.iloc[-1].to_dict() if len(runs) else None
    used = {}
    if last is not None:
        used = {VALUE_MODEL: _version_number(last.get("clv_model_version")),
                CHURN_MODEL: _version_number(last.get("churn_model_version"))}
    try:
        registered = registry.call(lambda: registry.client.search_registered_models())
    except MlflowException as exc:
        raise RetainError(f"cannot list the registered models in {display_uri(uri)}: {exc.message}") from None
    models = []
    for model in sorted(registered, key=lambda m: m.name):
        if model.name.endswith(LOCK_SUFFIX):
            continue  # a promotion in progress holds this lock; it is not a model
        versions = []
        # Registry.versions reads aliases from the registered model: over REST, searched versions carry none
        for version in registry.versions(model.name):
            metrics = {}
            if version["run_id"]:
                try:
                    all_metrics = registry.call(lambda: registry.client.get_run(version["run_id"]).data.metrics)
                    metrics = {k: all_metrics[k] for k in KEY_METRICS.get(model.name, ()) if k in all_metrics}
                except MlflowException:
                    metrics = {}
            tags = version["tags"]
            versions.append({
                "version": version["version"],
                "aliases": version["aliases"],
                "role": tags.get("role"),
                "gate": tags.get("gate"),
                "gate_passed": gate_passed(tags),
                "run_id": version["run_id"],
                "created": pd.Timestamp(version["created"], unit="ms").isoformat(timespec="seconds"),
                "metrics": metrics,
                "used_by_last_score_run": used.get(model.name) == version["version"],
            })
        aliases = {alias: v["version"] for v in versions for alias in v["aliases"]}
        models.append({"name": model.name, "aliases": dict(sorted(aliases.items())), "versions": versions})
    last_run = None
    if last is not None:
        last_run = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in last.items()
                    if k in ("as_of", "loaded_at", "output", "clv_model_version", "churn_model_version", "customers",
                             "scored", "drift_alert")}
        last_run = {k: (v.item() if hasattr(v, "item") else v) for k, v in last_run.items()}
    return {"tracking_uri": display_uri(uri), "score_store": str(settings.score_store_path), "models": models,
            "last_score_run": last_run}


def format_overview(overview: dict) -> str:
    """`retain models` as text a person reads."""
    lines = [f"store: {overview['tracking_uri']}"]
    if not overview["models"]:
        lines.append("no registered models: train one with `retain train clv` / `retain train churn`")
    for model in overview["models"]:
        aliases = ", ".join(f"{alias} -> v{version}" for alias, version in model["aliases"].items()) or "no aliases"
        lines.append(f"\n{model['name']} ({aliases})")
        for version in model["versions"]:
            marks = [f"@{a}" for a in version["aliases"]]
            if version["used_by_last_score_run"]:
                marks.append("used by the last score run")
            lines.append(f"  v{version['version']:<4} {' '.join(marks) or '-'}  created {version['created']}  "
                         f"run {(version['run_id'] or '-')[:8]}")
            if version["metrics"]:
                lines.append("        " + ", ".join(f"{k} {v:.4g}" for k, v in version["metrics"].items()))
            if version["gate"]:
                outcome = {True: "passed", False: "failed", None: "outcome not recorded"}[version["gate_passed"]]
                lines.append(f"        gate {outcome}: {version['gate']}")
    run = overview["last_score_run"]
    if run is None:
        lines.append(f"\nlast score run: none recorded in {overview['score_store']}")
    else:
        lines.append(f"\nlast score run: as of {str(run['as_of'])[:10]}, loaded {run['loaded_at']}, "
                     f"{run['clv_model_version'] or 'no value model'} + {run['churn_model_version'] or 'no churn model'}, "
                     f"{run['scored']:,} of {run['customers']:,} customers scored -> {run['output']}")
    return "\n".join(lines)


# --- inputs of the report ---------------------------------------------------------------------


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


def _model_evidence(client, name: str, label_in_scores: str | None, work: Path) -> ModelEvidence:
    from mlflow.exceptions import MlflowException

    evidence = ModelEvidence(name)
    try:
        aliases = dict(client.get_registered_model(name).aliases or {})
    except MlflowException:
        evidence.note = f"{name} is not registered in this store"
        return evidence
    version = _version_number(label_in_scores) or (str(aliases["champion"]) if "champion" in aliases else None)
    if version is None:
        evidence.note = f"{name} has no champion and the scores name no version"
        return evidence
    if label_in_scores is None:
        evidence.note = f"the scores were made without {name}: this is its current champion"
    evidence.version = version
    evidence.is_champion = str(aliases.get("champion")) == version
    try:
        evidence.run_id = client.get_model_version(name, version).run_id
        run = client.get_run(evidence.run_id)
    except MlflowException:
        evidence.note = f"{name} version {version} or its training run is not in this store"
        return evidence
    evidence.metrics = dict(run.data.metrics)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    try:
        evaluation = Path(client.download_artifacts(evidence.run_id, "evaluation.json", str(folder)))
        evidence.evaluation = json.loads(evaluation.read_text())
    except (MlflowException, OSError, ValueError):
        evidence.note = "; ".join(filter(None, [
            evidence.note, f"the training run {evidence.run_id} of {name} v{version} has no evaluation.json"]))
    try:
        plots_dir = Path(client.download_artifacts(evidence.run_id, "plots", str(folder)))
        evidence.plots = {p.name: p.read_bytes() for p in sorted(plots_dir.glob("*.png"))}
    except (MlflowException, OSError):
        pass
    return evidence


def _drift_of(scores_path: Path) -> dict | None:
    path = scores_path.with_name(scores_path.name + ".drift.json")
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {"note": f"{path} is not valid JSON"}


# --- HTML ------------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d2733;
       background: #f6f7f9; line-height: 1.45; }
header { background: #17324d; color: white; padding: 20px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 26px; }
main { padding: 8px 32px 40px 32px; max-width: 1200px; }
h2 { border-bottom: 2px solid #17324d; padding-bottom: 4px; margin-top: 36px; }
h3 { margin-top: 26px; }
section.audience { background: white; padding: 4px 24px 20px 24px; margin-top: 24px; border-radius: 6px;
                   box-shadow: 0 1px 3px rgba(0,0,0,0.12); }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.kpi { background: #eef3f8; border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.kpi .value { font-size: 22px; font-weight: 600; }
.kpi .label { font-size: 12px; color: #4a5a6a; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #dde3ea; background: white; }
figcaption { font-size: 13px; color: #4a5a6a; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border: 1px solid #d5dde6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #7a4a00; background: #fff6e5; padding: 6px 10px; border-radius: 4px; }
nav a { color: #cfe3f7; margin-right: 16px; }
"""


def _e(text) -> str:
    return html.escape(str(text))


def _img(png: bytes, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{digits - 1}f}"
    return str(value)


def _table(frame: pd.DataFrame, numeric: bool = True) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            cells.append(f'<td class="num">{_e(_fmt(value))}</td>' if is_number and numeric else f"<td>{_e(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kpis(items: list[tuple[str, str]]) -> str:
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>' for k, v in items
    ) + "</div>"


def _ordered_counts(column: pd.Series, order=None) -> pd.Series:
    counts = column.fillna("unknown").astype(str).value_counts()
    if order:
        known = [o for o in order if o in counts.index]
        counts = counts.reindex(known + [c for c in counts.index if c not in order])
    return counts


def _marketing(scores: pd.DataFrame, horizon: float | None, charts: list[str]) -> str:
    from retain.training import plots

    scored = scores[scores["not_scored_reason"] == ""]
    parts = []
    will_churn = scored["will_churn"].astype("boolean").fillna(False).astype(bool)  # missing: no prediction
    at_risk = scored[will_churn].copy()
    horizon_text = f"{horizon:g} days" if horizon else "the model's horizon"
    parts.append(_kpis([
        ("customers in the scores file", f"{len(scores):,}"),
        ("active customers scored", f"{len(scored):,}"),
        (f"total CLV over {horizon_text}", f"{scored['clv'].sum():,.0f}"),
        ("active customers likely to churn", f"{len(at_risk):,}"),
        ("CLV of those likely to churn", f"{at_risk['clv'].sum():,.0f}"),
    ]))
    not_scored = scores.loc[scores["not_scored_reason"] != "", "not_scored_reason"]
    if len(not_scored):
        from retain.serving.batch import reason_group

        groups = not_scored.map(reason_group).value_counts()
        parts.append("<p>Not scored (and left out of every chart below): " + ", ".join(
            f"{_e(k)} {v:,}" for k, v in groups.items()) + ".</p>")

    def chart(fig, alt, caption=""):
        charts.append(alt)
        return _img(plots.to_png(fig), alt, caption)

    value_label = f"total CLV over {horizon_text}"
    parts.append("<h3>Who the customers are</h3>")
    for column, title, label, order in (
        ("rfm_segment", "Customers by RFM segment", "RFM segment", None),
        ("lifecycle_stage", "Customers by lifecycle stage", "lifecycle stage", LIFECYCLE_ORDER),
        ("value_tier", "Customers by value tier (customer pyramid)", "value tier", TIER_ORDER),
        ("value_quadrant", "Customers by value-matrix quadrant", "quadrant", QUADRANT_ORDER),
    ):
        counts = _ordered_counts(scored[column], order)
        values = scored.groupby(scored[column].fillna("unknown").astype(str))["clv"].sum()
        parts.append(chart(plots.category_counts(counts, title, label, values, value_label), title))

    parts.append("<h3>Customer lifetime value</h3>")
    parts.append(chart(plots.clv_distribution(scored["clv"], horizon), "CLV distribution",
                       "Each bar counts the customers whose CLV falls in its range; the scale is logarithmic "
                       "because a few customers are worth far more than most."))

    parts.append("<h3>Value matrix</h3>")
    grid = {(int(now), int(later)): name for (now, later), name in QUADRANTS.items()}
    by_quadrant = scored.groupby("value_quadrant")["clv"].agg(["count", "sum", "mean"])
    counts = pd.DataFrame(np.zeros((2, 2)), index=["low", "high"], columns=["low", "high"])
    values = counts.copy()
    for (i, j), name in grid.items():
        if name in by_quadrant.index:
            counts.iat[i, j], values.iat[i, j] = by_quadrant.at[name, "count"], by_quadrant.at[name, "sum"]
    parts.append(chart(plots.value_matrix(counts, values, value_label="CLV"), "Value matrix",
                       f"Rows: value so far; columns: CLV over {horizon_text}; high = above the training base's median."))
    from retain.models.actions import QUADRANT_MOVES

    matrix_table = pd.DataFrame([
        {"quadrant": q, "customers": int(by_quadrant.at[q, "count"]) if q in by_quadrant.index else 0,
         value_label: f'{by_quadrant.at[q, "sum"]:,.0f}' if q in by_quadrant.index else "0",
         "mean CLV per customer": f'{by_quadrant.at[q, "mean"]:,.0f}' if q in by_quadrant.index else "–",
         "what to do": QUADRANT_MOVES.get(q, "")}
        for q in QUADRANT_ORDER])
    parts.append(_table(matrix_table))

    parts.append("<h3>Active customers most at risk, by churn type</h3>")
    parts.append("<p>Active customers the churn model expects to leave within its horizon, ranked by the value "
                 "at risk (probability of churn &times; CLV). Drivers are what moved this customer's prediction "
                 "most; the action is the retention move for the churn type.</p>")
    has_churn_model = "churn_model_version" in scores.columns and scores["churn_model_version"].notna().any()
    if not has_churn_model:
        parts.append('<p class="note">These scores were made without a churn model, so they hold no churn '
                     "predictions: score with a churn-type model (retain train churn, then retain score).</p>")
    elif at_risk.empty:
        parts.append("<p>No active customer is predicted to churn.</p>")
    else:
        at_risk["value at risk"] = at_risk["p_churn"] * at_risk["clv"]
        by_type = at_risk.groupby("churn_type").agg(customers=("customer_id", "size"),
                                                    clv=("clv", "sum"), at_risk=("value at risk", "sum"))
        by_type = by_type.sort_values("at_risk", ascending=False)
        parts.append(chart(plots.category_counts(by_type["customers"], "Active customers likely to churn, by churn type",
                                                 "churn type", by_type["at_risk"], "value at risk (p(churn) x CLV)"),
                           "At-risk customers by churn type"))
        for churn_type in by_type.index:
            rows = at_risk[at_risk["churn_type"] == churn_type].sort_values("value at risk", ascending=False)
            shown = rows.head(AT_RISK_ROWS_PER_TYPE)
            parts.append(f"<h4>{_e(churn_type)}: {len(rows):,} customers, value at risk "
                         f"{rows['value at risk'].sum():,.0f}"
                         + (f" (the {len(shown)} with most at stake shown)" if len(rows) > len(shown) else "") + "</h4>")
            table = pd.DataFrame({
                "customer": shown["customer_id"].astype(str),
                "p(churn)": shown["p_churn"].map(lambda v: f"{v:.0%}"),
                "CLV": shown["clv"].map(lambda v: f"{v:,.0f}"), "value tier": shown["value_tier"],
                "drivers": shown["top_drivers"], "recommended action": shown["recommended_action"],
            })
            parts.append(_table(table))
    return "\n".join(parts)


def _metric_table(rows: list[str], columns: dict[str, dict]) -> pd.DataFrame:
    lower = ("_mae", "_rmse", "log_loss", "brier", "abs_pct_error")
    data = {"metric": rows, "better when": ["closer to 0" if r.endswith("_pct_error") and "abs" not in r
                                            else "lower" if r.endswith(lower) else "higher" for r in rows]}
    for name, values in columns.items():
        data[name] = [values.get(r, float("nan")) if values else float("nan") for r in rows]
    return pd.DataFrame(data)


def _value_evidence(evidence: ModelEvidence, charts: list[str]) -> str:
    parts = [_evidence_header(evidence)]
    evaluation = evidence.evaluation
    if evaluation:
        chosen = evaluation.get("chosen")
        comparison = evaluation.get("comparison", {})
        columns = {f"{chosen} (chosen)": comparison.get(chosen, {}).get("metrics", {}),
                   "naive baseline": evaluation.get("baseline") or {}}
        for name, entry in comparison.items():
            if name != chosen and "metrics" in entry:
                columns[name] = entry["metrics"]
        if evaluation.get("champion"):
            columns["champion at training time"] = evaluation["champion"]
        rows = ["purchases_mae", "purchases_rmse", "spend_mae", "spend_rmse", "total_purchases_pct_error",
                "purchases_spearman", "spend_spearman", "top10_revenue_share", "top20_revenue_share"]
        parts.append("<p>Holdout evaluation: fitted on the calibration period, measured on the holdout period "
                     "(purchases and spend per customer).</p>")
        parts.append(_table(_metric_table(rows, columns)))
        parts.append(f"<p>Gate: {_e(evaluation.get('decision', ''))}</p>")
        for warning in evaluation.get("warnings") or []:
            parts.append(f'<p class="note">{_e(warning)}</p>')
    for name, alt, caption in (
        ("cumulative_tracking.png", "Cumulative repeat purchases, actual vs predicted",
         "Repeat purchases of the calibration customers, summed day by day: the model's expectation against what happened."),
        ("holdout_by_frequency.png", "Holdout purchases by calibration frequency", ""),
        ("p_alive_matrix.png", "P(alive) matrix", "Probability that a customer is still active, by frequency and recency."),
        ("frequency_recency_matrix.png", "Frequency/recency matrix", "Expected purchases by frequency and recency."),
    ):
        if name in evidence.plots:
            charts.append(alt)
            parts.append(_img(evidence.plots[name], alt, caption))
        elif evidence.run_id:
            parts.append(f'<p class="note">The training run has no {_e(name)}.</p>')
    return "\n".join(parts)


def _churn_evidence(evidence: ModelEvidence, charts: list[str]) -> str:
    parts = [_evidence_header(evidence)]
    evaluation = evidence.evaluation
    if evaluation:
        columns = {"model": evaluation.get("metrics") or {}}
        for name, values in (evaluation.get("baselines") or {}).items():
            columns[f"{name.replace('_', ' ')} baseline"] = values
        if evaluation.get("champion"):
            columns["champion at training time"] = evaluation["champion"]
        rows = ["macro_f1", "accuracy", "log_loss", "brier", "churn_roc_auc", "churn_pr_auc", "churn_top_decile_lift",
                "type_accuracy_among_churners", "type_macro_f1_among_churners"]
        rows = [r for r in rows if any(r in (v or {}) for v in columns.values())]
        parts.append("<p>Evaluation on held-out customers (never seen in training).</p>")
        parts.append(_table(_metric_table(rows, columns)))
        per_class = (evaluation.get("metrics") or {}).get("per_class")
        if per_class:
            frame = pd.DataFrame(per_class).T.reset_index(names="class")
            frame["support"] = frame["support"].astype(int)
            parts.append("<p>Per class:</p>" + _table(frame))
        calibration = evaluation.get("calibration") or {}
        if calibration:
            parts.append(f"<p>Calibration: log-loss {_fmt(calibration.get('log_loss_before'))} &rarr; "
                         f"{_fmt(calibration.get('log_loss_after'))}, Brier {_fmt(calibration.get('brier_before'))} "
                         f"&rarr; {_fmt(calibration.get('brier_after'))}.</p>")
        parts.append(f"<p>Gate: {_e(evaluation.get('decision', ''))}</p>")
    for name, alt in (("churn_calibration.png", "Calibration curves"), ("confusion_matrix.png", "Confusion matrix"),
                      ("feature_importance.png", "Feature importances")):
        if name in evidence.plots:
            charts.append(alt)
            parts.append(_img(evidence.plots[name], alt))
        elif evidence.run_id:
            parts.append(f'<p class="note">The training run has no {_e(name)}.</p>')
    return "\n".join(parts)


def _evidence_header(evidence: ModelEvidence) -> str:
    if evidence.version is None:
        return f'<p class="note">{_e(evidence.note or "no model")}</p>'
    role = "the current champion" if evidence.is_champion else "not the current champion"
    text = f"<p>{_e(evidence.name)} version {_e(evidence.version)} ({role}), training run {_e(evidence.run_id)}.</p>"
    if evidence.note:
        text += f'<p class="note">{_e(evidence.note)}</p>'
    return text


def _drift_section(drift: dict | None, runs: pd.DataFrame, charts: list[str]) -> str:
    from retain.training import plots

    parts = []
    if drift is None:
        parts.append('<p class="note">No drift report beside the scores file (retain score writes OUT.drift.json).</p>')
    elif "columns" not in drift:
        parts.append(f'<p class="note">{_e(drift.get("note", "the drift report is empty"))}</p>')
    else:
        frame = pd.DataFrame(drift["columns"])
        threshold = float(drift.get("threshold_psi", 0.25))
        alert = frame.loc[frame["psi"].fillna(0) > threshold, "column"].tolist()
        parts.append(f"<p>Scoring date {_e(drift.get('as_of', '?'))}: population stability index (PSI) of each "
                     f"feature and score against the models' training data. Above {threshold:g} is a major shift. "
                     + (f"<strong>Alert: {_e(', '.join(alert))}.</strong>" if alert else "No major shift.") + "</p>")
        psi = frame.dropna(subset=["psi"]).set_index("column")["psi"]
        if len(psi):
            charts.append("Drift (PSI per column)")
            parts.append(_img(plots.to_png(plots.drift_bars(psi, threshold)), "Drift (PSI per column)"))
        parts.append(_table(frame))
    if len(runs):
        shown = runs.tail(10).drop(columns=["details"], errors="ignore").iloc[::-1].copy()
        shown["as_of"] = pd.to_datetime(shown["as_of"]).dt.strftime("%Y-%m-%d")
        shown["loaded_at"] = pd.to_datetime(shown["loaded_at"]).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append("<p>Score runs recorded in the score store (newest first):</p>" + _table(shown, numeric=True))
    return "\n".join(parts)


@dataclass
class ReportSummary:
    out: str
    scores: str
    tracking_uri: str
    charts: list[str]
    models: dict[str, str | None]
    notes: list[str]


def default_scores_path(settings: Settings) -> Path:
    runs = score_runs(settings)
    if runs.empty:
        raise RetainError(f"no score run is recorded in the score store {settings.score_store_path}: run "
                          "`retain score` first, or give --scores PATH")
    return Path(runs.iloc[-1]["output"])


def write_report(settings: Settings, out: Path, scores_path: Path | None = None,
                 progress: Callable[[str], None] = lambda message: None) -> ReportSummary:
    from mlflow import MlflowClient

    from retain.training.registry import configure_tracking, display_uri

    out = Path(out)
    if out.is_dir():
        raise RetainError(f"--out {out} is a folder; give a file name such as report.html")
    scores_path = Path(scores_path) if scores_path else default_scores_path(settings)
    progress(f"reading the scores {scores_path}")
    scores = read_scores(scores_path)
    runs = score_runs(settings)
    uri = display_uri(configure_tracking(settings))
    client = MlflowClient()
    charts: list[str] = []
    labels = {column: (scores[column].dropna().astype(str).mode().iat[0] if scores[column].notna().any() else None)
              for column in ("clv_model_version", "churn_model_version") if column in scores.columns}
    horizon = (float(scores["value_horizon_days"].dropna().iat[0])
               if "value_horizon_days" in scores.columns and scores["value_horizon_days"].notna().any() else None)
    progress(f"reading the training runs from {uri}")
    with tempfile.TemporaryDirectory(prefix="retain-report-") as work:
        value = _model_evidence(client, VALUE_MODEL, labels.get("clv_model_version"), Path(work))
        churn = _model_evidence(client, CHURN_MODEL, labels.get("churn_model_version"), Path(work))
    overview = registry_overview(settings)
    as_of = pd.Timestamp(scores["as_of"].dropna().iat[0]).date() if scores["as_of"].notna().any() else "?"

    progress("drawing the charts")
    marketing = _marketing(scores, horizon, charts)
    registry = "".join(
        f"<p>{_e(m['name'])}:</p>" + _table(pd.DataFrame([
            {"version": v["version"], "aliases": ", ".join(v["aliases"]) or "-",
             "used by the last score run": "yes" if v["used_by_last_score_run"] else "",
             **{k.replace("_", " "): v["metrics"].get(k) for k in KEY_METRICS.get(m["name"], ())}}
            for v in m["versions"]]))
        for m in overview["models"] if m["versions"])
    body = f"""
<header><h1>Customer value and churn report</h1>
<div>Scores as of {_e(as_of)} &middot; {len(scores):,} customers &middot; models {_e(labels.get('clv_model_version') or 'none')}
and {_e(labels.get('churn_model_version') or 'none')}</div>
<nav><a href="#marketing">For marketing</a><a href="#science">For data scientists</a></nav></header>
<main>
<section class="audience" id="marketing"><h2>For marketing: who the customers are and who to act on</h2>
{marketing}
</section>
<section class="audience" id="science"><h2>For data scientists: how good the models are</h2>
<p>Tracking store: {_e(uri)}. Scores file: {_e(scores_path)}.</p>
<h3>Registered models</h3>
{registry or '<p class="note">No registered models in this store.</p>'}
<h3>Value model (retain-clv): holdout evaluation</h3>
{_value_evidence(value, charts)}
<h3>Churn-type model (retain-churn-type): held-out evaluation</h3>
{_churn_evidence(churn, charts)}
<h3>Drift of the last score run</h3>
{_drift_section(_drift_of(scores_path), runs, charts)}
</section>
</main>"""
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>retain report: scores as of {_e(as_of)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.writing")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(out)
    notes = [n for n in (value.note, churn.note) if n]
    return ReportSummary(out=str(out), scores=str(scores_path), tracking_uri=uri, charts=charts,
                         models={VALUE_MODEL: value.version, CHURN_MODEL: churn.version}, notes=notes)
