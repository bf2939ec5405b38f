"""MLflow tracking store, model registry and the champion/challenger gate.

Tracking goes to ``Settings.resolved_tracking_uri``: a tracking server, or by default a sqlite
store in the retain home (``mlflow.db`` plus artifacts in ``mlartifacts/``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.errors import RetainError
from retain.settings import Settings

from retain.models.pyfunc import CHALLENGER, CHAMPION, CHURN_MODEL_NAME, VALUE_MODEL_NAME  # noqa: F401  (re-exported)


def configure_tracking(settings: Settings, experiment: str | None = None) -> str:
    """Point MLflow at the store (and experiment, if named); returns the tracking URI."""
    uri = settings.resolved_tracking_uri
    if settings.uses_local_store:
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if experiment is None:
        return uri
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=settings.artifact_location)
    mlflow.set_experiment(experiment)
    return uri


def strict_json(value) -> str:
    """JSON that every parser accepts: NaN and infinities become null, numpy numbers plain."""
    import json
    import math

    def clean(item):
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        if hasattr(item, "item") and not isinstance(item, (str, bytes)):
            item = item.item()  # numpy scalar
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item

    return json.dumps(clean(value), indent=2, allow_nan=False)


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


@dataclass(frozen=True)
class Gate:
    """A candidate beats a reference when it is strictly better on ``primary`` and not
    worse on each of ``secondary``. Metric names ending in a listed lower-is-better
    suffix are minimised."""

    primary: str
    secondary: tuple[str, ...] = ()
    lower_is_better: tuple[str, ...] = ("_mae", "_rmse", "_loss", "_brier", "_abs_pct_error")

    def _better(self, metric: str, candidate: float, reference: float, strict: bool) -> bool:
        lower = metric.endswith(self.lower_is_better)
        if strict:
            return candidate < reference if lower else candidate > reference
        return candidate <= reference if lower else candidate >= reference

    def beats(self, candidate: dict[str, float], reference: dict[str, float]) -> tuple[bool, str]:
        """(verdict, the reason in words)."""
        reasons = []
        verdict = self._better(self.primary, candidate[self.primary], reference[self.primary], strict=True)
        reasons.append(f"{self.primary} {candidate[self.primary]:.4g} vs {reference[self.primary]:.4g}")
        for metric in self.secondary:
            ok = self._better(metric, candidate[metric], reference[metric], strict=False)
            verdict = verdict and ok
            reasons.append(f"{metric} {candidate[metric]:.4g} vs {reference[metric]:.4g}")
        return verdict, "; ".join(reasons)


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return " | ".join(self.reasons)


def decide(gate: Gate, candidate: dict[str, float], baselines: dict[str, dict[str, float]],
           champion: dict[str, float] | None) -> Decision:
    """Champion only if the candidate beats every baseline and the current champion, all
    measured on the same held-out data."""
    decision = Decision(True)
    for name, metrics in baselines.items():
        ok, why = gate.beats(candidate, metrics)
        decision.promote &= ok
        decision.reasons.append(f"{'beats' if ok else 'does not beat'} {name} baseline ({why})")
    if champion is None:
        decision.reasons.append("no current champion")
    else:
        ok, why = gate.beats(candidate, champion)
        decision.promote &= ok
        decision.reasons.append(f"{'beats' if ok else 'does not beat'} the current champion ({why})")
    return decision


def champion_uri(name: str) -> str | None:
    """``models:/NAME@champion`` if that alias exists."""
    try:
        MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return f"models:/{name}@{CHAMPION}"


def register(model_uri: str, name: str, decision: Decision, run_id: str) -> str:
    """Register the logged model and set the champion or challenger alias; returns the version."""
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name).version
    alias = CHAMPION if decision.promote else CHALLENGER
    client.set_model_version_tag(name, version, "role", alias)
    client.set_model_version_tag(name, version, "gate", decision.reason[:5000])
    client.set_model_version_tag(name, version, "run_id", run_id)
    client.set_registered_model_alias(name, alias, version)
    return str(version)


def promote(name: str, version: str, alias: str = CHAMPION) -> dict:
    """Move ``alias`` to ``version`` by hand; returns the version's run metrics and the
    version the alias pointed to before."""
    client = MlflowClient()
    try:
        target = client.get_model_version(name, version)
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise RetainError(f"{name} has no version {version}; known versions: {known or 'none'}") from None
    try:
        previous = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, "role", alias)
    metrics = client.get_run(target.run_id).data.metrics if target.run_id else {}
    return {"model": name, "version": str(version), "alias": alias, "previous": previous, "metrics": metrics}
