"""retain: customer churn and value prediction."""

__version__ = "0.1.0"
