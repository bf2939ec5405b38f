"""The report as one self-contained HTML page: inline CSS, charts as base64 PNG data URIs, no
script, so it opens anywhere without a network. It draws what ``retain.report.numbers``
computes; the charts come from ``retain.training.plots`` (the module the trainers draw their
MLflow figures with), the evaluation figures are the PNGs the trainers logged, embedded as
they are.
"""

from __future__ import annotations

import base64
from html import escape

import numpy as np
import pandas as pd

from retain.models.registry import CHURN_MODEL_NAME, VALUE_MODEL_NAME
from retain.report import numbers
from retain.report.numbers import Drift, ModelEvidence

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
    return escape(str(text))


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


class Charts:
    """Draws the charts as embedded images and keeps their titles, in page order."""

    def __init__(self):
        self.titles: list[str] = []

    def drawn(self, fig, alt: str, caption: str = "") -> str:
        from retain.training import plots

        return self.logged(plots.to_png(fig), alt, caption)

    def logged(self, png: bytes, alt: str, caption: str = "") -> str:
        self.titles.append(alt)
        return _img(png, alt, caption)


# --- for marketing -------------------------------------------------------------------------------

_BREAKDOWNS = (  # column, chart title, axis label
    ("rfm_segment", "Customers by RFM segment", "RFM segment"),
    ("lifecycle_stage", "Customers by lifecycle stage", "lifecycle stage"),
    ("value_tier", "Customers by value tier (customer pyramid)", "value tier"),
    ("value_quadrant", "Customers by value-matrix quadrant", "quadrant"),
)


NO_CHURN_MODEL = "no churn model"


def marketing_section(scores: pd.DataFrame, horizon: float | None, charts: Charts,
                      not_scored_of_run: dict[str, int] | None = None, churn_evaluation: dict | None = None) -> str:
    """Who the customers are and who to act on. ``churn_evaluation``: the churn model's
    held-out evaluation, for the precision to expect of each action list."""
    from retain.training import plots

    scored = numbers.scored_customers(scores)
    at_risk = numbers.likely_to_churn(scored)
    figures = numbers.headline(scores, scored, at_risk)
    horizon_text = f"{horizon:g} days" if horizon else "the model's horizon"
    with_churn = numbers.has_churn_model(scores)
    parts = [_kpis([
        ("customers in the scores file", f"{figures.customers:,}"),
        ("active customers scored", f"{figures.scored:,}"),
        (f"total CLV over {horizon_text}", f"{figures.total_clv:,.0f}"),
        ("active customers likely to churn", f"{figures.likely_to_churn:,}" if with_churn else NO_CHURN_MODEL),
        ("CLV of those likely to churn", f"{figures.clv_likely_to_churn:,.0f}" if with_churn else NO_CHURN_MODEL),
    ])]
    groups = numbers.not_scored_groups(scores, not_scored_of_run)
    if groups is None:
        parts.append(f"<p>Not scored (and left out of every chart below): {figures.customers - figures.scored:,} "
                     "customers; each row's not_scored_reason says why (the counts by reason come with the "
                     "score run's drift report, which is not beside this scores file).</p>")
    elif len(groups):
        parts.append("<p>Not scored (and left out of every chart below): " + ", ".join(
            f"{_e(k)} {v:,}" for k, v in groups.items()) + ".</p>")

    value_label = f"total CLV over {horizon_text}"
    parts.append("<h3>Who the customers are</h3>")
    for column, title, label in _BREAKDOWNS:
        counts, values = numbers.counts_and_value(scored, column)
        parts.append(charts.drawn(plots.category_counts(counts, title, label, values, value_label), title))

    parts.append("<h3>Customer lifetime value</h3>")
    parts.append(charts.drawn(plots.clv_distribution(scored["clv"], horizon), "CLV distribution",
                              "Each bar counts the customers whose CLV falls in its range; the scale is logarithmic "
                              "because a few customers are worth far more than most."))
    parts.append(_interval(numbers.interval_words(scored), horizon_text))

    parts.append("<h3>Value matrix</h3>")
    by_quadrant = numbers.clv_by_quadrant(scored)
    counts, values = numbers.value_matrix(by_quadrant)
    parts.append(charts.drawn(plots.value_matrix(counts, values, value_label="CLV"), "Value matrix",
                              f"Rows: value so far (the last 180 days' spend); columns: CLV over {horizon_text}. "
                              + _high_words(numbers.high_value_cuts(scored))))
    parts.append(_table(pd.DataFrame([
        {"quadrant": row["quadrant"], "customers": row["customers"], value_label: f'{row["clv"]:,.0f}',
         "mean CLV per customer": "–" if row["mean_clv"] is None else f'{row["mean_clv"]:,.0f}',
         "what to do": row["move"]}
        for row in numbers.quadrant_rows(by_quadrant)])))

    parts.append("<h3>Active customers most at risk, by churn type</h3>")
    if with_churn:
        parts.append("<p>Active customers the churn model expects to leave within its horizon, ranked by the value "
                     "at risk (probability of churn &times; CLV). Drivers are what moved this customer's prediction "
                     "most; the action is the retention move for the churn type.</p>")
    if not with_churn:
        parts.append('<p class="note">These scores were made without a churn model, so they hold no churn '
                     "predictions: score with a churn-type model (retain train churn, then retain score).</p>")
    elif at_risk.empty:
        parts.append("<p>No active customer is predicted to churn.</p>")
    else:
        parts.append(_at_risk(*numbers.at_risk_by_type(at_risk), charts, numbers.list_precision(churn_evaluation)))
    return "\n".join(parts)


