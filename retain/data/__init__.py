"""Input tables: the data contract, loading and validation, generated and public data."""

from retain.data.load import Dataset, ValidationReport, load_dataset, read_mapping, validate_tables

__all__ = ["Dataset", "ValidationReport", "load_dataset", "read_mapping", "validate_tables"]
