"""The README's first command, at a smaller size: the whole chain from generated data to scores."""

import pandas as pd

from retain.cli import main

SCORE_COLUMNS = [
    "customer_id", "as_of", "frequency", "recency", "T", "monetary", "rfm_code", "rfm_segment", "lifecycle_stage",
    "p_alive", "expected_purchases", "expected_order_value", "clv", "clv_low", "clv_high", "value_tier",
    "value_quadrant", "p_churn", "churn_type", "top_drivers", "recommended_action", "clv_model_version",
    "churn_model_version",
]


def test_demo_runs_the_chain_and_scores_every_customer(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)  # anything written to the working directory would show here
    assert main(["demo", "--out", str(tmp_path / "demo"), "--customers", "8000", "--seed", "4"]) == 0
    scores = pd.read_parquet(tmp_path / "demo" / "scores.parquet")
    features = pd.read_parquet(tmp_path / "demo" / "features.parquet")
    assert list(scores["customer_id"]) == list(features["customer_id"]) and len(scores) > 7000
    for column in SCORE_COLUMNS:
        assert column in scores.columns, column
    assert any(c.startswith("p_type_") for c in scores.columns)
    assert scores["clv_model_version"].str.startswith("retain-clv/v").all()
    assert (tmp_path / "demo" / "retain-home" / "mlflow.db").exists()
    assert "highest churn risk" in capsys.readouterr().out
    # every artifact lands in the demo's store, none in the working directory
    assert any((tmp_path / "demo" / "retain-home" / "mlartifacts").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
