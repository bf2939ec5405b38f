"""Loading and validating tables against the data contract."""

import numpy as np
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


def test_customers_with_only_returns_are_kept_and_counted(tmp_path):
    from retain.data import customers_with_only_returns

    write(tmp_path, "transactions", GOOD + "z,2023-04-01,-5\nz,2023-04-02,-3\nb,2023-01-02,-4\n")
    ds = load_dataset(tmp_path, data_cutoff=CUTOFF)  # strict: a fact of real data, not a defect
    assert len(ds.transactions) == 6 and "z" in set(ds.transactions["customer_id"])
    fact = ds.report.fact("transactions", "only returns")
    assert fact.count == 1 and fact.unit == "customer(s)" and fact.examples == ["z"]
    assert "1 customer(s) have only returns" in ds.report.facts_text()
    assert list(customers_with_only_returns(ds.transactions)) == ["z"]
    # before b's first purchase, b too has only a return
    assert sorted(customers_with_only_returns(ds.transactions, before="2023-01-04")) == ["b"]


def test_lenient_sets_rows_aside_with_reasons(tmp_path):
    data = tmp_path / "data"
    write(data, "transactions", GOOD + "b,2023-03-02,abc\n,2023-03-02,4\na,2023-01-05,10.0\nq,2030-01-01,3\n")
    write(data, "churn_events", "customer_id,churn_date,churn_type\na,2023-06-01,price\nghost,2023-06-01,need\n")
    ds = load_dataset(data, mode="lenient", data_cutoff=CUTOFF, rejects_dir=tmp_path / "rejects")
    assert len(ds.transactions) == 4  # the exact duplicate without an order_id is kept
    # the row without a customer id is a guest sale: counted, neither rejected nor kept
    assert ds.report.rows_rejected == {"transactions": 2, "churn_events": 1}
    assert ds.report.fact("transactions", "duplicate an earlier row exactly").count == 1
    assert ds.report.fact("transactions", "guest sales").count == 1
    rejects = pd.read_csv(tmp_path / "rejects" / "transactions.rejects.csv")
    assert rejects["row"].tolist() == [4, 7]
    reasons = " | ".join(rejects["reason"])
    for expected in ("not a number", "in the future"):
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


# --- facts of real exports and true defects ------------------------------------------------


def test_cdnow_sample_loads_strict_and_reproduces_published_estimates(tmp_path):
    """CDNOW has no order id and 21 rows that repeat an earlier row exactly: they are two
    orders each, and the published BG/NBD and Gamma-Gamma estimates count them."""
    from retain.data.cdnow import import_cdnow
    from retain.features import FeatureConfig, calibration_holdout
    from retain.models.value.purchase import PurchaseModel
    from retain.models.value.spend import SpendModel

    import_cdnow(tmp_path / "cdnow", "sample")
    ds = load_dataset(tmp_path / "cdnow", data_cutoff="1998-07-01")
    assert ds.report.ok and len(ds.transactions) == 6919
    assert ds.report.fact("transactions", "duplicate an earlier row exactly").count == 21
    table, _ = calibration_holdout(ds.transactions, "1997-10-01", "1998-07-01", config=FeatureConfig(time_unit_days=7))
    purchases = PurchaseModel("bgnbd").fit(table["frequency"], table["recency"], table["T"])
    for name, value in {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}.items():
        assert purchases.params_[name] == pytest.approx(value, rel=1e-3), name
    spend = SpendModel().fit(table["frequency"], table["monetary"])
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert spend.params_[name] == pytest.approx(value, abs=0.01), name


ORDERS = "customer_id,timestamp,amount,order_id\na,2023-01-05,10,o1\na,2023-01-20,-4,o1\nb,2023-02-01,8,o2\n"


def test_a_repeated_order_id_is_a_duplicate(tmp_path):
    write(tmp_path / "ok", "transactions", ORDERS)  # a return may carry its purchase's order_id
    assert load_dataset(tmp_path / "ok", data_cutoff=CUTOFF).report.ok
    write(tmp_path / "bad", "transactions", ORDERS + "b,2023-02-01,8,o2\nc,2023-03-01,5,o1\n")
    with pytest.raises(DataValidationError) as caught:
        load_dataset(tmp_path / "bad", data_cutoff=CUTOFF)
    text = str(caught.value)
    assert "transactions.order_id: 1 row(s) duplicate an earlier row exactly, order_id included (the same order twice) (rows 4" in text
    assert "transactions.order_id: 1 row(s) repeat the order_id of an earlier purchase (one row per order: sum the lines of an order first) (rows 5" in text
    ds = load_dataset(tmp_path / "bad", mode="lenient", data_cutoff=CUTOFF, rejects_dir=tmp_path / "rejects")
    assert len(ds.transactions) == 3 and ds.report.rows_rejected["transactions"] == 2


