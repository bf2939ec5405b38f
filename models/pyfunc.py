"""retain's models as MLflow pyfuncs: one wrapper for every model that has ``score(features)``.

A pyfunc takes either a feature table (``retain.features.build_features``) or raw
transactions (the data contract's transactions table; features are then built with the
training run's feature settings and RFM reference, as of ``params={"as_of": "YYYY-MM-DD"}``,
default the day after the last transaction). Every input customer comes back as one row:
``not_scored_reason`` is empty for scored customers and says why for the others (from raw
transactions, a customer with no purchase before ``as_of`` has no history to score).
"""

from __future__ import annotations

from importlib import metadata

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from retain.features import FeatureConfig, FeatureReference, build_features

TRANSACTION_COLUMNS = {"timestamp": "datetime", "amount": "double", "order_id": "string",
                       "discount": "double", "category": "string", "channel": "string"}

# Packages a loaded model needs besides retain itself (installed where models are served).
RUNTIME_PACKAGES = ("lifetimes", "pandas", "numpy", "scipy", "scikit-learn", "lightgbm", "mlflow", "pyarrow")


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in RUNTIME_PACKAGES]


class RetainPyfunc(mlflow.pyfunc.PythonModel):
    """``model`` has ``score(features) -> DataFrame`` and ``input_columns``;
    ``version_column`` (clv_model_version, churn_model_version) is filled with
    ``version_label``, which ``load`` replaces by the registry name and version."""

    def __init__(self, model, *, feature_config: FeatureConfig, reference: FeatureReference,
                 version_column: str, version_label: str):
        self.model = model
        self.feature_config = feature_config
        self.reference = reference
        self.version_column = version_column
        self.version_label = version_label

    def features_from(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        if "frequency" in model_input.columns or "timestamp" not in model_input.columns:
            return model_input
        from retain.data import validate_tables  # raw transactions: same checks as loading a folder

        transactions = validate_tables({"transactions": model_input}, data_cutoff=pd.Timestamp.max).transactions
        as_of = (params or {}).get("as_of") or ""
        as_of = pd.Timestamp(as_of) if as_of else transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
        features, _ = build_features(transactions, as_of, config=self.feature_config, reference=self.reference)
        return features

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features = self.features_from(model_input, params)
        scores = self.model.score(features)
        scores[self.version_column] = self.version_label
        scores["not_scored_reason"] = ""
        if features is not model_input:
            unscored = pd.Index(model_input["customer_id"].astype(str).unique()).difference(scores["customer_id"])
            if len(unscored):
                as_of = features["as_of"].iloc[0] if len(features) else pd.NaT
                reason = f"no purchase before {pd.Timestamp(as_of).date() if len(features) else 'as_of'}"
                extra = pd.DataFrame({"customer_id": unscored, "as_of": as_of, self.version_column: self.version_label,
                                      "not_scored_reason": reason})
                scores = pd.concat([scores, extra], ignore_index=True)
        return scores


def signature_for(model, example_features: pd.DataFrame, example_output: pd.DataFrame) -> ModelSignature:
    """customer_id is required; every model input column is optional so that a feature table
    and raw transactions both pass MLflow's schema check."""
    import warnings

    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the integer hint: integers are declared double below
        signature = infer_signature(example_features[list(model.input_columns)], example_output)
    # integers are declared double: a missing value in a later batch must not fail the schema check
    columns = [ColSpec("double" if str(spec.type) in ("integer", "long") else spec.type, spec.name,
                       required=spec.name == "customer_id") for spec in signature.inputs.inputs]
    present = {spec.name for spec in columns}
    columns += [ColSpec(kind, name, required=False) for name, kind in TRANSACTION_COLUMNS.items() if name not in present]
    return ModelSignature(inputs=Schema(columns), outputs=signature.outputs, params=ParamSchema([ParamSpec("as_of", "string", "")]))


def log_pyfunc(wrapper: RetainPyfunc, example_features: pd.DataFrame):
    """Log inside the active run; returns MLflow's ModelInfo."""
    example = example_features.head(5)
    output = wrapper.predict(None, example)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=wrapper,
        signature=signature_for(wrapper.model, example, output),
        input_example=example[list(wrapper.model.input_columns)],
        pip_requirements=pip_requirements(),
    )


def load(model_uri: str) -> mlflow.pyfunc.PyFuncModel:
    """Load a pyfunc; for ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` the version
    column then reads ``NAME/vVERSION``."""
    model = mlflow.pyfunc.load_model(model_uri)
    if model_uri.startswith("models:/"):
        from mlflow import MlflowClient

        reference = model_uri[len("models:/"):]
        client = MlflowClient()
        if "@" in reference:
            name, alias = reference.split("@", 1)
            version = client.get_model_version_by_alias(name, alias).version
        elif "/" in reference:
            name, version = reference.split("/", 1)
        else:
            return model
        model.unwrap_python_model().version_label = f"{name}/v{version}"
    return model
