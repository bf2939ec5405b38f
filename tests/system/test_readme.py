"""The commands the README shows, run as a reader would run them (at a smaller size)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from servers import free_port, stop_process_group, wait_until_ready

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)


def _block_starting(prefix: str) -> str:
    return next(block for block in _bash_blocks() if block.lstrip().startswith(prefix))


def _env(**extra) -> dict:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.mark.slow
def test_the_walk_through_runs_and_writes_scores_and_report(tmp_path):
    script = _block_starting("export RETAIN_HOME").replace("--customers 20000", "--customers 6000")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert scores["customer_id"].is_unique and (scores["not_scored_reason"] == "").sum() > 1000
    assert (tmp_path / "report.html").stat().st_size > 100_000
    assert "retain-clv" in done.stdout and "retain-churn-type" in done.stdout  # retain models listed both


@pytest.mark.server
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_http_example_answers(trained, tmp_path):
    block = _block_starting("RETAIN_API_KEYS=")
    port = str(free_port())
    serve_line, curl_command = block.split("\n", 1)
    serve = serve_line.split("#")[0].strip().replace("3000", port)
    env = _env(RETAIN_HOME=str(trained.settings.home), BENTOML_HOME=str(tmp_path / "bentoml"),
               BENTOML_DO_NOT_TRACK="true")
    server = subprocess.Popen(["bash", "-c", serve], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", server, 180)
        done = subprocess.run(["bash", "-c", curl_command.replace("3000", port)], env=env, capture_output=True,
                              text=True, timeout=60)
        answer = json.loads(done.stdout)
        assert answer["customers"][0]["customer_id"] == "c1" and answer["customers"][0]["clv"] > 0
        assert answer["clv_model_version"] == "retain-clv/v1"
    finally:
        stop_process_group(server)

