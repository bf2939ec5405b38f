"""The HTTP service's model holder with a real store: a missing champion is named in the
readiness answer (the pieces that need no trained models: tests/unit/test_http_units.py)."""

import shutil

from retain.serving.http.guard import Guard
from retain.serving.http.served import ModelHolder, load_champions, wait_until
from retain.settings import Settings

from http_bodies import call_asgi as _call


def test_a_missing_champion_is_named_with_the_reason(trained, tmp_path):
    from mlflow import MlflowClient

    from retain.models.registry import configure_tracking

    shutil.copytree(trained.settings.home, tmp_path / "home")
    settings = Settings(home=tmp_path / "home")
    configure_tracking(settings)
    MlflowClient().delete_registered_model_alias("retain-churn-type", "champion")
    holder = ModelHolder(lambda: load_champions(settings)).start()
    assert wait_until(lambda: holder.problem != "loading the champion models", 60)
    assert not holder.ready and "retain-churn-type has no champion" in holder.problem
    status, body = _call(Guard(None, readiness=lambda: (holder.ready, {"problem": holder.problem})), "/readyz")
    assert status == 503 and b"retain-churn-type has no champion" in body
