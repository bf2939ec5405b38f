"""The Spark engine of ``retain score`` and ``retain features`` (``--engine spark``).

The same code as the local engine, run per group of customers: every input table is read
with Spark, tagged with a bucket (a hash of the customer id, so all rows of a customer land
in one group) and the tables are put into one frame with a ``_table`` column; then
``groupBy(bucket).applyInPandas`` hands each group's rows to the local engine's
``score_chunk`` (validation with ``validate_tables`` and the scoring core) or to
``customer_features``. The model pair is pickled into a broadcast variable once and
unpickled once per executor Python process.

Why not ``mlflow.pyfunc.spark_udf``: a Spark UDF sees Arrow batches of rows cut wherever
Spark likes, so one customer's transactions would be split between calls and scored on
part of their history. Grouping by a customer hash keeps each customer's rows together.

The output is the local engine's: the groups are written as Parquet part files into a
temporary folder beside the target, merged and sorted by DuckDB into one file, and moved
over the target in one rename (``finish_score_job``). A job killed half way leaves the
previous output or none; rerunning writes the same file.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from retain.data.contract import BOOL, DATETIME, FLOAT, STRING
from retain.errors import RetainError
from retain.serving.jobs.chunks import (
    ChunkOutcome,
    ScoreJob,
    ScoreSummary,
    check_writable,
    table_files,
    finish_score_job,
    merge_rejects,
    output_format,
    part_columns,
    score_chunk,
    validate_chunk,
    work_folder,
    write_sorted,
)
from retain.serving.scoring import ModelPair

LOCAL_MASTER = "local[2]"
BUCKET = "_bucket"
TABLE = "_table"
ROW = "_row"  # position in the file: a shuffle does not keep the rows of a group in order
# a RetainError raised inside a Spark task travels back to the driver inside a Python
# worker's traceback; these marks let the driver cut its message out and raise it again
_ERROR_START, _ERROR_END = "<<retain-error>>", "<</retain-error>>"


@dataclass(frozen=True)
class SparkConfig:
    """How to reach Spark; built at the entry point (``java_home`` from JAVA_HOME)."""

    master: str | None = None  # None: spark-submit's master when under it, else local[2]
    submitted: bool = False  # running under spark-submit (its JVM and settings are already there)
    java_home: str | None = None
    connect_timeout_seconds: float = 10.0
    driver_memory: str = "4g"  # local mode: the driver is the executor
    verbose: bool = False  # keep Spark's own log on stderr
    python: str | None = None  # executors' Python (PYSPARK_PYTHON); local mode: this interpreter


def spark_type(kind: str):
    """The Spark type of a column kind of the data contract: the one mapping of kinds."""
    from pyspark.sql import types as T

    return {STRING: T.StringType(), FLOAT: T.DoubleType(), DATETIME: T.TimestampNTZType(),
            BOOL: T.BooleanType()}[kind]


def spark_schema(columns: dict[str, str]):
    """A Spark schema from a column -> kind list such as ``score_columns(labels)``."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(name, spark_type(kind), True) for name, kind in columns.items()])


# --- starting Spark ------------------------------------------------------------------


def check_java(java_home: str | None) -> str:
    """The java executable Spark will start, or a RetainError saying how to get one."""
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise RetainError(f"JAVA_HOME is {java_home}, but {java} is not there: the Spark engine needs "
                              "Java 17 or later; install it (apt-get install openjdk-17-jre-headless) and "
                              "point JAVA_HOME at it, or unset JAVA_HOME")
    else:
        found = shutil.which("java")
        if found is None:
            raise RetainError("the Spark engine needs Java 17 or later and no java is on the PATH: install it "
                              "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
        java = Path(found)
    try:
        shown = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RetainError(f"{java} does not run: {exc}") from None
    major = _java_major(shown)
    if major is not None and major < 17:
        raise RetainError(f"{java} is Java {major}; Spark 4 needs Java 17 or later")
    return str(java)


def _java_major(version_text: str) -> int | None:
    for token in version_text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and "." in token:
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major  # 1.8 is Java 8
    return None


def check_master(master: str, timeout_seconds: float) -> None:
    """A spark:// master must answer within the timeout: Spark itself would retry for minutes."""
    if not master.startswith("spark://"):
        return
    addresses = master[len("spark://"):].split(",")
    for address in addresses:
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise RetainError(f"--spark-master {master}: give it as spark://HOST:PORT")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_seconds):
                return
        except OSError:
            continue
    raise RetainError(f"no Spark master answers at {master} (waited {timeout_seconds:g} s): check the URL "
                      "and that the master is running, or leave --spark-master out to run in local mode")


