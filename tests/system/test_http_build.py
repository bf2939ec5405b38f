"""``retain build``: a Bento that serves the champions without the tracking store."""

import os
import subprocess
import sys

import httpx
import pytest

from servers import free_port, stop_process_group, wait_until_ready
from http_bodies import AS_OF, customer_body, with_everything as _with_everything


@pytest.mark.server
def test_the_built_bento_serves_without_the_tracking_store(trained, tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "RETAIN_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": trained.settings.resolved_tracking_uri}
    env.pop("RETAIN_API_KEYS", None)
    done = subprocess.run([sys.executable, "-m", "retain.cli", "build"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    tag = done.stdout.strip().splitlines()[-1]
    assert tag.startswith("retain:")
    # the tracking store is out of reach: the models can only come from the Bento
    serve_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}",
                 "RETAIN_API_KEYS": "bento-key"}
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port",
                                str(port)], env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + "/readyz", process, 120)
        headers = {"Authorization": "Bearer bento-key"}
        body = {"as_of": AS_OF, "customers": [customer_body(trained.dataset, _with_everything(trained.dataset, 1)[0])]}
        response = httpx.post(url + "/score", json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        scores = response.json()
        assert scores["clv_model_version"] == "retain-clv/v1" and scores["customers"][0]["clv"] > 0
        models = httpx.get(url + "/models", headers=headers).json()
        assert models["source"] == "bento" and {m["name"] for m in models["models"]} == {"retain-clv",
                                                                                         "retain-churn-type"}
        assert httpx.post(url + "/score", json=body).status_code == 401
    finally:
        stop_process_group(process)
