"""Line-item exports (one row per product line, as shops export their sales): quantity and
unit price in place of an amount, an order's lines sharing its order_id, cancellations as
invoices of negative lines, guest checkouts without a customer id, dates like 12/01/2010 08:26.

The fixture tests/fixtures/online_retail_lines.csv has the columns of the UCI Online Retail
export; online_retail_orders.csv is the same data summed by hand into one row per invoice
(guest invoices left out)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.cli import main
from retain.data import load_dataset, read_mapping
from retain.errors import DataValidationError
from retain.features import build_features

FIXTURES = Path(__file__).parent.parent / "fixtures"
LINES = FIXTURES / "online_retail_lines.csv"
MAPPING = FIXTURES / "online_retail_mapping.json"
CUTOFF = "2011-12-31"
AS_OF = pd.Timestamp("2011-02-01")
RFM = ["frequency", "recency", "T", "monetary"]


@pytest.fixture
def export(tmp_path):
    """A dataset folder holding the raw export under its own name."""
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(LINES, folder / LINES.name)
    return folder


def load_lines(folder, **options):
    return load_dataset(folder, mapping=read_mapping(MAPPING), data_cutoff=CUTOFF, **options)


def test_rfm_of_the_raw_export_equals_the_invoices_summed_by_hand(export, tmp_path):
    lines = load_lines(export)
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    shutil.copy(FIXTURES / "online_retail_orders.csv", by_hand / "transactions.csv")
    orders = load_dataset(by_hand, data_cutoff=CUTOFF)

    key = ["customer_id", "order_id"]
    left = lines.transactions.sort_values(key).reset_index(drop=True)
    right = orders.transactions.sort_values(key).reset_index(drop=True)
    assert left[key].astype(str).equals(right[key].astype(str))
    np.testing.assert_allclose(left["amount"], right["amount"], atol=1e-9)
    assert (left["timestamp"] == right["timestamp"]).all()

    from_lines = build_features(lines.transactions, AS_OF)[0].set_index("customer_id").sort_index()
    from_orders = build_features(orders.transactions, AS_OF)[0].set_index("customer_id").sort_index()
    assert list(from_lines.index) == list(from_orders.index)
    assert "17850" in from_lines.index  # ids stay text, not 17850.0 from a column with blanks
    pd.testing.assert_frame_equal(from_lines[RFM], from_orders[RFM])
    assert from_lines.loc["17850", "frequency"] == 2  # purchase days after the first: Dec 5 and Dec 16


def test_guest_lines_are_a_fact_not_a_defect_and_never_scored(export):
    dataset = load_lines(export)  # strict: no --lenient needed
    guests = dataset.report.fact("transactions", "guest sales")
    assert guests.count == 4  # lines
    assert "3 order(s)" in guests.what and "net amount 139.25" in guests.what
    assert dataset.report.rows_rejected == {"transactions": 0}
    assert not {"", "nan", "None"} & set(dataset.transactions["customer_id"].astype(str))
    assert not {"536381", "537237", "540002"} & set(dataset.transactions["order_id"])
    identical = dataset.report.fact("transactions", "same product scanned twice")
    # a lantern of 536365, a cake stand of 538172, and 537126's second paper chain kit (same
    # quantity and price: the product code is not a contract column)
    assert identical.count == 3
    assert dataset.report.fact("transactions", "became 20 orders").count == 28  # the customers' lines


def test_mapping_flags_read_the_export_as_the_file_does(export):
    flags = ["transactions.order_id=InvoiceNo", "transactions.quantity=Quantity", "transactions.unit_price=UnitPrice",
             "transactions.timestamp=InvoiceDate", "transactions.customer_id=CustomerID"]
    mapping = read_mapping(None, flags)
    mapping["transactions"]["file"] = LINES.name
    by_flags = load_dataset(export, mapping=mapping, data_cutoff=CUTOFF)
    pd.testing.assert_frame_equal(by_flags.transactions, load_lines(export).transactions)


def test_commands_read_a_line_item_export_without_lenient(export, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    code = main(["features", "--data", str(export), "--map", str(MAPPING), "--as-of", "2011-02-01",
                 "--out", str(out), "--data-cutoff", CUTOFF])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "guest sales" in err and "became 20 orders" in err
    table = pd.read_parquet(out)
    assert len(table) == 7 and "17850" in set(table["customer_id"])


def write_lines(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transactions.csv").write_text(text)
    return folder


def test_a_line_item_table_without_unit_price_or_order_id_names_what_is_missing(tmp_path):
    folder = write_lines(tmp_path / "a", "customer_id,timestamp,order_id,quantity\nc1,2023-01-05,o1,2\n")
    with pytest.raises(DataValidationError, match=r"\['unit_price'\] missing.*quantity and unit_price in place of amount"):
        load_dataset(folder, data_cutoff=CUTOFF)
    folder = write_lines(tmp_path / "b", "customer_id,timestamp,quantity,unit_price\nc1,2023-01-05,2,3.5\n")
    with pytest.raises(DataValidationError, match=r"\['order_id'\] missing.*groups an order's lines"):
        load_dataset(folder, data_cutoff=CUTOFF)


def test_an_order_whose_lines_name_two_customers_is_a_defect(tmp_path):
    folder = write_lines(tmp_path / "a", "customer_id,timestamp,order_id,quantity,unit_price\n"
                                         "c1,2011-01-05,o1,2,3.5\nc2,2011-01-05,o1,1,3.5\nc2,2011-01-06,o2,1,3.5\n")
    with pytest.raises(DataValidationError, match=r"transactions.order_id: 2 row\(s\) are lines of an order whose "
                                                   r"lines name more than one customer \(rows 1, 2"):
        load_dataset(folder, data_cutoff=CUTOFF)


def test_negative_lines_inside_an_order_are_a_return_of_that_order(tmp_path):
    folder = write_lines(tmp_path / "a", "customer_id,timestamp,order_id,quantity,unit_price\n"
                                         "c1,2011-01-05,o1,2,10\nc1,2011-01-05,o1,-1,4\nc1,2011-01-05,o1,1,5\n")
    orders = load_dataset(folder, data_cutoff=CUTOFF).transactions
    assert orders[["order_id", "amount"]].values.tolist() == [["o1", 25.0], ["o1", -4.0]]


def test_day_month_dates_are_never_guessed(tmp_path):
    """12/01/2010 08:26 alone could be 12 January or 1 December: retain asks, and reads it as told."""
    text = "customer_id,timestamp,order_id,quantity,unit_price\nc1,12/01/2010 08:26,o1,2,3.5\nc1,01/02/2011 10:00,o2,1,3\n"
    folder = write_lines(tmp_path / "a", text)
    with pytest.raises(DataValidationError, match="could be day/month or month/day.*--date-format"):
        load_dataset(folder, data_cutoff=CUTOFF)
    dates = load_dataset(folder, data_cutoff=CUTOFF, date_format="%m/%d/%Y %H:%M").transactions["timestamp"]
    assert list(dates) == [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2011-01-02 10:00")]


def test_guest_sales_are_a_dataset_folders_not_a_requests():
    """In tables made from one request's customers (HTTP, pyfunc) a blank id is that request's
    defect; only a shop's export (a dataset folder, a score job's chunk) has guest sales."""
    from retain.data import validate_tables

    frame = pd.DataFrame({"customer_id": ["c1", " "], "timestamp": ["2011-01-05", "2011-01-06"], "amount": [3.0, 4.0]})
    with pytest.raises(DataValidationError, match="have no value"):
        validate_tables({"transactions": frame}, data_cutoff=CUTOFF)
    dataset = validate_tables({"transactions": frame}, data_cutoff=CUTOFF, guest_sales=True)
    assert list(dataset.transactions["customer_id"]) == ["c1"]
    assert dataset.report.fact("transactions", "guest sales").count == 1
