"""The ``retain`` command: a thin layer over the packages; each subcommand parses, calls, reports."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from retain.errors import RetainError
from retain.settings import Settings


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stage_printer():
    started = time.perf_counter()

    def progress(message: str) -> None:
        _say(f"[{time.perf_counter() - started:7.1f}s] {message}")

    return progress


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")


def _date(text: str) -> pd.Timestamp:
    """ISO dates only: 02/01/2023 could be either of two days."""
    try:
        if not _ISO_DATE.fullmatch(text.strip()):
            raise ValueError
        return pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date (use YYYY-MM-DD, e.g. 2025-09-01)") from None


def _positive(kind):
    """An argparse type: a number of ``kind`` above zero (0 days or 0 threads mean nothing)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: a port is a number from 1 to 65535")
    return port


MAX_HORIZON_DAYS = 36_500  # a hundred years: a longer horizon is a typing error, and costs memory per day


def _horizon_days(text: str) -> float:
    days = _positive(float)(text)
    if days > MAX_HORIZON_DAYS:
        raise argparse.ArgumentTypeError(f"{text} days is beyond {MAX_HORIZON_DAYS:,} (a hundred years)")
    return days


TABLE_SUFFIXES = (".parquet", ".csv")


def _output_folder(path: Path, flag: str = "--out") -> Path:
    """A folder to write into: refused when it is a file (writing would fail half-way)."""
    if path.exists() and not path.is_dir():
        raise RetainError(f"{flag} {path} is a file; give a folder to write into")
    return path


def _table_path(text: str) -> Path:
    """An output table path whose suffix says the format it is written in."""
    path = Path(text)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: write .parquet or .csv (the suffix sets the format)")
    return path


# --- generate / import -------------------------------------------------------------


def cmd_generate(args) -> int:
    from retain.data.synthetic import GeneratorConfig, SubscriptionConfig, generate, generate_subscription, write_dataset

    if args.customers < 1:
        raise RetainError("--customers must be at least 1")
    _output_folder(args.out)
    progress = _stage_printer()
    if args.business == "subscription":
        config = SubscriptionConfig(customers=args.customers, seed=args.seed, start=args.start, end=args.end)
    else:
        config = GeneratorConfig(customers=args.customers, seed=args.seed, start=args.start, end=args.end)
    try:
        tables = (generate_subscription if args.business == "subscription" else generate)(config, progress=progress)
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

    _output_folder(args.out)
    out, rows = import_cdnow(args.out, "sample" if args.sample else "master")
    _say(f"wrote {out / 'transactions.parquet'}: {rows:,} CDNOW transactions")
    return 0


# --- features ----------------------------------------------------------------------


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (docs/data-contract.md)")
    parser.add_argument("--lenient", action="store_true", help="set bad rows aside instead of failing")
    parser.add_argument("--rejects", type=Path, help="where --lenient writes rejected rows (default: OUT.rejects/)")
    parser.add_argument("--map", type=Path, help="JSON file mapping contract columns to your column names (default: the contract's names)")
    parser.add_argument(
        "--column", action="append", default=[], metavar="TABLE.COLUMN=NAME",
        help="map one column, e.g. transactions.customer_id=CustID (repeatable; default: none)",
    )
    parser.add_argument(
        "--data-cutoff", type=_date,
        help="rows dated after this are flagged as in the future (default: now)",
    )
    parser.add_argument(
        "--date-format", metavar="FORMAT",
        help="how to read dates that are not ISO 8601, e.g. '%%d/%%m/%%Y' (day first); without it the order "
             "is taken from the data when a day over 12 settles it, else retain stops and asks (default: none)",
    )


def _refuse_output_over_input(out: Path, data: Path, mapping: dict) -> None:
    """An output equal to, or inside, a table of the dataset it is computed from would overwrite
    the input (a Parquet table may be a folder)."""
    from retain.data.contract import TABLES

    target = out.resolve()
    for name in TABLES:
        files = [data / f"{name}{suffix}" for suffix in TABLE_SUFFIXES]
        if mapping.get(name, {}).get("file"):
            files.append(data / mapping[name]["file"])
        for table in files:
            table = table.resolve()
            if target == table or table in target.parents:
                raise RetainError(f"--out {out} would overwrite the input table {table} (the {name} table of "
                                  f"--data {data}); write the output elsewhere, e.g. --out {data.parent / out.name}")


