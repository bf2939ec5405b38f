"""Bad inputs to every command end with a message naming what to fix and exit 2, never an
"internal error" (exit 1). A sweep of every command with missing files, wrong values,
malformed mappings and unusable paths found these: most ended as an internal error; a port
beyond 65535 and a negative margin were accepted silently (the port wrapped to another); a
file of guest sales only was blamed on --as-of. The cases that already failed clearly are in
each command's own tests."""

import pytest

from retain.cli import build_parser, main

GOOD = "customer_id,timestamp,amount\na,2025-01-05,10.0\na,2025-02-01,12.5\nb,2025-03-01,8\n"


@pytest.fixture
def paths(tmp_path, home):
    data = tmp_path / "data"
    data.mkdir()
    (data / "transactions.csv").write_text(GOOD)
    (tmp_path / "guests").mkdir()
    (tmp_path / "guests" / "transactions.csv").write_text("customer_id,timestamp,amount\n,2025-01-05,10.0\n")
    (data / "dates.csv").write_text("customer_id,timestamp,amount\na,05/01/2025,10\na,13/02/2025,3\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    (tmp_path / "a-folder.parquet").mkdir()
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "table-as-text.json").write_text('{"transactions": "orders.csv"}')
    (tmp_path / "columns-as-list.json").write_text('{"transactions": {"columns": ["CustID"]}}')
    (tmp_path / "file-as-number.json").write_text('{"transactions": {"file": 5}}')
    (tmp_path / "dates-map.json").write_text('{"transactions": {"file": "dates.csv"}}')
    (tmp_path / "not-json.json").write_text("not json")
    (tmp_path / "empty-object.json").write_text("{}")
    return {"DATA": str(data), "FILE": str(a_file), "TMP": str(tmp_path)}


FEATURES = ["features", "--data", "{DATA}", "--as-of", "2025-06-01"]
CASES = {
    "generate into a file": (["generate", "--customers", "10", "--out", "{FILE}"], "is a file; give a folder"),
    "import into a file": (["import", "cdnow", "--sample", "--out", "{FILE}"], "is a file; give a folder"),
    "demo into a file": (["demo", "--workdir", "{FILE}", "--customers", "50"], "is a file; give a folder"),
    "mapping file holding a list": ([*FEATURES, "--out", "{TMP}/f.parquet", "--map", "{TMP}/list.json"],
                                    "holds a list; it should hold one object by table"),
    "mapping table as text": ([*FEATURES, "--out", "{TMP}/f.parquet", "--map", "{TMP}/table-as-text.json"],
                              'transactions should be an object with "file" and/or "columns"'),
    "mapping columns as a list": ([*FEATURES, "--out", "{TMP}/f.parquet", "--map", "{TMP}/columns-as-list.json"],
                                  "transactions.columns should map contract columns"),
    "mapping file name as a number": ([*FEATURES, "--out", "{TMP}/f.parquet", "--map", "{TMP}/file-as-number.json"],
                                      "transactions.file should be a file name"),
    "date format pandas cannot use": ([*FEATURES, "--out", "{TMP}/f.parquet", "--map", "{TMP}/dates-map.json",
                                       "--date-format", "%Q"], "--date-format '%Q' is not a date format"),
    "reference file missing": ([*FEATURES, "--out", "{TMP}/f.parquet", "--reference", "{TMP}/nope.json"],
                               "cannot read --reference"),
    "reference not JSON": ([*FEATURES, "--out", "{TMP}/f.parquet", "--reference", "{TMP}/not-json.json"],
                           "is not JSON"),
    "reference without cut points": ([*FEATURES, "--out", "{TMP}/f.parquet", "--reference", "{TMP}/empty-object.json"],
                                     "does not hold RFM cut points"),
    "features out is a folder": ([*FEATURES, "--out", "{TMP}/a-folder.parquet"], "is a folder; give a file name"),
    "features out cannot be created": ([*FEATURES, "--out", "/proc/no/such/f.parquet"], "cannot use /proc/no"),
    "rejects folder is a file": ([*FEATURES, "--out", "{TMP}/f.parquet", "--lenient", "--rejects", "{FILE}"],
                                 "--rejects {FILE} is a file"),
    "only guest sales": (["features", "--data", "{TMP}/guests", "--as-of", "2025-06-01", "--out", "{TMP}/f.parquet"],
                         "no customer's transaction is left to use"),
    "tracking store of an unknown scheme": (["models", "--tracking-uri", "foo://bar"],
                                            "is neither a tracking server nor a database"),
    "tracking store as a folder": (["models", "--tracking-uri", "{TMP}"], "is neither a tracking server nor a database"),
    "tracking store password masked": (["models", "--tracking-uri", "ftp://alice:S3cret@host/x"], "alice:***@host"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_message_and_exit_2(case, paths, capsys):
    argv, expected = CASES[case]
    argv = [arg.format(**paths) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert expected.format(**paths) in err
    assert "S3cret" not in err


@pytest.mark.parametrize("argv, message", [
    (["serve", "--port", "70000"], "a port is a number from 1 to 65535"),
    (["serve", "--port", "0"], "a port is a number from 1 to 65535"),
    (["train", "clv", "--data", "d", "--calibration-end", "2025-01-01", "--margin", "-1"], "-1 must be above 0"),
    (["score", "--data", "d", "--as-of", "2025-01-01", "--out", "s.parquet", "--horizon-days", "1e308"],
     "beyond 36,500"),
])
def test_flag_values_out_of_range_are_refused_when_parsed(argv, message, capsys):
    """Refused before anything runs (70000 was wrapped to another port, a negative margin gave
    negative values, a horizon of 1e308 days ran out of memory)."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(argv)
    assert refused.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_serve_refuses_a_bento_that_does_not_exist(tmp_path, home, monkeypatch, capsys):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    monkeypatch.setenv("RETAIN_API_KEYS", "k")
    # a Bento that exists would start the server (the process becomes it): only a refusal returns here
    assert main(["serve", "--bento", "no-such-bento:1", "--port", "1"]) == 2
    assert "--bento no-such-bento:1: no such Bento" in capsys.readouterr().err
