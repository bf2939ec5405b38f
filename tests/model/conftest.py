"""The model layer: fitting, evaluating and scoring the models, training runs logged to
MLflow, the registry, the pyfuncs and the scoring core. The generated base and the trained
models these tests share are in tests/conftest.py (the system layer uses them too); a test
that starts a server or Spark belongs in tests/system."""
