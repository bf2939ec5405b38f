"""Holdout metrics and naive baselines.

The ranking metrics are the CLV literature's ([WLM2019]): the normalized Gini of holdout
spend (and purchases) ordered by the forecast, and the share of holdout revenue the top 5,
10 and 20% of forecasts capture. Tied forecasts are counted at their expectation under a
random order: within a tie, every customer counts as the tie's mean outcome (that is the
expected outcome at each of its positions), so a coarse forecast that ties most customers
gains nothing from the order the sort happens to leave them in. Spearman correlations are
reported, not used to decide: on a holdout where most customers buy nothing they reward
forecasts whose ties line up with the non-buyers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

CAPTURE_SHARES = (5, 10, 20)
DECILES = 10


def value_metrics(actual_purchases, actual_spend, predicted_purchases, predicted_spend) -> dict[str, float]:
    """Per-customer errors, aggregate errors, ranking (normalized Gini, revenue captured by
    the customers forecast to be worth most), decile calibration and, reported only, rank
    correlations."""
    actual_purchases, actual_spend, predicted_purchases, predicted_spend = (
        np.asarray(v, dtype=float) for v in (actual_purchases, actual_spend, predicted_purchases, predicted_spend)
    )
    metrics = {
        "purchases_mae": float(np.mean(np.abs(predicted_purchases - actual_purchases))),
        "purchases_rmse": float(np.sqrt(np.mean((predicted_purchases - actual_purchases) ** 2))),
        "spend_mae": float(np.mean(np.abs(predicted_spend - actual_spend))),
        "spend_rmse": float(np.sqrt(np.mean((predicted_spend - actual_spend) ** 2))),
        "total_purchases_pct_error": _pct_error(predicted_purchases, actual_purchases),
        "total_spend_pct_error": _pct_error(predicted_spend, actual_spend),
        "spend_gini": normalized_gini(actual_spend, predicted_spend),
        "purchases_gini": normalized_gini(actual_purchases, predicted_purchases),
        "purchases_spearman": _spearman(predicted_purchases, actual_purchases),
        "spend_spearman": _spearman(predicted_spend, actual_spend),
    }
    metrics["total_purchases_abs_pct_error"] = abs(metrics["total_purchases_pct_error"])
    metrics["total_spend_abs_pct_error"] = abs(metrics["total_spend_pct_error"])
    for share in CAPTURE_SHARES:
        metrics[f"top{share}_revenue_share"] = revenue_capture(actual_spend, predicted_spend, share / 100)
    deciles = decile_calibration(actual_spend, predicted_spend)
    scale = max(actual_spend.mean(), 1e-12)
    metrics["spend_decile_calibration_error"] = float(
        np.mean(np.abs(deciles["forecast"] - deciles["actual"])) / scale)
    return metrics


def _pct_error(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(100 * (predicted.sum() / max(actual.sum(), 1e-12) - 1))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def _ordered_tie_means(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """``actual`` in decreasing order of ``forecast``, each tie of forecasts replaced by its
    mean actual: the expected actual at each position under a random order within ties."""
    order = np.argsort(-forecast, kind="stable")
    sorted_forecast, sorted_actual = forecast[order], actual[order]
    starts = np.flatnonzero(np.r_[True, sorted_forecast[1:] != sorted_forecast[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    means = np.add.reduceat(sorted_actual, starts) / sizes if len(order) else np.zeros(0)
    return np.repeat(means, sizes)


def _gini(ordered: np.ndarray) -> float:
    """Gini of outcomes in forecast order: the area between the cumulative share of the
    outcome (customers taken in that order) and the diagonal of a random order."""
    n, total = len(ordered), ordered.sum()
    if n == 0 or total <= 0:
        return 0.0
    cumulative = np.cumsum(ordered) / total
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual, forecast) -> float:
    """The Gini of ``actual`` ordered by ``forecast`` over the Gini of the perfect order:
    1 for a forecast that orders customers exactly as they turned out, 0 for one no better
    than chance (or that ties everyone), ties counted at their expectation ([WLM2019])."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    perfect = _gini(np.sort(actual)[::-1])
    if perfect <= 0:
        return 0.0
    return _gini(_ordered_tie_means(actual, forecast)) / perfect


def revenue_capture(actual, forecast, share: float) -> float:
    """The share of the total ``actual`` held by the ``share`` of customers with the highest
    forecasts (the top ceil(n share)), a tie at the edge counted at its expectation."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    total = actual.sum()
    if total <= 0:
        return 0.0
    top = int(np.ceil(len(actual) * share))
    return float(_ordered_tie_means(actual, forecast)[:top].sum() / total)


def decile_calibration(actual, forecast, buckets: int = DECILES) -> pd.DataFrame:
    """Customers in ``buckets`` equal rank buckets by forecast (highest first; ties at their
    expectation): per bucket the mean forecast against the mean actual outcome."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    order = np.argsort(-forecast, kind="stable")
    expected_actual = _ordered_tie_means(actual, forecast)
    bucket = np.minimum(np.arange(len(actual)) * buckets // max(len(actual), 1), buckets - 1)
    counts = np.bincount(bucket, minlength=buckets)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame({
            "bucket": np.arange(1, buckets + 1),
            "customers": counts,
            "forecast": np.bincount(bucket, weights=forecast[order], minlength=buckets) / np.maximum(counts, 1),
            "actual": np.bincount(bucket, weights=expected_actual, minlength=buckets) / np.maximum(counts, 1),
        })


def naive_value_forecast(features: pd.DataFrame, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Each customer keeps their calibration repeat-purchase rate (frequency / T) and their
    mean order value: purchases and spend expected over ``duration`` time units."""
    frequency = features["frequency"].to_numpy(dtype=float)
    age = features["T"].to_numpy(dtype=float)
    rate = np.divide(frequency, age, out=np.zeros_like(frequency), where=age > 0)
    purchases = rate * duration
    order_value = features["mean_order_value"] if "mean_order_value" in features else features["monetary"]
    return purchases, purchases * order_value.to_numpy(dtype=float)
