"""The registry against a real local sqlite store: a store locked by another writer, the
promotion lock and its lease, and what `retain promote` says about the store it uses."""

import sqlite3
import threading
import time

import pytest

from retain.cli import main
from retain.errors import RetainError
from retain.settings import Settings
from retain.models.registry import LOCK_SUFFIX, Registry, configure_tracking, display_uri


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    return Settings(home=tmp_path / "home")


def test_promote_names_the_store_and_does_not_create_an_empty_one(settings, capsys):
    assert main(["promote", "clv", "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert f"MLflow store: sqlite:///{settings.home / 'mlflow.db'}" in err
    assert "no MLflow store at" in err and "--tracking-uri" in err
    assert not (settings.home / "mlflow.db").exists()

    configure_tracking(settings)  # a store without the model
    Registry(settings).client.search_registered_models()
    assert main(["promote", "churn", "--version", "1"]) == 2
    assert "retain-churn-type is not registered in the MLflow store" in capsys.readouterr().err


@pytest.mark.slow
def test_a_locked_sqlite_store_is_retried_then_fails_with_advice(settings):
    """Another writer holds the file for 23 s: a caller with a short retry budget gets a clear
    error that points to a tracking server; a patient one gets through once it is released."""
    configure_tracking(settings)
    registry = Registry(settings)
    registry.client.create_registered_model("m")
    holder = sqlite3.connect(settings.home / "mlflow.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    outcome = {}

    def attempt(name, seconds):
        started = time.monotonic()
        try:
            outcome[name] = Registry(settings, retry_seconds=seconds).champion_version("m")
        except RetainError as exc:
            outcome[name] = exc
        outcome[name + "_seconds"] = time.monotonic() - started

    threads = [threading.Thread(target=attempt, args=("impatient", 1)),
               threading.Thread(target=attempt, args=("patient", 90))]
    for thread in threads:
        thread.start()
    time.sleep(23)  # longer than sqlite's own 20 s busy wait: only a retry gets through
    holder.execute("COMMIT")
    holder.close()
    for thread in threads:
        thread.join(120)
    assert isinstance(outcome["impatient"], RetainError)
    message = str(outcome["impatient"])
    assert "stayed locked by another writer" in message and "tracking server" in message
    assert "--tracking-uri" in message and "docs/teams.md" in message
    assert outcome["patient"] is None and outcome["patient_seconds"] >= 23  # no champion yet, read after the wait


@pytest.mark.slow
def test_the_promotion_lock_excludes_waits_and_takes_over_an_expired_lease(settings):
    configure_tracking(settings)
    first, second = Registry(settings), Registry(settings)
    entered = []

    def contender():
        with second.promotion_lock("m", "second"):
            entered.append(time.monotonic())

    with first.promotion_lock("m", "first"):
        held = first.registered("m" + LOCK_SUFFIX)
        assert held is not None and held.tags["holder"].startswith("first")
        thread = threading.Thread(target=contender)
        thread.start()
        time.sleep(1.5)
        assert entered == []  # the second one waits while the first holds it
        released = time.monotonic()
    thread.join(120)  # generous: a loaded CI machine slows the sqlite store
    assert entered and entered[0] >= released
    assert first.registered("m" + LOCK_SUFFIX) is None

    # a holder that died leaves its lock behind; once its lease is over, the next one takes it
    first.client.create_registered_model("m" + LOCK_SUFFIX, tags={"holder": "dead", "expires": str(time.time() - 1)})
    started = time.monotonic()
    with Registry(settings).promotion_lock("m", "after a crash"):
        assert first.registered("m" + LOCK_SUFFIX).tags["holder"].startswith("after a crash")
    assert time.monotonic() - started < 10


def test_printed_store_addresses_hide_passwords():
    assert display_uri("http://ana:s3cret@mlflow.example:5000") == "http://ana:***@mlflow.example:5000"
    assert display_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_settle_alias_decides_again_when_the_champion_moved_meanwhile(settings):
    """Version 2 was judged against no champion, but version 1 became champion while it was
    logging: under the lock it is compared again, against version 1, and stays challenger."""
    from retain.models.registry import CHALLENGER, CHAMPION
    from retain.training.gate import Decision

    configure_tracking(settings)
    registry = Registry(settings)
    client = registry.client
    client.create_registered_model("m")
    run = client.create_run(client.create_experiment("e"))
    for _ in range(2):
        client.create_model_version("m", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("m", CHAMPION, "1")  # the other training got there first
    compared_again = []

    def redecide(champion):
        compared_again.append(champion)
        return Decision(False, ["does not beat the current champion (purchases_mae 2.058 vs 2.039)"])

    final = registry.settle_alias("m", 2, Decision(True, ["no current champion"]), None, redecide)
    assert compared_again == ["1"] and not final.promote
    assert registry.champion_version("m") == "1"
    tags = client.get_model_version("m", "2").tags
    assert tags["role"] == CHALLENGER and tags["gate_passed"] == "false" and "2.058" in tags["gate"]
    assert str(client.get_registered_model("m").aliases[CHALLENGER]) == "2"

    # unchanged champion: no second comparison, the decision stands
    final = registry.settle_alias("m", "2", Decision(True, ["beats the current champion"]), "1", redecide)
    assert final.promote and compared_again == ["1"] and registry.champion_version("m") == "2"
    aliases = client.get_registered_model("m").aliases
    assert {k: str(v) for k, v in aliases.items()} == {CHAMPION: "2"}  # one role per version
    assert client.get_model_version("m", "1").tags["role"] == "former champion"


def test_a_model_saved_by_an_older_layout_of_retain_is_a_clear_error(settings, tmp_path, monkeypatch):
    """Models are pickled by module path: one whose module no longer exists (a retain whose
    modules have moved since) is an error that says to retrain, not a ModuleNotFoundError."""
    import sys

    import mlflow

    from retain.models import registry

    folder = tmp_path / "old_layout"
    folder.mkdir()
    (folder / "retain_old_layout.py").write_text(
        "import mlflow\n\n\nclass OldModel(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n        return model_input\n")
    monkeypatch.syspath_prepend(str(folder))
    configure_tracking(settings, "old-layout")
    with mlflow.start_run():
        import retain_old_layout

        info = mlflow.pyfunc.log_model(name="model", python_model=retain_old_layout.OldModel(), pip_requirements=[])
    version = mlflow.register_model(info.model_uri, "old-model").version
    sys.path.remove(str(folder))
    monkeypatch.delitem(sys.modules, "retain_old_layout")
    with pytest.raises(RetainError, match=r"saved by an earlier version of retain.*retrain it"):
        registry.load(f"models:/old-model/{version}")
