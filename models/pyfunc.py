"""retain's models as MLflow pyfuncs: one wrapper for every model that has ``score(features)``.

Input contract of a registered pyfunc (``mlflow.pyfunc.load_model`` or ``spark_udf``):

- a **feature table** (``retain features`` / ``retain.features.build_features``, one row per
  customer, built with the same time unit as the model), or
- **raw tables**: the data contract's tables stacked in one frame, with a column ``table``
  naming each row's table (``transactions``, ``customers``, ``interactions``,
  ``churn_events``) and the union of their columns; without a ``table`` column every row is
  a transaction. Features are then built inside with the training run's feature settings
  and RFM reference, as of ``params={"as_of": "YYYY-MM-DD"}``, which is required: a
  default taken from the data would make one customer score differently alone than in a
  batch.

Every input customer comes back as one row: ``not_scored_reason`` is empty for scored
customers and says why for the others (churned before as_of, no purchase before as_of,
only returns). The version column reads ``NAME/vVERSION`` when loaded through ``retain.models.registry.load``
(which passes it as MLflow ``model_config``), else the run the model was logged in.
"""

from __future__ import annotations

from importlib import metadata

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from retain.data.contract import TABLES
from retain.errors import RetainError
from retain.features import FeatureConfig, FeatureReference
from retain.features.drift import profile
from retain.features.eligibility import scorable_features

# Packages a loaded model needs besides retain itself (installed where models are served).
RUNTIME_PACKAGES = ("lifetimes", "pandas", "numpy", "scipy", "scikit-learn", "lightgbm", "mlflow", "pyarrow")
TABLE_COLUMN = "table"
# The columns of the training scores whose distribution is kept with the model for drift checks.
PROFILED_COLUMNS = ("frequency", "recency", "T", "monetary", "rfm_segment", "lifecycle_stage", "p_alive",
                    "expected_purchases", "clv", "value_tier", "p_churn", "churn_type")


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in RUNTIME_PACKAGES]


def split_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Raw tables stacked in one frame (see the module docstring) -> {table name: frame}."""
    if TABLE_COLUMN not in frame.columns:
        return {"transactions": frame}
    names = frame[TABLE_COLUMN].astype(str)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise RetainError(f"column {TABLE_COLUMN!r} names unknown table(s) {unknown}; tables are {sorted(TABLES)}")
    tables = {}
    for name in TABLES:
        rows = frame[names == name]
        if len(rows):
            spec = TABLES[name]
            keep = [c for c in rows.columns if c != TABLE_COLUMN and (c in spec.columns or spec.open_columns)]
            rows = rows[keep]
            if spec.open_columns:  # attributes: only the columns these rows actually carry
                rows = rows.dropna(axis=1, how="all")
            else:
                rows = rows[[c for c in rows.columns if c in spec.required or rows[c].notna().any()]]
            tables[name] = rows.reset_index(drop=True)
    return tables


class RetainPyfunc(mlflow.pyfunc.PythonModel):
    """``model`` has ``score(features) -> DataFrame`` and ``input_columns``;
    ``version_column`` (clv_model_version, churn_model_version) is filled with
    ``version_label``. ``profile`` is the distribution of the training scores (drift)."""

    def __init__(self, model, *, feature_config: FeatureConfig, reference: FeatureReference,
                 version_column: str, version_label: str):
        self.model = model
        self.feature_config = feature_config
        self.reference = reference
        self.version_column = version_column
        self.version_label = version_label
        self.profile: dict = {}

    def load_context(self, context) -> None:
        # at load time only: ``load`` passes the registry version it resolved
        config = getattr(context, "model_config", None) or {}
        self.version_label = config.get("version_label", self.version_label)

    def features_from(self, model_input: pd.DataFrame, params: dict | None = None) -> tuple[pd.DataFrame, pd.Series]:
        """(feature table, not-scored reasons per customer id) for either input form."""
        if "frequency" in model_input.columns:
            _check_time_unit(model_input, self.feature_config.time_unit_days)
            return model_input, pd.Series(dtype=object)
        from retain.data import validate_tables  # raw tables: same checks as loading a folder

        as_of = (params or {}).get("as_of") or ""
        if not as_of:
            raise RetainError('scoring raw tables needs params={"as_of": "YYYY-MM-DD"}: the date to score as of')
        dataset = validate_tables(split_tables(model_input), data_cutoff=pd.Timestamp.max)
        features, reasons = scorable_features(dataset, pd.Timestamp(as_of), self.feature_config, self.reference)
        return features, reasons.words

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features, reasons = self.features_from(model_input, params)
        scores = self.model.score(features) if len(features) else pd.DataFrame(columns=["customer_id", "as_of"])
        scores["not_scored_reason"] = ""
        unscored = reasons[reasons != ""]
        if len(unscored):
            as_of = pd.Timestamp(params["as_of"]).normalize()
            extra = pd.DataFrame({"customer_id": unscored.index, "as_of": as_of, "not_scored_reason": unscored.to_numpy()})
            scores = pd.concat([scores, extra], ignore_index=True) if len(scores) else extra
        scores[self.version_column] = self.version_label
        return scores


def _check_time_unit(features: pd.DataFrame, time_unit_days: float) -> None:
    """A feature table built in another time unit (days vs weeks) would be misread silently:
    tenure_days is always in days, T in the table's unit."""
    if "tenure_days" not in features.columns or "T" not in features.columns or not len(features):
        return
    rows = features["T"].to_numpy(dtype=float) > 0
    if not rows.any():
        return
    # tenure_days counts the first purchase day itself: T = (tenure_days - 1) / unit
    unit = float(np.median((features["tenure_days"].to_numpy(dtype=float)[rows] - 1)
                           / features["T"].to_numpy(dtype=float)[rows]))
    if abs(unit / time_unit_days - 1) > 0.05:
        raise RetainError(
            f"the feature table's recency and T are in units of {unit:.3g} days, but the model was trained in units "
            f"of {time_unit_days:g} days: rebuild the features with --time-unit-days {time_unit_days:g}"
        )


