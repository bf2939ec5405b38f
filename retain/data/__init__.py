"""Input tables: the data contract, loading (``load``), parsing text into the contract's kinds
(``parse``) and validation (``validate``), generated and public data."""

from retain.data.findings import Fact, ValidationReport
from retain.data.load import load_dataset, read_mapping
from retain.data.validate import Dataset, customers_with_only_returns, validate_tables

__all__ = ["Dataset", "Fact", "ValidationReport", "customers_with_only_returns", "load_dataset", "read_mapping", "validate_tables"]
