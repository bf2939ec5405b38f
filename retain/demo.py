"""``retain demo``: the whole product once, on generated data or on CDNOW.

Generate (or import) a customer base, train and gate both model families into a store of
the demo's own, score every customer through ``retain score``'s job (the scoring core),
load the score store, and say where everything is. The CLI only prints what this returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from retain.data import load_dataset
from retain.errors import RetainError
from retain.settings import Settings

CDNOW = "cdnow"
GENERATED = "generated"
# each demo's own folder by default: the CDNOW demo must not write over the generated one's data
DEFAULT_WORKDIRS = {GENERATED: Path("demo-out"), CDNOW: Path("demo-cdnow")}
_MARK = "demo.json"  # which demo a folder holds


def claim_workdir(workdir: Path, source: str) -> None:
    """Mark ``workdir`` as this demo's, or refuse it when it holds another demo's data (its
    tables would mix with this one's: the generated demo's churn events and interactions
    beside CDNOW's purchases)."""
    mark = workdir / _MARK
    held = None
    if mark.exists():
        try:
            held = json.loads(mark.read_text()).get("data")
        except (OSError, ValueError, AttributeError):
            held = None
    elif (workdir / "data" / "transactions.parquet").exists():  # a folder from before the mark
        held = GENERATED if (workdir / "data" / "truth.json").exists() else CDNOW
    if held is not None and held != source:
        raise RetainError(
            f"{workdir} holds the {held} demo's data; the {source} demo would mix its tables with them. "
            f"Run it in a folder of its own (--workdir {DEFAULT_WORKDIRS[source]}), or delete {workdir} first")
    workdir.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps({"data": source}) + "\n")


@dataclass
class DemoResult:
    workdir: Path
    data: Path
    settings: Settings
    as_of: pd.Timestamp
    value: object | None = None  # ValueTrainingResult
    churn: object | None = None  # ChurnTrainingResult
    summary: object | None = None  # ScoreSummary
    scores: Path | None = None
    report: Path | None = None
    notes: list[str] = field(default_factory=list)


def run_demo(workdir: Path, *, settings: Settings, source: str = GENERATED, customers: int = 20_000,
             seed: int = 0, progress: Callable[[str], None] = lambda m: None) -> DemoResult:
    from retain.serving import load_model_pair
    from retain.serving.jobs import ScoreJob, run_score_job
    from retain.serving.store import ScoreStore
    from retain.training.churn import train_churn_model
    from retain.training.value import train_value_model

    workdir = Path(workdir)
    claim_workdir(workdir, source)
    data = workdir / "data"
    if source == CDNOW:
        from retain.data.cdnow import import_cdnow

        progress(f"importing the CDNOW master file (shipped with lifetimes) into {data}")
        import_cdnow(data, "master")
        dataset = load_dataset(data, data_cutoff="1998-07-01")
        end = pd.Timestamp("1998-07-01")
        calibration_end = pd.Timestamp("1997-10-01")  # 39 weeks of calibration, the rest holdout
    else:
        from retain.data.synthetic import GeneratorConfig, generate, write_dataset

        config = GeneratorConfig(customers=customers, seed=seed)
        progress(f"generating {customers:,} customers into {data}")
        write_dataset(generate(config, progress=progress), data)
        dataset = load_dataset(data, data_cutoff=config.end)
        end = pd.Timestamp(config.end)
        calibration_end = end - pd.Timedelta(days=365)
    result = DemoResult(workdir=workdir, data=data, settings=settings, as_of=end)

    progress(f"value models: calibration before {calibration_end.date()}, holdout to {end.date()}")
    result.value = train_value_model(dataset, calibration_end, settings=settings, progress=progress)
    versions = [f"clv={result.value.model_version}"]
    if source == CDNOW:
        # no churn events: the churn model learns the lapse (no purchase within 180 days)
        cutoff = end - pd.Timedelta(days=180)
        progress(f"churn model of the lapse (CDNOW records no churn): cutoff {cutoff.date()}, 2 snapshots")
        result.churn = train_churn_model(dataset, cutoff, snapshots=2, horizon_days=180, settings=settings,
                                         progress=progress)
    else:
        cutoff = end - pd.Timedelta(days=120)
        progress(f"churn-type classifier: cutoff {cutoff.date()}, 2 snapshots")
        result.churn = train_churn_model(dataset, cutoff, snapshots=2, settings=settings, progress=progress)
    versions.append(f"churn={result.churn.model_version}")
    for trained in (result.value, result.churn):
        if trained is not None and not trained.promoted:
            result.notes.append(f"version {trained.model_version} was kept as a challenger ({trained.reason}); "
                                "the demo scores with it all the same")

    # the versions just trained, whatever the gate said: a demo shows them at work
    pair = load_model_pair(settings, ",".join(versions)).pair
    result.scores = workdir / "scores.parquet"
    progress(f"scoring every customer as of {end.date()}")
    result.summary = run_score_job(ScoreJob(data=data, as_of=end, out=result.scores), pair,
                                   store=ScoreStore(settings.score_store_path), progress=progress)
    from retain.report import write_report

    result.report = workdir / "report.html"
    report = write_report(settings, result.report, result.scores, progress=progress)
    result.notes += report.notes
    return result


