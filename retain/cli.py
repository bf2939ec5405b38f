"""The ``retain`` command: a thin layer over the packages; each subcommand parses, calls, reports."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from retain.errors import RetainError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stage_printer():
    started = time.perf_counter()

    def progress(message: str) -> None:
        _say(f"[{time.perf_counter() - started:7.1f}s] {message}")

    return progress


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


# --- generate / import -------------------------------------------------------------


def cmd_generate(args) -> int:
    from retain.data.synthetic import GeneratorConfig, generate, write_dataset

    if args.customers < 1:
        raise RetainError("--customers must be at least 1")
    progress = _stage_printer()
    config = GeneratorConfig(customers=args.customers, seed=args.seed, start=args.start, end=args.end)
    try:
        tables = generate(config, progress=progress)
    except ValueError as exc:
        raise RetainError(str(exc)) from None
    progress("writing Parquet")
    out = write_dataset(tables, args.out)
    counts = tables["truth"]["counts"]
    progress(
        f"wrote {out}: {counts['customers']:,} customers, {counts['transactions']:,} transactions, "
        f"{counts['interactions']:,} interactions, {counts['churn_events']:,} churn events"
    )
    return 0


def cmd_import(args) -> int:
    from retain.data.cdnow import import_cdnow

    out, rows = import_cdnow(args.out, "sample" if args.sample else "master")
    _say(f"wrote {out / 'transactions.parquet'}: {rows:,} CDNOW transactions")
    return 0


# --- features ----------------------------------------------------------------------


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (docs/data-contract.md)")
    parser.add_argument("--lenient", action="store_true", help="set bad rows aside instead of failing")
    parser.add_argument("--rejects", type=Path, help="where --lenient writes rejected rows (default: OUT.rejects/)")
    parser.add_argument("--map", type=Path, help="JSON file mapping contract columns to your column names")
    parser.add_argument(
        "--column", action="append", default=[], metavar="TABLE.COLUMN=NAME",
        help="map one column, e.g. transactions.customer_id=CustID (repeatable)",
    )
    parser.add_argument(
        "--data-cutoff", type=_date,
        help="rows dated after this are flagged as in the future (default: now)",
    )


def _load(args, out: Path):
    from retain.data import load_dataset, read_mapping

    rejects = args.rejects or out.with_name(out.name + ".rejects")
    dataset = load_dataset(
        args.data,
        mode="lenient" if args.lenient else "strict",
        mapping=read_mapping(args.map, args.column),
        data_cutoff=args.data_cutoff,
        rejects_dir=rejects,
    )
    report = dataset.report
    _say(f"loaded {args.data}: {report.summary()}")
    if not report.ok:
        _say("set aside:\n" + report.text() + f"\nrejected rows with reasons: {report.rejects_dir}/")
    return dataset


def _write_table(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out, index=False)


def cmd_features(args) -> int:
    from retain.features import FeatureConfig, FeatureReference, build_features

    progress = _stage_printer()
    dataset = _load(args, args.out)
    reference = FeatureReference.load(args.reference) if args.reference else None
    progress(f"computing features as of {args.as_of.date()}")
    table, reference = build_features(
        dataset.transactions,
        args.as_of,
        customers=dataset.customers,
        interactions=dataset.interactions,
        config=FeatureConfig(time_unit_days=args.time_unit_days),
        reference=reference,
    )
    _write_table(table, args.out)
    reference_path = args.out.with_name(args.out.name + ".reference.json")
    reference.save(reference_path)
    known = dataset.transactions["customer_id"].nunique()
    later = known - len(table)
    progress(
        f"wrote {args.out}: {len(table):,} customers x {table.shape[1]} columns; "
        f"{later:,} customers first bought on or after {args.as_of.date()} and are not in it; "
        f"RFM cut points in {reference_path}"
    )
    return 0


# --- demo --------------------------------------------------------------------------


def cmd_demo(args) -> int:
    from retain.data import load_dataset
    from retain.data.synthetic import GeneratorConfig, generate, write_dataset
    from retain.features import build_features

    progress = _stage_printer()
    out = args.out
    config = GeneratorConfig(customers=args.customers, seed=args.seed)
    progress(f"generating {args.customers:,} customers into {out / 'data'}")
    write_dataset(generate(config, progress=progress), out / "data")
    dataset = load_dataset(out / "data", data_cutoff=config.end)
    as_of = pd.Timestamp(config.end) - pd.Timedelta(days=180)
    progress(f"features as of {as_of.date()}")
    table, reference = build_features(
        dataset.transactions, as_of, customers=dataset.customers, interactions=dataset.interactions
    )
    _write_table(table, out / "features.parquet")
    reference.save(out / "features.parquet.reference.json")
    summary = table.groupby("lifecycle_stage").size().to_string()
    progress(f"wrote {out / 'features.parquet'} ({len(table):,} customers). Lifecycle stages:\n{summary}")
    return 0


# --- entry point -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retain", description="Customer churn and value prediction.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write a synthetic customer base with known ground truth")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default="2023-01-01", help="first acquisition date")
    p.add_argument("--end", default="2026-01-01", help="data runs up to, not including, this date")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("import", help="convert a public data set to the data contract")
    p.add_argument("source", choices=["cdnow"])
    p.add_argument("--sample", action="store_true", help="the 2,357-customer CDNOW sample, not the master file")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("features", help="point-in-time customer features")
    _add_data_options(p)
    p.add_argument("--as-of", type=_date, required=True, help="only rows strictly before this date are used")
    p.add_argument("--out", type=Path, required=True, help="feature table, .parquet or .csv")
    p.add_argument("--time-unit-days", type=float, default=1.0, help="unit of recency and T (7 = weeks)")
    p.add_argument("--reference", type=Path, help="apply these RFM/ABC cut points instead of fitting them")
    p.set_defaults(run=cmd_features)

    p = sub.add_parser("demo", help="run the whole chain on generated data")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except RetainError as exc:
        _say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the trace for those who ask
        if os.environ.get("RETAIN_DEBUG"):
            traceback.print_exc()
        _say(f"internal error: {type(exc).__name__}: {exc} (set RETAIN_DEBUG=1 for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
