"""Holdout metrics and naive baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def value_metrics(actual_purchases, actual_spend, predicted_purchases, predicted_spend) -> dict[str, float]:
    """Per-customer errors, aggregate error, rank agreement and revenue captured by the
    customers predicted to be worth most."""
    actual_purchases, actual_spend, predicted_purchases, predicted_spend = (
        np.asarray(v, dtype=float) for v in (actual_purchases, actual_spend, predicted_purchases, predicted_spend)
    )
    metrics = {
        "purchases_mae": float(np.mean(np.abs(predicted_purchases - actual_purchases))),
        "purchases_rmse": float(np.sqrt(np.mean((predicted_purchases - actual_purchases) ** 2))),
        "spend_mae": float(np.mean(np.abs(predicted_spend - actual_spend))),
        "spend_rmse": float(np.sqrt(np.mean((predicted_spend - actual_spend) ** 2))),
        "total_purchases_pct_error": float(100 * (predicted_purchases.sum() / max(actual_purchases.sum(), 1e-12) - 1)),
        "purchases_spearman": _spearman(predicted_purchases, actual_purchases),
        "spend_spearman": _spearman(predicted_spend, actual_spend),
    }
    metrics["total_purchases_abs_pct_error"] = abs(metrics["total_purchases_pct_error"])
    order = np.argsort(-predicted_spend, kind="stable")
    revenue = max(actual_spend.sum(), 1e-12)
    for share in (10, 20):
        top = order[: int(np.ceil(len(order) * share / 100))]
        metrics[f"top{share}_revenue_share"] = float(actual_spend[top].sum() / revenue)
    return metrics


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def naive_value_forecast(features: pd.DataFrame, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Each customer keeps their calibration repeat-purchase rate (frequency / T) and their
    mean order value: purchases and spend expected over ``duration`` time units."""
    frequency = features["frequency"].to_numpy(dtype=float)
    age = features["T"].to_numpy(dtype=float)
    rate = np.divide(frequency, age, out=np.zeros_like(frequency), where=age > 0)
    purchases = rate * duration
    order_value = features["mean_order_value"] if "mean_order_value" in features else features["monetary"]
    return purchases, purchases * order_value.to_numpy(dtype=float)
