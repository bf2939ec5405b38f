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
