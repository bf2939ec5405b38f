"""Loading the model pair that scoring uses from the registry: the champions, or named versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from retain.errors import RetainError
from retain.models import pyfunc
from retain.models.pyfunc import CHAMPION, CHURN_MODEL_NAME, VALUE_MODEL_NAME
from retain.serving.scoring import ModelPair
from retain.settings import Settings

_KINDS = {"clv": VALUE_MODEL_NAME, "churn": CHURN_MODEL_NAME}


@dataclass
class LoadedPair:
    pair: ModelPair
    notes: list[str] = field(default_factory=list)  # why a model is absent, in words


def parse_selection(text: str) -> dict[str, str | None]:
    """``champion`` -> both champions (either may be missing); ``clv=N,churn=M`` (either
    part alone allowed) -> those versions, and only those models."""
    text = (text or CHAMPION).strip()
    if text == CHAMPION:
        return {"clv": CHAMPION, "churn": CHAMPION}
    chosen: dict[str, str | None] = {"clv": None, "churn": None}
    for part in text.split(","):
        kind, _, version = part.strip().partition("=")
        if kind not in _KINDS or not version.strip():
            raise RetainError(f"--models {text!r}: use 'champion' or clv=N,churn=M (either part alone is fine)")
        chosen[kind] = version.strip()
    return chosen


def load_model_pair(settings: Settings, selection: str = CHAMPION) -> LoadedPair:
    """Load the models named by ``selection`` from the tracking store in ``settings``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retain.models.pyfunc import use_tracking_store

    use_tracking_store(settings)
    client = MlflowClient()
    chosen = parse_selection(selection)
    wrappers, versions, notes = {}, {}, []
    for kind, which in chosen.items():
        if which is None:
            continue
        name = _KINDS[kind]
        if which == CHAMPION:
            try:
                version = str(client.get_model_version_by_alias(name, CHAMPION).version)
            except MlflowException:
                notes.append(f"{name} has no champion in {settings.resolved_tracking_uri}: its columns are empty")
                continue
        else:
            version = which
            try:
                client.get_model_version(name, version)
            except MlflowException:
                try:
                    known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
                except MlflowException:
                    known = []
                raise RetainError(f"{name} has no version {version} in {settings.resolved_tracking_uri}; "
                                  f"known versions: {known or 'none'}") from None
        model = pyfunc.load(f"models:/{name}/{version}")
        wrappers[kind], versions[kind] = model.unwrap_python_model(), f"{name}/v{version}"
    if not wrappers:
        raise RetainError(
            f"no model to score with in {settings.resolved_tracking_uri}: train one first (retain train clv / "
            "retain train churn), promote a version (retain promote), or name versions with --models clv=N,churn=M"
        )
    pair = ModelPair.of(wrappers.get("clv"), wrappers.get("churn"),
                        value_version=versions.get("clv"), churn_version=versions.get("churn"))
    return LoadedPair(pair, notes)
