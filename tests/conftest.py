import pandas as pd
import pytest

from retain.data.synthetic import GeneratorConfig, generate

TABLE_NAMES = ("transactions", "customers", "interactions", "churn_events")


@pytest.fixture(scope="session")
def generated():
    """A small generated base, shared read-only by the tests (copy before changing)."""
    return generate(GeneratorConfig(customers=4000, seed=7))


@pytest.fixture(scope="session")
def generated_tables(generated):
    return {name: generated[name] for name in TABLE_NAMES}


def string_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


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
    return TrainedModels(tmp_path_factory.mktemp("trained"))
