"""Load + validation speed of a dataset folder, against the previous implementation and
pandas' plain read of the same files, measured in the same run.

    retain generate --customers 1000000 --out DIR      # about 30 s, 8.4M transactions
    python benchmarks/bench_load.py --data DIR [--previous e7d3685] [--repeats 3]

``--previous`` is a git revision whose ``retain/data/load.py`` is loaded as the baseline
(the implementation before the load was made fast); without git it is skipped. Times are
the fastest of ``--repeats`` runs: this shared machine is noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from retain.data import load_dataset
from retain.data.contract import TABLES

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeats: int) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def previous_loader(revision: str):
    """``load_dataset`` of ``retain/data/load.py`` at ``revision``, or None without git."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:retain/data/load.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"previous implementation ({revision}) not available: {exc}", file=sys.stderr)
        return None
    path = Path(tempfile.mkdtemp()) / "previous_load.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("previous_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.load_dataset


def plain_read(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(folder / f"{name}.parquet")
            for name in TABLES if (folder / f"{name}.parquet").exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a dataset folder of Parquet tables")
    parser.add_argument("--previous", default="e7d3685", help="git revision of the baseline implementation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-cutoff", default="2026-01-01")
    args = parser.parse_args()

    frames, read_seconds = best_of(lambda: plain_read(args.data), args.repeats)
    rows = {name: len(frame) for name, frame in frames.items()}
    del frames
    print("rows: " + ", ".join(f"{name} {n:,}" for name, n in rows.items()))
    print(f"pandas read_parquet of every table (no checks): {read_seconds:6.2f} s")

    dataset, seconds = best_of(lambda: load_dataset(args.data, data_cutoff=args.data_cutoff), args.repeats)
    print(f"retain load + validation:                       {seconds:6.2f} s  "
          f"({seconds / read_seconds:.1f}x the plain read)")
    if dataset.report.facts:
        print("facts: " + "; ".join(f.describe() for f in dataset.report.facts))
    del dataset

    previous = previous_loader(args.previous)
    if previous is not None:
        _, before = best_of(lambda: previous(args.data, data_cutoff=args.data_cutoff), args.repeats)
        print(f"previous load + validation ({args.previous}):       {before:6.2f} s  "
              f"-> {before / seconds:.1f}x faster now")


if __name__ == "__main__":
    main()