def _log_config(folder: Path, verbose: bool) -> Path:
    """Spark's log4j settings: silent unless verbose, so a failed task shows retain's message,
    not the JVM's stack trace."""
    path = folder / "log4j2.properties"
    level = "warn" if verbose else "off"
    path.write_text(f"rootLogger.level = {level}\nrootLogger.appenderRef.stderr.ref = console\n"
                    "appender.console.type = Console\nappender.console.name = console\n"
                    "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                    "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n"
                    # the shell's logger, else Spark announces its default level on start-up
                    f"logger.shell.name = org.apache.spark.deploy.SparkSubmit\nlogger.shell.level = {level}\n"
                    f"logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer\n"
                    f"logger.gateway.level = {level}\n")
    return path


@contextmanager
def spark_session(config: SparkConfig) -> Iterator:
    """A SparkSession for ``config``; stopped at the end unless one was already running
    (then that one is used as it is)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise RetainError("the Spark engine needs pyspark: pip install -e '.[spark]' (and Java 17 on the "
                          "machine), or run with --engine local") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    master = config.master or (None if config.submitted else LOCAL_MASTER)
    if not config.submitted:
        check_java(config.java_home)
    if master:
        check_master(master, config.connect_timeout_seconds)
    if config.java_home and not config.submitted:
        os.environ["JAVA_HOME"] = config.java_home  # the launcher reads it from the environment
    local = bool(master and master.startswith("local"))
    if local:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # the JVM reads it: listen on loopback only
    settings_dir = Path(tempfile.mkdtemp(prefix="retain-spark-"))
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (builder.appName("retain")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.driver.extraJavaOptions",
                       f"-Dlog4j2.configurationFile=file:{_log_config(settings_dir, config.verbose)}"))
    if local:
        builder = (builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.memory", config.driver_memory))
    python = config.python or (sys.executable if local else None)  # local workers: this very interpreter
    if python:
        os.environ["PYSPARK_PYTHON"] = python  # PySpark starts its workers with it
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say why in one line
        raise RetainError(f"Spark did not start (master {master or 'from spark-submit'}): {_first_line(exc)}") from None
    try:
        yield spark
    finally:
        spark.stop()
        shutil.rmtree(settings_dir, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if _ERROR_START in text:
        return text.split(_ERROR_START, 1)[1].split(_ERROR_END, 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Traceback (most recent call last)" in text:  # a Python worker failed: its last line says what
        return lines[-1]
    return lines[0]


@contextmanager
def _spark_errors_as_retain_errors(what: str):
    """A task's RetainError (bad data) comes back as its own message; any other Spark
    failure as one line, never a JVM stack trace."""
    try:
        yield
    except RetainError:
        raise
    except Exception as exc:
        text = str(exc)
        if _ERROR_START in text:
            raise RetainError(text.split(_ERROR_START, 1)[1].split(_ERROR_END, 1)[0]) from None
        name = type(exc).__name__
        if name in ("Py4JJavaError", "Py4JError", "PythonException", "AnalysisException", "PySparkException",
                    "IllegalArgumentException", "SparkRuntimeException", "PySparkRuntimeError") \
                or type(exc).__module__.startswith(("pyspark", "py4j")):
            raise RetainError(f"Spark failed while {what}: {_first_line(exc)}") from None
        raise


def _retain_errors_marked(function: Callable) -> Callable:
    def run(rows):
        try:
            return function(rows)
        except RetainError as exc:
            raise RuntimeError(f"{_ERROR_START}{exc}{_ERROR_END}") from None
    return run


# --- reading the tables into one bucketed frame --------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Which columns of the combined frame belong to which table, and which were integers."""

    columns: dict[str, list[str]]  # table -> its columns, as named by the contract
    integer_columns: dict[str, list[str]]

    def frames(self, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The group's rows split back into the tables, each as the local engine reads it."""
        frames = {}
        for name, columns in self.columns.items():
            # the file's order, as the local engine reads it: sums over a customer's rows then
            # add up in the same order, bit for bit
            part = rows.loc[rows[TABLE] == name].sort_values(ROW, kind="stable")[[_packed(name, c) for c in columns]]
            part = part.set_axis(columns, axis=1).reset_index(drop=True)
            for column in self.integer_columns[name]:
                # the union filled other tables' rows with nulls, which made integers floats
                if part[column].notna().all():
                    part[column] = part[column].astype("int64")
            frames[name] = part
        return frames


def _packed(table: str, column: str) -> str:
    return f"{table}__{column}"


def read_bucketed(spark, data: Path, mapping: dict, buckets: int):
    """Every table of the dataset in one Spark frame with ``_bucket`` and ``_table`` columns
    (each table's columns prefixed by its name, so the tables need not agree on types)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    files = table_files(data, mapping)
    parts, columns, integers = [], {}, {}
    for name, path in files.items():
        if path.suffix.lower() == ".parquet":
            frame = _read_parquet(spark, path)
        else:  # every CSV column as text, as the local engine reads it; quotes doubled, RFC 4180
            frame = spark.read.option("header", True).option("escape", '"').csv(str(path))
        id_column = mapping.get(name, {}).get("columns", {}).get("customer_id", "customer_id")
        if id_column not in frame.columns:
            raise RetainError(f"{name}: required column {id_column!r} missing; the file {path} has "
                              f"{frame.columns}. Map it with --column {name}.customer_id=YOUR_NAME")
        renames = {src: dst for dst, src in mapping.get(name, {}).get("columns", {}).items()}
        frame = frame.select([F.col(f"`{c}`").alias(renames.get(c, c)) for c in frame.columns])
        ids = F.trim(F.col("customer_id").cast("string"))
        columns[name] = frame.columns
        integers[name] = [f.name for f in frame.schema.fields
                          if isinstance(f.dataType, (T.ByteType, T.ShortType, T.IntegerType, T.LongType))]
        parts.append(frame.select(F.pmod(F.xxhash64(ids), F.lit(buckets)).alias(BUCKET), F.lit(name).alias(TABLE),
                                  F.monotonically_increasing_id().alias(ROW),
                                  *[F.col(c).alias(_packed(name, c)) for c in frame.columns]))
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.unionByName(part, allowMissingColumns=True)
    return combined, _Layout(columns, integers)


def _read_parquet(spark, path: Path):
    """A Parquet file as Spark reads it, with nanosecond timestamps (pandas' default, which
    Spark refuses) read as integers and turned into microsecond timestamps."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    nanos = [f.name for f in pq.read_schema(path) if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
    if not nanos:
        return spark.read.parquet(str(path))
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    frame = spark.read.parquet(str(path))
    spark.conf.unset("spark.sql.legacy.parquet.nanosAsLong")
    return frame.select([F.timestamp_micros(F.floor(F.col(f"`{c}`") / 1000)).cast("timestamp_ntz").alias(c)
                         if c in nanos else F.col(f"`{c}`") for c in frame.columns])


def _count_customers(spark, combined) -> int:
    from pyspark.sql import functions as F

    ids = None
    for name in ("transactions", "customers"):
        column = _packed(name, "customer_id")
        if column in combined.columns:
            part = combined.where(F.col(TABLE) == name).select(F.trim(F.col(column).cast("string")).alias("id"))
            ids = part if ids is None else ids.unionByName(part)
    return ids.where(F.col("id").isNotNull() & (F.col("id") != "")).distinct().count()


def bucket_count(spark, customers: int, customers_per_bucket: int) -> int:
    """Enough groups to keep each within the chunk size, and at least two per core."""
    return max(2 * spark.sparkContext.defaultParallelism, math.ceil(customers / max(customers_per_bucket, 1)))


# --- scoring -------------------------------------------------------------------------

_PAIRS: dict[str, ModelPair] = {}  # per executor Python process: job token -> unpickled pair


def _pair_of(token: str, broadcast) -> ModelPair:
    pair = _PAIRS.get(token)
    if pair is None:
        _PAIRS.clear()  # a worker reused by a later job drops the earlier pair
        pair = _PAIRS[token] = pickle.loads(broadcast.value)
    return pair


class _OutcomeParam:
    """Accumulates each group's ChunkOutcome by bucket, so a retried task counts once."""

    def zero(self, value):
        return {}

    def addInPlace(self, first, second):
        first.update(second)
        return first


def _score_groups(job: ScoreJob, broadcast, layout: _Layout, work: Path, outcomes):
    token = uuid.uuid4().hex

    def score_group(rows: pd.DataFrame) -> pd.DataFrame:
        pair = _pair_of(token, broadcast)
        bucket = int(rows[BUCKET].iloc[0])
        outcome = ChunkOutcome()
        scores = score_chunk(layout.frames(rows), job, pair, work / f"rejects-{bucket}", outcome)
        outcomes.add({bucket: outcome})
        if scores is None:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in part_columns(pair)})
        return scores

    return _retain_errors_marked(score_group)


