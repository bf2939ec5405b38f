"""The step both trainers end with: score the current champion on the same held-out data,
decide with the gate, log the run to MLflow, wrap the model as a pyfunc, register it and
set the champion or challenger alias."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import mlflow
import pandas as pd

from retain.features import FeatureConfig, FeatureReference
from retain.models.pyfunc import RetainPyfunc, load, log_pyfunc
from retain.settings import Settings
from retain.training.registry import Decision, Gate, champion_uri, configure_tracking, decide, register


@dataclass
class Candidate:
    """What a trainer hands over to be published."""

    model_name: str               # retain-clv, retain-churn-type
    experiment: str
    run_name: str
    gate: Gate
    metrics: dict                 # the candidate's held-out metrics (the gate reads them)
    baselines: dict[str, dict]    # each baseline's metrics on the same held-out data
    score_champion: Callable[[object], dict]   # a champion's metrics on the same held-out data
    log_run: Callable[[Decision, dict | None], None]  # params, metrics, plots; called inside the run
    model: object                 # what RetainPyfunc wraps
    feature_config: FeatureConfig
    reference: FeatureReference
    version_column: str           # clv_model_version, churn_model_version
    example: pd.DataFrame         # a few feature rows for the signature and input example
    # the customers as scoring meets them at the end of the training data (drift profile); default: example
    profile_features: pd.DataFrame | None = None


@dataclass
class Publication:
    run_id: str
    version: str
    decision: Decision
    champion_metrics: dict | None
    tracking_uri: str


def publish(candidate: Candidate, *, settings: Settings,
            progress: Callable[[str], None] = lambda message: None) -> Publication:
    uri = configure_tracking(settings, candidate.experiment)
    name = candidate.model_name
    champion_metrics = None
    current = champion_uri(name)
    if current:
        progress(f"scoring the current champion ({current}) on the same held-out data")
        champion_metrics = candidate.score_champion(load(current).unwrap_python_model().model)
    decision = decide(candidate.gate, candidate.metrics, candidate.baselines, champion_metrics)

    progress("logging to MLflow")
    run_id, model_uri = _log(candidate, decision, champion_metrics, progress)
    version = register(model_uri, name, decision, run_id)
    progress(f"registered {name} version {version} as "
             f"{'champion' if decision.promote else 'challenger'}: {decision.reason}")
    return Publication(run_id=run_id, version=version, decision=decision, champion_metrics=champion_metrics,
                       tracking_uri=uri)


def _log(candidate: Candidate, decision: Decision, champion_metrics: dict | None, progress) -> tuple[str, str]:
    """One run with everything in it: parameters, metrics, plots and the pyfunc."""
    with mlflow.start_run(run_name=candidate.run_name) as run:
        candidate.log_run(decision, champion_metrics)
        wrapper = RetainPyfunc(candidate.model, feature_config=candidate.feature_config,
                               reference=candidate.reference, version_column=candidate.version_column,
                               version_label=f"{candidate.model_name}@run:{run.info.run_id[:8]}")
        progress("logging the pyfunc model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = log_pyfunc(wrapper, candidate.example, candidate.profile_features)
    return run.info.run_id, info.model_uri
