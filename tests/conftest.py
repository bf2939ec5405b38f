"""Fixtures shared by the layers (tests/unit, tests/data, tests/model, tests/system; see
docs/testing.md): the small generated base and the trained models, each built once per
session and only when a test asks for it."""

import pandas as pd
import pytest

from retain.data.synthetic import GeneratorConfig, generate

LAYERS = ("unit", "data", "model", "system")


def pytest_collection_modifyitems(config, items):
    """Run the layers fastest first (unit, data, model, system), each in file order, so that a
    broken pure function fails in seconds, not after the servers; and mark every test that
    uses the trained models slow: the first one trains both models."""
    def layer(item):
        folder = item.path.parent.name
        return LAYERS.index(folder) if folder in LAYERS and item.path.parent.parent.name == "tests" else len(LAYERS)

    items.sort(key=layer)  # stable: the order inside a layer is pytest's own
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def generated():
    """A small generated base, shared read-only by the tests (copy before changing)."""
    return generate(GeneratorConfig(customers=4000, seed=7))


class TrainedModels:
    """Both model families trained once on a generated base, in a store of their own."""

    def __init__(self, root):
        from retain.data import load_dataset
        from retain.data.synthetic import write_dataset
        from retain.settings import Settings
        from retain.training.churn import train_churn_model
        from retain.training.value import train_value_model

        self.data = root / "data"
        write_dataset(generate(GeneratorConfig(customers=6000, seed=11)), self.data)
        self.dataset = load_dataset(self.data, data_cutoff="2026-01-01")
        self.settings = Settings(home=root / "home")
        self.end = pd.Timestamp("2026-01-01")
        self.value = train_value_model(self.dataset, self.end - pd.Timedelta(days=365), family="bgnbd",
                                       settings=self.settings)
        self.churn = train_churn_model(self.dataset, self.end - pd.Timedelta(days=120), snapshots=2,
                                       settings=self.settings)
        assert self.value.promoted and self.churn.promoted, (self.value.reason, self.churn.reason)

    def pair(self):
        from retain.serving import load_model_pair

        return load_model_pair(self.settings).pair


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Both models trained on 6,000 generated customers (tests/model and tests/system): the
    first test that asks trains them, every later one reuses the store read-only."""
    return TrainedModels(tmp_path_factory.mktemp("trained"))
