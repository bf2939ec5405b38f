"""The command line as people use it: one JSON document on stdout, progress on stderr,
third-party noise only with --verbose, help text and defaults for every option, and clear
messages for small or empty inputs."""

import argparse
import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from retain.cli import build_parser, main
from retain.data.synthetic import GeneratorConfig, generate, write_dataset


def _parsers(parser, name="retain"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child_name, child in action.choices.items():
                yield from _parsers(child, f"{name} {child_name}")


def test_every_option_has_help_and_shows_its_default():
    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.dest} has no help text"
            shows_default = action.required or action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS
            if not shows_default:
                shown = " ".join(parser._get_formatter()._format_action(action).split())
                assert "default: " in shown, (name, action.dest)
        assert "--verbose" in text, name


@pytest.fixture(scope="module")
def constant_spend(tmp_path_factory):
    """Every purchase costs 10.00 (a dates-only log): once lifetimes' Gamma-Gamma optimiser
    printed its result to stdout and stopped; the spend model now gives the observed mean."""
    folder = tmp_path_factory.mktemp("constant") / "data"
    folder.mkdir()
    tables = generate(GeneratorConfig(customers=3000, seed=2))
    tx = tables["transactions"][["customer_id", "timestamp", "amount"]]
    tx[tx["amount"] >= 0].assign(amount=10.0).to_parquet(folder / "transactions.parquet", index=False)
    return folder


def test_library_prints_and_warnings_stay_off_stdout_and_hidden_unless_verbose(constant_spend, home, capsys):
    argv = ["train", "clv", "--data", str(constant_spend), "--calibration-end", "2025-01-01",
            "--data-cutoff", "2026-01-01", "--model", "bgnbd", "--json"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["model_version"] == "1"  # one JSON document, no optimiser output
    assert "spend per purchase has no spread to model" in out.err  # said in words (issue 26)
    assert "success: False" not in out.err and "RuntimeWarning" not in out.err
    assert main(argv + ["--verbose"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["model_version"] == "2"


@pytest.mark.slow
def test_json_is_the_only_thing_on_stdout_and_mlflow_noise_is_hidden(tmp_path):
    """As a user runs it: a fresh process, MLflow imported inside the command."""
    write_dataset(generate(GeneratorConfig(customers=2000, seed=5)), tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["RETAIN_HOME"] = str(tmp_path / "home")
    command = [sys.executable, "-m", "retain.cli", "train", "clv", "--data", str(tmp_path / "data"),
               "--calibration-end", "2025-01-01", "--data-cutoff", "2026-01-01", "--model", "bgnbd", "--json"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["model_version"] == "1"  # exactly one document
    for noise in (" INFO ", "CloudPickle", "Found extra inputs", "Successfully registered", "Warning"):
        assert noise not in quiet.stderr, noise
    assert "registered retain-clv version 1" in quiet.stderr  # retain's own progress stays
    loud = subprocess.run(command + ["--verbose"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert loud.returncode == 0, loud.stderr
    assert json.loads(loud.stdout)["model_version"] == "2"
    assert "CloudPickle" in loud.stderr


# --- small and empty inputs ---------------------------------------------------------------


def test_demo_with_no_customers_is_a_clear_error(tmp_path, home, capsys):
    from retain.errors import RetainError

    with pytest.raises(SystemExit):
        main(["demo", "--customers", "0", "--out", str(tmp_path / "demo")])
    assert "--customers: 0 must be above 0" in capsys.readouterr().err
    with pytest.raises(RetainError, match="a generated base needs at least 1 customer, not 0"):
        generate(GeneratorConfig(customers=0))  # the library says so too, not numpy


@pytest.mark.slow
def test_demo_on_a_small_base_merges_rare_types_and_finishes(tmp_path, monkeypatch, capsys):
    """1,000 customers leave a few churners of each type: they are merged into 'other', so
    the classifier has two labels (LightGBM's multiclass needs to be told so)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    assert main(["demo", "--customers", "1000", "--out", str(tmp_path / "demo")]) == 0
    err = capsys.readouterr().err
    assert "labels ['retained', 'other']" in err
    scores = pd.read_parquet(tmp_path / "demo" / "scores.parquet")
    scored = scores[scores["not_scored_reason"].fillna("") == ""]  # the others are listed with a reason
    assert len(scored) > 500 and scored["p_churn"].between(0, 1).all()


def test_counts_and_lengths_must_be_positive(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "transactions.csv").write_text("customer_id,timestamp,amount\na,2023-01-05,10\n")
    base = ["features", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01", "--out", str(tmp_path / "f.csv")]
    with pytest.raises(SystemExit):
        main(base + ["--time-unit-days", "0"])
    assert "--time-unit-days: 0 must be above 0" in capsys.readouterr().err
    churn = ["train", "churn", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01"]
    for flag, value in (("--snapshot-step-days", "0"), ("--snapshots", "0"), ("--n-jobs", "0"),
                        ("--horizon-days", "-1")):
        with pytest.raises(SystemExit):
            main(churn + [flag, value])
        assert f"{flag}: {value} must be above 0" in capsys.readouterr().err


def test_features_count_only_returns_customers_apart(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "transactions.csv").write_text(
        "customer_id,timestamp,amount\na,2023-01-05,10\na,2023-02-05,12\nb,2023-01-07,-3\nc,2023-07-01,5\n")
    assert main(["features", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01", "--out", str(tmp_path / "f.csv"),
                 "--data-cutoff", "2024-01-01"]) == 0
    err = capsys.readouterr().err
    assert "1 customer(s) have only returns" in err  # the load reports the fact
    assert "1 customers first bought on or after 2023-06-01 and are not in it, nor are 1 with only returns" in err


@pytest.mark.slow
def test_a_busy_port_ends_serve_with_one_line_naming_the_port_and_the_flag(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "RETAIN_HOME": str(tmp_path / "home"), "BENTOML_HOME": str(tmp_path / "bentoml")}
        env.pop("MLFLOW_TRACKING_URI", None)
        run = subprocess.run([sys.executable, "-m", "retain.cli", "serve", "--port", str(port), "--no-auth"],
                             capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0] and "already in use" in lines[0]


def test_version_and_retain_home_in_the_help(capsys):
    import retain

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"retain {retain.__version__}"
    parsers = dict(_parsers(build_parser()))
    assert "RETAIN_HOME" in parsers["retain"].format_help()
    for name in ("train clv", "train churn", "promote", "score", "serve", "build", "models", "report", "demo"):
        assert "RETAIN_HOME" in parsers[f"retain {name}"].format_help(), name
