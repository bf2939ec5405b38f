"""The input data contract: one place that names every table's columns and kinds.

A dataset is a folder holding these tables, each as ``NAME.parquet`` or ``NAME.csv``.
docs/data-contract.md is the prose version of this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds understood by the validator.
ID = "id"  # non-empty string
DATETIME = "datetime"  # date or datetime, parsed to naive UTC
FLOAT = "float"
BOOL = "bool"
TEXT = "text"

# The 7-level satisfaction scale of docs/domain.md (very satisfied .. very dissatisfied).
SATISFACTION_LEVELS = (90, 60, 30, 0, -30, -60, -90)

# The default churn taxonomy; the label set actually used is whatever the data holds.
DEFAULT_CHURN_TYPES = ("natural", "price", "service", "competition", "need")


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    required_table: bool = False
    # The column that dates each row of an event table: checked against the data cutoff, and
    # the table's rows are checked for duplicates (rows equal in every contract column).
    time_column: str | None = None
    # True when the table may carry further columns of the user's own (customer attributes).
    open_columns: bool = False
    # True for a line-item export: one row per product line, an order's lines sharing its order_id.
    lines: bool = False

    @property
    def columns(self) -> dict[str, str]:
        return {**self.required, **self.optional}


TRANSACTIONS = TableSpec(
    name="transactions",
    required={"customer_id": ID, "timestamp": DATETIME, "amount": FLOAT},
    optional={"order_id": TEXT, "discount": FLOAT, "category": TEXT, "channel": TEXT},
    required_table=True,
    time_column="timestamp",
)
# The transactions of a line-item export (one row per product line): ``amount`` is
# quantity x unit_price, summed per order_id (``retain.data.line_items``).
TRANSACTION_LINES = TableSpec(
    name="transactions",
    required={"customer_id": ID, "timestamp": DATETIME, "order_id": TEXT, "quantity": FLOAT, "unit_price": FLOAT},
    optional={"discount": FLOAT, "category": TEXT, "channel": TEXT},
    required_table=True,
    time_column="timestamp",
    lines=True,
)
CUSTOMERS = TableSpec(
    name="customers",
    required={"customer_id": ID},
    optional={"signup_date": DATETIME},
    open_columns=True,
)
INTERACTIONS = TableSpec(
    name="interactions",
    required={"customer_id": ID, "timestamp": DATETIME, "kind": TEXT},
    optional={"resolved": BOOL, "resolution_hours": FLOAT, "satisfaction": FLOAT},
    time_column="timestamp",
)
CHURN_EVENTS = TableSpec(
    name="churn_events",
    required={"customer_id": ID, "churn_date": DATETIME, "churn_type": TEXT},
    time_column="churn_date",
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (TRANSACTIONS, CUSTOMERS, INTERACTIONS, CHURN_EVENTS)
}


# --- the scores: what every scoring path returns (batch, Spark, HTTP, pyfuncs) ------------------
# Column name -> kind. Scheduled jobs and marketing tools read these names: never rename one.
# ``p_type_<label>`` columns, one per churn label of the churn model, follow ``churn_type``.
STRING = "string"
SCORE_COLUMNS: dict[str, str] = {
    "customer_id": STRING,
    "as_of": DATETIME,
    "frequency": FLOAT,
    "recency": FLOAT,
    "T": FLOAT,
    "monetary": FLOAT,
    "rfm_code": STRING,
    "rfm_segment": STRING,
    "lifecycle_stage": STRING,
    "p_alive": FLOAT,
    "expected_purchases": FLOAT,
    "expected_order_value": FLOAT,
    "clv": FLOAT,
    "clv_low": FLOAT,
    "clv_high": FLOAT,
    "value_tier": STRING,
    "value_quadrant": STRING,
    "p_churn": FLOAT,
    "will_churn": BOOL,
    "churn_type": STRING,
    # p_type_<label> columns go here
    "top_drivers": STRING,
    "recommended_action": STRING,
    "clv_model_version": STRING,
    "churn_model_version": STRING,
    "not_scored_reason": STRING,
}
TYPE_PROBABILITY_PREFIX = "p_type_"
# Also returned, after the stable columns: the moves that go with the tier and quadrant, and
# the horizon the value columns cover.
SCORE_EXTRA_COLUMNS: dict[str, str] = {
    "tier_move": STRING,
    "value_move": STRING,
    "expected_purchases_low": FLOAT,
    "expected_purchases_high": FLOAT,
    "value_horizon_days": FLOAT,
    "churn_horizon_days": FLOAT,
}


def score_columns(churn_labels: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Every score column in output order, with its kind, for a churn model with these
    churn labels (``retained`` excluded)."""
    columns: dict[str, str] = {}
    for name, kind in SCORE_COLUMNS.items():
        columns[name] = kind
        if name == "churn_type":
            columns.update({f"{TYPE_PROBABILITY_PREFIX}{label}": FLOAT for label in churn_labels})
    columns.update(SCORE_EXTRA_COLUMNS)
    return columns