def _load(args, out: Path):
    from retain.data import load_dataset, read_mapping

    rejects = _output_folder(args.rejects or out.with_name(out.name + ".rejects"), "--rejects")
    dataset = load_dataset(
        args.data,
        mode="lenient" if args.lenient else "strict",
        mapping=read_mapping(args.map, args.column),
        data_cutoff=args.data_cutoff,
        rejects_dir=rejects,
        date_format=args.date_format,
    )
    report = dataset.report
    _say(f"loaded {args.data}: {report.summary()}")
    if report.facts:
        _say("kept and counted (ordinary in real data, see docs/data-contract.md):\n" + report.facts_text())
    if not report.ok:
        _say("set aside:\n" + report.text() + f"\nrejected rows with reasons: {report.rejects_dir}/")
    if dataset.transactions.empty:
        raise RetainError(f"{args.data}: no customer's transaction is left to use (every row was set aside, or a "
                          "guest sale without a customer id); see the counts above")
    return dataset


def _write_table(table: pd.DataFrame, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise RetainError(f"{out}: write .parquet or .csv (the suffix sets the format)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out, index=False)


def cmd_features(args) -> int:
    from retain.data import read_mapping
    from retain.features import FeatureConfig, build_features

    progress = _stage_printer()
    _refuse_output_over_input(args.out, args.data, read_mapping(args.map, args.column))
    if args.engine == "spark":
        return _features_on_spark(args, progress)
    if args.out.is_dir():
        raise RetainError(f"--out {args.out} is a folder; give a file name ending in .parquet or .csv")
    reference = _read_reference(args.reference)
    dataset = _load(args, args.out)
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
    from retain.data import customers_with_only_returns

    known = dataset.transactions["customer_id"].nunique()
    # customers with only returns before as_of are not in the table either, and are counted apart
    returns_only = len(customers_with_only_returns(dataset.transactions, before=args.as_of))
    later = known - len(table) - returns_only
    progress(
        f"wrote {args.out}: {len(table):,} customers x {table.shape[1]} columns; "
        f"{later:,} customers first bought on or after {args.as_of.date()} and are not in it"
        + (f", nor are {returns_only:,} with only returns before it" if returns_only else "")
        + f"; RFM cut points in {reference_path}"
    )
    return 0


def _read_reference(path: Path | None):
    """The RFM/ABC cut points of a ``.reference.json`` that ``retain features`` wrote, or None."""
    from retain.features import FeatureReference

    if path is None:
        return None
    try:
        return FeatureReference.load(path)
    except OSError as exc:
        raise RetainError(f"cannot read --reference {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise RetainError(f"--reference {path} is not JSON ({exc}); give a .reference.json written by "
                          "retain features") from None
    except TypeError:  # JSON, without the cut points' fields
        raise RetainError(f"--reference {path} does not hold RFM cut points; give a .reference.json written by "
                          "retain features") from None


def _spark_config(args):
    from retain.serving.jobs.spark import SparkConfig

    return SparkConfig(master=args.spark_master, submitted="PYSPARK_GATEWAY_PORT" in os.environ,
                       java_home=os.environ.get("JAVA_HOME") or None,
                       python=os.environ.get("PYSPARK_PYTHON") or None, verbose=bool(os.environ.get("RETAIN_DEBUG")))


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["local", "spark"], default="local",
                        help="local: this machine with DuckDB; spark: a Spark cluster or local Spark (docs/spark.md)")
    parser.add_argument("--spark-master",
                        help="with --engine spark: local[N], spark://HOST:PORT, yarn, k8s://... (default: "
                             "spark-submit's master, or local[2])")


def _features_on_spark(args, progress) -> int:
    from retain.data import read_mapping
    from retain.features import FeatureConfig
    from retain.serving.jobs.spark import FeaturesJob, run_spark_features_job, spark_session

    job = FeaturesJob(data=args.data, as_of=args.as_of, out=args.out, config=FeatureConfig(time_unit_days=args.time_unit_days),
                      reference=_read_reference(args.reference),
                      mapping=read_mapping(args.map, args.column), lenient=args.lenient,
                      data_cutoff=args.data_cutoff, rejects=args.rejects)
    with spark_session(_spark_config(args)) as spark:
        summary = run_spark_features_job(job, spark, progress=progress)
    progress(f"wrote {summary.output}: {summary.customers:,} customers x {summary.columns} columns; "
             f"RFM cut points in {summary.reference}"
             + (f"; rows set aside by validation: {summary.rejects}/" if summary.rejects else ""))
    return 0


# --- train / promote ----------------------------------------------------------------


def _value_config(args):
    from retain.models.value import ValueConfig

    try:
        return ValueConfig(horizon_days=args.horizon_days, margin=args.margin,
                           annual_discount_rate=args.discount_rate, penalizer=args.penalizer)
    except ValueError as exc:
        raise RetainError(str(exc)) from None


def cmd_train_clv(args) -> int:
    from retain.features import FeatureConfig
    from retain.training.value import train_value_model

    progress = _stage_printer()
    dataset = _load(args, args.settings.home / "train")
    result = train_value_model(
        dataset, args.calibration_end, args.holdout_end, family=args.model, business=args.business,
        config=_value_config(args), feature_config=FeatureConfig(time_unit_days=args.time_unit_days),
        settings=args.settings, progress=progress,
    )
    return _report(result, args, _print_value_summary)


def _add_tracking_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow store: a tracking server http://HOST:PORT or a database URI "
                        "(default: $MLFLOW_TRACKING_URI, else a sqlite file in $RETAIN_HOME; docs/teams.md)")


