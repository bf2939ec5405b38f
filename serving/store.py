"""The score store: an embedded DuckDB file under the retain home that every score run
loads its output into, for the HTTP ``/lookup`` endpoint and for analysts.

Layout: one table per scoring date, ``scores_YYYY_MM_DD`` (a rerun for the same date
replaces it); a view ``latest`` over the most recent date; a table ``runs`` with one row per
load (date, time, output path, model versions, counts, drift alert).

Readers are never blocked or broken by a load: a load builds a new database file beside the
store and renames it over the old one in one step. A reader that has the old file open
keeps reading the old snapshot; the next one opens the new file. A load killed midway
leaves its file (``.NAME.building-PID``): the next load removes those whose process is gone.
Loads take a lock file so that two loads do not race; open the store read-only to read it (``duckdb -readonly FILE``,
``duckdb.connect(FILE, read_only=True)``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from retain.errors import RetainError

RUNS_TABLE = "runs"
LATEST_VIEW = "latest"


def table_for(as_of) -> str:
    return "scores_" + pd.Timestamp(as_of).strftime("%Y_%m_%d")


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _absolute(path) -> str:
    """A run's output as an absolute path: ``retain report`` reads it from any folder."""
    return os.path.abspath(path) if path else ""


@contextmanager
def _load_lock(path: Path, wait_seconds: float):
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RetainError(
                        f"the score store {path} is locked by another load (lock file {lock_path}) for more than "
                        f"{wait_seconds:g} s; wait for it to finish and run again"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class ScoreStore:
    def __init__(self, path: str | Path, lock_wait_seconds: float = 60.0):
        self.path = Path(path)
        self.lock_wait_seconds = lock_wait_seconds

    def load(self, scores_parquet: str | Path, as_of, run: dict) -> str:
        """Load a score run's Parquet output as the table of its date; returns the table name."""
        table = table_for(as_of)
        with _load_lock(self.path, self.lock_wait_seconds):
            self._remove_killed_builds()
            building = self.path.with_name(f".{self.path.name}.building-{os.getpid()}")
            building.unlink(missing_ok=True)
            try:
                connection = duckdb.connect(str(building))
                try:
                    self._copy_previous(connection, skip=table)
                    connection.execute(
                        f'CREATE TABLE "{table}" AS SELECT * FROM read_parquet({_sql_text(str(scores_parquet))})')
                    connection.execute(
                        f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (as_of DATE, loaded_at TIMESTAMP, score_table VARCHAR, "
                        "output VARCHAR, clv_model_version VARCHAR, churn_model_version VARCHAR, customers BIGINT, "
                        "scored BIGINT, drift_alert BOOLEAN, details VARCHAR)")
                    connection.execute(
                        f"INSERT INTO {RUNS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [pd.Timestamp(as_of).date(), pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime(),
                         table, _absolute(run.get("output")), run.get("clv_model_version"),
                         run.get("churn_model_version"), int(run.get("customers", 0)), int(run.get("scored", 0)),
                         bool(run.get("drift_alert", False)), json.dumps(run.get("details", {}), default=str)],
                    )
                    latest = connection.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'scores_%' "
                        "AND table_type = 'BASE TABLE' ORDER BY table_name DESC LIMIT 1").fetchall()[0][0]
                    connection.execute(f'CREATE OR REPLACE VIEW {LATEST_VIEW} AS SELECT * FROM "{latest}"')
                    connection.execute("CHECKPOINT")
                finally:
                    connection.close()
                os.replace(building, self.path)  # the one step readers see
            except duckdb.Error as exc:
                raise RetainError(f"could not load the scores into the store {self.path}: {exc}") from None
            finally:
                building.unlink(missing_ok=True)
        return table

    def _remove_killed_builds(self) -> None:
        """The files of loads whose process is gone (killed midway): no load can finish them."""
        prefix = f".{self.path.name}.building-"
        for leftover in self.path.parent.glob(f"{prefix}*"):
            pid = leftover.name[len(prefix):].split(".")[0]  # also its write-ahead log, NAME.wal
            if pid.isdigit() and not _running(int(pid)):
                leftover.unlink(missing_ok=True)

    def _copy_previous(self, connection, skip: str) -> None:
        if not self.path.exists():
            return
        try:
            connection.execute(f"ATTACH {_sql_text(str(self.path))} AS previous (READ_ONLY)")
        except duckdb.Error as exc:
            raise RetainError(
                f"the score store {self.path} is open for writing by another program ({exc}); "
                "readers must open it read-only"
            ) from None
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'previous' "
            "AND table_type = 'BASE TABLE'").fetchall()]
        for name in tables:
            if name != skip:
                connection.execute(f'CREATE TABLE "{name}" AS SELECT * FROM previous."{name}"')
        connection.execute("DETACH previous")

    def lookup(self, customer_ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """The latest stored scores of these customers, and the ids not found there."""
        ids = [str(i) for i in customer_ids]
        if not self.path.exists():
            return pd.DataFrame(), ids
        connection = duckdb.connect(str(self.path), read_only=True)
        try:
            connection.register("wanted", pd.DataFrame({"customer_id": ids}))
            found = connection.execute(
                f"SELECT s.* FROM {LATEST_VIEW} s JOIN wanted USING (customer_id) ORDER BY customer_id").df()
        except duckdb.CatalogException:
            return pd.DataFrame(), ids
        finally:
            connection.close()
        missing = sorted(set(ids) - set(found["customer_id"]))
        return found, missing

    def runs(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame()
        connection = duckdb.connect(str(self.path), read_only=True)
        try:
            return connection.execute(f"SELECT * FROM {RUNS_TABLE} ORDER BY loaded_at").df()
        finally:
            connection.close()
