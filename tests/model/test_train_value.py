"""retain train clv / promote against a real MLflow sqlite store in a temporary folder."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from retain.cli import main
from retain.data import validate_tables
from retain.features import FeatureConfig
from retain.data.synthetic import GeneratorConfig, generate, write_dataset
from retain.errors import RetainError
from retain.models import registry
from retain.settings import Settings
from retain.models.registry import configure_tracking
from retain.training.value import train_value_model


@pytest.fixture(scope="module")
def value_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("value") / "data"
    write_dataset(generate(GeneratorConfig(customers=6000, seed=5)), folder)
    return folder


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh, empty tracking store and registry for each test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))  # for the CLI
    return Settings(home=tmp_path / "home")


def _train(data, *extra, capsys):
    code = main(["train", "clv", "--data", str(data), "--data-cutoff", "2026-01-01",
                 "--calibration-end", "2025-01-01", "--json", *extra])
    captured = capsys.readouterr()
    return code, captured


@pytest.mark.slow
def test_train_registers_a_champion_then_a_challenger_and_promote_moves_it(value_data, store, capsys):
    code, out = _train(value_data, capsys=capsys)
    assert code == 0, out.err
    first = json.loads(out.out)
    assert first["promoted"] and first["model_version"] == "1"
    assert first["chosen_model"] in {"bgnbd", "mbgnbd", "pareto", "learned"}
    assert set(first["comparison"]) == {"bgnbd", "mbgnbd", "pareto", "learned"}
    assert first["metrics"]["purchases_mae"] < first["baseline_metrics"]["purchases_mae"]
    assert first["metrics"]["spend_gini"] > first["baseline_metrics"]["spend_gini"]
    for key in ("purchases_rmse", "spend_mae", "spend_rmse", "total_purchases_pct_error", "spend_spearman",
                "top10_revenue_share", "top20_revenue_share"):
        assert key in first["metrics"]
    # rolling origin: the given window and one 365 days earlier (the data starts in 2023; 2024 has 366 days)
    for family, entry in first["comparison"].items():
        assert [w["calibration_end"] for w in entry["windows"]] == ["given", "2024-01-02"], family
        assert set(entry["mean"]) == set(entry["std"]) and "total_purchases_pct_error" in entry["mean"]
        assert entry["std"]["purchases_mae"] > 0
    scores = {family: entry["selection_score"] for family, entry in first["comparison"].items()}
    assert first["chosen_model"] == max(scores, key=scores.get)
    # the 80% predictive intervals hold about 80% of what customers actually did in the holdout
    for family in first["comparison"]:
        coverage = first["comparison"][family]["metrics"]
        assert 0.75 <= coverage["purchases_interval_coverage"] <= 0.85, family
        assert 0.75 <= coverage["spend_interval_coverage"] <= 0.85, family

    configure_tracking(store)
    client = MlflowClient()
    run = client.get_run(first["run_id"])
    assert run.data.tags["data_hash"] and int(run.data.tags["data_transactions_rows"]) > 0
    assert "baseline_purchases_mae" in run.data.metrics and "param_r" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert {"plots/holdout_by_frequency.png", "plots/cumulative_tracking.png",
            "plots/p_alive_matrix.png", "plots/frequency_recency_matrix.png"} <= artifacts

    # The same model on the same holdout does not beat the champion: it stays a challenger.
    code, out = _train(value_data, "--model", first["chosen_model"], capsys=capsys)
    second = json.loads(out.out)
    assert code == 0 and not second["promoted"] and second["model_version"] == "2"
    assert "does not beat the current champion" in second["reason"]
    configure_tracking(store)
    assert str(client.get_model_version_by_alias("retain-clv", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("retain-clv", "challenger").version) == "2"

    # version 2 failed its gate: promoting it needs --force, and says so
    assert main(["promote", "clv", "--version", "2"]) == 2
    refused = capsys.readouterr().err
    assert "version 2 failed its gate" in refused and "--force" in refused
    assert main(["promote", "clv", "--version", "2", "--force", "--json"]) == 0
    captured = capsys.readouterr()
    outcome = json.loads(captured.out)
    assert outcome["previous"] == "1" and outcome["metrics"]["purchases_mae"] > 0
    assert "warning: version 2 failed its gate" in captured.err
    assert f"MLflow store: sqlite:///{store.home / 'mlflow.db'}" in captured.err
    configure_tracking(store)
    assert str(client.get_model_version_by_alias("retain-clv", "champion").version) == "2"
    assert main(["promote", "clv", "--version", "9"]) == 2
    assert "has no version 9" in capsys.readouterr().err


@pytest.mark.slow
def test_champion_pyfunc_scores_features_and_raw_transactions_alike(value_data, store, capsys):
    code, out = _train(value_data, "--model", "bgnbd", capsys=capsys)
    assert code == 0, out.err
    configure_tracking(store)
    model = registry.load("models:/retain-clv@champion")
    transactions = pd.read_parquet(value_data / "transactions.parquet")
    for column in ("customer_id", "order_id", "category", "channel"):  # text, as JSON requests send them
        transactions[column] = transactions[column].astype(str)
    some = transactions[transactions["customer_id"].isin(transactions["customer_id"].unique()[:40])]
    wrapper = model.unwrap_python_model()
    features, _ = wrapper.features_from(some, {"as_of": "2025-06-01"})
    from_features = model.predict(features)
    from_raw = model.predict(some, params={"as_of": "2025-06-01"})
    pd.testing.assert_frame_equal(from_features, from_raw)
    assert len(from_raw) == some["customer_id"].nunique() and (from_raw["not_scored_reason"] == "").all()
    # a customer who first bought after as_of comes back listed, with the reason
    late = some.head(1).assign(customer_id="LATE", order_id="LATE-1", timestamp=pd.Timestamp("2025-07-01"))
    with_late = model.predict(pd.concat([some, late]), params={"as_of": "2025-06-01"})
    listed = with_late.set_index("customer_id").loc["LATE"]
    assert listed["not_scored_reason"] == "no purchase before 2025-06-01 (first purchase 2025-07-01)"
    assert pd.isna(listed["clv"])
    for column in ("customer_id", "as_of", "frequency", "recency", "T", "monetary", "rfm_code", "rfm_segment",
                   "lifecycle_stage", "p_alive", "expected_purchases", "expected_order_value", "clv", "clv_low",
                   "clv_high", "value_tier", "value_quadrant", "clv_model_version"):
        assert column in from_raw.columns, column
    assert set(from_raw["clv_model_version"]) == {"retain-clv/v1"}
    assert model.metadata.signature is not None


@pytest.mark.slow
@pytest.mark.parametrize("change, message", [
    (dict(calibration_end="2022-06-01"), "on or before the first purchase"),
    (dict(calibration_end="2025-01-01", holdout_end="2026-03-01"), "after the last transaction"),
    (dict(calibration_end="2026-01-01"), "must be after calibration end"),
])
def test_bad_windows_are_clear_errors_and_register_nothing(value_data, store, change, message):
    dataset = validate_tables({"transactions": pd.read_parquet(value_data / "transactions.parquet")},
                              data_cutoff="2026-01-01")
    with pytest.raises(RetainError, match=message):
        train_value_model(dataset, **change, settings=store)
    configure_tracking(store)
    assert MlflowClient().search_registered_models() == []


def test_holdout_without_transactions_and_too_few_repeat_buyers(store, capsys):
    rows = [("a", "2024-01-01", 10.0), ("a", "2024-02-01", 12.0), ("b", "2024-01-05", 7.0), ("a", "2024-09-01", 5.0)]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    dataset = validate_tables({"transactions": frame}, data_cutoff="2026-01-01")
    with pytest.raises(RetainError, match="holds no transactions"):
        train_value_model(dataset, "2024-03-01", "2024-08-01", settings=store)
    with pytest.raises(RetainError, match="bought again with positive spend.*needs at least 30"):
        train_value_model(dataset, "2024-03-01", "2024-09-02", family="bgnbd", settings=store)
    configure_tracking(store)
    assert MlflowClient().search_registered_models() == []


def test_json_output_is_strict_json():
    import json

    from retain.console import strict_json

    import numpy as np
    text = strict_json({"a": float("nan"), "b": [np.float64(1.5), np.int64(2)], "c": {"d": float("inf")}})
    assert json.loads(text) == {"a": None, "b": [1.5, 2], "c": {"d": None}}


def test_rolling_origin_windows_go_back_while_the_history_allows():
    from retain.training.value import _earlier_windows
    transactions = pd.DataFrame({"timestamp": pd.to_datetime(["2021-03-10", "2025-06-01"])})
    windows = _earlier_windows(transactions, pd.Timestamp("2025-01-01"), pd.Timestamp("2025-07-01"), windows=4)
    length = pd.Timestamp("2025-07-01") - pd.Timestamp("2025-01-01")
    assert [end for end, _ in windows] == [pd.Timestamp("2025-01-01") - k * length for k in (1, 2, 3)]
    assert all(holdout_end - end == length for end, holdout_end in windows)
    # not enough history before 2025-01-01 for a one-year window before it
    assert _earlier_windows(transactions.assign(timestamp=pd.to_datetime(["2024-06-01", "2025-06-01"])),
                            pd.Timestamp("2025-01-01"), pd.Timestamp("2026-01-01"), windows=3) == []


def test_window_table_equals_calibration_holdout_on_what_the_comparison_uses(value_data):
    """Earlier rolling-origin windows skip the full feature table; what they keep is the same."""
    from retain.features import calibration_holdout
    from retain.training.value import window_table
    transactions = pd.read_parquet(value_data / "transactions.parquet")
    full, _ = calibration_holdout(transactions, "2024-03-01", "2024-09-01")
    light = window_table(transactions, "2024-03-01", "2024-09-01", FeatureConfig(), "spend_180d")
    full = full.set_index("customer_id").sort_index()
    light = light.set_index("customer_id").sort_index()
    assert list(full.index) == list(light.index)
    for column in ("frequency", "recency", "T", "monetary", "holdout_purchases", "holdout_spend", "holdout_duration"):
        np.testing.assert_allclose(light[column].to_numpy(dtype=float), full[column].to_numpy(dtype=float), err_msg=column)