def highest_risk(scores_path: Path, n: int = 5) -> pd.DataFrame:
    """The active customers the churn model says will leave, most likely first."""
    scores = pd.read_parquet(scores_path)
    active = scores[(scores["not_scored_reason"] == "") & scores["will_churn"].eq(True)]
    columns = ["customer_id", "clv", "value_tier", "p_churn", "churn_type", "top_drivers", "recommended_action"]
    top = active.sort_values("p_churn", ascending=False).head(n)[columns]
    return top.assign(clv=top["clv"].round(2), p_churn=top["p_churn"].round(3))


def next_steps(result: DemoResult, retain: str = "retain") -> list[str]:
    """The commands to go further, with ``retain`` as the user invoked it (e.g. .venv/bin/retain)."""
    settings = result.settings
    customer = pd.read_parquet(result.scores, columns=["customer_id", "not_scored_reason"])
    example = customer.loc[customer["not_scored_reason"] == "", "customer_id"].iloc[0]
    home = f"RETAIN_HOME={settings.home}"
    auth = "-H 'Authorization: Bearer change-me' -H 'Content-Type: application/json'"
    first, second = ((result.as_of - pd.Timedelta(days=days)).date() for days in (300, 80))
    steps = [
        f"open the report:   {result.report}",
        f"runs and models:   {Path(retain).parent / 'mlflow' if '/' in retain else 'mlflow'} ui "
        f"--backend-store-uri {settings.resolved_tracking_uri}",
        f"list models:       {home} {retain} models",
        f"score again:       {home} {retain} score --data {result.data} --as-of {result.as_of.date()} --out scores.csv",
        f"rebuild report:    {home} {retain} report --out report.html",
    ]
    if result.churn is None:  # the HTTP service serves both champions; this base trained no churn model
        return steps + ["serve over HTTP:   needs a churn-type champion as well, which this data (no churn events) "
                        "cannot train: run the demo on generated data (retain demo) to try the service"]
    return steps + [
        f"serve over HTTP:   {home} RETAIN_API_KEYS=change-me {retain} serve --port 3000",
        f"look up a score:   curl -s -X POST localhost:3000/lookup {auth} -d '{{\"customer_ids\": [\"{example}\"]}}'",
        f"score a customer:  curl -s -X POST localhost:3000/score {auth} "
        f"-d '{{\"as_of\": \"{result.as_of.date()}\", \"customers\": [{{\"customer_id\": \"new-1\", "
        f'\"transactions\": [{{\"timestamp\": \"{first}\", \"amount\": 20.5}}, '
        f'{{\"timestamp\": \"{second}\", \"amount\": 35.0}}]}}]}}\'',
    ]
