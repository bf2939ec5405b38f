"""``retain models``: the store in use, registered models, versions, aliases, gates, metrics,
and which versions the last score run used."""

import json
import shutil

import mlflow
from mlflow import MlflowClient

from retain.cli import main

AS_OF = "2025-12-01"


def _store_copy(trained, tmp_path):
    """The trained store copied, so a test can register versions without touching the shared one."""
    shutil.copy(trained.settings.home / "mlflow.db", tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_lists_store_models_versions_aliases_gates_and_last_score_run(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    uri = _store_copy(trained, tmp_path)
    # a second, challenger version of the value model
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    first = client.get_model_version("retain-clv", "1")
    second = client.create_model_version("retain-clv", first.source, run_id=first.run_id)
    client.set_model_version_tag("retain-clv", second.version, "role", "challenger")
    client.set_model_version_tag("retain-clv", second.version, "gate", "does not beat the current champion (test)")
    client.set_model_version_tag("retain-clv", second.version, "gate_passed", "false")
    client.set_registered_model_alias("retain-clv", "challenger", second.version)
    client.create_registered_model("retain-clv.promotion-lock")  # a promotion under way: not a model to list

    assert main(["models", "--tracking-uri", uri, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert list(listing)[0] == "tracking_uri" and listing["tracking_uri"] == uri
    assert listing["last_score_run"] is None
    models = {m["name"]: m for m in listing["models"]}
    assert set(models) == {"retain-clv", "retain-churn-type"}
    assert models["retain-clv"]["aliases"] == {"champion": "1", "challenger": "2"}
    v1, v2 = models["retain-clv"]["versions"]
    assert v1["aliases"] == ["champion"] and v1["role"] == "champion" and "beats naive baseline" in v1["gate"]
    assert v1["gate_passed"] is True
    assert v2["aliases"] == ["challenger"] and v2["gate"].startswith("does not beat") and v2["gate_passed"] is False
    assert v1["metrics"]["purchases_mae"] < v1["metrics"]["baseline_purchases_mae"]
    churn = models["retain-churn-type"]["versions"][0]
    assert churn["metrics"]["macro_f1"] > churn["metrics"]["baseline_majority_macro_f1"]

    # after a score run with named versions, the listing says which ones it used
    assert main(["score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet"),
                 "--models", "clv=2", "--tracking-uri", uri]) == 0
    capsys.readouterr()
    assert main(["models", "--tracking-uri", uri]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"store: {uri}"
    assert "v2    @challenger used by the last score run" in text
    assert "v1    @champion  created" in text  # the champion was not used this time
    assert "gate failed: does not beat the current champion (test)" in text and "gate passed: beats naive" in text
    assert "last score run: as of 2025-12-01" in text and "retain-clv/v2 + no churn model" in text


def test_empty_store_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"store: sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert "no registered models: train one" in out and "last score run: none recorded" in out
