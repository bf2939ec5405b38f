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
from retain.errors import RetainError
from retain.serving.batch import ScoreJob, run_score_job

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

AS_OF = "2025-12-01"


@pytest.fixture(scope="session")
def spark():
    from retain.serving.spark import SparkConfig, spark_session

    with spark_session(SparkConfig(java_home=os.environ.get("JAVA_HOME"))) as session:
        yield session


def assert_same_rows(local: pd.DataFrame, other: pd.DataFrame) -> None:
    """Same customers in the same order, same strings, floats within 1e-9 relative."""
    assert list(local.columns) == list(other.columns)
    assert list(local["customer_id"]) == list(other["customer_id"])
    for column in local.columns:
        a, b = local[column], other[column]
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=0, equal_nan=True,
                                       err_msg=column)
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == \
                b.astype(object).where(b.notna(), None).tolist(), column


def test_spark_scores_equal_the_local_engine_row_by_row(trained, spark, tmp_path):
    from retain.serving.spark import run_spark_score_job

    pair = trained.pair()
    local = run_score_job(ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "local.parquet"),
                          pair)
    job = ScoreJob(data=trained.data, as_of=pd.Timestamp(AS_OF), out=tmp_path / "spark.parquet",
                   chunk_customers=1000)
    summary = run_spark_score_job(job, pair, spark)
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "spark.parquet")
    assert_same_rows(a, b)
    assert (b["not_scored_reason"] != "").sum() > 0 and (b["not_scored_reason"] == "").sum() > 0
    assert summary.not_scored == local.not_scored and summary.scored == local.scored
    assert summary.unknown_categories == local.unknown_categories
    assert summary.missing_features == local.missing_features
