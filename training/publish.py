"""The step both trainers end with: score the current champion on the same held-out data,
decide with the gate, log the run to MLflow, wrap the model as a pyfunc, register it and
settle the champion alias (``registry.settle_alias``: a check-and-set that stays right when
several trainings finish at once)."""

from __future__ import annotations

import hashlib
import sys
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Callable

import mlflow
import pandas as pd

from retain.features import FeatureConfig, FeatureReference
from retain.models.pyfunc import RetainPyfunc, log_pyfunc
from retain.models.registry import Registry, configure_tracking, load, model_uri
from retain.settings import Settings
from retain.training.gate import Decision, Gate, ValueGate, decide


@dataclass
class Candidate:
    """What a trainer hands over to be published."""

    model_name: str               # retain-clv, retain-churn-type
    experiment: str
    run_name: str
    gate: Gate | ValueGate
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
    decision: Decision            # the final one, after any re-check under the promotion lock
    champion_metrics: dict | None  # of the champion the final decision compared against
    tracking_uri: str


def _champion_metrics(registry: Registry, candidate: Candidate, version: str | None,
                      progress: Callable[[str], None]) -> dict | None:
    if version is None:
        return None
    uri = model_uri(candidate.model_name, version)
    progress(f"scoring the current champion ({candidate.model_name} version {version}) on the same held-out data")
    return candidate.score_champion(registry.call(lambda: load(uri).unwrap_python_model().model))


def publish(candidate: Candidate, *, settings: Settings,
            progress: Callable[[str], None] = lambda message: None) -> Publication:
    uri = configure_tracking(settings, candidate.experiment)
    registry = Registry(settings)
    name = candidate.model_name
    compared = registry.champion_version(name)
    champion_metrics = _champion_metrics(registry, candidate, compared, progress)
    decision = decide(candidate.gate, candidate.metrics, candidate.baselines, champion_metrics)

    progress("logging to MLflow")
    run_id, model_uri = registry.call(lambda: _log(candidate, decision, champion_metrics, progress),
                                      what="logging the training run")
    version = registry.register(model_uri, name, run_id)

    def redecide(champion: str | None) -> Decision:
        """The champion moved while this training ran: compare against the new one."""
        nonlocal champion_metrics
        champion_metrics = _champion_metrics(registry, candidate, champion, progress)
        again = decide(candidate.gate, candidate.metrics, candidate.baselines, champion_metrics)
        moved = f"version {champion}" if champion else "none"
        again.reasons.append(f"re-checked at promotion: the champion had moved to {moved}")
        return again

    final = registry.settle_alias(name, version, decision, compared, redecide)
    registry.call(lambda: registry.client.set_tag(run_id, "gate_decision", final.reason[:5000]))
    progress(f"registered {name} version {version} as "
             f"{'champion' if final.promote else 'challenger'}: {final.reason}")
    return Publication(run_id=run_id, version=version, decision=final, champion_metrics=champion_metrics,
                       tracking_uri=uri)


def _log(candidate: Candidate, decision: Decision, champion_metrics: dict | None, progress) -> tuple[str, str]:
    """One run with everything in it. A run cut short by a locked store ends as FAILED (the
    ``with`` block), so the caller's retry starts a clean one."""
    # against a tracking server MLflow prints the run's link on stdout, which belongs to the
    # command's result (--json): send it to stderr with the other progress lines
    with redirect_stdout(sys.stderr), mlflow.start_run(run_name=candidate.run_name) as run:
        candidate.log_run(decision, champion_metrics)
        wrapper = RetainPyfunc(candidate.model, feature_config=candidate.feature_config,
                               reference=candidate.reference, version_column=candidate.version_column,
                               version_label=f"{candidate.model_name}@run:{run.info.run_id[:8]}")
        progress("logging the pyfunc model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = log_pyfunc(wrapper, candidate.example, candidate.profile_features)
    return run.info.run_id, info.model_uri


def fingerprint(frames: dict[str, pd.DataFrame | None], time_columns: dict[str, str]) -> dict[str, str]:
    """Row counts, date range and a content hash of the input tables, for the run record."""
    result = {}
    digest = hashlib.sha256()
    for name, frame in frames.items():
        if frame is None:
            continue
        result[f"data_{name}_rows"] = str(len(frame))
        column = time_columns.get(name)
        if column and len(frame):
            result[f"data_{name}_from"] = str(frame[column].min())
            result[f"data_{name}_to"] = str(frame[column].max())
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    result["data_hash"] = digest.hexdigest()[:16]
    return result
