"""``retain score``: the batch job as a scheduler runs it."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from retain.cli import main
from retain.errors import RetainError
from retain.serving.jobs import ScoreJob, run_score_job
from retain.serving.store import ScoreStore

AS_OF = "2025-12-01"


@pytest.fixture
def cli(trained, monkeypatch, tmp_path):
    """Runs ``retain ...`` against the trained store, with the score store in tmp_path."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))

    def run(*args):
        return main([*args, "--tracking-uri", trained.settings.resolved_tracking_uri])
    return run


def test_scores_every_customer_once_writes_summary_store_and_drift(trained, cli, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    scores = pd.read_parquet(out)
    ids = set(pd.read_parquet(trained.data / "transactions.parquet")["customer_id"].astype(str))
    assert len(scores) == len(ids) == summary["customers"] and set(scores["customer_id"]) == ids
    assert summary["scored"] == (scores["not_scored_reason"] == "").sum() > 0
    assert summary["not_scored"]["churned"] == scores["not_scored_reason"].str.startswith("churned").sum() > 0
    assert summary["clv_model_version"] == "retain-clv/v1" and summary["churn_model_version"] == "retain-churn-type/v1"
    assert summary["value_horizon_days"] == 365 and summary["churn_horizon_days"] == 90
    drift = json.loads((tmp_path / "scores.parquet.drift.json").read_text())
    assert {row["column"] for row in drift["columns"]} >= {"frequency", "recency", "clv", "p_churn"}
    # the score store holds the run, for /lookup and analysts
    store = ScoreStore(tmp_path / "home" / "scores.duckdb")
    found, missing = store.lookup([scores["customer_id"].iloc[0], "NOBODY"])
    assert list(found["customer_id"]) == [scores["customer_id"].iloc[0]] and missing == ["NOBODY"]
    runs = store.runs()
    assert list(runs["score_table"]) == ["scores_2025_12_01"] and runs["scored"].iloc[0] == summary["scored"]


def test_result_does_not_depend_on_chunks_and_reruns_are_byte_identical(trained, cli, tmp_path, capsys):
    whole, chunked = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(whole), "--no-store") == 0
    first_bytes = whole.read_bytes()
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(chunked), "--no-store",
               "--chunk-customers", "700") == 0
    assert "in 9 chunk(s)" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(whole), pd.read_parquet(chunked))
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(whole), "--no-store") == 0
    assert whole.read_bytes() == first_bytes


def test_csv_output_by_suffix_and_refused_suffix(trained, cli, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(out), "--no-store") == 0
    csv = pd.read_csv(out, dtype={"customer_id": str})
    parquet_columns = list(pd.read_parquet(trained.data / "transactions.parquet").columns)
    assert "p_alive" in csv.columns and "customer_id" in parquet_columns and csv["customer_id"].is_unique
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(tmp_path / "x.txt")) == 2
    assert "must end in .parquet or .csv" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_value_model_only_and_named_versions(trained, cli, tmp_path, capsys):
    out = tmp_path / "value.parquet"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(out), "--models", "clv=1",
               "--no-store") == 0
    printed = capsys.readouterr().out
    assert "churn model: none: the churn columns are empty" in printed
    scores = pd.read_parquet(out)
    assert scores["p_churn"].isna().all() and (scores.loc[scores["not_scored_reason"] == "", "clv"] > 0).all()


