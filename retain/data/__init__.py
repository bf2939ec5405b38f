"""Input tables: the data contract, loading and validation, generated and public data."""

from retain.data.load import (
    Dataset, Fact, ValidationReport, customers_with_only_returns, load_dataset, read_mapping, validate_tables,
)

__all__ = ["Dataset", "Fact", "ValidationReport", "customers_with_only_returns", "load_dataset", "read_mapping", "validate_tables"]