def _high_words(cuts: dict | None) -> str:
    if cuts is None:
        return ""
    return (f"High later = in the customer pyramid's top three tiers (platinum, gold, iron: "
            f"{cuts['high_later']:.0%} of these customers, holding {cuts['clv_of_high_later']:.0%} of the CLV); "
            f"high now = among the customers who together hold 80% of the training base's value so far "
            f"({cuts['high_now']:.0%} of these customers). The quadrants are not tiers: the pyramid's metals "
            "name the tiers only.")


def _interval(words: dict | None, horizon_text: str) -> str:
    """The CLV range in a marketer's words, with medians per tier."""
    if words is None:
        return '<p class="note">These scores hold no CLV range (clv_low, clv_high).</p>'
    level = words["level"]
    return ("<h3>How sure the CLV is</h3>"
            f"<p>Each customer's CLV is an average over what they may do in the next {_e(horizon_text)}. Beside it, "
            f"clv_low to clv_high is a range that holds what the customer will actually be worth at least "
            f"{level:.0%} of the time: the central {level:.0%} of their possible outcomes, widened where needed to "
            "hold the CLV itself. A range that starts at 0 means there is at least a "
            f"{(1 - level) / 2:.0%} chance that the customer buys nothing at all in that time: true of "
            f"{words['starts_at_zero']:.0%} of the {words['customers']:,} active customers. That is why CLV is "
            "best read over a group (a tier, a list): one customer is likely to be worth less than their CLV, "
            "a few far more.</p>"
            + _table(words["by_tier"]))


def _at_risk(by_type: pd.DataFrame, rows_of: dict[str, pd.DataFrame], charts: Charts,
             precision: dict[str, dict]) -> str:
    from retain.training import plots

    parts = [charts.drawn(plots.category_counts(by_type["customers"], "Active customers likely to churn, by churn type",
                                                "churn type", by_type["at_risk"], "value at risk (p(churn) x CLV)"),
                          "At-risk customers by churn type")]
    if not precision:
        parts.append('<p class="note">The churn model\'s training run recorded no held-out precision per churn '
                     "type, so how many of each list will really leave is not known.</p>")
    else:
        parts.append("<p>Beside each list: of the held-out customers the model flagged for that churn type, the "
                     "share who did leave for it within the horizon (precision), and the share of those who left "
                     "for it that it flagged (recall). The training run records these for the whole list, not "
                     "for its top rows (no gains curve).</p>")
    for churn_type, rows in rows_of.items():
        shown = rows.head(numbers.AT_RISK_ROWS_PER_TYPE)
        expected = precision.get(churn_type) or {}
        parts.append(f"<h4>{_e(churn_type)}: {len(rows):,} customers, value at risk "
                     f"{rows['value at risk'].sum():,.0f}"
                     + (f" (the {len(shown)} with most at stake shown)" if len(rows) > len(shown) else "") + "</h4>")
        if expected.get("precision") is not None:
            parts.append(f"<p>Expected precision of this list: {expected['precision']:.0%} (held out; recall "
                         f"{expected['recall']:.0%} of {int(expected.get('support') or 0):,} who left for "
                         f"{_e(churn_type)}).</p>")
        parts.append(_table(pd.DataFrame({
            "customer": shown["customer_id"].astype(str),
            "p(churn)": shown["p_churn"].map(lambda v: f"{v:.0%}"),
            "CLV": shown["clv"].map(lambda v: f"{v:,.0f}"), "value tier": shown["value_tier"],
            "drivers": shown["top_drivers"], "recommended action": shown["recommended_action"],
        })))
    return "\n".join(parts)


