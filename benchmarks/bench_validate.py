"""Speed of the data contract's checks (``validate_tables``) on the small tables one HTTP
request makes and on a large base, against a previous implementation, in the same run.
Both implementations must give identical datasets and reports; the script stops if not.

    retain generate --customers 400000 --seed 1 --out DIR      # about 20 s, 3.4M transactions
    python benchmarks/bench_validate.py --data DIR [--previous 026a3cb] [--repeats 3]

``--previous`` is a git revision whose ``retain/data/load.py`` is the baseline (loaded from
git as ``bench_load.py`` does). Request tables: the first 1 and 1,000 customers of DIR sent
through the HTTP request model (``retain.serving.http.schema``), as the service validates
them; median and fastest of interleaved runs, and Python function calls per call. Large
inputs: DIR's tables as Parquet gives them (typed), and as a CSV export gives them (dates
and ids as text, no order_id: every row goes through the exact-duplicate check); fastest
of ``--repeats``, the two implementations alternating. The machine is shared: compare the
figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_http import customers_json, group_tables
from bench_load import previous_loader
from retain.data import validate_tables
from retain.data.contract import TABLES
from retain.data.load import read_table
from retain.serving.http.schema import request_model
from retain.serving.http.tables import request_tables


def previous_validate(revision: str):
    load_dataset = previous_loader(revision)
    if load_dataset is None:
        sys.exit(f"the previous implementation ({revision}) is needed as the baseline")
    return sys.modules[load_dataset.__module__].validate_tables


def outcome(validate, frames: dict, cutoff) -> tuple:
    """What a caller sees: the tables, or the error, and the report's texts."""
    try:
        dataset = validate(frames, data_cutoff=cutoff)
    except Exception as exc:  # the error text is part of the contract
        return None, f"{type(exc).__name__}: {exc}"
    tables = {name: getattr(dataset, name) for name in TABLES}
    report = dataset.report
    return tables, (report.text(), report.facts_text(), report.rows_read)


def assert_identical(before: tuple, after: tuple, what: str) -> None:
    (tables_before, texts_before), (tables_after, texts_after) = before, after
    assert texts_before == texts_after, f"{what}: reports differ:\n{texts_before}\n---\n{texts_after}"
    for name in TABLES:
        a, b = (tables_before or {}).get(name), (tables_after or {}).get(name)
        assert (a is None) == (b is None), f"{what}: {name} present in one result only"
        if a is not None:
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{what}: {name}")


def calls(fn) -> int:
    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    return pstats.Stats(profile).total_calls


def interleaved(functions: dict, rounds: int) -> dict[str, list[float]]:
    times = {name: [] for name in functions}
    for fn in functions.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def request_frames(folder: Path, count: int) -> dict[str, pd.DataFrame]:
    """The raw tables of an HTTP request for the first ``count`` customers of ``folder``."""
    tables = {name: read_table(folder / f"{name}.parquet", spec) for name, spec in TABLES.items()
              if name != "churn_events" and (folder / f"{name}.parquet").exists()}
    ids = sorted(set(tables["transactions"]["customer_id"].astype(str)))[:count]
    few = {name: frame[frame["customer_id"].astype(str).isin(ids)] for name, frame in tables.items()}
    body = json.dumps({"as_of": "2025-12-01", "customers": customers_json(group_tables(few), ids)})
    return request_tables(request_model(10_000).model_validate_json(body).customers)


def csv_frames(folder: Path, work: Path) -> dict[str, pd.DataFrame]:
    """The base as a CSV export of it reads (without order_id), through the loader's reader."""
    frames = {}
    for name, spec in TABLES.items():
        frame = read_table(folder / f"{name}.parquet", spec)
        if name == "transactions":
            frame = frame.drop(columns=["order_id"])
        frame.to_csv(work / f"{name}.csv", index=False)
        frames[name] = read_table(work / f"{name}.csv", spec)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a folder written by retain generate")
    parser.add_argument("--previous", default="026a3cb", help="git revision of the baseline implementation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="only the request-sized tables")
    args = parser.parse_args()
    implementations = {"previous": previous_validate(args.previous), "now": validate_tables}

    print("request tables (validate_tables, data cutoff Timestamp.max as the service passes it)")
    for count in (1, 1000):
        frames = request_frames(args.data, count)
        cutoff = pd.Timestamp.max
        results = {name: outcome(fn, frames, cutoff) for name, fn in implementations.items()}
        assert_identical(results["previous"], results["now"], f"{count} customer(s)")
        runs = {name: (lambda fn=fn: fn(frames, data_cutoff=cutoff)) for name, fn in implementations.items()}
        times = interleaved(runs, 200 if count == 1 else 20)
        rows = ", ".join(f"{name} {len(frame):,}" for name, frame in frames.items())
        print(f"  {count:>5} customer(s) ({rows}): identical results")
        for name, fn in runs.items():
            print(f"    {name:>8}: median {np.median(times[name]) * 1000:7.2f} ms, fastest "
                  f"{min(times[name]) * 1000:7.2f} ms, {calls(fn):>6,} Python calls")
    if args.skip_large:
        return

    with tempfile.TemporaryDirectory() as work:
        layouts = {
            "as Parquet reads it (typed, categorical ids)":
                {name: read_table(args.data / f"{name}.parquet", spec) for name, spec in TABLES.items()},
            "as a CSV export reads it (text dates and ids, no order_id)": csv_frames(args.data, Path(work)),
        }
        for layout, frames in layouts.items():
            rows = ", ".join(f"{name} {len(frame):,}" for name, frame in frames.items())
            print(f"large input {layout}: {rows}")
            cutoff = "2026-01-01"
            results = {name: outcome(fn, frames, cutoff) for name, fn in implementations.items()}
            assert_identical(results["previous"], results["now"], layout)
            del results
            runs = {name: (lambda fn=fn: fn(frames, data_cutoff=cutoff)) for name, fn in implementations.items()}
            times = interleaved(runs, args.repeats)
            best = {name: min(values) for name, values in times.items()}
            print(f"  identical results; previous {best['previous']:6.2f} s, now {best['now']:6.2f} s "
                  f"(now / previous = {best['now'] / best['previous']:.2f})")


if __name__ == "__main__":
    main()