@pytest.mark.parametrize("args, message", [
    (["--models", "clv=9"], "retain-clv has no version 9"),
    (["--as-of", "2020-01-01"], "no customer has a purchase before 2020-01-01"),
    (["--out", "/proc/no/such/scores.parquet"], "cannot create the output folder"),
])
def test_bad_requests_fail_clearly_without_output(trained, cli, tmp_path, capsys, args, message):
    base = {"--as-of": AS_OF, "--out": str(tmp_path / "s.parquet")}
    extra = dict(zip(args[::2], args[1::2]))
    flags = [item for key, value in {**base, **extra}.items() for item in (key, value)]
    assert cli("score", "--data", str(trained.data), *flags, "--no-store") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_missing_table_or_column_fails_clearly(trained, cli, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("score", "--data", str(empty), "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet")) == 2
    assert "has no transactions.parquet or transactions.csv" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    tx = pd.read_parquet(trained.data / "transactions.parquet").drop(columns=["amount"])
    tx.to_parquet(broken / "transactions.parquet")
    assert cli("score", "--data", str(broken), "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet")) == 2
    assert "transactions: required column(s) ['amount'] missing" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_a_failure_half_way_leaves_the_previous_output(trained, cli, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(out), "--no-store") == 0
    previous = out.read_bytes()
    bad = tmp_path / "bad"
    shutil.copytree(trained.data, bad)
    tx = pd.read_parquet(bad / "transactions.parquet")
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[len(tx) - 1, "amount"] = "twelve"  # one bad row, in some later chunk
    tx.to_csv(bad / "transactions.csv", index=False)
    (bad / "transactions.parquet").unlink()
    assert cli("score", "--data", str(bad), "--as-of", AS_OF, "--out", str(out), "--no-store",
               "--chunk-customers", "500") == 2
    assert "transactions.amount: 1 row(s) is not a number" in capsys.readouterr().err
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_killed_job_leaves_no_partial_file(trained, tmp_path):
    out = tmp_path / "scores.parquet"
    env = {**os.environ, "RETAIN_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    job = subprocess.Popen(
        [sys.executable, "-m", "retain.cli", "score", "--data", str(trained.data), "--as-of", AS_OF,
         "--out", str(out), "--chunk-customers", "300", "--tracking-uri", trained.settings.resolved_tracking_uri],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".scores.parquet.*/part-00002.parquet")):
            assert job.poll() is None and time.monotonic() < deadline, "the job ended before it could be killed"
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            job.kill()
    assert not out.exists()
    # the next run clears the killed run's work folder (its owner is gone) and leaves nothing hidden
    leftover = list(tmp_path.glob(".scores.parquet.*"))
    assert leftover
    run_score_job(ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=out), trained.pair())
    assert out.exists() and not list(tmp_path.glob(".scores.parquet.*"))