# --- for data scientists -------------------------------------------------------------------------


def registry_section(overview: dict) -> str:
    """Each registered model's versions, or a note that there is none."""
    tables = "".join(f"<p>{_e(name)}:</p>" + _table(frame) for name, frame in numbers.registry_tables(overview))
    return tables or '<p class="note">No registered models in this store.</p>'


def _evidence_header(evidence: ModelEvidence) -> str:
    if evidence.version is None:
        return f'<p class="note">{_e(evidence.note or "no model")}</p>'
    role = "the current champion" if evidence.is_champion else "not the current champion"
    text = f"<p>{_e(evidence.name)} version {_e(evidence.version)} ({role}), training run {_e(evidence.run_id)}.</p>"
    if evidence.note:
        text += f'<p class="note">{_e(evidence.note)}</p>'
    return text


def _logged_plots(evidence: ModelEvidence, shown: tuple, charts: Charts) -> list[str]:
    """The training run's plots (file name, title, caption), a note for each it lacks."""
    parts = []
    for name, alt, caption in shown:
        if name in evidence.plots:
            parts.append(charts.logged(evidence.plots[name], alt, caption))
        elif evidence.run_id:
            parts.append(f'<p class="note">The training run has no {_e(name)}.</p>')
    return parts


def value_evidence_section(evidence: ModelEvidence, charts: Charts) -> str:
    parts = [_evidence_header(evidence)]
    evaluation = evidence.evaluation
    if evaluation:
        parts.append("<p>Holdout evaluation: fitted on the calibration period, measured on the holdout period "
                     "(purchases and spend per customer).</p>")
        parts.append(_table(numbers.value_metrics(evaluation)))
        parts.append(f"<p>Gate: {_e(evaluation.get('decision', ''))}</p>")
        for warning in evaluation.get("warnings") or []:
            parts.append(f'<p class="note">{_e(warning)}</p>')
        parts.append(_interval_calibration(evaluation))
    parts += _logged_plots(evidence, (
        ("pit_histogram.png", "PIT histogram of holdout purchases",
         "Where each customer's actual holdout purchases fell in their predictive distribution: flat bars mean "
         "calibrated intervals, a U shape too narrow, a hump too wide."),
        ("cumulative_tracking.png", "Cumulative repeat purchases, actual vs predicted",
         "Repeat purchases of the calibration customers, summed day by day: the model's expectation against what happened."),
        ("holdout_by_frequency.png", "Holdout purchases by calibration frequency", ""),
        ("p_alive_matrix.png", "P(alive) matrix", "Probability that a customer is still active, by frequency and recency."),
        ("frequency_recency_matrix.png", "Frequency/recency matrix", "Expected purchases by frequency and recency."),
    ), charts)
    return "\n".join(parts)


def _interval_calibration(evaluation: dict) -> str:
    """The chosen value model's interval coverage in words: the randomized PIT coverage
    (judges calibration) beside the plain share inside (higher for whole-number counts)."""
    metrics = (evaluation.get("comparison", {}).get(evaluation.get("chosen"), {}) or {}).get("metrics", {})
    coverage, inside = metrics.get("purchases_interval_coverage"), metrics.get("purchases_interval_share_inside")
    if coverage is None or inside is None:
        return ""
    level = evaluation.get("interval", 0.8)
    return (f"<p>Purchase intervals ({level:.0%}): randomized PIT coverage {coverage:.1%}, which is {level:.0%} "
            f"when the intervals are calibrated; {inside:.1%} of customers fell inside their interval, more than "
            f"{level:.0%} by construction for whole-number counts (a customer who most likely buys nothing gets "
            "the interval 0 to 0), so that share is not read as miscalibration. The PIT histogram below shows "
            "the whole distribution.</p>")


