"""The registered pyfuncs on their own, as MLflow users load them."""

import mlflow
import pandas as pd
import pytest

from retain.data.synthetic import GeneratorConfig, generate
from retain.errors import RetainError
from retain.features import FeatureConfig, build_features
from retain.models import registry
from retain.serving import score_customers
from retain.models.registry import configure_tracking

AS_OF = "2025-12-01"


def _stacked(dataset, ids):
    """The data-contract tables of some customers stacked in one frame with a ``table`` column."""
    parts = []
    for name in ("transactions", "customers", "interactions", "churn_events"):
        frame = getattr(dataset, name)
        rows = frame[frame["customer_id"].astype(str).isin(ids)]
        parts.append(rows.assign(table=name))
    return pd.concat(parts, ignore_index=True)


def test_raw_tables_with_attributes_and_interactions_score_like_the_core(trained):
    """Before: from raw transactions the pyfunc dropped attributes and interactions."""
    configure_tracking(trained.settings)
    churn = mlflow.pyfunc.load_model("models:/retain-churn-type@champion")
    ids = sorted(trained.dataset.customers["customer_id"].astype(str))[:40]
    stacked = _stacked(trained.dataset, ids)
    got = churn.predict(stacked, params={"as_of": AS_OF}).sort_values("customer_id").reset_index(drop=True)
    core = score_customers(trained.dataset, AS_OF, trained.pair()).scores.set_index("customer_id").loc[ids]
    scored = core["not_scored_reason"] == ""
    assert scored.sum() > 20
    got = got.set_index("customer_id").loc[ids]
    pd.testing.assert_series_equal(got.loc[scored, "p_churn"], core.loc[scored, "p_churn"], rtol=1e-12)
    assert (got["not_scored_reason"] == core["not_scored_reason"]).all()  # churned customers say so here too


def test_as_of_is_required_and_one_customer_scores_alike_alone(trained):
    """Before: the default as_of was the day after the batch's last purchase."""
    configure_tracking(trained.settings)
    value = mlflow.pyfunc.load_model("models:/retain-clv@champion")
    tx = trained.dataset.transactions
    with pytest.raises(Exception, match="needs params"):
        value.predict(tx.head(50))
    ids = sorted(tx["customer_id"].astype(str).unique())[:30]
    batch = value.predict(tx[tx["customer_id"].astype(str).isin(ids)], params={"as_of": AS_OF}).set_index("customer_id")
    for customer in ids[:3]:
        alone = value.predict(tx[tx["customer_id"].astype(str) == customer], params={"as_of": AS_OF})
        assert alone["clv"].iloc[0] == pytest.approx(batch.loc[customer, "clv"], rel=1e-12)


def test_generator_output_passes_the_signature(trained):
    """Before: the generator's categorical customer_id was refused by the signature."""
    configure_tracking(trained.settings)
    value = mlflow.pyfunc.load_model("models:/retain-clv@champion")
    generated = generate(GeneratorConfig(customers=50, seed=3))["transactions"]
    assert isinstance(generated["customer_id"].dtype, pd.CategoricalDtype)
    scores = value.predict(generated, params={"as_of": AS_OF})
    assert scores["customer_id"].nunique() == generated["customer_id"].nunique()


def test_features_in_another_time_unit_are_refused(trained):
    """Before: a weekly feature table fed to a daily model was accepted (CLV off by 6x)."""
    configure_tracking(trained.settings)
    value = mlflow.pyfunc.load_model("models:/retain-clv@champion")
    weekly, _ = build_features(trained.dataset.transactions, AS_OF, config=FeatureConfig(time_unit_days=7))
    with pytest.raises(RetainError, match="units of 7 days.*--time-unit-days 1"):
        value.predict(weekly.head(100))
    daily, _ = build_features(trained.dataset.transactions, AS_OF)
    assert value.predict(daily.head(100))["clv"].notna().all()


def test_load_names_the_registry_version_without_changing_the_model(trained):
    configure_tracking(trained.settings)
    loaded = registry.load("models:/retain-clv@champion")
    plain = mlflow.pyfunc.load_model("models:/retain-clv/1")
    tx = trained.dataset.transactions.head(200)
    assert set(loaded.predict(tx, params={"as_of": AS_OF})["clv_model_version"]) == {"retain-clv/v1"}
    assert set(plain.predict(tx, params={"as_of": AS_OF})["clv_model_version"]) != {"retain-clv/v1"}
