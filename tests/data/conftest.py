"""The data layer: the data contract, loading and validation, features and the generator."""

import pytest

TABLE_NAMES = ("transactions", "customers", "interactions", "churn_events")


@pytest.fixture(scope="session")
def generated_tables(generated):
    """The four tables of the shared generated base (tests/conftest.py), read-only."""
    return {name: generated[name] for name in TABLE_NAMES}
