"""The model pair that scoring uses, loaded from the registry: the champions, or named versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from retain.models import registry
from retain.serving.scoring import ModelPair
from retain.settings import Settings


@dataclass
class LoadedPair:
    pair: ModelPair
    notes: list[str] = field(default_factory=list)  # why a model is absent, in words


def load_model_pair(settings: Settings, selection: str = registry.CHAMPION) -> LoadedPair:
    """The models named by ``selection`` (``registry.parse_selection``) as a scoring pair."""
    loaded = registry.load_models(settings, selection)
    pair = ModelPair.of(loaded.models.get("clv"), loaded.models.get("churn"),
                        value_version=loaded.versions.get("clv"), churn_version=loaded.versions.get("churn"))
    return LoadedPair(pair, loaded.notes)
