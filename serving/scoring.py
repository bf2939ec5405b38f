"""The scoring core: the one function that turns customer history into scores.

``retain score`` (local and Spark), the HTTP service and the demo all parse their input into
the data-contract tables and call ``score_customers`` with an explicit ``as_of`` and a
loaded ``ModelPair``. The one other path is a registered model used alone as an MLflow
pyfunc (``retain.models.pyfunc.RetainPyfunc.predict``): it calls the same eligibility rules
and the same model's ``score``, for one model instead of the pair. It is pure: it reads the models and
changes nothing, so one pair can serve many threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from retain.data import Dataset
from retain.data.contract import BOOL, DATETIME, FLOAT, score_columns
from retain.data.frames import column_array
from retain.errors import RetainError
from retain.features import FeatureConfig, FeatureReference
from retain.features.eligibility import scorable_features
from retain.features.segments import stage_given_p_alive
from retain.features.tables import positions_in
from retain.models.actions import action_given_stage
from retain.models.churn import ChurnTypeModel
from retain.models.value import ValueModel, value_scores

# The columns the value model computes (its drift profile is the one that counts for them); the
# lifecycle stage among them: the value model's P(alive) decides termination (features.segments).
VALUE_OUTPUTS = ("p_alive", "expected_purchases", "expected_order_value", "clv", "value_tier", "value_quadrant",
                 "lifecycle_stage")
# The value outputs the churn model reconciles when both models score (``alive_given_churn``).
RECONCILED_OUTPUTS = ("p_alive", "lifecycle_stage")
# The feature columns every score row carries, whichever models there are.
FEATURE_COLUMNS = ("frequency", "recency", "T", "monetary", "rfm_code", "rfm_segment", "lifecycle_stage")


@dataclass(frozen=True)
class ModelPair:
    """A value model and a churn-type model (either may be absent) with the feature
    settings and RFM reference the features are built with, and their version labels.

    Build it with ``ModelPair.of``, which checks that the two models read features the same
    way. The reference is the churn model's when there is one: its RFM scores are model
    inputs, while the value model reads only frequency, recency, T and monetary."""

    value: ValueModel | None
    churn: ChurnTypeModel | None
    feature_config: FeatureConfig
    reference: FeatureReference
    clv_version: str | None = None
    churn_version: str | None = None
    profiles: dict = field(default_factory=dict)  # training score profiles, for drift

    @classmethod
    def of(cls, value=None, churn=None, *, value_version=None, churn_version=None) -> "ModelPair":
        """From loaded pyfunc wrappers (``RetainPyfunc``: model, feature_config, reference)."""
        if value is None and churn is None:
            raise RetainError("scoring needs at least one model: a value model, a churn model or both")
        if value is not None and churn is not None:
            _check_compatible(value, churn, value_version, churn_version)
        main = churn if churn is not None else value
        # value outputs as the value model defines them; features (RFM segments come from the
        # reference in use) as the main model saw them
        profiles = dict(getattr(main, "profile", {}) or {})
        if value is not None:
            profiles.update({k: v for k, v in (getattr(value, "profile", {}) or {}).items() if k in VALUE_OUTPUTS})
        if value is not None and churn is not None:
            # with both models, P(alive) and the stage it decides are reconciled with the churn
            # model (``alive_given_churn``): no training profile describes them, so no drift
            for name in RECONCILED_OUTPUTS:
                profiles.pop(name, None)
        return cls(
            value=value.model if value is not None else None,
            churn=churn.model if churn is not None else None,
            feature_config=main.feature_config,
            reference=main.reference,
            clv_version=value_version if value is not None else None,
            churn_version=churn_version if churn is not None else None,
            profiles=profiles,
        )

    @property
    def churn_labels(self) -> list[str]:
        return list(self.churn.churn_labels) if self.churn is not None else []

    @cached_property
    def columns(self) -> dict[str, str]:
        """The score columns and their kinds (read several times per request: made once)."""
        return score_columns(self.churn_labels)

    def with_value_horizon(self, horizon_days: float | None) -> "ModelPair":
        """The same pair with the value model's CLV horizon changed (a new object)."""
        if horizon_days is None or self.value is None:
            return self
        if horizon_days <= 0:
            raise RetainError(f"--horizon-days must be positive, not {horizon_days:g}")
        value = replace(self.value, config=replace(self.value.config, horizon_days=float(horizon_days)))
        return replace(self, value=value)


def _check_compatible(value, churn, value_version, churn_version) -> None:
    names = f"the value model ({value_version or 'value'}) and the churn model ({churn_version or 'churn'})"
    if value.feature_config != churn.feature_config:
        raise RetainError(
            f"{names} were trained on different feature settings: {value.feature_config} vs {churn.feature_config}; "
            "retrain one of them with the other's settings (for example the same --time-unit-days)"
        )
    if value.model.time_unit_days != value.feature_config.time_unit_days:
        raise RetainError(f"the value model ({value_version}) is in units of {value.model.time_unit_days:g} days "
                          f"but its features in {value.feature_config.time_unit_days:g}: retrain it")