def test_time_zones_are_converted_to_utc(tmp_path):
    write(tmp_path / "csv", "transactions",
          "customer_id,timestamp,amount\na,2023-01-05T10:00:00+02:00,1\na,2023-01-06T10:00:00Z,2\n"
          "b,2023-01-07T23:30:00-05:00,3\nb,2023-01-08 12:00:00,4\n")
    ds = load_dataset(tmp_path / "csv", data_cutoff=CUTOFF)
    assert ds.transactions["timestamp"].tolist() == pd.to_datetime(
        ["2023-01-05 08:00", "2023-01-06 10:00", "2023-01-08 04:30", "2023-01-08 12:00"]).tolist()
    assert ds.report.fact("transactions", "time zone").count == 3
    # one offset for the whole column, and an aware column in Parquet
    write(tmp_path / "one", "transactions", "customer_id,timestamp,amount\na,2023-01-05T10:00:00+02:00,1\n")
    assert load_dataset(tmp_path / "one", data_cutoff=CUTOFF).transactions["timestamp"][0] == pd.Timestamp(
        "2023-01-05 08:00")
    frame = pd.DataFrame({"customer_id": ["a"], "amount": [1.0],
                          "timestamp": pd.to_datetime(["2023-01-05 10:00"]).tz_localize("Europe/Berlin")})
    ds = validate_tables({"transactions": frame}, data_cutoff=CUTOFF)
    assert ds.transactions["timestamp"][0] == pd.Timestamp("2023-01-05 09:00")


def test_day_month_order_is_detected_or_asked_for(tmp_path):
    write(tmp_path / "dmy", "transactions", "customer_id,timestamp,amount\na,02/01/2023,1\na,13/01/2023,2\n")
    ds = load_dataset(tmp_path / "dmy", data_cutoff=CUTOFF)
    assert ds.transactions["timestamp"].tolist() == [pd.Timestamp("2023-01-02"), pd.Timestamp("2023-01-13")]
    assert "read day first" in ds.report.fact("transactions", "first").what
    write(tmp_path / "mdy", "transactions", "customer_id,timestamp,amount\na,02/01/2023,1\na,01/13/2023,2\n")
    assert load_dataset(tmp_path / "mdy", data_cutoff=CUTOFF).transactions["timestamp"][0] == pd.Timestamp(
        "2023-02-01")
    write(tmp_path / "ambiguous", "transactions", "customer_id,timestamp,amount\na,02/01/2023,1\na,03/01/2023,2\n")
    with pytest.raises(DataValidationError, match="transactions.timestamp: dates like '02/01/2023'.*--date-format"):
        load_dataset(tmp_path / "ambiguous", data_cutoff=CUTOFF)
    ds = load_dataset(tmp_path / "ambiguous", data_cutoff=CUTOFF, date_format="%d/%m/%Y")
    assert ds.transactions["timestamp"][0] == pd.Timestamp("2023-01-02")
    write(tmp_path / "mixed", "transactions", "customer_id,timestamp,amount\na,13/01/2023,1\na,01/13/2023,2\n")
    with pytest.raises(DataValidationError, match="mixes day-first dates"):
        load_dataset(tmp_path / "mixed", data_cutoff=CUTOFF)


def test_cli_date_flags_take_iso_dates_only(tmp_path, capsys):
    write(tmp_path / "d", "transactions", GOOD)
    with pytest.raises(SystemExit):
        main(["features", "--data", str(tmp_path / "d"), "--as-of", "02/01/2023", "--out", str(tmp_path / "f.csv")])
    assert "'02/01/2023' is not an ISO date" in capsys.readouterr().err
    write(tmp_path / "dmy", "transactions", "customer_id,timestamp,amount\na,02/01/2023,1\na,03/01/2023,2\n")
    assert main(["features", "--data", str(tmp_path / "dmy"), "--as-of", "2023-06-01", "--out", str(tmp_path / "g.csv"),
                 "--date-format", "%d/%m/%Y", "--data-cutoff", CUTOFF]) == 0
    assert pd.read_csv(tmp_path / "g.csv")["recency"].tolist() == [1.0]


def test_a_column_mapping_to_a_missing_column_names_both(tmp_path):
    write(tmp_path, "transactions", GOOD)
    with pytest.raises(RetainError, match="transactions.amount=Total names column 'Total', but transactions.csv has "
                                          "no such column"):
        load_dataset(tmp_path, mapping=read_mapping(None, ["transactions.amount=Total"]), data_cutoff=CUTOFF)


