"""What both engines of ``retain score`` share (the local one in ``local.py``, Spark in
``spark.py``): the job and its summary, validating and scoring one chunk of customers
(``score_chunk``: all rows of each customer, through the scoring core), and finishing the
job from the chunks' part files (``finish_score_job``). The output is written to a
temporary folder beside the target and renamed over it at the end: a job stopped half way
leaves the previous output (or none), never a partial file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pandas as pd

from retain.data import Dataset, validate_tables
from retain.data.contract import BOOL, DATETIME, FLOAT, ID, STRING, TABLES
from retain.errors import RetainError
from retain.features.drift import AGE_COLUMNS, MAJOR_PSI, compare
from retain.features.eligibility import distinct_ids
from retain.serving.scoring import ModelPair, conform, score_customers
from retain.serving.store import ScoreStore
from retain.vocabulary import NotScored

FORMATS = {".parquet": "parquet", ".csv": "csv"}
# The part files carry each row's not-scored code beside the score columns, for the counts;
# the output file has the score columns only.
NOT_SCORED_CODE = "_not_scored"


def part_columns(pair: ModelPair) -> dict[str, str]:
    """The columns of a part file: the score columns and the not-scored code."""
    return {**pair.columns, NOT_SCORED_CODE: STRING}


@dataclass(frozen=True)
class ScoreJob:
    data: Path
    as_of: pd.Timestamp
    out: Path
    output_format: str | None = None  # parquet or csv; None: from the suffix of out
    chunk_customers: int = 250_000
    lenient: bool = False
    mapping: dict = field(default_factory=dict)
    data_cutoff: pd.Timestamp | None = None
    rejects: Path | None = None
    drift_threshold: float = MAJOR_PSI
    date_format: str | None = None  # how to read dates that are not ISO 8601 (--date-format)


@dataclass
class ScoreSummary:
    output: str
    as_of: str
    customers: int
    scored: int
    not_scored: dict[str, int]
    seconds: float
    customers_per_second: float
    clv_model_version: str | None
    churn_model_version: str | None
    value_horizon_days: float | None
    churn_horizon_days: float | None
    drift_report: str | None
    drift_alert: bool
    drift_columns: list[str]
    missing_features: list[str]
    unknown_categories: dict[str, int]
    store: str | None
    store_table: str | None
    notes: list[str]
    rejects: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def output_format(out: Path, requested: str | None) -> str:
    by_suffix = FORMATS.get(out.suffix.lower())
    if requested:
        if by_suffix and by_suffix != requested:
            raise RetainError(f"--out {out} ends in {out.suffix} but --format is {requested}: make them agree")
        return requested
    if by_suffix is None:
        raise RetainError(f"--out {out}: the name must end in .parquet or .csv (or give --format parquet|csv)")
    return by_suffix


def table_files(folder: Path, mapping: dict) -> dict[str, Path]:
    if not folder.exists():
        raise RetainError(f"--data {folder} does not exist")
    if not folder.is_dir():
        raise RetainError(f"--data {folder} is a file; give the dataset folder that holds transactions.parquet or .csv")
    files = {}
    for name in TABLES:
        explicit = mapping.get(name, {}).get("file")
        candidates = [folder / explicit] if explicit else [folder / f"{name}.parquet", folder / f"{name}.csv"]
        found = next((path for path in candidates if path.exists()), None)
        if explicit and found is None:
            raise RetainError(f"the mapping names {folder / explicit} for table {name}, but it does not exist")
        if found is not None:
            files[name] = found
    if "transactions" not in files:
        raise RetainError(f"{folder} has no transactions.parquet or transactions.csv; the transactions table is required")
    return files


def check_writable(out: Path) -> None:
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RetainError(f"cannot create the output folder {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise RetainError(f"cannot write to {parent}: permission denied")
    if out.is_dir():
        raise RetainError(f"--out {out} is a folder; give a file name ending in .parquet or .csv")


def quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _input_ids(frames: dict[str, pd.DataFrame]) -> pd.Index:
    """The customer ids of a chunk as validation reads them (text, stripped), each once."""
    ids = [distinct_ids(frames[name]["customer_id"]) for name in ("transactions", "customers") if name in frames]
    values = pd.Series(np.concatenate(ids), dtype="string").str.strip()
    return pd.Index(values[values.notna() & (values != "")].unique().astype(str))


OWNER_FILE = "owner"


def work_folder(out: Path, progress) -> Path:
    """A new hidden folder beside ``out`` for a run's parts (renamed over ``out`` at the
    end, so a failure leaves the previous output), named with its owner; the folders of
    earlier runs that were killed are removed first."""
    _remove_abandoned_work(out, progress)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    (work / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return work


def _remove_abandoned_work(out: Path, progress) -> None:
    """Work folders beside ``out`` left by score runs that were killed (their process on
    this machine is gone); a folder another live run is using is left alone."""
    for folder in out.resolve().parent.glob(f".{out.name}.*"):
        try:
            host, pid = (folder / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue  # not ours, or its owner has not written its name yet
        if host != socket.gethostname() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        progress(f"removed {folder.name}, the work folder of an earlier run that was stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ChunkOutcome:
    """What the chunks of one job found besides their scores, summed over chunks."""

    missing_features: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    rejected_any: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - started

    def add(self, other: "ChunkOutcome") -> None:
        self.missing_features = other.missing_features or self.missing_features
        for column, count in other.unknown_categories.items():
            self.unknown_categories[column] = self.unknown_categories.get(column, 0) + count
        self.rejected_any |= other.rejected_any


def score_chunk(frames: dict[str, pd.DataFrame], job: ScoreJob, pair: ModelPair, rejects_dir: Path,
                outcome: ChunkOutcome) -> pd.DataFrame | None:
    """Validate and score the tables of one group of customers (all rows of each customer):
    one row per input customer, or None when the group holds no customer. What the group
    found besides scores is added to ``outcome``. The local and the Spark engine both call it."""
    if frames["transactions"].empty:  # only customers-table ids hashed here, or nothing at all
        if "customers" not in frames or frames["customers"].empty:
            return None
        ids = _input_ids({"customers": frames["customers"]})
        return _not_scored(ids, NotScored.NO_TRANSACTIONS, job, pair)
    tick = time.perf_counter()
    dataset = validate_chunk(frames, lenient=job.lenient, data_cutoff=job.data_cutoff, rejects_dir=rejects_dir,
                             date_format=job.date_format)
    outcome.rejected_any |= bool(dataset.report.rows_rejected and any(dataset.report.rows_rejected.values()))
    outcome.timed("validate", tick)
    tick = time.perf_counter()
    batch = score_customers(dataset, job.as_of, pair)
    outcome.timed("features and models", tick)
    scores = batch.scores.assign(**{NOT_SCORED_CODE: [code.value if code else None for code in batch.not_scored]})
    lost = _input_ids(frames).difference(pd.Index(scores["customer_id"]))
    if len(lost):  # lenient mode set aside every row of these customers: list them all the same
        scores = pd.concat([scores, _not_scored(lost, NotScored.SET_ASIDE, job, pair)], ignore_index=True)
    outcome.add(ChunkOutcome(batch.missing_features, batch.unknown_categories))
    return scores


def _not_scored(ids, reason: NotScored, job: ScoreJob, pair: ModelPair) -> pd.DataFrame:
    """Part rows for customers the scoring core never saw, saying why."""
    return conform(pd.DataFrame({"customer_id": ids}).assign(
        as_of=job.as_of, not_scored_reason=reason.words(), clv_model_version=pair.clv_version,
        churn_model_version=pair.churn_version, **{NOT_SCORED_CODE: reason.value}), part_columns(pair))


# the dtypes validate_tables gives each column kind of the contract (TEXT is left as read)
_VALIDATED_DTYPES = {ID: object, DATETIME: "datetime64[ns]", FLOAT: "float64", BOOL: "boolean"}


def validate_chunk(frames: dict[str, pd.DataFrame], *, lenient: bool, data_cutoff, rejects_dir: Path,
                   date_format: str | None = None) -> Dataset:
    """``validate_tables`` on the tables of one chunk of customers. An optional table with
    no rows for these customers (it has rows for others) is passed on empty, typed as
    validation types it, rather than refused as a table without rows: its features are
    then zero counts, as in a run over the whole base."""
    empty = [name for name, frame in frames.items() if name != "transactions" and frame.empty]
    dataset = validate_tables({name: frame for name, frame in frames.items() if name not in empty},
                              mode="lenient" if lenient else "strict", data_cutoff=data_cutoff,
                              rejects_dir=rejects_dir, date_format=date_format, guest_sales=True)
    for name in empty:
        spec, frame = TABLES[name], frames[name]
        typed = frame[list(frame.columns) if spec.open_columns else [c for c in spec.columns if c in frame]].copy()
        for column, kind in spec.columns.items():
            if column in typed and kind in _VALIDATED_DTYPES:
                typed[column] = typed[column].astype(_VALIDATED_DTYPES[kind])
        setattr(dataset, name, typed)
    return dataset


def finish_score_job(job: ScoreJob, pair: ModelPair, work: Path, fmt: str, outcome: ChunkOutcome, started: float,
                     *, store: ScoreStore | None = None, notes: list[str] | None = None,
                     progress: Callable[[str], None] = lambda m: None) -> ScoreSummary:
    """From the part files in ``work`` (part-*.parquet, score columns): the sorted output
    moved into place, the drift report, the rejects, the summary and the store load."""
    progress(f"writing {job.out}")
    tick = time.perf_counter()
    written = work / f"scores.{fmt}"
    write_sorted(work, written, fmt, pair.columns)
    outcome.timed("write", tick)
    counts = _counts(work)
    if counts["scored"] == 0 and all(NotScored(code).before_the_data for code in counts["not_scored"]):
        raise RetainError(
            f"no customer has a purchase before {job.as_of.date()}: --as-of is before the data; "
            "choose a date after the first purchases"
        )
    tick = time.perf_counter()
    drift, drift_path = _drift(pair, work, job, counts["not_scored"])
    outcome.timed("drift", tick)
    os.replace(written, job.out)
    rejects = None
    if outcome.rejected_any:
        rejects = job.rejects or job.out.with_name(job.out.name + ".rejects")
        merge_rejects(work, rejects)

    alerting = drift[~drift["column"].isin(AGE_COLUMNS)] if len(drift) else drift
    drifted = sorted(alerting.loc[alerting["psi"] > job.drift_threshold, "column"]) if len(alerting) else []
    seconds = time.perf_counter() - started
    summary = ScoreSummary(
        output=str(job.out), as_of=str(job.as_of.date()), customers=counts["customers"], scored=counts["scored"],
        not_scored=counts["not_scored"], seconds=round(seconds, 2),
        customers_per_second=round(counts["customers"] / max(seconds, 1e-9), 1),
        clv_model_version=pair.clv_version, churn_model_version=pair.churn_version,
        value_horizon_days=pair.value.config.horizon_days if pair.value is not None else None,
        churn_horizon_days=pair.churn.config.horizon_days if pair.churn is not None else None,
        drift_report=str(drift_path) if drift_path else None, drift_alert=bool(drifted), drift_columns=drifted,
        missing_features=outcome.missing_features, unknown_categories=outcome.unknown_categories,
        store=None, store_table=None, notes=list(notes or []), rejects=str(rejects) if rejects else None,
        stage_seconds=outcome.stage_seconds,
    )
    if store is not None:
        progress(f"loading the scores into the store {store.path}")
        tick = time.perf_counter()
        source = job.out
        if fmt != "parquet":  # the store loads Parquet; convert the CSV's rows once more
            source = job.out.with_name(f".{job.out.name}.store.parquet")
            duckdb.connect().execute(
                f"COPY (SELECT * FROM read_csv({quoted(job.out)}, header = true)) TO {quoted(source)} (FORMAT parquet)")
        try:
            summary.store_table = store.load(source, job.as_of, {
                "output": str(job.out), "clv_model_version": pair.clv_version,
                "churn_model_version": pair.churn_version, "customers": summary.customers, "scored": summary.scored,
                "drift_alert": summary.drift_alert, "details": {"drift_columns": drifted, "not_scored": counts["not_scored"]},
            })
        finally:
            if source != job.out:
                source.unlink(missing_ok=True)
        summary.store = str(store.path)
        outcome.timed("store", tick)
        seconds = time.perf_counter() - started
        summary.seconds = round(seconds, 2)
        summary.customers_per_second = round(summary.customers / max(seconds, 1e-9), 1)
    summary.stage_seconds = {stage: round(value, 2) for stage, value in outcome.stage_seconds.items()}
    return summary


def write_sorted(work: Path, target: Path, fmt: str, columns: dict[str, str]) -> None:
    parts = sorted(work.glob("part-*.parquet"))
    if not parts:
        raise RetainError("the dataset holds no customers to score")
    connection = duckdb.connect()
    connection.execute("SET threads = 1")  # one writer thread: the same input gives the same bytes
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    # dates in nanoseconds whoever wrote the parts (pandas writes ns, Spark microseconds)
    names = ", ".join(f'CAST("{name}" AS TIMESTAMP_NS) AS "{name}"' if kind == DATETIME else f'"{name}"'
                      for name, kind in columns.items())
    connection.execute(
        f"COPY (SELECT {names} FROM read_parquet({quoted(work)} || '/part-*.parquet', union_by_name = true) "
        f"ORDER BY customer_id) TO {quoted(target)} ({options})")


def _counts(work: Path) -> dict:
    """Customers, those scored, and those not scored by reason code."""
    connection = duckdb.connect()
    rows = connection.execute(
        f'SELECT "{NOT_SCORED_CODE}", count(*) FROM read_parquet({quoted(work)} || \'/part-*.parquet\') '
        "GROUP BY 1 ORDER BY 1").fetchall()
    by_code = {code: count for code, count in rows if code is not None}
    scored = sum(count for code, count in rows if code is None)
    return {"customers": scored + sum(by_code.values()), "scored": scored, "not_scored": by_code}


def _drift(pair: ModelPair, work: Path, job: ScoreJob, not_scored: dict[str, int]) -> tuple[pd.DataFrame, Path | None]:
    """PSI of the key features and scores against the models' training profile; written
    beside the output as OUT.drift.json, with the customers not scored by reason code (the
    report reads them there)."""
    path = job.out.with_name(job.out.name + ".drift.json")
    if not pair.profiles:
        path.write_text(json.dumps({"note": "the models carry no training profile: retrain them to get drift checks",
                                    "not_scored": not_scored}))
        return pd.DataFrame(columns=["column", "psi", "unseen_share", "level"]), path
    columns = list(pair.profiles)
    connection = duckdb.connect()
    names = ", ".join(f'"{c}"' for c in columns + ["not_scored_reason"])
    frame = connection.execute(
        f"SELECT {names} FROM read_parquet({quoted(work)} || '/part-*.parquet', union_by_name = true)").df()
    scored = frame[frame["not_scored_reason"].fillna("") == ""]
    drift = compare(pair.profiles, scored)
    share_not_scored = float(1 - len(scored) / max(len(frame), 1))
    records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
               for row in drift.to_dict(orient="records")]
    path.write_text(json.dumps({"as_of": str(job.as_of.date()), "threshold_psi": job.drift_threshold,
                                "share_not_scored": share_not_scored, "not_scored": not_scored, "columns": records},
                               indent=2))
    return drift, path


def merge_rejects(work: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        parts = sorted(work.glob(f"rejects-*/{name}.rejects.csv"))
        if parts:
            pd.concat([pd.read_csv(p, dtype=str) for p in parts], ignore_index=True).to_csv(
                target / f"{name}.rejects.csv", index=False)
