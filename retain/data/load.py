"""Reading a dataset folder: finding each table's file, reading CSV or Parquet, renaming the
user's columns to the contract's by a mapping; the tables read are then checked by
``retain.data.validate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.data.contract import TABLES, TableSpec
from retain.data.validate import STRICT, Dataset, validate_tables
from retain.errors import RetainError


def read_mapping(path: str | Path | None, column_flags: list[str] | None = None) -> dict:
    """Mapping file (JSON) plus ``TABLE.COLUMN=SOURCE`` flags, as {table: {file, columns}}.

    The file looks like ``{"transactions": {"file": "orders.csv",
    "columns": {"customer_id": "CustID", "timestamp": "OrderDate"}}}``.
    """
    mapping: dict = {}
    if path:
        try:
            mapping = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RetainError(f"cannot read mapping file {path}: {exc}") from None
        if not isinstance(mapping, dict):
            raise RetainError(f"mapping file {path} holds a {type(mapping).__name__}; it should hold one object by "
                              'table, e.g. {"transactions": {"file": "orders.csv", "columns": {"customer_id": "CustID"}}}')
        unknown = set(mapping) - set(TABLES)
        if unknown:
            raise RetainError(
                f"mapping file {path} names unknown table(s) {sorted(unknown)}; "
                f"tables are {sorted(TABLES)}"
            )
        for table, entry in mapping.items():
            _check_mapping_entry(path, table, entry)
    for flag in column_flags or []:
        try:
            target, source = flag.split("=", 1)
            table, column = target.split(".", 1)
        except ValueError:
            raise RetainError(
                f"column mapping {flag!r} should look like transactions.customer_id=CustID"
            ) from None
        if table not in TABLES:
            raise RetainError(f"column mapping {flag!r}: unknown table {table!r}")
        mapping.setdefault(table, {}).setdefault("columns", {})[column] = source
    return mapping


def _check_mapping_entry(path, table: str, entry) -> None:
    """One table's entry of a mapping file: {"file": NAME, "columns": {CONTRACT: YOURS}}."""
    example = f'e.g. "{table}": {{"file": "{table}.csv", "columns": {{"customer_id": "CustID"}}}}'
    if not isinstance(entry, dict):
        raise RetainError(f"mapping file {path}: {table} should be an object with \"file\" and/or \"columns\", {example}")
    unknown = set(entry) - {"file", "columns"}
    if unknown:
        raise RetainError(f"mapping file {path}: {table} has unknown key(s) {sorted(unknown)}; "
                          f'the keys are "file" and "columns", {example}')
    if "file" in entry and not isinstance(entry["file"], str):
        raise RetainError(f"mapping file {path}: {table}.file should be a file name (text), not {entry['file']!r}")
    columns = entry.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise RetainError(f"mapping file {path}: {table}.columns should map contract columns to your column "
                          f"names (text), {example}")


def _find_table_file(folder: Path, name: str, mapping: dict) -> Path | None:
    explicit = mapping.get(name, {}).get("file")
    if explicit:
        path = folder / explicit
        if not path.exists():
            raise RetainError(f"mapping names {path} for table {name}, but it does not exist")
        return path
    for suffix in (".parquet", ".csv"):
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def _shared_dictionary_codes(column: pa.ChunkedArray) -> pd.Categorical | None:
    """A dictionary column whose chunks share one dictionary (pandas writes a categorical
    that way: every row group repeats all the categories), as a categorical built from its
    codes; pyarrow's own conversion would first unify the dictionaries, hashing every
    category once per row group. None for any other column."""
    if not pa.types.is_dictionary(column.type) or column.num_chunks < 2:
        return None
    first = column.chunk(0).dictionary
    # chunks of one row group share the dictionary's memory: compare addresses before contents
    same_memory = [b.address if b is not None else None for b in first.buffers()]

    def shares(dictionary) -> bool:
        return [b.address if b is not None else None for b in dictionary.buffers()] == same_memory \
            or dictionary.equals(first)

    if not all(shares(chunk.dictionary) for chunk in column.chunks[1:]):
        return None
    codes = np.concatenate([chunk.indices.fill_null(-1).to_numpy() for chunk in column.chunks])
    try:  # from_codes checks the categories are distinct
        return pd.Categorical.from_codes(codes, categories=pd.Index(first.to_pandas()))
    except ValueError:
        return None


