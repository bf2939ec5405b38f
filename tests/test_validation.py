"""Loading and validating tables against the data contract."""

import pandas as pd
import pytest

from retain.cli import main
from retain.data import load_dataset, read_mapping, validate_tables
from retain.errors import DataValidationError, RetainError

CUTOFF = "2024-01-01"


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text(text)


GOOD = "customer_id,timestamp,amount\na,2023-01-05,10.0\na,2023-02-01,12.5\nb,2023-03-01,8\n"


def test_good_csv_loads_with_types(tmp_path):
    write(tmp_path, "transactions", GOOD)
    ds = load_dataset(tmp_path, data_cutoff=CUTOFF)
    assert ds.report.ok
    assert pd.api.types.is_datetime64_any_dtype(ds.transactions["timestamp"])
    assert ds.transactions["amount"].dtype == float
    assert ds.customers is None and ds.churn_events is None


def test_missing_column_names_it_and_the_fix(tmp_path):
    write(tmp_path, "transactions", "customer_id,timestamp\na,2023-01-05\n")
    with pytest.raises(DataValidationError, match=r"\['amount'\] missing.*--column transactions.amount="):
        load_dataset(tmp_path, data_cutoff=CUTOFF)


def test_text_in_amount_and_bad_date_are_reported_with_rows(tmp_path):
    write(tmp_path, "transactions", GOOD + "b,2023-03-02,abc\nc,not-a-date,5\n")
    with pytest.raises(DataValidationError) as caught:
        load_dataset(tmp_path, data_cutoff=CUTOFF)
    text = str(caught.value)
    assert "transactions.amount: 1 row(s) is not a number (rows 4; e.g. 'abc')" in text
    assert "transactions.timestamp: 1 row(s) is not a parseable date (rows 5; e.g. 'not-a-date')" in text


def test_empty_files_are_clear_errors(tmp_path):
    write(tmp_path, "transactions", "")
    with pytest.raises(RetainError, match="empty"):
        load_dataset(tmp_path, data_cutoff=CUTOFF)
    write(tmp_path, "transactions", "customer_id,timestamp,amount\n")
    with pytest.raises(DataValidationError, match="header but no rows"):
        load_dataset(tmp_path, data_cutoff=CUTOFF)


def test_customer_with_only_returns_is_flagged(tmp_path):
    write(tmp_path, "transactions", GOOD + "z,2023-04-01,-5\nz,2023-04-02,-3\n")
    with pytest.raises(DataValidationError, match="2 row\\(s\\) belong to customers with only returns"):
        load_dataset(tmp_path, data_cutoff=CUTOFF)


def test_lenient_sets_rows_aside_with_reasons(tmp_path):
    data = tmp_path / "data"
    write(data, "transactions", GOOD + "b,2023-03-02,abc\n,2023-03-02,4\na,2023-01-05,10.0\nq,2030-01-01,3\n")
    write(data, "churn_events", "customer_id,churn_date,churn_type\na,2023-06-01,price\nghost,2023-06-01,need\n")
    ds = load_dataset(data, mode="lenient", data_cutoff=CUTOFF, rejects_dir=tmp_path / "rejects")
    assert len(ds.transactions) == 3
    assert ds.report.rows_rejected == {"transactions": 4, "churn_events": 1}
    rejects = pd.read_csv(tmp_path / "rejects" / "transactions.rejects.csv")
    assert rejects["row"].tolist() == [4, 5, 6, 7]
    reasons = " | ".join(rejects["reason"])
    for expected in ("not a number", "have no value", "duplicate an earlier row", "in the future"):
        assert expected in reasons
    events = pd.read_csv(tmp_path / "rejects" / "churn_events.rejects.csv")
    assert events["customer_id"].tolist() == ["ghost"]
    assert "no transaction" in events["reason"][0]


def test_interactions_checks(tmp_path):
    write(tmp_path, "transactions", GOOD)
    write(
        tmp_path,
        "interactions",
        "customer_id,timestamp,kind,resolved,resolution_hours,satisfaction\n"
        "a,2023-01-06,complaint,yes,4,\n"
        "a,2023-01-07,survey,,,45\n"
        "b,2023-01-07,complaint,maybe,-2,\n",
    )
    with pytest.raises(DataValidationError) as caught:
        load_dataset(tmp_path, data_cutoff=CUTOFF)
    text = str(caught.value)
    assert "interactions.satisfaction: 1 row(s) is not on the 7-level scale" in text
    assert "interactions.resolved: 1 row(s) is not true/false (rows 3; e.g. 'maybe')" in text


def test_column_mapping_flags_and_file(tmp_path):
    write(tmp_path, "orders", "Cust,When,Value\na,2023-01-05,10\n")
    mapping_file = tmp_path / "map.json"
    mapping_file.write_text('{"transactions": {"file": "orders.csv", "columns": {"customer_id": "Cust"}}}')
    mapping = read_mapping(mapping_file, ["transactions.timestamp=When", "transactions.amount=Value"])
    ds = load_dataset(tmp_path, mapping=mapping, data_cutoff=CUTOFF)
    assert ds.transactions["customer_id"].tolist() == ["a"]
    with pytest.raises(RetainError, match="should look like"):
        read_mapping(None, ["customer_id=Cust"])


def test_generated_data_is_valid(generated_tables):
    ds = validate_tables(generated_tables, data_cutoff="2026-01-01")
    assert ds.report.ok, ds.report.text()


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    write(tmp_path / "d", "transactions", GOOD + "b,2023-03-02,abc\n")
    code = main(["features", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01", "--out", str(tmp_path / "f.csv"),
                 "--data-cutoff", CUTOFF])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: the data breaks the contract" in err and "Traceback" not in err
    code = main(["features", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01", "--out", str(tmp_path / "f.csv"),
                 "--data-cutoff", CUTOFF, "--lenient"])
    assert code == 0
    assert (tmp_path / "f.csv.rejects" / "transactions.rejects.csv").exists()
    assert len(pd.read_csv(tmp_path / "f.csv")) == 2


def test_cli_as_of_before_all_purchases_is_a_clear_error(tmp_path, capsys):
    write(tmp_path / "d", "transactions", GOOD)
    code = main(["features", "--data", str(tmp_path / "d"), "--as-of", "2020-01-01", "--out", str(tmp_path / "f.csv"),
                 "--data-cutoff", CUTOFF])
    assert code == 2
    assert "no customer has a purchase before 2020-01-01" in capsys.readouterr().err