def test_store_loads_never_break_readers_and_a_locked_store_is_a_clear_error(trained, tmp_path):
    pair = trained.pair()
    store = ScoreStore(tmp_path / "store.duckdb", lock_wait_seconds=0.5)
    job = ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "a.parquet")
    run_score_job(job, pair, store=store)
    errors, reads = [], []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with duckdb.connect(str(store.path), read_only=True) as connection:
                    reads.append(connection.execute("SELECT count(*) FROM latest").fetchone()[0])
            except Exception as exc:  # any failure of a reader is what this test is about
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for as_of in ("2025-10-01", "2025-11-01"):
            run_score_job(ScoreJob(data=trained.data, as_of=pd.Timestamp(as_of), out=tmp_path / "b.parquet"),
                          pair, store=store)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and len(reads) > 5
    with duckdb.connect(str(store.path), read_only=True) as connection:
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    assert {"scores_2025_10_01", "scores_2025_11_01", "scores_2025_12_01", "runs", "latest"} <= tables
    with open(store.path.with_name(store.path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(RetainError, match="locked by another load"):
            run_score_job(job, pair, store=store)


def test_a_chunk_without_rows_of_an_optional_table_scores_as_in_the_whole_base(trained, cli, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(trained.data, data)
    interactions = pd.read_parquet(data / "interactions.parquet")
    few = interactions["customer_id"].drop_duplicates().iloc[:3]  # most chunks hold no interaction
    interactions[interactions["customer_id"].isin(few)].to_parquet(data / "interactions.parquet", index=False)
    whole, chunked = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    assert cli("score", "--data", str(data), "--as-of", AS_OF, "--out", str(whole), "--no-store") == 0
    assert cli("score", "--data", str(data), "--as-of", AS_OF, "--out", str(chunked), "--no-store",
               "--chunk-customers", "700") == 0
    pd.testing.assert_frame_equal(pd.read_parquet(whole), pd.read_parquet(chunked))


def test_drift_is_measured_against_training_and_alerts_loudly(trained, tmp_path):
    pair = trained.pair()
    steady = run_score_job(ScoreJob(data=trained.data, as_of=pd.Timestamp("2026-01-01"),
                                    out=tmp_path / "steady.parquet"), pair)
    assert not steady.drift_alert, steady.drift_columns
    shifted = tmp_path / "shifted"
    shutil.copytree(trained.data, shifted)
    tx = pd.read_parquet(shifted / "transactions.parquet")
    tx["amount"] = tx["amount"] * 10  # prices in another currency: spend and value move far
    tx.to_parquet(shifted / "transactions.parquet")
    store = ScoreStore(tmp_path / "store.duckdb")
    alarmed = run_score_job(ScoreJob(data=shifted, as_of=pd.Timestamp("2026-01-01"), out=tmp_path / "s.parquet"),
                            pair, store=store)
    assert alarmed.drift_alert and {"monetary", "clv"} <= set(alarmed.drift_columns)
    report = json.loads((tmp_path / "s.parquet.drift.json").read_text())
    psi = {row["column"]: row["psi"] for row in report["columns"]}
    assert psi["monetary"] > 0.25 and psi["frequency"] < 0.1  # counts did not move, money did
    assert bool(store.runs()["drift_alert"].iloc[-1])


def test_report_finds_the_last_runs_scores_from_any_folder(trained, cli, tmp_path, monkeypatch, capsys):
    """`retain score --out scores.parquet` run in one folder, `retain report` without --scores in
    another: the store records the output as an absolute path."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "jobs")
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", "scores.parquet") == 0
    assert ScoreStore(tmp_path / "home" / "scores.duckdb").runs()["output"].iloc[-1] == \
        str(tmp_path / "jobs" / "scores.parquet")
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert cli("report", "--out", "report.html") == 0, capsys.readouterr().err
    assert f"scores {tmp_path / 'jobs' / 'scores.parquet'}" in capsys.readouterr().err
    assert (tmp_path / "elsewhere" / "report.html").exists()


@pytest.mark.parametrize("command", ["score", "features"])
def test_an_output_over_an_input_table_is_refused(trained, cli, tmp_path, capsys, command):
    run = (lambda argv: cli(*argv)) if command == "score" else main  # features reads no tracking store
    data = tmp_path / "data"
    shutil.copytree(trained.data, data)
    table = data / "transactions.parquet"
    before = table.read_bytes()
    for out in (table, data / "." / "transactions.parquet", data / "customers.parquet"):
        assert run([command, "--data", str(data), "--as-of", AS_OF, "--out", str(out)]) == 2
        assert f"would overwrite the input table {out.resolve()}" in capsys.readouterr().err
    assert table.read_bytes() == before
    # a Parquet table may be a folder of files: an output inside it is refused too
    folder = tmp_path / "folder-data"
    (folder / "transactions.parquet").mkdir(parents=True)
    shutil.copy(table, folder / "transactions.parquet" / "part-0.parquet")
    out = folder / "transactions.parquet" / "scores.parquet"
    assert run([command, "--data", str(folder), "--as-of", AS_OF, "--out", str(out)]) == 2
    assert "would overwrite the input table" in capsys.readouterr().err and not out.exists()


def test_a_line_item_export_scores_as_it_comes(trained, cli, tmp_path, capsys):
    """The Online-Retail-like fixture (tests/fixtures): line items, cancellations, guest
    checkouts and month-first dates, scored in chunks without --lenient; --date-format holds
    for every chunk (a chunk alone may hold no day over 12 to settle the order)."""
    fixtures = Path(__file__).parent.parent / "fixtures"
    data = tmp_path / "export"
    data.mkdir()
    shutil.copy(fixtures / "online_retail_lines.csv", data)
    out = tmp_path / "scores.parquet"
    assert cli("score", "--data", str(data), "--map", str(fixtures / "online_retail_mapping.json"),
               "--date-format", "%m/%d/%Y %H:%M", "--as-of", "2011-02-01", "--data-cutoff", "2011-12-31",
               "--chunk-customers", "2", "--out", str(out), "--no-store") == 0, capsys.readouterr().err
    scores = pd.read_parquet(out)
    assert sorted(scores["customer_id"]) == ["12346", "12583", "13047", "14527", "14911", "17809", "17850"]
    assert scores.loc[scores["customer_id"] == "17850", "frequency"].item() == 2
