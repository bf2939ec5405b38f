"""``retain report`` and ``retain models``: what the models and the last score run say, for
marketing and for data scientists.

``numbers`` reads the registry, the score store and the scores file and computes what is
shown; ``html`` draws the report page from it (one self-contained file), ``text`` the
``retain models`` listing. ``write_report`` puts the three steps together.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from retain.errors import RetainError
from retain.models.registry import CHURN_MODEL_NAME, VALUE_MODEL_NAME, registered_models
from retain.report import html, numbers
from retain.report.numbers import registry_overview
from retain.report.text import format_overview
from retain.settings import Settings


@dataclass
class ReportSummary:
    out: str
    scores: str
    tracking_uri: str
    charts: list[str]
    models: dict[str, str | None]
    notes: list[str]


def write_report(settings: Settings, out: Path, scores_path: Path | None = None,
                 progress: Callable[[str], None] = lambda message: None) -> ReportSummary:
    """The report of the scores at ``scores_path`` (default: the last score run's output) and of
    the models that made them, written to ``out``."""
    out = Path(out)
    if out.is_dir():
        raise RetainError(f"--out {out} is a folder; give a file name such as report.html")
    if scores_path:
        scores_path = Path(scores_path)
    else:
        scores_path = numbers.default_scores_path(settings)
        if not scores_path.exists():
            raise RetainError(f"the last score run recorded in the score store {settings.score_store_path} wrote "
                              f"{scores_path}, which no longer exists: give --scores PATH, or run `retain score` again")
    progress(f"reading the scores {scores_path}")
    scores = numbers.read_scores(scores_path)
    runs = numbers.score_runs(settings)
    uri, models = registered_models(settings)
    labels = numbers.scores_model_labels(scores)
    progress(f"reading the training runs from {uri}")
    with tempfile.TemporaryDirectory(prefix="retain-report-") as work:
        value = numbers.model_evidence(settings, models, VALUE_MODEL_NAME, labels.get("clv_model_version"), Path(work))
        churn = numbers.model_evidence(settings, models, CHURN_MODEL_NAME, labels.get("churn_model_version"), Path(work))
    overview = numbers.overview_of(uri, models, runs, settings.score_store_path)

    progress("drawing the charts")
    charts = html.Charts()
    drift = numbers.read_drift(scores_path)
    marketing = html.marketing_section(scores, numbers.scores_horizon(scores), charts, (drift or {}).get("not_scored"),
                                       churn.evaluation)
    page = html.page(
        as_of=numbers.scores_as_of(scores), customers=len(scores), labels=labels, uri=uri, scores_path=scores_path,
        marketing=marketing, registry=html.registry_section(overview),
        value=html.value_evidence_section(value, charts), churn=html.churn_evidence_section(churn, charts),
        drift=html.drift_section(drift, runs, charts),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.writing")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(out)
    notes = [n for n in (value.note, churn.note) if n]
    return ReportSummary(out=str(out), scores=str(scores_path), tracking_uri=uri, charts=charts.titles,
                         models={VALUE_MODEL_NAME: value.version, CHURN_MODEL_NAME: churn.version}, notes=notes)


__all__ = ["ReportSummary", "format_overview", "registry_overview", "write_report"]
