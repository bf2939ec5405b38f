"""``retain score`` on one machine: every customer of a dataset folder, in chunks.

Customers are processed in chunks by a hash of their id, so all rows of a customer are in
one chunk and a base larger than memory can be scored on one machine: DuckDB reads each
chunk's rows from the Parquet or CSV files. Each chunk is validated and scored by
``chunks.score_chunk`` (what the Spark engine calls per group too); the parts are sorted by
customer_id into one file by ``chunks.finish_score_job``, so the result does not depend on
the chunk size.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd

from retain.errors import RetainError
from retain.serving.jobs.chunks import (
    ChunkOutcome, ScoreJob, ScoreSummary, check_writable, finish_score_job, output_format, quoted, score_chunk,
    table_files, work_folder,
)
from retain.serving.scoring import ModelPair
from retain.serving.store import ScoreStore


class _ChunkReader:
    """Reads the rows of one chunk of customers from every table with DuckDB."""

    def __init__(self, files: dict[str, Path], mapping: dict, chunks: int):
        self.connection = duckdb.connect()
        self.connection.execute("SET preserve_insertion_order = true")
        self.mapping = mapping
        self.chunks = chunks
        self.sources = {}
        for name, path in files.items():
            source = (f"read_parquet({quoted(path)})" if path.suffix.lower() == ".parquet"
                      else f"read_csv({quoted(path)}, all_varchar = true, header = true)")
            id_column = mapping.get(name, {}).get("columns", {}).get("customer_id", "customer_id")
            columns = [row[0] for row in self.connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            if id_column not in columns:
                raise RetainError(
                    f"{name}: required column {id_column!r} missing; the file {path} has {columns}. Map it with "
                    f"--column {name}.customer_id=YOUR_NAME"
                )
            self.sources[name] = (source, id_column)

    def customers(self) -> int:
        parts = [f'SELECT CAST("{column}" AS VARCHAR) AS id FROM {source}'
                 for name, (source, column) in self.sources.items() if name in ("transactions", "customers")]
        return self.connection.execute(f"SELECT count(DISTINCT id) FROM ({' UNION ALL '.join(parts)})").fetchall()[0][0]

    def chunk(self, k: int) -> dict[str, pd.DataFrame]:
        frames = {}
        for name, (source, column) in self.sources.items():
            where = "" if self.chunks == 1 else f'WHERE hash(CAST("{column}" AS VARCHAR)) % {self.chunks} = {k}'
            # ids as categoricals: every later step groups by customer, and codes are cheap to group
            frame = self.connection.sql(f"SELECT * FROM {source} {where}").to_arrow_table().to_pandas(
                categories=[column])
            renames = {src: dst for dst, src in self.mapping.get(name, {}).get("columns", {}).items()}
            frames[name] = frame.rename(columns=renames)
        return frames



def run_score_job(job: ScoreJob, pair: ModelPair, *, store: ScoreStore | None = None,
                  notes: list[str] | None = None, progress: Callable[[str], None] = lambda m: None) -> ScoreSummary:
    started = time.perf_counter()
    fmt = output_format(job.out, job.output_format)
    if job.chunk_customers < 1:
        raise RetainError("--chunk-customers must be at least 1")
    files = table_files(job.data, job.mapping)
    check_writable(job.out)
    reader = _ChunkReader(files, job.mapping, 1)
    total = reader.customers()
    chunks = max(1, math.ceil(total / job.chunk_customers))
    reader.chunks = chunks
    progress(f"scoring {total:,} customers as of {job.as_of.date()} in {chunks} chunk(s) of up to "
             f"{job.chunk_customers:,} customers; models: {pair.clv_version or 'no value model'}, "
             f"{pair.churn_version or 'no churn model'}")

    work = work_folder(job.out, progress)
    outcome = ChunkOutcome()
    try:
        bar = _ProgressBar(chunks)
        for k in range(chunks):
            tick = time.perf_counter()
            frames = reader.chunk(k)
            outcome.timed("read", tick)
            scores = score_chunk(frames, job, pair, work / f"rejects-{k}", outcome)
            if scores is not None:
                tick = time.perf_counter()
                scores.to_parquet(work / f"part-{k:05d}.parquet", index=False)
                outcome.timed("write", tick)
            bar.update(1)
            if not bar.is_terminal and scores is not None:
                progress(f"  chunk {k + 1}/{chunks}: {len(scores):,} customers")
        bar.close()
        return finish_score_job(job, pair, work, fmt, outcome, started, store=store, notes=notes, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)



class _ProgressBar:
    """A tqdm bar on a terminal; nothing (the caller logs lines) otherwise."""

    def __init__(self, total: int):
        self.is_terminal = sys.stderr.isatty()
        self.bar = None
        if self.is_terminal:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="chunk", file=sys.stderr, desc="scoring")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


