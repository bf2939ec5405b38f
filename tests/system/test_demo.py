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


def _first_demo_leftovers(workdir):
    """What the generated demo leaves in its folder, as far as the CDNOW demo can tell."""
    data = workdir / "data"
    data.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["a"], "timestamp": [pd.Timestamp("2025-01-01")], "amount": [1.0]}).to_parquet(
        data / "transactions.parquet")
    (data / "truth.json").write_text("{}")
    return data


@pytest.mark.slow
def test_the_cdnow_demo_has_its_own_folder_and_refuses_the_generated_demos(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    data = _first_demo_leftovers(tmp_path / "demo-out")
    before = pd.read_parquet(data / "transactions.parquet")
    assert main(["demo", "--data", "cdnow", "--workdir", "demo-out"]) == 2
    err = capsys.readouterr().err
    assert "demo-out holds the generated demo's data" in err and "--workdir demo-cdnow" in err
    pd.testing.assert_frame_equal(pd.read_parquet(data / "transactions.parquet"), before)  # untouched

    # its default folder is not the generated demo's: shown here by a folder it must refuse
    from retain.demo import claim_workdir

    claim_workdir(tmp_path / "demo-cdnow", "generated")
    assert main(["demo", "--data", "cdnow"]) == 2
    assert "demo-cdnow holds the generated demo's data" in capsys.readouterr().err
    # and the generated demo refuses a CDNOW demo's folder
    claim_workdir(tmp_path / "other", "cdnow")
    assert main(["demo", "--workdir", "other", "--customers", "100"]) == 2
    assert "other holds the cdnow demo's data" in capsys.readouterr().err