def test_cli_data_pointing_at_a_file_and_out_with_an_unknown_suffix(tmp_path, capsys):
    write(tmp_path / "d", "transactions", GOOD)
    code = main(["features", "--data", str(tmp_path / "d" / "transactions.csv"), "--as-of", "2023-06-01",
                 "--out", str(tmp_path / "f.csv"), "--data-cutoff", CUTOFF])
    assert code == 2 and "is a file; --data takes the dataset folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", "--data", str(tmp_path / "d"), "--as-of", "2023-06-01", "--out", str(tmp_path / "f.txt")])
    assert "f.txt: write .parquet or .csv" in capsys.readouterr().err
    assert not (tmp_path / "f.txt").exists()


def test_parquet_categoricals_over_many_row_groups_read_as_pandas_reads_them(tmp_path):
    from retain.data.load import _read_parquet

    frame = pd.DataFrame({"customer_id": pd.Categorical(["b", "a", None, "c", "a", "b"], categories=["a", "b", "c", "d"]),
                          "timestamp": pd.to_datetime(["2023-01-0%d" % d for d in range(1, 7)]),
                          "amount": [1.0, 2, 3, 4, 5, 6], "resolved": pd.array([True, None, False, True, True, False])})
    frame.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=2)  # three row groups, one dictionary
    pd.testing.assert_frame_equal(_read_parquet(tmp_path / "t.parquet"), pd.read_parquet(tmp_path / "t.parquet"))



# --- tables read together, columns already of their type kept (the per-call cost of small inputs) ---


def test_ids_of_all_tables_are_checked_and_matched_together():
    """The ids of every table are coded and stripped together: a table with white space
    around its ids gets them stripped, and an id of another table is matched by its code."""
    frames = {
        "transactions": pd.DataFrame({"customer_id": ["a", "b", "a"], "timestamp": ["2023-01-05"] * 3,
                                      "amount": [1.0, -2.0, 3.0]}),
        "customers": pd.DataFrame({"customer_id": [" a", "b", "b"], "region": ["x", "y", "z"]}),
        "interactions": pd.DataFrame({"customer_id": ["b", "ghost", "a"], "timestamp": ["2023-01-06"] * 3,
                                      "kind": ["complaint", "survey", " "]}),
    }
    with pytest.raises(DataValidationError) as caught:
        validate_tables(frames, data_cutoff=CUTOFF)
    text = str(caught.value)
    assert "customers.customer_id: 1 row(s) repeat a customer already listed (rows 3)" in text
    assert "interactions.customer_id: 1 row(s) name customers with no transaction (rows 2; e.g. 'ghost')" in text
    assert "interactions.kind: 1 row(s) has no value (rows 3)" in text
    frames["customers"] = frames["customers"].iloc[:2]
    frames["interactions"] = frames["interactions"].iloc[:1]
    ds = validate_tables(frames, data_cutoff=CUTOFF)
    assert ds.customers["customer_id"].tolist() == ["a", "b"]  # " a" is customer a
    assert ds.transactions["customer_id"].tolist() == ["a", "b", "a"]
    assert ds.report.fact("transactions", "only returns").examples == ["b"]


def test_dates_of_all_tables_read_together_and_time_zones_per_table():
    """Date columns written as text are read by one parse when none carries a time zone, and
    table by table when one does: only that table's zoned rows are counted and converted."""
    tx = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2023-01-05T10:00:00+02:00", " 2023-01-06 12:00 "],
                       "amount": [1.0, 2.0]})
    customers = pd.DataFrame({"customer_id": ["a"], "signup_date": ["2022-12-01T08:00:00"]})
    interactions = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2023-01-07", "not a date"],
                                 "kind": ["complaint", "survey"]})
    with pytest.raises(DataValidationError, match=r"interactions.timestamp: 1 row\(s\) is not a parseable date "
                                                  r"\(rows 2; e.g. 'not a date'\)"):
        validate_tables({"transactions": tx, "customers": customers, "interactions": interactions},
                        data_cutoff=CUTOFF)
    ds = validate_tables({"transactions": tx, "customers": customers, "interactions": interactions.iloc[:1]},
                         data_cutoff=CUTOFF)
    assert ds.transactions["timestamp"].tolist() == [pd.Timestamp("2023-01-05 08:00"), pd.Timestamp("2023-01-06 12:00")]
    assert ds.customers["signup_date"].tolist() == [pd.Timestamp("2022-12-01 08:00")]
    assert ds.interactions["timestamp"].tolist() == [pd.Timestamp("2023-01-07")]
    assert ds.report.fact("transactions", "time zone").count == 1
    assert ds.report.fact("customers", "time zone") is None and ds.report.fact("interactions", "time zone") is None
    naive = validate_tables({"transactions": tx.assign(timestamp=["2023-01-05 10:00", "2023-01-06 12:00"]),
                             "customers": customers}, data_cutoff=CUTOFF)
    assert naive.transactions["timestamp"].tolist() == [pd.Timestamp("2023-01-05 10:00"), pd.Timestamp("2023-01-06 12:00")]
    assert "zone" not in naive.report.facts_text()