def _report(result, args, summary) -> int:
    for note in result.warnings:
        _say(f"warning: {note}")
    _say(f"MLflow store: {result.tracking_uri}")
    if args.json:
        print(result.to_json())
    else:
        summary(result)
    return 0


def _print_value_summary(result) -> None:
    rows = ["spend_gini", "purchases_gini", "top5_revenue_share", "top10_revenue_share", "top20_revenue_share",
            "total_purchases_pct_error", "total_spend_pct_error", "purchases_mae", "purchases_rmse", "spend_mae",
            "spend_rmse", "purchases_spearman", "spend_spearman"]
    columns = {"model": result.metrics, "naive": result.baseline_metrics}
    if result.champion_metrics:
        columns["champion"] = result.champion_metrics
    table = pd.DataFrame({name: [values[r] for r in rows] for name, values in columns.items()}, index=rows)
    print(f"business: {result.business} ({result.business_reason})")
    print(f"chosen model: {result.chosen_model}  params: " + ", ".join(f"{k}={v:.4g}" for k, v in result.params.items()))
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"run {result.run_id}; retain-clv version {result.model_version} "
          f"{'promoted to champion' if result.promoted else 'kept as challenger'}: {result.reason}")


def cmd_train_churn(args) -> int:
    import json

    from retain.features import FeatureConfig
    from retain.models.churn import ChurnConfig
    from retain.training.churn import train_churn_model

    progress = _stage_printer()
    dataset = _load(args, args.settings.home / "train")
    truth = args.data / "truth.json"
    ceiling = json.loads(truth.read_text()).get("type_ceiling_among_churners") if truth.exists() else None
    config = ChurnConfig(n_jobs=args.n_jobs, value_features=not args.no_value_features)
    result = train_churn_model(
        dataset, args.as_of, snapshots=args.snapshots, snapshot_step_days=args.snapshot_step_days,
        config=config, feature_config=FeatureConfig(time_unit_days=args.time_unit_days), ceiling=ceiling,
        settings=args.settings, progress=progress, observed_until=args.observed_until,
        horizon_days=args.horizon_days,
    )
    return _report(result, args, _print_churn_summary)


def _print_churn_summary(result) -> None:
    if result.definition_reason:
        print(f"churn definition: {result.definition} ({result.definition_reason})")
        print(f"horizon {result.horizon_days:g} days ({result.horizon_reason}); cutoffs {', '.join(result.cutoffs)}; "
              f"churned share of the training labels {result.label_share:.1%}; will_churn at p_churn >= "
              f"{result.will_churn_threshold:.3f} (precision {result.metrics.get('will_churn_precision', float('nan')):.2f}, "
              f"recall {result.metrics.get('will_churn_recall', float('nan')):.2f} on the held-out customers)")
    rows = ["macro_f1", "accuracy", "log_loss", "brier", "churn_roc_auc", "churn_brier", "churn_pr_auc",
            "churn_top_decile_lift", "will_churn_precision", "will_churn_recall",
            "type_accuracy_among_churners", "type_macro_f1_among_churners"]
    columns = {"model": result.metrics, **{f"{k} baseline": v for k, v in result.baseline_metrics.items()}}
    if result.champion_metrics:
        columns["champion"] = result.champion_metrics
    table = pd.DataFrame({name: [values.get(r, float("nan")) for r in rows] for name, values in columns.items()},
                         index=rows)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    per_class = pd.DataFrame(result.metrics["per_class"]).T
    print("\nper class (held-out customers):\n" + per_class.to_string(float_format=lambda v: f"{v:.3f}"))
    c = result.calibration
    print(f"\ncalibration: log-loss {c['log_loss_before']:.4f} -> {c['log_loss_after']:.4f}, "
          f"Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f}")
    if result.ceiling:
        print(f"generator's ceiling for the type among churners: accuracy {result.ceiling['accuracy']:.3f}, "
              f"macro-F1 {result.ceiling['macro_f1']:.3f}; model: accuracy "
              f"{result.metrics.get('type_accuracy_among_churners', float('nan')):.3f}, macro-F1 "
              f"{result.metrics.get('type_macro_f1_among_churners', float('nan')):.3f}")
    print(f"run {result.run_id}; retain-churn-type version {result.model_version} "
          f"{'promoted to champion' if result.promoted else 'kept as challenger'}: {result.reason}")


