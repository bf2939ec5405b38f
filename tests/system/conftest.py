"""The system layer: retain end to end as people run it: the CLI in fresh processes, the
HTTP service under ``bentoml serve``, Spark, an MLflow tracking server, the demo, the
notebook, the README's commands and the report in headless Chromium. Helpers for the
servers these tests start: servers.py."""

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty RETAIN_HOME for the commands a test runs, no MLFLOW_TRACKING_URI from outside."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
