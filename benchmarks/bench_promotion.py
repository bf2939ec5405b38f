"""What the check-and-set promotion costs: moving the champion alias under the promotion lock
(create the lock, re-read the champion, move, read back, release) against moving it with one
plain ``set_registered_model_alias`` call (the baseline, the old way), on a local sqlite store
and on a real ``mlflow server`` started on a free loopback port.

    python benchmarks/bench_promotion.py [--moves 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _server(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    raise SystemExit("mlflow server did not start")


def _measure(uri: str, home: Path, moves: int) -> tuple[float, float]:
    from retain.settings import Settings
    from retain.models.registry import CHAMPION, Registry
    from retain.training.gate import Decision

    registry = Registry(Settings(home=home, tracking_uri=uri))
    name = "bench-model"
    registry.client.create_registered_model(name)
    run = registry.client.create_run(registry.client.create_experiment(f"bench-{time.time_ns()}"))
    versions = [registry.client.create_model_version(name, source=f"{run.info.artifact_uri}/model",
                                                     run_id=run.info.run_id).version for _ in range(2)]
    plain, guarded = [], []
    for i in range(moves):
        version = versions[i % 2]
        started = time.perf_counter()
        registry.client.set_registered_model_alias(name, CHAMPION, version)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        registry.settle_alias(name, version, Decision(True, ["bench"]), registry.champion_version(name),
                              lambda champion: Decision(True, ["bench"]))
        guarded.append(time.perf_counter() - started)
    return statistics.median(plain) * 1000, statistics.median(guarded) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-promotion-"))
    process, url = _server(root)
    try:
        for label, uri in (("local sqlite file", f"sqlite:///{root / 'local.db'}"), ("mlflow server (REST)", url)):
            plain, guarded = _measure(uri, root / "home", args.moves)
            print(f"{label:22s} plain alias move {plain:7.1f} ms   check-and-set under the lock {guarded:7.1f} ms "
                  f"(x{guarded / plain:.1f}); median of {args.moves}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