def signature_for(model, example_features: pd.DataFrame, example_output: pd.DataFrame) -> ModelSignature:
    """customer_id is required (of any type: text, or categorical as pandas reads Parquet);
    every other input column is optional so that a feature table and raw tables both pass
    MLflow's schema check."""
    import warnings

    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the integer hint: integers are declared double below
        signature = infer_signature(example_features[list(model.input_columns)], example_output)
    # integers are declared double: a missing value in a later batch must not fail the schema check
    columns = [ColSpec(AnyType() if spec.name == "customer_id" else
                       "double" if str(spec.type) in ("integer", "long") else spec.type, spec.name,
                       required=spec.name == "customer_id") for spec in signature.inputs.inputs]
    present = {spec.name for spec in columns}
    if "tenure_days" not in present:  # read to check the feature table's time unit
        columns.append(ColSpec("double", "tenure_days", required=False))
    for name, kind in raw_table_columns(model).items():
        if name not in present:
            columns.append(ColSpec(kind, name, required=False))
            present.add(name)
    return ModelSignature(inputs=Schema(columns), outputs=signature.outputs,
                          params=ParamSchema([ParamSpec("as_of", "string", "")]))


def raw_table_columns(model) -> dict[str, str]:
    """Columns a raw-tables input may carry: the ``table`` column, every contract column,
    and the customer attributes the model was trained on. Declared of any type: tables
    stacked in one frame mix kinds in a column (missing values where a table lacks it),
    JSON sends dates as text, and retain's own validation checks every value with a
    message that names the table, row and column."""
    columns = {TABLE_COLUMN: AnyType()}
    for spec in TABLES.values():
        for name in spec.columns:
            columns.setdefault(name, AnyType())
    for name in getattr(model, "feature_names_", ()):
        if name.startswith("attr_"):
            source = name[len("attr_"):]
            source = source[:-len("_days")] if source.endswith("_days") and source != "signup_date_days" else source
            columns.setdefault("signup_date" if source == "signup_date_days" else source, AnyType())
    return columns


def log_pyfunc(wrapper: RetainPyfunc, example_features: pd.DataFrame, profile_features: pd.DataFrame | None = None):
    """Log inside the active run; returns MLflow's ModelInfo. ``profile_features`` (default
    ``example_features``) are the customers as scoring will meet them at the end of the
    training data: the distribution of their features and scores is kept with the model,
    for drift checks."""
    rows = (example_features if profile_features is None else profile_features).reset_index(drop=True)
    scores = wrapper.model.score(rows).drop(columns=["customer_id", "as_of"], errors="ignore")
    wrapper.profile = profile(pd.concat([rows.drop(columns=scores.columns, errors="ignore"), scores], axis=1),
                              PROFILED_COLUMNS)
    example = example_features.head(5)
    output = wrapper.predict(None, example)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=wrapper,
        signature=signature_for(wrapper.model, example, output),
        input_example=example[list(wrapper.model.input_columns)],
        pip_requirements=pip_requirements(),
        model_config={"version_label": wrapper.version_label},  # replaced by the registry version at load
    )
