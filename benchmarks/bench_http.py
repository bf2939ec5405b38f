"""Load test of the HTTP service against `mlflow models serve` of the same registered pyfuncs.

This script is the client (a second process); it starts the servers itself on free loopback
ports and stops them by PID. Every phase is bounded in requests and in seconds.

    python benchmarks/bench_http.py --home RETAIN_HOME --data DATASET_FOLDER [--as-of 2025-12-01]

RETAIN_HOME must hold the champions (e.g. `retain demo`'s demo-out/retain-home, or any
store after `retain train clv` and `retain train churn`); DATASET_FOLDER is the data
they were trained on. Printed: p50/p95/p99 latency and throughput for 1-customer and
1,000-customer requests, server memory (RSS of the server's processes) before and after a
paced run at --rate requests/s for --paced-seconds, and the same closed-loop figures for
`mlflow models serve` of each pyfunc (raw tables in, as_of as a param), as a user would run them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

KEY = "bench-key"


def _busy() -> None:
    total = 0
    for i in range(15_000_000):
        total += i


def cpu_capacity() -> float:
    """How many processes' worth of CPU the machine gives at once: the same busy loop run
    alone and then in as many processes as it has cores (1.0 = no more than one core's
    throughput, whatever the core count says). Figures here are read against it."""
    import multiprocessing

    cores = os.cpu_count() or 1
    timings = []
    for processes in (1, cores):
        started = time.perf_counter()
        workers = [multiprocessing.Process(target=_busy) for _ in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        timings.append((processes, time.perf_counter() - started))
    (_, alone), (processes, together) = timings
    return processes * alone / together


@contextlib.contextmanager
def memory_sampled(pid: int, every_seconds: float):
    """The process tree's RSS (MB) every ``every_seconds`` while the block runs: whether
    memory grows with the requests or only while the server warms up."""
    samples: list[float] = []
    done = threading.Event()

    def sample():
        while not done.wait(every_seconds):
            samples.append(tree_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        done.set()
        sampler.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def start(command, env, url_ready, timeout=180) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(url_ready, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(process)
    raise SystemExit(f"server not ready within {timeout} s: {' '.join(command)}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LoopbackClient:
    """POSTs JSON bodies over one keep-alive connection per thread, with the standard
    library's http.client. Its own cost per request is ~0.1 ms where httpx's is ~0.5 ms
    (GET /livez here: 0.4 ms against 0.9 ms), which every latency would otherwise carry, for
    both servers alike. Returns the status code, 0 when the connection failed."""

    def __init__(self, port: int, headers: dict | None = None, timeout: float = 120):
        self._port, self._timeout = port, timeout
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._local = threading.local()

    def post(self, path: str, body: bytes) -> int:
        reused = getattr(self._local, "connection", None) is not None
        if not reused:
            self._local.connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=self._timeout)
        connection = self._local.connection
        try:
            connection.request("POST", path, body=body, headers=self._headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            self._local.connection = None
            # a kept-alive connection the server closed while it sat idle (uvicorn closes them
            # after 5 s) fails before any answer: sent again on a new one, as httpx would
            stale = isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
            return self.post(path, body) if reused and stale else 0


def closed_loop(send, bodies, max_requests, max_seconds, clients: int = 1) -> dict:
    """``clients`` senders, each sending one request after the other: latency percentiles,
    requests/s and errors."""
    latencies, errors, lock, started = [], [0], threading.Lock(), time.perf_counter()
    counter = iter(range(max_requests))

    def sender():
        while time.perf_counter() - started <= max_seconds:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            ok = send(bodies[i % len(bodies)])
            with lock:
                latencies.append(time.perf_counter() - t0)
                errors[0] += not ok

    threads = [threading.Thread(target=sender) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise(latencies, errors[0], time.perf_counter() - started)


def paced(send, bodies, rate, seconds, concurrency=16) -> dict:
    """Requests started at a fixed rate (open loop, at most `concurrency` in flight)."""
    latencies, errors, lock = [], [0], threading.Lock()
    gate = threading.Semaphore(concurrency)

    def one(body):
        try:
            t0 = time.perf_counter()
            ok = send(body)
            with lock:
                latencies.append(time.perf_counter() - t0)
                errors[0] += not ok
        finally:
            gate.release()

    started = time.perf_counter()
    skipped = 0
    with ThreadPoolExecutor(concurrency) as pool:
        for i in range(int(rate * seconds)):
            due = started + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            if not gate.acquire(timeout=max(0.0, due + 1 / rate - time.perf_counter())):
                skipped += 1  # the server is behind: this request is not sent, and counted
                continue
            pool.submit(one, bodies[i % len(bodies)])
    result = summarise(latencies, errors[0], time.perf_counter() - started)
    result["not_sent_server_behind"] = skipped
    return result


def summarise(latencies, errors, seconds) -> dict:
    ms = np.asarray(latencies) * 1000
    if not len(ms):
        return {"requests": 0, "errors": errors}
    return {"requests": len(ms), "errors": int(errors), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "requests_per_s": round(len(ms) / seconds, 1)}


# --- request bodies ----------------------------------------------------------------------------------------

def _iso(value):
    return None if pd.isna(value) else pd.Timestamp(value).isoformat()


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def group_tables(tables: dict[str, pd.DataFrame]) -> dict:
    return {name: {k: g for k, g in frame.groupby(frame["customer_id"].astype(str), observed=True)}
            for name, frame in tables.items() if frame is not None}


def customers_json(grouped: dict, ids: list[str]) -> list[dict]:
    """The /score body's customers for these ids, from a dataset's tables grouped by customer."""
    out = []
    for cid in ids:
        def rows(name):
            return grouped.get(name, {}).get(cid, pd.DataFrame())
        tx = rows("transactions")
        body = {"customer_id": cid, "transactions": [
            {"timestamp": _iso(r["timestamp"]), "amount": float(r["amount"]),
             **{k: (str(_plain(r[k])) if _plain(r[k]) is not None else None) for k in ("order_id", "category", "channel")
                if k in tx.columns},
             **({"discount": _plain(r["discount"])} if "discount" in tx.columns else {})}
            for _, r in tx.iterrows()]}
        inter = rows("interactions")
        body["interactions"] = [{"timestamp": _iso(r["timestamp"]), "kind": str(r["kind"]),
                                 **{k: _plain(r[k]) for k in ("resolved", "resolution_hours", "satisfaction")
                                    if k in inter.columns}} for _, r in inter.iterrows()]
        attrs = rows("customers")
        if len(attrs):
            first = attrs.iloc[0]
            body["attributes"] = {k: (_iso(v) if pd.api.types.is_datetime64_any_dtype(attrs[k]) else _plain(v))
                                  for k, v in first.items() if k != "customer_id"}
        out.append(body)
    return out


def raw_tables_split(tables: dict[str, pd.DataFrame], ids: list[str]) -> dict:
    """The same customers as the pyfuncs' raw-tables input (a `table` column), dataframe_split JSON."""
    parts = []
    for name in ("transactions", "customers", "interactions"):
        frame = tables.get(name)
        if frame is None:
            continue
        rows = frame[frame["customer_id"].astype(str).isin(ids)].copy()
        rows.insert(0, "table", name)
        parts.append(rows)
    stacked = pd.concat(parts, ignore_index=True)
    for column in stacked.columns:
        if pd.api.types.is_datetime64_any_dtype(stacked[column]):
            stacked[column] = stacked[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            stacked[column] = stacked[column].astype(object)
    stacked = stacked.astype(object).where(stacked.notna(), None)
    return json.loads(stacked.to_json(orient="split", index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", default="2025-12-01")
    parser.add_argument("--single-requests", type=int, default=400)
    parser.add_argument("--batch-requests", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--paced-seconds", type=float, default=120.0)
    parser.add_argument("--phase-seconds", type=float, default=90.0, help="bound of each closed-loop phase")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--mlflow-paced-seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1,
                        help="server worker processes, for retain serve and mlflow models serve alike (one per core)")
    args = parser.parse_args()

    print("building request bodies", file=sys.stderr, flush=True)
    tables = {name: pd.read_parquet(args.data / f"{name}.parquet") for name in
              ("transactions", "customers", "interactions") if (args.data / f"{name}.parquet").exists()}
    tx = tables["transactions"]
    before = tx[tx["timestamp"] < pd.Timestamp(args.as_of)]
    ids = sorted(before["customer_id"].astype(str).unique())
    rng = np.random.default_rng(0)
    singles = [[c] for c in rng.choice(ids, 200, replace=False)]
    batch_ids = [list(rng.choice(ids, 1000, replace=False)) for _ in range(3)]
    home = args.home.resolve()
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    env = {**os.environ, "RETAIN_HOME": str(home), "MLFLOW_TRACKING_URI": tracking, "RETAIN_API_KEYS": KEY,
           "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(home / "bentoml-bench"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    results = {}
    capacity = cpu_capacity()
    print(f"CPU: {os.cpu_count()} cores giving {capacity:.2f} cores' worth of throughput at once "
          "(the same busy loop alone and in one process per core)", flush=True)

    def say(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # --- retain serve
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    say("starting retain serve")
    server = start([sys.executable, "-m", "retain.cli", "serve", "--port", str(port), "--reload-seconds", "0",
                    "--workers", str(args.workers)], env, url + "/readyz")
    try:
        client = LoopbackClient(port, headers={"Authorization": f"Bearer {KEY}"})
        grouped = group_tables(tables)
        single_bodies = [json.dumps({"as_of": args.as_of, "customers": customers_json(grouped, c)}).encode()
                         for c in singles]
        batch_bodies = [json.dumps({"as_of": args.as_of, "customers": customers_json(grouped, c)}).encode()
                        for c in batch_ids]

        def send(body):
            return client.post("/score", body) == 200

        say("1-customer and 1,000-customer requests")
        closed_loop(send, single_bodies, 20, 30)  # warm-up
        results["retain serve, 1 customer"] = closed_loop(send, single_bodies, args.single_requests, args.phase_seconds)
        batch = closed_loop(send, batch_bodies, args.batch_requests, args.phase_seconds, clients=args.workers)
        batch["customers_per_s"] = round(batch.get("requests_per_s", 0) * 1000, 0)
        results[f"retain serve, 1,000 customers ({args.workers} client(s))"] = batch
        say(f"paced run: {args.rate:g} requests/s for {args.paced_seconds:g} s")
        rss_before = tree_rss_mb(server.pid)
        with memory_sampled(server.pid, every_seconds=20) as samples:
            load = paced(send, single_bodies, args.rate, args.paced_seconds)
        rss_after = tree_rss_mb(server.pid)
        load.update(rss_before_mb=round(rss_before, 1), rss_after_mb=round(rss_after, 1))
        print("retain serve memory every 20 s of the paced run (MB): " + ", ".join(f"{mb:,.0f}" for mb in samples),
              flush=True)
        results[f"retain serve, 1 customer at {args.rate:g}/s for {args.paced_seconds:g} s"] = load
    finally:
        stop(server)

    # --- mlflow models serve, one server per pyfunc
    if not args.skip_mlflow:
        # encoded before timing, as retain's bodies are
        single_split, batch_split = ([json.dumps({"dataframe_split": raw_tables_split(tables, c),
                                                  "params": {"as_of": args.as_of}}).encode() for c in groups]
                                     for groups in (singles[:50], batch_ids))
        for name in ("retain-clv", "retain-churn-type"):
            port = free_port()
            murl = f"http://127.0.0.1:{port}"
            say(f"mlflow models serve {name}")
            server = start([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@champion",
                            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(args.workers)],
                           env, murl + "/ping")
            try:
                mclient = LoopbackClient(port)

                def msend(body):
                    return mclient.post("/invocations", body) == 200

                closed_loop(msend, single_split, 10, 30)
                results[f"mlflow models serve {name}, 1 customer"] = closed_loop(
                    msend, single_split, args.single_requests // 2, args.phase_seconds)
                mbatch = closed_loop(msend, batch_split, args.batch_requests, args.phase_seconds, clients=args.workers)
                mbatch["customers_per_s"] = round(mbatch.get("requests_per_s", 0) * 1000, 0)
                results[f"mlflow models serve {name}, 1,000 customers ({args.workers} client(s))"] = mbatch
                mrss = tree_rss_mb(server.pid)
                mload = paced(msend, single_split, args.rate, args.mlflow_paced_seconds)
                mload.update(rss_before_mb=round(mrss, 1), rss_after_mb=round(tree_rss_mb(server.pid), 1))
                results[f"mlflow models serve {name}, 1 customer at {args.rate:g}/s for "
                        f"{args.mlflow_paced_seconds:g} s"] = mload
            finally:
                stop(server)

    width = max(len(k) for k in results)
    for name, figures in results.items():
        print(f"{name:<{width}}  " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