def test_columns_already_of_their_type_are_kept_and_the_input_is_untouched():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2023-01-05", "2023-01-06"]),
                          "amount": [1.0, float("nan")], "discount": [0.0, 0.5]})
    given = frame.copy()
    with pytest.raises(DataValidationError, match=r"transactions.amount: 1 row\(s\) has no value \(a number is "
                                                  r"required\) \(rows 2"):
        validate_tables({"transactions": frame}, data_cutoff=CUTOFF)
    frame.loc[1, "amount"] = 2.0
    given.loc[1, "amount"] = 2.0
    ds = validate_tables({"transactions": frame}, data_cutoff=CUTOFF)
    pd.testing.assert_frame_equal(ds.transactions, given)
    ds.transactions["amount"] = 0.0  # the dataset's columns are its own: the caller's frame is untouched
    pd.testing.assert_frame_equal(frame, given)
    coarse = frame.assign(timestamp=frame["timestamp"].astype("datetime64[ms]"), amount=frame["amount"].astype("float32"))
    ds = validate_tables({"transactions": coarse}, data_cutoff=CUTOFF)
    assert ds.transactions["timestamp"].dtype == "datetime64[ns]" and ds.transactions["amount"].dtype == float
    pd.testing.assert_frame_equal(ds.transactions, given)


def test_exact_duplicates_are_told_apart_by_every_column():
    """Rows equal in their ids, dates and amounts but not in a text column are not
    duplicates; with an order_id, a repeated order counts once per extra row."""
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"], "timestamp": ["2023-01-05"] * 4,
                       "amount": [5.0, 5.0, 5.0, 5.0], "category": ["books", "music", "books", "books"]})
    ds = validate_tables({"transactions": tx}, data_cutoff=CUTOFF)
    assert ds.report.fact("transactions", "duplicate an earlier row exactly").count == 1  # row 3 repeats row 1
    with_orders = tx.assign(order_id=["o1", "o2", "o1", "o3"])
    with pytest.raises(DataValidationError, match=r"transactions.order_id: 1 row\(s\) duplicate an earlier row "
                                                  r"exactly, order_id included \(the same order twice\) \(rows 3;"):
        validate_tables({"transactions": with_orders}, data_cutoff=CUTOFF)
    interactions = pd.DataFrame({"customer_id": ["a", "a", "a"], "timestamp": ["2023-01-06"] * 3,
                                 "kind": ["complaint"] * 3, "resolved": ["yes", "true", None]})
    ds = validate_tables({"transactions": tx, "interactions": interactions}, data_cutoff=CUTOFF)
    assert ds.interactions["resolved"].tolist() == [True, True, pd.NA]
    assert ds.report.fact("interactions", "duplicate an earlier row exactly").count == 1  # "yes" and "true" alike


@pytest.mark.parametrize("build", ["pandas", "frame_of"])
def test_column_array_is_what_the_column_holds(build):
    from retain.data.frames import column_array
    from retain.data.frames import frame_of

    n = 4
    columns = {"f": np.array([1.5, np.nan, 3.0, 4.0]), "i": np.arange(n), "o": np.array(["a", None, "c", "d"], dtype=object),
               "d": np.array(["2024-01-01", "NaT", "2024-03-01", "2024-04-01"], dtype="datetime64[ns]"),
               "b": np.array([True, False, True, True])}
    frame = pd.DataFrame(columns) if build == "pandas" else frame_of(columns)
    if build == "pandas":
        frame["nb"] = pd.array([True, None, False, True], dtype="boolean")
        frame["cat"] = pd.Categorical(["x", "y", None, "x"])
        frame["tz"] = pd.date_range("2024-01-01", periods=n, tz="Europe/Paris")
        frame["s"] = pd.array(["a", None, "c", "d"], dtype="string")
    for name in frame.columns:
        values = column_array(frame, name)
        series = frame[name]
        if isinstance(series.dtype, np.dtype):
            assert isinstance(values, np.ndarray) and values.dtype == series.dtype, name
            np.testing.assert_array_equal(values, series.to_numpy())
        else:
            assert type(values) is type(series.array) and values.equals(series.array), name
    repeated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert column_array(repeated, "a").shape == (1, 2)  # what frame["a"] gives: pandas' own rule
