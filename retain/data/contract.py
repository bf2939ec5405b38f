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

# The 7-level satisfaction scale of domain.md (very satisfied .. very dissatisfied).
SATISFACTION_LEVELS = (90, 60, 30, 0, -30, -60, -90)

# The default churn taxonomy; the label set actually used is whatever the data holds.
DEFAULT_CHURN_TYPES = ("natural", "price", "service", "competition", "need")


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    required_table: bool = False
    # Columns whose value identifies an event; two rows equal on all of them are duplicates.
    time_column: str | None = None
    # True when the table may carry further columns of the user's own (customer attributes).
    open_columns: bool = False

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
