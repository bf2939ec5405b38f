"""The Spark engine (``--engine spark``): real Spark in local mode on loopback, one session
for the whole test run. Deselect with ``-m 'not spark'``."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from retain.cli import main
from retain.data.contract import score_columns
from retain.serving.jobs import ScoreJob, run_score_job
from retain.vocabulary import NotScored

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

AS_OF = "2025-12-01"


@pytest.fixture(scope="session")
def spark():
    from retain.serving.jobs.spark import SparkConfig, spark_session

    with spark_session(SparkConfig(java_home=os.environ.get("JAVA_HOME"))) as session:
        yield session


@pytest.fixture
def cli(trained, monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))

    def run(*args):
        store = [] if args[0] == "features" else ["--tracking-uri", trained.settings.resolved_tracking_uri]
        return main([*args, *store])
    return run


def assert_same_rows(local: pd.DataFrame, other: pd.DataFrame) -> None:
    """Same customers in the same order, same strings, floats within 1e-9 relative."""
    assert list(local.columns) == list(other.columns)
    assert list(local["customer_id"]) == list(other["customer_id"])
    for column in local.columns:
        a, b = local[column], other[column]
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=0, err_msg=column)
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == \
                b.astype(object).where(b.notna(), None).tolist(), column


def _run_both(pair, spark, job: ScoreJob, tmp_path):
    from retain.serving.jobs.spark import run_spark_score_job

    local = run_score_job(job, pair)
    local_scores = pd.read_parquet(job.out)
    spark_job = ScoreJob(**{**job.__dict__, "out": tmp_path / "spark.parquet", "chunk_customers": 1000})
    summary = run_spark_score_job(spark_job, pair, spark)
    return local, local_scores, summary, pd.read_parquet(spark_job.out)


def test_spark_scores_equal_the_local_engine_row_by_row(trained, spark, tmp_path):
    pair = trained.pair()
    job = ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "local.parquet")
    local, a, summary, b = _run_both(pair, spark, job, tmp_path)
    assert_same_rows(a, b)
    reasons = b["not_scored_reason"]
    assert (reasons == "").sum() > 1000 and reasons.str.startswith("churned").sum() > 100
    assert (summary.customers, summary.scored, summary.not_scored) == (local.customers, local.scored, local.not_scored)
    assert summary.unknown_categories == local.unknown_categories
    assert summary.missing_features == local.missing_features
    assert summary.drift_columns == local.drift_columns


def test_not_scored_customers_and_rejected_rows_agree_in_lenient_mode(trained, spark, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(trained.data, data)
    tx = pd.read_parquet(data / "transactions.parquet")
    customers = pd.read_parquet(data / "customers.parquet")
    victim = tx["customer_id"].iloc[0]
    extra = customers.iloc[[0]].assign(customer_id="ONLY-IN-CUSTOMERS")  # no transaction at all
    customers = customers[customers["customer_id"] != victim]  # known only by the rows that will be bad
    pd.concat([customers, extra], ignore_index=True).to_parquet(data / "customers.parquet", index=False)
    interactions = pd.read_parquet(data / "interactions.parquet")
    few = interactions["customer_id"].drop_duplicates().iloc[:3]  # most groups of customers have none
    interactions = interactions[interactions["customer_id"].isin(few)]
    # nanosecond timestamps, as pandas writes them by default (Spark refuses to read them as dates)
    interactions.astype({"timestamp": "datetime64[ns]"}).to_parquet(data / "interactions.parquet", index=False)
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[tx["customer_id"] == victim, "amount"] = "n/a"  # every row of one customer is bad
    tx.loc[len(tx) - 1, "amount"] = "twelve"  # and one row of another
    tx.astype({"amount": str}).to_csv(data / "transactions.csv", index=False)
    (data / "transactions.parquet").unlink()
    job = ScoreJob(data=data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "local.parquet", lenient=True,
                   data_cutoff=pd.Timestamp("2026-01-01"))
    local, a, summary, b = _run_both(trained.pair(), spark, job, tmp_path)
    assert_same_rows(a, b)
    by_id = b.set_index("customer_id")["not_scored_reason"]
    assert by_id[str(victim)] == NotScored.SET_ASIDE.words() and by_id["ONLY-IN-CUSTOMERS"].startswith("no transactions")
    assert summary.not_scored == local.not_scored
    rejected = pd.read_csv(tmp_path / "spark.parquet.rejects" / "transactions.rejects.csv", dtype=str)
    local_rejected = pd.read_csv(tmp_path / "local.parquet.rejects" / "transactions.rejects.csv", dtype=str)
    assert len(rejected) == len(local_rejected) == (tx["customer_id"] == victim).sum() + 1


def test_output_schema_comes_from_the_score_columns():
    from pyspark.sql import types as T

    from retain.serving.jobs.spark import spark_schema

    columns = score_columns(["price", "service"])
    schema = spark_schema(columns)
    assert schema.names == list(columns)
    assert schema["clv"].dataType == T.DoubleType() and schema["as_of"].dataType == T.TimestampNTZType()
    assert schema["will_churn"].dataType == T.BooleanType() and schema["p_type_price"].dataType == T.DoubleType()
    assert schema["customer_id"].dataType == T.StringType()


def test_cli_score_and_features_with_the_spark_engine(trained, spark, cli, tmp_path, capsys):
    local, remote = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert cli("score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(local), "--no-store") == 0
    assert cli("score", "--engine", "spark", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(remote)) == 0
    assert "with Spark (local[2])" in capsys.readouterr().err
    assert_same_rows(pd.read_parquet(local), pd.read_parquet(remote))
    from retain.serving.store import ScoreStore

    found, _ = ScoreStore(tmp_path / "home" / "scores.duckdb").lookup([pd.read_parquet(remote)["customer_id"][0]])
    assert len(found) == 1

    local, remote = tmp_path / "features.parquet", tmp_path / "features-spark.parquet"
    assert main(["features", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(local),
                 "--data-cutoff", "2026-01-01"]) == 0
    assert main(["features", "--engine", "spark", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(remote),
                 "--data-cutoff", "2026-01-01"]) == 0
    a, b = pd.read_parquet(local), pd.read_parquet(remote)
    assert len(a) > 4000
    assert_same_rows(a, b)
    assert (tmp_path / "features.parquet.reference.json").read_text() == \
        (tmp_path / "features-spark.parquet.reference.json").read_text()


def test_bad_data_is_a_clear_error_and_leaves_the_previous_output(trained, spark, cli, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    assert cli("score", "--engine", "spark", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(out),
               "--no-store") == 0
    previous = out.read_bytes()
    bad = tmp_path / "bad"
    shutil.copytree(trained.data, bad)
    tx = pd.read_parquet(bad / "transactions.parquet")
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[len(tx) - 1, "amount"] = "twelve"
    tx.astype({"amount": str}).to_csv(bad / "transactions.csv", index=False)
    (bad / "transactions.parquet").unlink()
    capsys.readouterr()
    assert cli("score", "--engine", "spark", "--data", str(bad), "--as-of", AS_OF, "--out", str(out),
               "--no-store") == 2
    err = capsys.readouterr().err
    assert "transactions.amount: 1 row(s) is not a number" in err and "Traceback" not in err
    assert out.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert cli("score", "--engine", "spark", "--data", str(trained.data), "--as-of", AS_OF, "--out",
               "/proc/no/such/scores.parquet", "--no-store") == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def _retain(args, tmp_path, **env):
    environment = {**os.environ, "RETAIN_HOME": str(tmp_path / "home"), **env}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "retain.cli", *args], env=environment, capture_output=True,
                          text=True, timeout=300)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize("case", ["java_home_nowhere", "master_unreachable", "no_pyspark"])
def test_missing_java_pyspark_or_master_fail_clearly(trained, tmp_path, case):
    args = ["score", "--engine", "spark", "--data", str(trained.data), "--as-of", AS_OF, "--out",
            str(tmp_path / "s.parquet"), "--tracking-uri", trained.settings.resolved_tracking_uri]
    started = time.monotonic()
    if case == "java_home_nowhere":
        done, message = _retain(args, tmp_path, JAVA_HOME=str(tmp_path / "nowhere")), "is not there"
    elif case == "master_unreachable":
        args += ["--spark-master", f"spark://127.0.0.1:{_closed_port()}"]
        done, message = _retain(args, tmp_path), "no Spark master answers at spark://127.0.0.1"
    else:
        code = "import sys; sys.modules['pyspark'] = None; from retain.cli import main; sys.exit(main(sys.argv[1:]))"
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "RETAIN_HOME": str(tmp_path / "home")})
        message = "pip install -e '.[spark]'"
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr and "at org.apache" not in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "s.parquet").exists()


def test_a_killed_spark_job_leaves_the_previous_output_and_a_rerun_is_identical(trained, spark, tmp_path):
    from retain.serving.jobs.spark import run_spark_score_job

    pair = trained.pair()
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"yesterday's scores")
    environment = {**os.environ, "RETAIN_HOME": str(tmp_path / "home")}
    environment.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "retain.cli", "score", "--engine", "spark", "--data", str(trained.data), "--as-of",
         AS_OF, "--out", str(out), "--chunk-customers", "500", "--no-store",
         "--tracking-uri", trained.settings.resolved_tracking_uri],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        # Spark is writing the groups' part files into its temporary folder: kill it (and its JVM) now
        while not list(tmp_path.glob(".scores.parquet.*/spark/_temporary")):
            assert process.poll() is None and time.monotonic() < deadline, "the job ended before it could be killed"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert out.read_bytes() == b"yesterday's scores"
    job = ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=out, chunk_customers=500)
    run_spark_score_job(job, pair, spark)
    run_score_job(ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "local.parquet"), pair)
    assert_same_rows(pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(out))


def test_a_group_hands_each_table_over_in_file_order():
    from retain.serving.jobs.spark import BUCKET, ROW, TABLE, _Layout

    layout = _Layout({"transactions": ["customer_id", "amount"], "customers": ["customer_id"]},
                     {"transactions": [], "customers": []})
    rows = pd.DataFrame({BUCKET: 0, TABLE: ["transactions", "customers", "transactions", "transactions"],
                         ROW: [7, 1, 2, 5], "transactions__customer_id": ["a", None, "a", "a"],
                         "transactions__amount": [3.0, None, 1.0, 2.0], "customers__customer_id": [None, "a", None, None]})
    frames = layout.frames(rows.sample(frac=1, random_state=3))  # a shuffle mixes the rows up
    assert frames["transactions"]["amount"].tolist() == [1.0, 2.0, 3.0]
    assert frames["customers"]["customer_id"].tolist() == ["a"]


def test_spark_scores_tell_one_customer_story(trained, spark, tmp_path):
    """The invariants of docs/customer-story.md (tests/story.py) over the Spark engine's output;
    the churn ones with the churn model's one threshold."""
    from retain.serving.jobs.spark import run_spark_score_job
    from story import CHURN_INVARIANTS, MOVE_INVARIANTS, VALUE_INVARIANTS, assert_story

    job = ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "spark.parquet", chunk_customers=1000)
    run_spark_score_job(job, trained.pair(), spark)
    scores = pd.read_parquet(job.out)
    assert_story(scores, VALUE_INVARIANTS + MOVE_INVARIANTS)
    assert_story(scores, CHURN_INVARIANTS, churn_threshold_value=trained.pair().churn.threshold_)