def cmd_promote(args) -> int:
    from retain.console import strict_json
    from retain.models.registry import MODEL_NAMES, configure_tracking, display_uri, promote

    name = MODEL_NAMES[args.model]
    settings = args.settings
    _say(f"MLflow store: {display_uri(settings.resolved_tracking_uri)}")
    store_file = settings.home / "mlflow.db"
    if settings.uses_local_store and not store_file.exists():  # opening it would create an empty store
        raise RetainError(f"no MLflow store at {store_file}: nothing was trained with this retain home; "
                          "set RETAIN_HOME or pass --tracking-uri to the store that holds the models")
    configure_tracking(settings)
    outcome = promote(name, args.version, args.alias, settings=settings, force=args.force)
    for note in outcome["warnings"]:
        _say(f"warning: {note}")
    metrics = {k: v for k, v in sorted(outcome["metrics"].items()) if "_" in k and not k.startswith(("param_",))}
    _say(f"{name}@{args.alias}: version {outcome['previous'] or '(none)'} -> {outcome['version']}")
    print(strict_json(outcome) if args.json else
          "\n".join(f"  {k:40s} {v:.4f}" for k, v in metrics.items()))
    return 0


# --- score ---------------------------------------------------------------------------


def cmd_score(args) -> int:
    from retain.data import read_mapping
    from retain.models.registry import display_uri
    from retain.serving import load_model_pair
    from retain.serving.jobs import ScoreJob, run_score_job
    from retain.serving.store import ScoreStore
    from retain.console import strict_json

    progress = _stage_printer()
    job = ScoreJob(
        data=args.data, as_of=args.as_of, out=args.out, output_format=args.format,
        chunk_customers=args.chunk_customers, lenient=args.lenient, mapping=read_mapping(args.map, args.column),
        data_cutoff=args.data_cutoff, rejects=args.rejects, date_format=args.date_format,
    )
    from retain.serving.jobs.chunks import output_format

    output_format(job.out, job.output_format)  # a wrong suffix fails before any model is loaded
    _refuse_output_over_input(job.out, job.data, job.mapping)
    with contextlib.ExitStack() as stack:
        spark = None
        if args.engine == "spark":  # started first: a missing Java fails before the models load
            from retain.serving.jobs.spark import run_spark_score_job, spark_session

            spark = stack.enter_context(spark_session(_spark_config(args)))
        progress(f"loading models ({args.models}) from {display_uri(args.settings.resolved_tracking_uri)}")
        loaded = load_model_pair(args.settings, args.models)
        for note in loaded.notes:
            _say(f"note: {note}")
        pair = loaded.pair.with_value_horizon(args.horizon_days)
        store = None if args.no_store else ScoreStore(args.settings.score_store_path)
        if spark is not None:
            summary = run_spark_score_job(job, pair, spark, store=store, notes=loaded.notes, progress=progress)
        else:
            summary = run_score_job(job, pair, store=store, notes=loaded.notes, progress=progress)
    if args.json:
        print(strict_json(summary.to_dict()))
    else:
        _print_score_summary(summary)
    return 0


def _print_score_summary(summary) -> None:
    lines = [f"scored {summary.scored:,} of {summary.customers:,} customers as of {summary.as_of} "
             f"in {summary.seconds:.1f} s ({summary.customers_per_second:,.0f} customers/s) -> {summary.output}"]
    for reason, count in sorted(summary.not_scored.items(), key=lambda item: -item[1]):
        lines.append(f"  not scored, {reason}: {count:,}")
    value = (f"{summary.clv_model_version}, CLV and expected purchases over {summary.value_horizon_days:g} days"
             if summary.clv_model_version else "none: the value columns are empty")
    churn = (f"{summary.churn_model_version}, churn within {summary.churn_horizon_days:g} days"
             if summary.churn_model_version else "none: the churn columns are empty")
    lines += [f"value model: {value}", f"churn model: {churn}"]
    lines += [f"note: {note}" for note in summary.notes]
    if summary.missing_features:
        lines.append(f"warning: the data lacks features the churn model was trained with, scored as unknown: "
                     f"{', '.join(summary.missing_features)}")
    if summary.unknown_categories:
        lines.append("warning: values unseen in training (scored as unknown): "
                     + ", ".join(f"{k} {v:,} customers" for k, v in summary.unknown_categories.items()))
    if summary.drift_alert:
        lines.append(f"DRIFT ALERT: {', '.join(summary.drift_columns)} moved far from the training data "
                     f"(population stability index above the threshold); see {summary.drift_report}. "
                     "Check the input, and retrain if the business changed.")
    elif summary.drift_report:
        lines.append(f"drift: no major shift against the training data ({summary.drift_report})")
    if summary.rejects:
        lines.append(f"rows set aside by validation, with reasons: {summary.rejects}/")
    if summary.store:
        lines.append(f"score store: {summary.store} table {summary.store_table} (view 'latest')")
    print("\n".join(lines))


