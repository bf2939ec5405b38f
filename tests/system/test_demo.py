"""The README's first command, at a smaller size: the whole chain from generated data to scores."""

import pandas as pd
import pytest

from retain.cli import main
from retain.data.contract import SCORE_COLUMNS


@pytest.mark.slow
def test_demo_runs_the_chain_and_scores_every_customer(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)  # anything written to the working directory would show here
    assert main(["demo", "--workdir", str(tmp_path / "demo"), "--customers", "8000", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    scores = pd.read_parquet(tmp_path / "demo" / "scores.parquet")
    transactions = pd.read_parquet(tmp_path / "demo" / "data" / "transactions.parquet")
    assert sorted(scores["customer_id"]) == sorted(transactions["customer_id"].astype(str).unique())
    for column in SCORE_COLUMNS:
        assert column in scores.columns, column
    assert [c for c in scores.columns if c.startswith("not_scored_reason")] == ["not_scored_reason"]
    assert any(c.startswith("p_type_") for c in scores.columns)
    assert scores["clv_model_version"].str.startswith("retain-clv/v").all()
    assert (tmp_path / "demo" / "retain-home" / "mlflow.db").exists()
    assert (tmp_path / "demo" / "retain-home" / "scores.duckdb").exists()
    # the riskiest customers shown are active ones, never customers who churned before the scoring date
    shown = printed.split("highest churn risk among active customers:")[1].split("\n")[2:7]
    churned = set(scores.loc[scores["not_scored_reason"].str.startswith("churned"), "customer_id"])
    assert len(churned) > 1000 and shown and not {line.split()[0] for line in shown} & churned
    assert "mlflow ui --backend-store-uri sqlite:///" in printed and "retain serve" in printed
    # every artifact lands in the demo's store, none in the working directory
    assert any((tmp_path / "demo" / "retain-home" / "mlartifacts").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