@dataclass
class ScoredBatch:
    """The scores, one row per input customer sorted by customer_id, and what the input
    lacked (churn model features missing, categories unseen in training).

    ``columns`` holds the score columns as conformed arrays, in order; ``scores`` is them as
    a frame, made when first asked for (the HTTP service answers from the arrays: a frame of
    40 columns costs more to build than scoring one customer's value)."""

    columns: dict = field(default_factory=dict)
    # per row, why not scored as a code (``retain.vocabulary.NotScored``; None when scored)
    not_scored: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    missing_features: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)

    @cached_property
    def scores(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns, copy=False)


def score_customers(tables: Dataset, as_of, pair: ModelPair) -> ScoredBatch:
    """Score every customer of ``tables`` as of ``as_of`` (only rows strictly before it
    count). Customers who churned before ``as_of``, or have no purchase before it, get no
    scores and a ``not_scored_reason``; every input customer appears exactly once."""
    as_of = pd.Timestamp(as_of).normalize()
    customers = _conform_attributes(tables.customers, pair.churn)
    features, reasons = scorable_features(
        replace(tables, customers=customers), as_of, pair.feature_config, pair.reference
    )
    columns = pair.columns
    ids = np.asarray(reasons.words.index, dtype=object).astype(str)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    batch = ScoredBatch()

    parts = {"customer_id": ids, "as_of": np.full(len(ids), as_of.to_datetime64(), dtype="datetime64[ns]")}
    if len(features):
        feature_ids = column_array(features, "customer_id").astype(str)
        same = len(feature_ids) == len(ids) and (feature_ids == ids).all()  # every customer scored
        rows = np.arange(len(ids)) if same else positions_in(ids, feature_ids)
        present = set(features.columns)
        scored = {name: np.asarray(column_array(features, name)) for name in FEATURE_COLUMNS if name in present}
        if pair.value is not None:
            values = value_scores(pair.value, features)
            scored.update({name: values[name] for name in values if name in columns})
            scored["value_horizon_days"] = np.full(len(features), pair.value.config.horizon_days)
        if pair.churn is not None:
            churn, notes = pair.churn.score_columns_with_notes(features)
            scored.update({name: churn[name] for name in churn if name in columns})
            scored["churn_horizon_days"] = np.full(len(features), pair.churn.config.horizon_days)
            batch.missing_features, batch.unknown_categories = notes.missing_features, notes.unknown_categories
            if pair.value is not None and "p_alive" in scored and "p_churn" in churn:
                scored["p_alive"] = alive_given_churn(scored["p_alive"], churn["p_churn"], churn["will_churn"],
                                                      pair.value.config.termination_p_alive)
                if "lifecycle_stage" in scored:
                    scored["lifecycle_stage"] = stage_given_p_alive(
                        scored["lifecycle_stage"], scored["p_alive"], pair.value.config.termination_p_alive)
            # a customer whose P(alive) says gone is never told to keep normal contact (docs/customer-story.md)
            if pair.value is not None and "lifecycle_stage" in scored and "recommended_action" in scored:
                scored["recommended_action"] = action_given_stage(
                    scored["recommended_action"], scored["will_churn"], scored["lifecycle_stage"])
        for name, values in scored.items():
            if name in ("customer_id", "as_of"):
                continue
            parts[name] = _spread(values, rows, len(ids), columns[name])
    parts["clv_model_version"] = np.full(len(ids), pair.clv_version, dtype=object)
    parts["churn_model_version"] = np.full(len(ids), pair.churn_version, dtype=object)
    parts["not_scored_reason"] = reasons.words.to_numpy(dtype=object)[order]
    batch.not_scored = reasons.codes.to_numpy(dtype=object)[order]
    batch.columns = conform_arrays(parts, columns)
    return batch


def alive_given_churn(p_alive, p_churn, will_churn, termination_p_alive: float) -> np.ndarray:
    """P(alive) once the churn model has spoken (docs/customer-story.md, "When both models
    score"). A customer already gone would leave within any horizon, so P(alive) is never
    below 1 - p_churn; and a customer the churn model does not flag is not called gone
    (P(alive) at least the termination cut). The churn model has the last word because it
    learned from this base's own outcomes, where the value model's P(alive) is a structural
    assumption (BG/NBD gives a one-time buyer 1.0 whatever the evidence)."""
    p_alive = np.asarray(p_alive, dtype=float)
    p_churn = np.asarray(p_churn, dtype=float)
    flagged = np.asarray(pd.array(will_churn, dtype="boolean").fillna(False), dtype=bool)
    floor = np.where(flagged, 1.0 - p_churn, np.maximum(1.0 - p_churn, termination_p_alive))
    return np.where(np.isnan(p_churn) | np.isnan(p_alive), p_alive, np.maximum(p_alive, floor))