def run_spark_score_job(job: ScoreJob, pair: ModelPair, spark, *, store=None, notes: list[str] | None = None,
                        progress: Callable[[str], None] = lambda m: None) -> ScoreSummary:
    """``retain score --engine spark``: the local engine's job, each group of customers
    scored by a Spark task; the same output file, summary, drift report and store load."""
    started = time.perf_counter()
    fmt = output_format(job.out, job.output_format)
    if job.chunk_customers < 1:
        raise RetainError("--chunk-customers must be at least 1")
    check_writable(job.out)
    # one cutoff for every group, as one local run has
    job = replace(job, data_cutoff=job.data_cutoff if job.data_cutoff is not None else pd.Timestamp.now())
    with _spark_errors_as_retain_errors(f"reading {job.data}"):
        combined, _ = read_bucketed(spark, job.data, job.mapping, 1)
        total = _count_customers(spark, combined)
        buckets = bucket_count(spark, total, job.chunk_customers)
        combined, layout = read_bucketed(spark, job.data, job.mapping, buckets)
    progress(f"scoring {total:,} customers as of {job.as_of.date()} with Spark ({spark.sparkContext.master}) in "
             f"{buckets} groups; models: {pair.clv_version or 'no value model'}, "
             f"{pair.churn_version or 'no churn model'}")
    work = work_folder(job.out, progress)
    try:
        context = spark.sparkContext
        broadcast = context.broadcast(pickle.dumps(pair, protocol=pickle.HIGHEST_PROTOCOL))
        outcomes = context.accumulator({}, _OutcomeParam())
        spark.conf.set("spark.sql.shuffle.partitions", str(buckets))
        scores = combined.groupBy(BUCKET).applyInPandas(_score_groups(job, broadcast, layout, work, outcomes),
                                                        spark_schema(part_columns(pair)))
        with _spark_errors_as_retain_errors(f"scoring {job.data}"):
            scores.write.mode("errorifexists").parquet(str(work / "spark"))
        broadcast.destroy()
        for part in (work / "spark").glob("part-*.parquet"):
            part.rename(work / part.name)  # beside the rejects, where the local engine keeps its parts
        outcome = ChunkOutcome()
        for bucket in sorted(outcomes.value):
            outcome.add(outcomes.value[bucket])
        return finish_score_job(job, pair, work, fmt, outcome, started, store=store, notes=notes, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- features ------------------------------------------------------------------------

# The three columns a FeatureReference is fitted on (features/segments.py).
_REFERENCE_INPUTS = ("days_since_last", "purchase_days", "total_spend")


@dataclass(frozen=True)
class FeaturesJob:
    data: Path
    as_of: pd.Timestamp
    out: Path
    config: object = None  # retain.features.FeatureConfig; None: the defaults
    reference: object = None  # retain.features.FeatureReference; None: fitted on the whole base
    mapping: dict | None = None
    lenient: bool = False
    data_cutoff: pd.Timestamp | None = None
    rejects: Path | None = None
    customers_per_group: int = 250_000


@dataclass
class FeaturesSummary:
    output: str
    reference: str
    customers: int
    columns: int
    rejects: str | None


def _validated(frames: dict[str, pd.DataFrame], job: FeaturesJob, rejects_dir: Path):
    return validate_chunk(frames, lenient=job.lenient, data_cutoff=job.data_cutoff, rejects_dir=rejects_dir)


def _group_features(job: FeaturesJob, layout: _Layout, work: Path, reference, columns: list[str] | None):
    """The function each group runs: ``customer_features`` alone (reference None, only the
    reference's inputs returned) or the whole ``build_features`` row with the reference."""
    from retain.features import build_features, customer_features

    def features_of(rows: pd.DataFrame) -> pd.DataFrame:
        frames = layout.frames(rows)
        if frames["transactions"].empty:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in columns or _REFERENCE_INPUTS})
        bucket = int(rows[BUCKET].iloc[0])
        rejects_dir = work / f"rejects-{bucket}" if reference is not None else work / f"pass1-rejects-{bucket}"
        dataset = _validated(frames, job, rejects_dir)
        tables = dict(customers=dataset.customers, interactions=dataset.interactions, config=job.config)
        if reference is None:
            return customer_features(dataset.transactions, job.as_of, **tables)[list(_REFERENCE_INPUTS)]
        table, _ = build_features(dataset.transactions, job.as_of, reference=reference, **tables)
        for name in table.columns:
            if table[name].dtype == object:
                table[name] = table[name].map(lambda v: None if v is None or v != v else str(v))
        return table[columns]

    return _retain_errors_marked(features_of)


