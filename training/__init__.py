"""Fitting, holdout evaluation, MLflow tracking, registration and promotion."""