# --- serve / build -------------------------------------------------------------------


def _service_environment(args, settings: Settings) -> dict:
    """The environment the service process reads its settings from, once, at start-up
    (serving/http/config.py): keys from the flags' file join RETAIN_API_KEYS."""
    from retain.serving.http import config as http_config
    from retain.settings import read_api_keys_file

    keys = settings.api_keys + (read_api_keys_file(args.api_keys_file) if args.api_keys_file else ())
    if not keys and not args.no_auth:
        raise RetainError(
            "no API key configured: set RETAIN_API_KEYS (comma-separated) or give --api-keys-file FILE "
            "(one key per line); for a local experiment without keys, add --no-auth"
        )
    env = dict(os.environ)
    env.update({"RETAIN_HOME": str(settings.home), "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
                http_config.API_KEYS: ",".join(keys), http_config.WORKERS: str(args.workers),
                http_config.RELOAD_SECONDS: str(args.reload_seconds),
                "BENTOML_DO_NOT_TRACK": env.get("BENTOML_DO_NOT_TRACK", "true")})
    env.pop(http_config.API_KEYS_FILE, None)
    if args.no_auth:
        env[http_config.NO_AUTH] = "1"
    if args.max_request_customers:
        env[http_config.MAX_CUSTOMERS] = str(args.max_request_customers)
    if args.max_request_bytes:
        env[http_config.MAX_BYTES] = str(args.max_request_bytes)
    if args.trace_requests:
        env[http_config.TRACE_REQUESTS] = "1"
    return env


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line, before the server starts, when the address cannot be listened on
    (the server's own failure is a long third-party traceback)."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise RetainError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RetainError(f"port {port} on {host} is already in use by another program; "
                                  f"choose another port with --port, e.g. --port {port + 1}") from None
            if exc.errno == errno.EACCES:
                raise RetainError(f"port {port} on {host} needs privileges this user lacks; "
                                  "choose a port above 1023 with --port") from None
            raise RetainError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None