def _pandas_schema(table: pd.DataFrame):
    """The Spark schema of a feature table built on a sample of customers."""
    from pyspark.sql import types as T

    fields = []
    for name, dtype in table.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kind = T.TimestampNTZType()
        elif pd.api.types.is_bool_dtype(dtype):
            kind = T.BooleanType()
        elif pd.api.types.is_integer_dtype(dtype):
            kind = T.LongType()
        elif pd.api.types.is_float_dtype(dtype):
            kind = T.DoubleType()
        else:
            kind = T.StringType()
        fields.append(T.StructField(name, kind, True))
    return T.StructType(fields)


def run_spark_features_job(job: FeaturesJob, spark, *, progress: Callable[[str], None] = lambda m: None
                           ) -> FeaturesSummary:
    """``retain features --engine spark``: the feature table of every customer with a
    purchase before ``as_of``, equal row by row to ``retain features``. The RFM and ABC cut
    points are population quantiles: without ``job.reference`` a first pass computes the
    three columns they are fitted on, the driver fits them over the whole base, and a second
    pass builds every row with them."""
    from pyspark.sql import functions as F

    from retain.features import FeatureConfig, FeatureReference, build_features

    fmt = "csv" if job.out.suffix.lower() == ".csv" else "parquet"
    check_writable(job.out)
    job = replace(job, config=job.config or FeatureConfig(), mapping=job.mapping or {},
                  data_cutoff=job.data_cutoff if job.data_cutoff is not None else pd.Timestamp.now())
    work = work_folder(job.out, progress)
    try:
        with _spark_errors_as_retain_errors(f"reading {job.data}"):
            combined, _ = read_bucketed(spark, job.data, job.mapping, 1)
            total = _count_customers(spark, combined)
            buckets = bucket_count(spark, total, job.customers_per_group)
            combined, layout = read_bucketed(spark, job.data, job.mapping, buckets)
        spark.conf.set("spark.sql.shuffle.partitions", str(buckets))
        groups = combined.groupBy(BUCKET)
        reference = job.reference
        if reference is None:
            progress(f"fitting the RFM cut points on {total:,} customers with Spark ({buckets} groups)")
            with _spark_errors_as_retain_errors(f"computing features of {job.data}"):
                inputs = groups.applyInPandas(_group_features(job, layout, work, None, None),
                                              ", ".join(f"{c} double" for c in _REFERENCE_INPUTS)).toPandas()
            try:
                reference = FeatureReference.fit(inputs, job.config)
            except ValueError as exc:
                raise RetainError(f"no customer has a purchase before {job.as_of.date()}: {exc}") from None

        # the column list and types: build_features on the rows of a few customers
        id_column = F.col(_packed("transactions", "customer_id"))
        sample_ids = [row[0] for row in combined.where(F.col(TABLE) == "transactions")
                      .select(F.trim(id_column.cast("string"))).limit(20).collect()]
        sample_rows = combined.where(F.trim(F.coalesce(*[F.col(_packed(name, "customer_id")).cast("string")
                                                         for name in layout.columns])).isin(sample_ids)).toPandas()
        sample = _validated(layout.frames(sample_rows), replace(job, lenient=True), work / "sample-rejects")
        table, _ = build_features(sample.transactions, job.as_of, customers=sample.customers,
                                  interactions=sample.interactions, config=job.config, reference=reference)
        schema = _pandas_schema(table)

        progress(f"computing features as of {job.as_of.date()} with Spark ({buckets} groups)")
        features = groups.applyInPandas(_group_features(job, layout, work, reference, list(table.columns)), schema)
        with _spark_errors_as_retain_errors(f"computing features of {job.data}"):
            features.write.mode("errorifexists").parquet(str(work / "spark"))
        for part in (work / "spark").glob("part-*.parquet"):
            part.rename(work / part.name)
        written = work / f"features.{fmt}"
        kinds = {name: DATETIME if pd.api.types.is_datetime64_any_dtype(dtype) else FLOAT
                 for name, dtype in table.dtypes.items()}
        write_sorted(work, written, fmt, kinds)
        import duckdb

        customers = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{work}/part-*.parquet')").fetchone()[0]
        reference_path = job.out.with_name(job.out.name + ".reference.json")
        os.replace(written, job.out)
        reference.save(reference_path)
        rejects = None
        if any(work.glob("rejects-*/*.rejects.csv")):
            rejects = job.rejects or job.out.with_name(job.out.name + ".rejects")
            merge_rejects(work, rejects)
        return FeaturesSummary(str(job.out), str(reference_path), customers, len(table.columns),
                               str(rejects) if rejects else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
