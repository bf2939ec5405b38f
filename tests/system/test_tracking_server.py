"""retain against a real MLflow tracking server (sqlite backend, proxied artifact storage),
as a team would run it: train both families, promote, load the champions back, and two
trainings racing to the champion alias."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from retain.cli import main
from retain.data.synthetic import GeneratorConfig, generate, write_dataset
from retain.models import registry as model_registry
from retain.settings import Settings
from retain.models.registry import CHAMPION, LOCK_SUFFIX, VALUE_MODEL_NAME, Registry, configure_tracking
from retain.training.value import VALUE_GATE
from servers import free_port, stop_process_group, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """``mlflow server`` on a free loopback port for this module's tests; its folder holds the
    database and the artifacts it proxies."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # GenAI job workers: retain needs none, they slow start-up
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--uvicorn-opts", "--timeout-graceful-shutdown 2",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/health", process, 120, lambda: (root / "server.log").read_text())
        yield {"url": url, "root": root}
    finally:
        stop_process_group(process)
        log.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teams") / "data"
    write_dataset(generate(GeneratorConfig(customers=5000, seed=11)), folder)
    return folder


def _fresh_registry(url: str, home: Path) -> Registry:
    """The server is shared by the session: start each test without a retain-clv model."""
    registry = Registry(Settings(home=home, tracking_uri=url))
    if registry.registered(VALUE_MODEL_NAME) is not None:
        registry.client.delete_registered_model(VALUE_MODEL_NAME)
    return registry


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


def test_train_both_families_promote_and_load_back_from_a_server(tracking_server, data, home, capsys):
    url = tracking_server["url"]
    registry = _fresh_registry(url, home)
    train_clv = ["train", "clv", "--data", str(data), "--data-cutoff", "2026-01-01", "--calibration-end", "2025-01-01",
                 "--model", "bgnbd", "--tracking-uri", url, "--json"]
    first = _run(train_clv, capsys)
    value = json.loads(first.out)
    assert value["tracking_uri"] == url and f"MLflow store: {url}" in first.err
    assert value["promoted"] and registry.champion_version(VALUE_MODEL_NAME) == value["model_version"]

    churn = json.loads(_run(["train", "churn", "--data", str(data), "--data-cutoff", "2026-01-01",
                             "--as-of", "2025-09-01", "--tracking-uri", url, "--json"], capsys).out)
    assert churn["tracking_uri"] == url and churn["model_version"]
    if not churn["promoted"]:  # a small base may not beat the baselines: promote it by hand
        _run(["promote", "churn", "--version", churn["model_version"], "--force", "--tracking-uri", url], capsys)

    # the same training again stays a challenger; promoting it by hand needs --force
    again = json.loads(_run(train_clv, capsys).out)
    assert not again["promoted"]
    assert main(["promote", "clv", "--version", again["model_version"], "--tracking-uri", url]) == 2
    assert "failed its gate" in capsys.readouterr().err
    promoted = _run(["promote", "clv", "--version", again["model_version"], "--force", "--tracking-uri", url, "--json"],
                    capsys)
    assert json.loads(promoted.out)["previous"] == value["model_version"] and f"MLflow store: {url}" in promoted.err

    # over REST, versions come without aliases: the registry reads them from the registered model
    versions = {v["version"]: v["aliases"] for v in registry.versions(VALUE_MODEL_NAME)}
    assert versions == {value["model_version"]: [], again["model_version"]: [CHAMPION]}
    roles = {v["version"]: v["tags"]["role"] for v in registry.versions(VALUE_MODEL_NAME)}
    assert roles == {value["model_version"]: "former champion", again["model_version"]: CHAMPION}
    assert registry.registered(VALUE_MODEL_NAME + LOCK_SUFFIX) is None  # locks are released

    configure_tracking(Settings(home=home, tracking_uri=url))
    features = pd.read_parquet(data / "transactions.parquet")
    some = features[features["customer_id"].isin(features["customer_id"].unique()[:30])]
    for column in ("customer_id", "order_id", "category", "channel"):
        some[column] = some[column].astype(str)
    clv = model_registry.load(f"models:/{VALUE_MODEL_NAME}@champion").predict(some, params={"as_of": "2025-06-01"})
    assert set(clv["clv_model_version"]) == {f"{VALUE_MODEL_NAME}/v{again['model_version']}"}
    assert clv["clv"].notna().sum() > 0
    churn_model = model_registry.load("models:/retain-churn-type@champion").unwrap_python_model()
    assert churn_model.model.labels_[0] == "retained"

    # retain score reads the same pair from the server and names the versions it used
    scored = _run(["score", "--data", str(data), "--data-cutoff", "2026-01-01", "--as-of", "2025-06-01",
                   "--out", str(home.parent / "scores.parquet"), "--no-store", "--tracking-uri", url, "--json"], capsys)
    summary = json.loads(scored.out)
    assert summary["clv_model_version"] == f"{VALUE_MODEL_NAME}/v{again['model_version']}"
    assert url in scored.err
    scores = pd.read_parquet(home.parent / "scores.parquet")
    assert set(scores["clv_model_version"].dropna()) == {summary["clv_model_version"]}

    # everything went to the server: artifacts in its proxied storage, nothing local
    assert any((tracking_server["root"] / "artifacts").rglob("MLmodel"))
    assert not (home / "mlflow.db").exists() and not (home / "mlartifacts").exists()


def test_two_trainings_finishing_together_leave_the_better_one_champion(tracking_server, data, home):
    """Both trainings compare against "no champion" and then reach the alias together: the
    test holds the promotion lock until both versions are registered, then lets them race."""
    url = tracking_server["url"]
    registry = _fresh_registry(url, home)
    env = {**os.environ, "RETAIN_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "retain.cli", "train", "clv", "--data", str(data), "--data-cutoff", "2026-01-01",
               "--calibration-end", "2025-01-01", "--tracking-uri", url, "--json", "--model"]
    processes = {}
    try:
        with registry.promotion_lock(VALUE_MODEL_NAME, "the test, holding both trainings back"):
            for family in ("bgnbd", "mbgnbd"):
                processes[family] = subprocess.Popen(command + [family], env=env, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 300
            while len(registry.versions(VALUE_MODEL_NAME)) < 2:
                for family, process in processes.items():
                    if process.poll() is not None:
                        pytest.fail(f"{family} training ended early: {process.communicate()[1][-2000:]}")
                assert time.monotonic() < deadline, "the trainings did not register within 300 s"
                time.sleep(0.5)
            assert registry.champion_version(VALUE_MODEL_NAME) is None  # both decided against no champion
        results = {}
        for family, process in processes.items():
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-2000:]
            results[family] = json.loads(out)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    versions = registry.versions(VALUE_MODEL_NAME)
    assert len(versions) == 2
    champions = [v for v in versions if CHAMPION in v["aliases"]]
    assert len(champions) == 1
    assert sum(v["tags"].get("role") == CHAMPION for v in versions) == 1
    winner = next(f for f, r in results.items() if r["model_version"] == champions[0]["version"])
    loser = next(f for f in results if f != winner)
    assert results[winner]["promoted"]
    if results[loser]["promoted"]:  # the worse one got there first and was then replaced after a re-check
        assert "re-checked at promotion" in results[winner]["reason"]
    # the champion is the better of the two on the gate's rule: the other does not beat it
    beats, _ = VALUE_GATE.beats(results[loser]["metrics"], results[winner]["metrics"])
    assert not beats
    # whichever reached the alias second saw the champion move and compared again
    assert any("re-checked at promotion" in r["reason"] for r in results.values())