def _read_parquet(path: Path) -> pd.DataFrame:
    """``pd.read_parquet``, with categoricals rebuilt from their codes (see above)."""
    table = pq.read_table(path)
    fast = {name: _shared_dictionary_codes(table.column(name)) for name in table.column_names}
    fast = {name: values for name, values in fast.items() if values is not None}
    frame = table.drop_columns(list(fast)).to_pandas()  # pandas' metadata still sets the other dtypes
    for position, name in enumerate(n for n in table.column_names if n in fast or n in frame.columns):
        if name in fast:  # in its place, without copying the other columns
            frame.insert(position, name, fast[name])
    return frame


def read_table(path: Path, spec: TableSpec, columns: dict | None = None) -> pd.DataFrame:
    """``columns``: the mapping of the table's contract columns to the file's."""
    columns = columns or {}
    # ids stay text: "00042" must not become 42, nor 17850 become 17850.0 in a column with blanks
    text = {columns.get(name, name): str for name in ("customer_id", "order_id")}
    try:
        if path.suffix == ".parquet":
            frame = _read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=text, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise RetainError(f"{spec.name}: file {path} is empty (no header, no rows)") from None
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise RetainError(f"{spec.name}: cannot read {path}: {exc}") from None
    return frame


def _apply_mapping(frame: pd.DataFrame, spec: TableSpec, columns: dict, path: Path) -> pd.DataFrame:
    """Rename the user's columns to the contract's; a mapping to a column the file lacks is
    an error naming both, never silently ignored."""
    absent = {dst: src for dst, src in columns.items() if src not in frame.columns}
    if absent:
        dst, src = next(iter(absent.items()))
        raise RetainError(
            f"{spec.name}: the column mapping {spec.name}.{dst}={src} names column {src!r}, but {path.name} "
            f"has no such column; its columns are {list(frame.columns)}"
        )
    if not columns:
        return frame  # rename copies every column even when nothing changes
    return frame.rename(columns={src: dst for dst, src in columns.items()})


def load_dataset(
    folder: str | Path,
    *,
    mode: str = STRICT,
    mapping: dict | None = None,
    data_cutoff: pd.Timestamp | str | None = None,
    rejects_dir: str | Path | None = None,
    date_format: str | None = None,
) -> Dataset:
    """Read and validate every table of a dataset folder.

    ``date_format`` (strptime, e.g. ``%d/%m/%Y``) reads dates that are not ISO 8601; without
    it, day/month order is taken from the data when a value over 12 settles it."""
    folder = Path(folder)
    if folder.is_file():
        raise RetainError(
            f"{folder} is a file; --data takes the dataset folder that holds transactions.csv or "
            f"transactions.parquet (here: --data {folder.parent})"
        )
    if not folder.is_dir():
        raise RetainError(f"dataset folder {folder} does not exist")
    mapping = mapping or {}
    frames: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        path = _find_table_file(folder, name, mapping)
        if path is None:
            if mapping.get(name, {}).get("columns"):
                raise RetainError(f"a column mapping names table {name}, but {folder} has no {name} file")
            if spec.required_table:
                raise RetainError(
                    f"{folder} has no {name}.parquet or {name}.csv; the {name} table is required"
                )
            continue
        columns = mapping.get(name, {}).get("columns", {})
        frames[name] = _apply_mapping(read_table(path, spec, columns), spec, columns, path)
    return validate_tables(frames, mode=mode, data_cutoff=data_cutoff, rejects_dir=rejects_dir,
                           date_format=date_format, guest_sales=True)