def churn_evidence_section(evidence: ModelEvidence, charts: Charts) -> str:
    parts = [_evidence_header(evidence)]
    evaluation = evidence.evaluation
    if evaluation:
        parts.append("<p>Evaluation on held-out customers (never seen in training).</p>")
        parts.append(_table(numbers.churn_metrics(evaluation)))
        per_class = numbers.per_class_metrics(evaluation)
        if per_class is not None:
            parts.append("<p>Per class:</p>" + _table(per_class))
        calibration = evaluation.get("calibration") or {}
        if calibration:
            parts.append(f"<p>Calibration: log-loss {_fmt(calibration.get('log_loss_before'))} &rarr; "
                         f"{_fmt(calibration.get('log_loss_after'))}, Brier {_fmt(calibration.get('brier_before'))} "
                         f"&rarr; {_fmt(calibration.get('brier_after'))}.</p>")
        parts.append(f"<p>Gate: {_e(evaluation.get('decision', ''))}</p>")
    parts += _logged_plots(evidence, (("churn_calibration.png", "Calibration curves", ""),
                                      ("confusion_matrix.png", "Confusion matrix", ""),
                                      ("feature_importance.png", "Feature importances", "")), charts)
    return "\n".join(parts)


def drift_section(drift: dict | None, runs: pd.DataFrame, charts: Charts) -> str:
    from retain.training import plots

    parts = []
    if drift is None:
        parts.append('<p class="note">No drift report beside the scores file (retain score writes OUT.drift.json).</p>')
    elif "columns" not in drift:
        parts.append(f'<p class="note">{_e(drift.get("note", "the drift report is empty"))}</p>')
    else:
        found: Drift = numbers.drift_of(drift)
        parts.append(f"<p>Scoring date {_e(found.as_of)}: population stability index (PSI) of each "
                     f"feature and score against the models' training data. Above {found.threshold:g} is a major shift. "
                     + (f"<strong>Alert: {_e(', '.join(found.alert))}.</strong>" if found.alert else "No major shift.")
                     + (f" {_e(', '.join(found.shifted_without_alert))} (customer age) moved past it, which "
                        "raises no alert: ages grow with the time between training and scoring, whatever the "
                        "business does." if found.shifted_without_alert else "")
                     + "</p>")
        psi = found.psi
        if len(psi):
            parts.append(charts.drawn(plots.drift_bars(psi, found.threshold), "Drift (PSI per column)"))
        parts.append(_table(found.columns))
    if len(runs):
        parts.append("<p>Score runs recorded in the score store (newest first):</p>"
                     + _table(numbers.recent_runs(runs), numeric=True))
    return "\n".join(parts)


# --- the page ----------------------------------------------------------------------------------


def page(*, as_of, customers: int, labels: dict, uri: str, scores_path, marketing: str, registry: str,
         value: str, churn: str, drift: str) -> str:
    """The whole page around its sections (already HTML)."""
    body = f"""
<header><h1>Customer value and churn report</h1>
<div>Scores as of {_e(as_of)} &middot; {customers:,} customers &middot; models {_e(labels.get('clv_model_version') or 'none')}
and {_e(labels.get('churn_model_version') or 'none')}</div>
<nav><a href="#marketing">For marketing</a><a href="#science">For data scientists</a></nav></header>
<main>
<section class="audience" id="marketing"><h2>For marketing: who the customers are and who to act on</h2>
{marketing}
</section>
<section class="audience" id="science"><h2>For data scientists: how good the models are</h2>
<p>Tracking store: {_e(uri)}. Scores file: {_e(scores_path)}.</p>
<h3>Registered models</h3>
{registry}
<h3>Value model ({_e(VALUE_MODEL_NAME)}): holdout evaluation</h3>
{value}
<h3>Churn-type model ({_e(CHURN_MODEL_NAME)}): held-out evaluation</h3>
{churn}
<h3>Drift of the last score run</h3>
{drift}
</section>
</main>"""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>retain report: scores as of {_e(as_of)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
