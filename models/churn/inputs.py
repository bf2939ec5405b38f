"""The churn model's input schema: which columns are features, which of them are categories
(and their training categories), and the float matrix the trees read, built from a feature
table with what it lacked noted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np
import pandas as pd

from retain.data import fast_paths
from retain.data.frames import column_array
from retain.errors import RetainError

NOT_FEATURES = {"customer_id", "as_of", "rfm_code"}  # keys, and a code already split into rfm_r/f/m
CORE_FEATURES = ("frequency", "recency", "T", "monetary")
VALUE_FEATURES = ("p_alive", "p_alive_horizon", "p_no_purchase_horizon", "expected_purchases")


class ValueFeatureSource(Protocol):
    """What the churn model reads from a value model (any family): its outputs for the
    ``VALUE_FEATURES``, and the input columns they need."""

    @property
    def input_columns(self) -> tuple[str, ...]: ...

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> Mapping: ...


def with_value_features(features: pd.DataFrame, value_model: ValueFeatureSource) -> pd.DataFrame:
    """The feature table plus the value model's outputs that the classifier reads."""
    values = value_model.predict_values(features, with_interval=False)
    return features.assign(**{name: values[name] for name in VALUE_FEATURES})


def value_feature_columns(features: pd.DataFrame, value_model: ValueFeatureSource | None) -> dict[str, np.ndarray]:
    """The value model's outputs for the ``VALUE_FEATURES`` as float arrays (none without one)."""
    if value_model is None:
        return {}
    values = value_model.predict_values(features, with_interval=False)
    return {name: np.asarray(values[name], dtype=float) for name in VALUE_FEATURES}


def require_core_features(features: pd.DataFrame) -> None:
    missing_core = [c for c in CORE_FEATURES if c not in features.columns]
    if missing_core:
        raise RetainError(f"the churn model needs the columns {missing_core}; build features with retain.features")


@dataclass
class InputNotes:
    """What scoring had to make up for in its input: feature columns absent (scored as
    unknown) and, per categorical feature, how many values were not seen in training."""

    missing_features: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)


def learn_schema(frame: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """The feature names of a training table (value features included) and the training
    categories of each categorical feature."""
    feature_names = [c for c in frame.columns if c not in NOT_FEATURES]
    categories = {}
    for name in feature_names:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
            continue
        text = category_text(values).dropna()
        # numbers written as text (a CSV column with blanks) are read as numbers, blanks
        # missing; a leading zero ("02139") marks a code, which stays a category
        if (len(text) and pd.to_numeric(text, errors="coerce").notna().all()
                and not text.str.match(r"[+-]?0\d").any()):
            continue
        categories[name] = sorted(text.unique())
    return feature_names, categories


@dataclass(frozen=True)
class InputSchema:
    """The model matrix of fitted feature names and categories: one float column per
    feature in training order, a categorical feature as its training category code
    (unknown and blank values missing: LightGBM routes missing values down each split's
    learned default branch), an absent feature column all missing."""

    feature_names: list[str]
    categories: dict[str, list[str]]
    position: dict[str, int]
    category_codes: dict[str, dict[str, int]]
    category_text: dict[str, np.ndarray]

    @classmethod
    def of(cls, feature_names: list[str], categories: dict[str, list[str]]) -> "InputSchema":
        return cls(
            feature_names=feature_names,
            categories=categories,
            position={name: i for i, name in enumerate(feature_names)},
            category_codes={column: {text: i for i, text in enumerate(known)} for column, known in categories.items()},
            category_text={column: np.asarray(known, dtype=object) for column, known in categories.items()},
        )

    def matrix(self, features: pd.DataFrame, value_columns: dict[str, np.ndarray]) -> tuple[np.ndarray, InputNotes]:
        """The feature table (and the value features computed for it) as one float array,
        reading each column once and making no per-column frame."""
        names, position = self.feature_names, self.position
        present = set(features.columns)
        notes = InputNotes(missing_features=[c for c in names if c not in present and c not in value_columns])
        matrix = np.full((len(features), len(names)), np.nan)
        other = []
        for name in names:
            if name in self.categories or name not in present or name in value_columns:
                continue
            # each column's array put in place (cheaper than a frame of the numeric columns)
            values = column_array(features, name)
            if isinstance(values, np.ndarray) and values.dtype.kind in "biufc":  # pandas' numeric dtypes
                matrix[:, position[name]] = values
            elif not isinstance(values, np.ndarray) and pd.api.types.is_numeric_dtype(values.dtype) and not (
                    isinstance(values.dtype, pd.CategoricalDtype)):  # nullable numbers: missing is NaN
                matrix[:, position[name]] = values.to_numpy(dtype=float, na_value=np.nan)
            else:
                other.append(name)
        for name in other:
            matrix[:, position[name]] = pd.to_numeric(category_text(features[name]), errors="coerce").to_numpy(
                dtype=float, na_value=np.nan)
        for name, values in value_columns.items():
            if name in position:
                matrix[:, position[name]] = values
        for column, code_of in self.category_codes.items():
            if column not in present:
                continue
            codes = _category_codes(np.asarray(column_array(features, column), dtype=object), code_of)
            unknown = codes == -1
            if unknown.any():
                notes.unknown_categories[column] = int(unknown.sum())
            matrix[:, position[column]] = np.where(codes < 0, np.nan, codes)
        return matrix, notes

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        """The matrix as a frame with categorical columns of the training categories (what
        LightGBM is trained on; it makes the same codes of it as ``matrix`` holds)."""
        table = pd.DataFrame(matrix, columns=self.feature_names)
        for column, known in self.categories.items():
            codes = table[column].to_numpy()
            table[column] = pd.Categorical.from_codes(np.where(np.isnan(codes), -1, codes).astype(int),
                                                      categories=known)
        return table

    def column_values(self, matrix: np.ndarray, name: str, rows: np.ndarray) -> np.ndarray:
        """The values of one input column as the drivers phrase them (categories as text)."""
        values = matrix[rows, self.position[name]]
        if name not in self.categories:
            return values.astype(object)
        known = self.category_text[name]
        return np.where(np.isnan(values), np.nan, known[np.nan_to_num(values).astype(int)]).astype(object)


def _category_codes(values: np.ndarray, code_of: dict[str, int]) -> np.ndarray:
    """Each value as stripped text (blank: missing, as in category_text) looked up among the
    training categories: its code, -1 unseen, -2 missing. Each distinct value is looked up
    once."""
    few = fast_paths.each_value_once(values)
    if few is not None:
        value_codes, distinct = few
    else:
        value_codes, distinct = pd.factorize(values)  # a missing value's code -1 picks the final -2
    distinct_codes = np.array([-2 if pd.isna(value) else code_of.get(text, -1) if (text := str(value).strip())
                               else -2 for value in distinct] + [-2], dtype=np.int64)
    return distinct_codes[value_codes]


def category_text(values: pd.Series) -> pd.Series:
    """A categorical input as stripped text; blank text is missing, as an empty cell is.
    Each distinct value is converted once (a category column holds few of them)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([str(value).strip() or None for value in uniques] + [None], dtype=object)
    return pd.Series(text[codes], index=values.index, dtype="string")