def _check_bento(bento: str, env: dict) -> None:
    """A Bento that exists, as a tag in the Bento store or a built Bento's folder (bentoml's own
    failure is a traceback after the server started)."""
    if Path(bento).is_dir():
        return
    check = subprocess.run([*_bentoml(), "get", bento, "-o", "json"], env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise RetainError(f"--bento {bento}: no such Bento in the Bento store ({env.get('BENTOML_HOME') or '~/bentoml'})"
                          "; `bentoml list` shows the built ones, `retain build` builds one")


def _bentoml() -> list[str]:
    return [sys.executable, "-m", "bentoml"]


def cmd_serve(args) -> int:
    """Run ``bentoml serve`` on the service; the settings go to it through its environment."""
    from retain.models.registry import display_uri

    if args.workers < 1:
        raise RetainError("--workers must be at least 1")
    env = _service_environment(args, args.settings)
    target = args.bento or "retain.serving.http.service:Retain"
    if args.bento:
        _check_bento(args.bento, env)
    _check_port_free(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"warning: binding {args.host}: the service is reachable from other machines; keep the API keys secret")
    _say(f"serving {target} on http://{args.host}:{args.port} with models from "
         f"{'the Bento' if args.bento else display_uri(args.settings.resolved_tracking_uri)}")
    command = [*_bentoml(), "serve", target, "--host", args.host, "--port", str(args.port)]
    sys.stdout.flush()
    # become the server process: signals sent to this PID reach bentoml itself
    os.execvpe(command[0], command, env)
    return 1  # not reached


def cmd_build(args) -> int:
    """A Bento with the champion models imported into it (bentoml.mlflow.import_model)."""
    from retain.serving.http.bento import build_bento

    env = dict(os.environ, BENTOML_DO_NOT_TRACK=os.environ.get("BENTOML_DO_NOT_TRACK", "true"))
    tag = build_bento(args.settings, out=args.out, progress=_stage_printer(), env=env)
    print(tag)
    return 0


# --- models / report ---------------------------------------------------------------


def cmd_models(args) -> int:
    from retain.report import format_overview, registry_overview
    from retain.console import strict_json

    overview = registry_overview(args.settings)
    print(strict_json(overview) if args.json else format_overview(overview))
    return 0


def cmd_report(args) -> int:
    from retain.report import write_report

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in the command's output
    progress = _stage_printer()
    summary = write_report(args.settings, args.out, args.scores, progress=progress)
    for note in summary.notes:
        _say(f"note: {note}")
    progress(f"wrote {summary.out}: {len(summary.charts)} charts, scores {summary.scores}, "
             f"models from {summary.tracking_uri}; open it in a browser (no network needed)")
    return 0


# --- demo --------------------------------------------------------------------------


def cmd_demo(args) -> int:
    """Generate a base (or import CDNOW), train and gate both models, score every customer."""
    from retain.demo import highest_risk, next_steps, run_demo

    from retain.demo import DEFAULT_WORKDIRS

    progress = _stage_printer()
    workdir = _output_folder(args.workdir or DEFAULT_WORKDIRS[args.data], "--workdir")
    settings = args.settings
    if settings.uses_local_store and not os.environ.get("RETAIN_HOME"):
        settings = settings.with_(home=workdir / "retain-home")  # a demo keeps its models to itself
    result = run_demo(workdir, settings=settings, source=args.data, customers=args.customers, seed=args.seed,
                      progress=progress)
    _print_value_summary(result.value)
    if result.churn is not None:
        _print_churn_summary(result.churn)
    print()
    _print_score_summary(result.summary)
    if result.churn is not None:
        with pd.option_context("display.max_colwidth", 70, "display.width", 220):
            print("\nhighest churn risk among active customers:\n"
                  + highest_risk(result.scores).to_string(index=False))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nwhat the demo wrote (all under {workdir}):")
    print(f"  data:        {result.data}/")
    print(f"  scores:      {result.scores} (one row per customer; columns in docs/data-contract.md)")
    print(f"  models:      {settings.resolved_tracking_uri} (MLflow runs and the registry)")
    print(f"  score store: {settings.score_store_path} (DuckDB: one table per date, view 'latest')")
    print(f"  report:      {result.report} (open it in a browser)")
    print("\nnext:")
    invoked = sys.argv[0] if Path(sys.argv[0]).name == "retain" else "retain"
    retain = "retain" if shutil.which("retain") == invoked else invoked
    for line in next_steps(result, retain):
        print("  " + line)
    return 0


# --- entry point -------------------------------------------------------------------


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show: required options,
    on/off flags, and options whose help says what their absence means."""

    def _get_help_string(self, action):
        if action.required or action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command shows each option's default in its help and takes --verbose."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)
        if self.add_help:  # SUPPRESS: a subcommand's absent --verbose leaves the global one alone
            self.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                              help="also show third-party log lines, warnings and optimiser output")


HOME_HELP = ("RETAIN_HOME (default: ./.retain in the current folder) is where retain keeps its state: the "
             "MLflow store of runs and models (mlflow.db, mlartifacts/) unless MLFLOW_TRACKING_URI or --tracking-uri "
             "names another, and the score store (scores.duckdb). Commands run with the same RETAIN_HOME see the "
             "same models and scores, from any folder.")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from retain import __version__

    try:
        return version("retain")
    except PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="retain", description="Customer churn and value prediction.",
                     epilog=HOME_HELP + " Other environment variables: MLFLOW_TRACKING_URI (the tracking store), "
                     "RETAIN_API_KEYS (keys of retain serve), RETAIN_DEBUG=1 (tracebacks of internal errors).")
    parser.add_argument("--version", action="version", version=f"retain {_version()}",
                        help="print retain's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write a synthetic customer base with known ground truth")
    p.add_argument("--customers", type=int, default=10_000, help="how many customers to generate")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same data")
    p.add_argument("--start", default="2023-01-01", help="first acquisition date")
    p.add_argument("--end", default="2026-01-01", help="data runs up to, not including, this date")
    p.add_argument("--out", type=Path, required=True, help="folder to write the dataset into")
    p.add_argument("--business", default="non-contractual", choices=["non-contractual", "subscription"],
                   help="non-contractual purchases (BG/NBD story) or monthly subscription bills (sBG story)")
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("import", help="convert a public data set to the data contract")
    p.add_argument("source", choices=["cdnow"], help="the data set: cdnow (shipped inside lifetimes)")
    p.add_argument("--sample", action="store_true", help="the 2,357-customer CDNOW sample, not the master file")
    p.add_argument("--out", type=Path, required=True, help="folder to write the dataset into")
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("features", help="point-in-time customer features")
    _add_data_options(p)
    p.add_argument("--as-of", type=_date, required=True, help="only rows strictly before this date are used")
    p.add_argument("--out", type=_table_path, required=True, help="feature table, .parquet or .csv")
    p.add_argument("--time-unit-days", type=_positive(float), default=1.0, help="unit of recency and T (7 = weeks)")
    p.add_argument("--reference", type=Path,
                   help="apply these RFM/ABC cut points (a .reference.json) instead of fitting them "
                        "(default: fit them on this data)")
    _add_engine_options(p)
    p.set_defaults(run=cmd_features)

    p = sub.add_parser("train", epilog=HOME_HELP, help="fit, evaluate, log to MLflow, register and gate a model")
    train = p.add_subparsers(dest="model", required=True)
    p = train.add_parser("clv", epilog=HOME_HELP, help="purchase and spend models: CLV and P(alive)")
    _add_data_options(p)
    p.add_argument("--calibration-end", type=_date, required=True, help="fit on purchases before this date")
    p.add_argument("--holdout-end", type=_date,
                   help="evaluate on purchases before this date (default: the end of the data)")
    p.add_argument("--model", default="auto", choices=["auto", "bgnbd", "mbgnbd", "pareto", "learned", "sbg"],
                   help="value model family (learned: LightGBM trained inside the calibration period; sbg: subscription "
                        "bases); auto compares bgnbd, mbgnbd, pareto and learned by the selection rule, or fits the "
                        "sBG on a subscription base (docs/value-models.md)")
    p.add_argument("--business", default="auto", choices=["auto", "subscription", "non-contractual"],
                   help="subscription (regular bills: the sBG model) or non-contractual (BG/NBD and peers); "
                        "auto detects regular bills (docs/value-models.md)")
    p.add_argument("--time-unit-days", type=_positive(float), default=1.0, help="unit of recency and T (7 = weeks)")
    p.add_argument("--horizon-days", type=_horizon_days, default=365.0, help="CLV horizon in days")
    p.add_argument("--margin", type=_positive(float), default=1.0, help="profit margin applied to spend")
    p.add_argument("--discount-rate", type=float, default=0.10, help="annual discount rate")
    p.add_argument("--penalizer", type=float, default=0.0, help="L2 penalty that helps a fit converge")
    _add_tracking_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
    p.set_defaults(run=cmd_train_clv)

    p = train.add_parser("churn", epilog=HOME_HELP, help="the churn-type classifier: who leaves in the horizon, and why")
    _add_data_options(p)
    p.add_argument("--as-of", type=_date, required=True, help="features before this date; labels in the horizon after")
    p.add_argument("--horizon-days", type=_positive(float), default=None,
                   help="a customer is labelled by the churn event (if any) in this many days after --as-of "
                        "(default 90); without a churn_events table, churned means no purchase in them "
                        "(default read from the data and printed with the reason)")
    p.add_argument("--observed-until", type=_date, metavar="DATE",
                   help="the last day churn events were recorded; the label window must end by then "
                        "(default: the latest date in any table, churn events included)")
    p.add_argument("--snapshots", type=_positive(int), default=1, help="stack this many cutoffs, each --snapshot-step-days earlier")
    p.add_argument("--snapshot-step-days", type=_positive(float), default=90.0, help="days between stacked cutoffs")
    p.add_argument("--n-jobs", type=_positive(int), default=1, help="LightGBM threads (1 is safest on shared machines)")
    p.add_argument("--no-value-features", action="store_true", help="leave P(alive) and expected purchases out")
    p.add_argument("--time-unit-days", type=_positive(float), default=1.0, help="unit of recency and T (7 = weeks)")
    _add_tracking_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
    p.set_defaults(run=cmd_train_churn)

    p = sub.add_parser("promote", epilog=HOME_HELP, help="move the champion (or another) alias to a model version by hand")
    p.add_argument("model", choices=["clv", "churn"], help="clv (retain-clv) or churn (retain-churn-type)")
    p.add_argument("--version", required=True, help="the registered model version to point the alias at")
    p.add_argument("--alias", default="champion", choices=["champion", "challenger"], help="the alias to move")
    p.add_argument("--force", action="store_true", help="promote a version that failed its gate")
    _add_tracking_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
    p.set_defaults(run=cmd_promote)

    p = sub.add_parser("score", epilog=HOME_HELP, help="score every customer of a dataset with the champion models")
    _add_data_options(p)
    p.add_argument("--as-of", type=_date, required=True, help="score as of this date: only rows before it count")
    p.add_argument("--out", type=Path, required=True, help="scores file, .parquet or .csv")
    p.add_argument("--format", choices=["parquet", "csv"], help="output format (default: from the --out suffix)")
    p.add_argument("--horizon-days", type=_horizon_days,
                   help="horizon of expected_purchases and clv (default: the value model's)")
    p.add_argument("--models", default="champion",
                   help="'champion', or versions: clv=N,churn=M (either alone scores with that model only)")
    p.add_argument("--chunk-customers", type=_positive(int), default=250_000,
                   help="customers per chunk: bounds memory; the result does not depend on it")
    p.add_argument("--no-store", action="store_true", help="do not load the scores into the score store")
    _add_engine_options(p)
    _add_tracking_option(p)
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    p.set_defaults(run=cmd_score)

    p = sub.add_parser("serve", epilog=HOME_HELP, help="the HTTP scoring service (BentoML) with the champion models")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=_port, default=3000, help="port to listen on")
    p.add_argument("--workers", type=_positive(int), default=1, help="server worker processes")
    p.add_argument("--api-keys-file", type=Path, help="API keys, one per line (also: RETAIN_API_KEYS)")
    p.add_argument("--no-auth", action="store_true", help="serve without API keys (local experiments only)")
    p.add_argument("--reload-seconds", type=float, default=30.0,
                   help="how often the champion alias is checked (0: only on POST /admin/reload)")
    p.add_argument("--max-request-customers", type=int, help="customers per /score request (default 10,000)")
    p.add_argument("--max-request-bytes", type=int, help="request body limit in bytes (default 64 MiB)")
    p.add_argument("--bento", help="serve this built Bento (retain build) instead of the registry's champions")
    p.add_argument("--trace-requests", action="store_true",
                   help="keep BentoML's OpenTelemetry tracing on the API routes (for when an exporter and sample "
                        "rate are configured in BentoML's settings; off by default: it records nothing unless "
                        "configured and costs CPU on every request; docs/benchmarks.md)")
    _add_tracking_option(p)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("build", epilog=HOME_HELP, help="a Bento with the champion models in it, deployable without the tracking store")
    p.add_argument("--out", type=Path, help="also export the Bento to this file (.bento)")
    _add_tracking_option(p)
    p.set_defaults(run=cmd_build)

    p = sub.add_parser("models", epilog=HOME_HELP, help="list the registered models, their versions, aliases, gates and metrics")
    _add_tracking_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("report", epilog=HOME_HELP, help="write a self-contained HTML report of the scores and the models")
    p.add_argument("--scores", type=Path, help="scores file (default: the last run recorded in the score store)")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write, e.g. report.html")
    _add_tracking_option(p)
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("demo", epilog=HOME_HELP, help="run the whole chain on generated data (or CDNOW): train, score, store")
    p.add_argument("--workdir", "--out", dest="workdir", type=Path,
                   help="folder the demo writes everything into (default: demo-out, or demo-cdnow with --data "
                        "cdnow; a folder holding the other demo's data is refused)")
    p.add_argument("--customers", type=_positive(int), default=20_000, help="size of the generated base")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generated base")
    p.add_argument("--data", choices=["generated", "cdnow"], default="generated",
                   help="generated data with churn events, or the real CDNOW data (value models only)")
    _add_tracking_option(p)
    p.set_defaults(run=cmd_demo)
    return parser


TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")


def _check_tracking_uri(uri: str | None) -> None:
    """A store MLflow can hold models in: a tracking server or a database (MLflow's own error
    for a folder or an unknown scheme is a page of text)."""
    if uri is None:
        return
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme not in TRACKING_SCHEMES:
        from retain.models.registry import display_uri

        raise RetainError(
            f"tracking store {display_uri(uri)!r} (--tracking-uri or MLFLOW_TRACKING_URI) is neither a tracking server nor a "
            "database: use http://HOST:PORT, or a database URI such as sqlite:///PATH/mlflow.db or "
            "postgresql://USER@HOST/DB (a folder is not supported by MLflow's registry); docs/teams.md")


def main(argv: list[str] | None = None) -> int:
    from retain.console import command_output

    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    # stdout carries only what this module prints; library noise is hidden unless --verbose
    with command_output(verbose) as real_stderr:
        try:
            args.settings = Settings.from_environment(tracking_uri=getattr(args, "tracking_uri", None),
                                                      verbose=verbose)
            if hasattr(args, "tracking_uri"):
                _check_tracking_uri(args.settings.tracking_uri)
            return args.run(args)
        except RetainError as exc:
            _say(f"error: {exc}")
            return 2
        except OSError as exc:  # a path given that cannot be read or written: the user's to fix
            where = f" {exc.filename}" if exc.filename else ""
            _say(f"error: cannot use{where}: {exc.strerror or exc}")
            return 2
        except KeyboardInterrupt:
            _say("interrupted")
            return 130
        except Exception as exc:  # a bug: say so plainly, keep the trace for those who ask
            if os.environ.get("RETAIN_DEBUG"):
                traceback.print_exc(file=real_stderr)
            _say(f"internal error: {type(exc).__name__}: {exc} (set RETAIN_DEBUG=1 for the traceback)")
            return 1


if __name__ == "__main__":
    sys.exit(main())
