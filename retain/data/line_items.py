"""Line-item exports: one row per product line (an invoice number, a quantity, a unit price),
as most shops export their sales. The lines are checked like any transactions, then each
order's lines become one transaction: ``amount`` = quantity x unit price, summed per
``order_id``; an order's negative lines (returns, cancellations) are summed apart, into a
return that carries the order's id, as a return row of a one-row-per-order export does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.data.contract import TRANSACTION_LINES, TRANSACTIONS

LINE_COLUMNS = ("quantity", "unit_price")


def is_line_items(frame: pd.DataFrame) -> bool:
    """A transactions table with quantity and unit price in place of an amount."""
    return "amount" not in frame.columns and any(c in frame.columns for c in LINE_COLUMNS)


def line_amounts(quantity: np.ndarray, unit_price: np.ndarray) -> np.ndarray:
    return np.asarray(quantity, dtype=float) * np.asarray(unit_price, dtype=float)


def orders_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One transaction per order (and one per order's returned lines), in the order of each
    order's first line: the earliest line's time, the lines' amounts and discounts summed,
    the first line's category and channel."""
    amount = line_amounts(lines["quantity"].to_numpy(dtype=float), lines["unit_price"].to_numpy(dtype=float))
    frame = lines.assign(amount=amount, _return=amount < 0)
    summed = {"timestamp": "min", "amount": "sum"}
    for column in TRANSACTION_LINES.optional:
        if column in frame.columns:
            summed[column] = "sum" if column == "discount" else "first"
    orders = (frame.groupby(["customer_id", "order_id", "_return"], sort=False, observed=True, dropna=False)
              .agg(summed).reset_index())
    columns = [c for c in TRANSACTIONS.columns if c in orders.columns]
    orders = orders[columns]
    if isinstance(orders["customer_id"].dtype, pd.CategoricalDtype):
        orders["customer_id"] = orders["customer_id"].cat.remove_unused_categories()
    return orders
