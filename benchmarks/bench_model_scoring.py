"""Per-call cost of the value and churn models' scoring, from one customer to a large table.

    retain generate --customers 6000 --seed 3 --out /tmp/base6k      # and train a pair into HOME
    python benchmarks/bench_model_scoring.py --home HOME --data /tmp/base6k --as-of 2025-12-01 \\
        --rows 1000000 --table /tmp/features1m.pkl

Builds the feature table of the dataset's customers once, grows it to ``--rows`` rows (each
copy's T, recency and monetary shifted so that histories stay distinct, as in a large base)
and saves it to ``--table``; a later run with the same ``--table`` reuses it, so two
checkouts (say main's venv and a branch's) score the very same input. Prints the median
time and Python call count of ``ValueModel.score`` and ``ChurnTypeModel.score_with_notes``
for 1 and 1,000 customers, and one timed pass over all rows.
"""

from __future__ import annotations

import argparse
import pathlib
import pickle
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_request import measured  # noqa: E402


def grown_table(features: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """``features`` repeated to ``rows`` rows; every copy after the first has its customer
    ids suffixed and T (with recency), monetary and the spend windows shifted a little."""
    rng = np.random.default_rng(seed)
    copies = -(-rows // len(features))
    table = pd.concat([features] * copies, ignore_index=True).head(rows)
    copy = np.repeat(np.arange(copies), len(features))[:rows]
    shift = np.where(copy > 0, rng.integers(0, 60, rows), 0).astype(float)
    table["T"] = table["T"] + shift
    table["recency"] = table["recency"] + np.where(table["frequency"] > 0, rng.integers(0, 2, rows) * shift, 0.0)
    table["monetary"] = table["monetary"] * np.where(copy > 0, rng.uniform(0.9, 1.1, rows), 1.0)
    table["customer_id"] = table["customer_id"].astype(str) + np.where(copy > 0, "-" + copy.astype(str), "")
    return table


def timed(call, repeat: int) -> str:
    median, fastest, calls = measured(call, repeat)
    return f"median {median:8.2f} ms  min {fastest:8.2f} ms  {calls:6d} calls"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="RETAIN_HOME holding a champion pair")
    parser.add_argument("--data", help="dataset folder (needed only to build the table)")
    parser.add_argument("--as-of", default="2025-12-01")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--table", required=True, help="pickle of the grown feature table (built if absent)")
    args = parser.parse_args()

    from retain.serving import load_model_pair
    from retain.settings import Settings

    pair = load_model_pair(Settings(home=pathlib.Path(args.home))).pair
    table_path = pathlib.Path(args.table)
    if table_path.exists():
        table = pickle.loads(table_path.read_bytes())
    else:
        from retain.data import load_dataset
        from retain.features import build_features

        data = load_dataset(args.data, data_cutoff="2026-01-01")
        features, _ = build_features(data.transactions, pd.Timestamp(args.as_of), customers=data.customers,
                                     interactions=data.interactions, config=pair.feature_config,
                                     reference=pair.reference)
        table = grown_table(features, args.rows)
        table_path.write_bytes(pickle.dumps(table))
    print(f"table: {len(table):,} rows, {table.shape[1]} columns; "
          f"{len(table[['frequency', 'recency', 'T']].drop_duplicates()):,} distinct histories")
    for rows, repeat in ((1, 100), (1000, 20)):
        part = table.head(rows)
        print(f"value {rows:>5}: {timed(lambda: pair.value.score(part), repeat)}")
        print(f"churn {rows:>5}: {timed(lambda: pair.churn.score_with_notes(part), repeat)}")
    for name, call in (("value", lambda: pair.value.score(table)), ("churn", lambda: pair.churn.score_with_notes(table))):
        start = time.perf_counter()
        call()
        print(f"{name} {len(table):,} rows: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