def _spread(values: np.ndarray, rows: np.ndarray, n: int, kind: str) -> np.ndarray:
    """Values of the scored rows placed at their positions among all n customers."""
    if kind == FLOAT:
        full = np.full(n, np.nan)
    elif kind == BOOL and getattr(values, "dtype", None) == bool:  # will_churn: unknown where not scored
        full, unknown = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        full[rows], unknown[rows] = values, False
        return pd.arrays.BooleanArray(full, unknown)
    else:
        full = np.full(n, None, dtype=object)
    full[rows] = values
    return full


def conform(frame, columns: dict[str, str]) -> pd.DataFrame:
    """Every score column, in order, with one dtype whatever the batch held: text as object
    (None when empty), numbers float64, dates datetime64[ns], will_churn nullable boolean.
    The same columns and types from every path and chunk. ``frame`` is a DataFrame or a
    dict of equal-length arrays."""
    index = frame.index if isinstance(frame, pd.DataFrame) else None
    return pd.DataFrame(conform_arrays(frame, columns), index=index, copy=False)


def conform_arrays(frame, columns: dict[str, str]) -> dict:
    """``conform``'s columns as a dict of arrays (what the scoring core assembles: no frame
    built twice)."""
    if isinstance(frame, pd.DataFrame):
        n = len(frame)
        present = {name: frame[name] for name in columns if name in frame.columns}
    else:
        n = len(next(iter(frame.values()))) if frame else 0
        present = {name: frame[name] for name in columns if name in frame}
    out = {}
    for name, kind in columns.items():
        values = present.get(name)
        if values is None:
            out[name] = missing_values(kind, n)
        elif kind == FLOAT:
            out[name] = _as(values, np.float64, lambda v: pd.to_numeric(v, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan))
        elif kind == DATETIME:
            out[name] = _as(values, np.dtype("datetime64[ns]"),
                            lambda v: pd.to_datetime(v).astype("datetime64[ns]").to_numpy())
        elif kind == BOOL:
            array = values.array if isinstance(values, pd.Series) else values
            out[name] = array if isinstance(array, pd.arrays.BooleanArray) else pd.array(
                np.asarray(values, dtype=object), dtype="boolean")
        else:
            array = np.array(values, dtype=object)  # a copy: the input is not changed
            missing = pd.isna(array)
            if missing.any():
                array[missing] = None
            out[name] = array
    return out


def missing_values(kind: str, n: int):
    """n empty values of a score column's kind (NaN, NaT, NA or None)."""
    if kind == FLOAT:
        return np.full(n, np.nan)
    if kind == DATETIME:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    if kind == BOOL:
        return pd.array([pd.NA] * n, dtype="boolean")
    return np.full(n, None, dtype=object)


def _as(values, dtype: np.dtype, convert) -> np.ndarray:
    """The values as an array of ``dtype``: as they are when they already are (the common
    case, no pass over them), else through ``convert`` of a Series."""
    array = np.asarray(values) if not isinstance(values, pd.Series) or values.dtype == dtype else None
    if array is not None and array.dtype == dtype:
        return array
    return convert(values if isinstance(values, pd.Series) else pd.Series(array))


def _conform_attributes(customers: pd.DataFrame | None, churn: ChurnTypeModel | None) -> pd.DataFrame | None:
    """Customer attributes read the way the churn model saw them in training: an attribute
    that was a date (``attr_X_days``) is parsed as a date, a number as a number, a category
    as text. JSON and CSV inputs carry everything as text. Columns already of their kind are
    left as they are (no copy when none changes)."""
    if customers is None or churn is None:
        return customers
    changed = {}
    for name in churn.feature_names_:
        if not name.startswith("attr_"):
            continue
        source = name[len("attr_"):]
        if source.endswith("_days") and source[:-len("_days")] in customers.columns:
            column = source[:-len("_days")]
            if not pd.api.types.is_datetime64_any_dtype(column_array(customers, column).dtype):
                parsed = pd.to_datetime(customers[column], errors="coerce", utc=True)
                changed[column] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        elif source in customers.columns:
            if name in churn.categories_:
                values = np.asarray(column_array(customers, source), dtype=object)
                missing = pd.isna(values)
                if pd.api.types.infer_dtype(values, skipna=True) == "string" and not (
                        missing & (values != None)).any():  # noqa: E711 - text, and None for missing
                    continue
                text = values.astype(str).astype(object)
                text[missing] = None
                changed[source] = text
            elif not pd.api.types.is_numeric_dtype(customers[source]):
                changed[source] = pd.to_numeric(customers[source], errors="coerce")
    if not changed:
        return customers
    customers = customers.copy()
    for column, values in changed.items():
        customers[column] = values
    return customers


__all__ = ["FEATURE_COLUMNS", "ModelPair", "ScoredBatch", "conform", "conform_arrays", "score_customers"]
