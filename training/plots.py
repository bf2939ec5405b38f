"""Every figure retain draws: MLflow runs and the report both take them from here."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def holdout_by_frequency(frequency, predicted, actual, baseline=None, cap: int = 7):
    """Mean predicted and actual holdout purchases by calibration repeat purchases."""
    groups = np.minimum(np.asarray(frequency, dtype=int), cap)
    frame = pd.DataFrame({"group": groups, "model": predicted, "actual": actual})
    if baseline is not None:
        frame["naive baseline"] = baseline
    means = frame.groupby("group").mean()
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, style in (("actual", "k-o"), ("model", "C0--s"), ("naive baseline", "C1:^")):
        if column in means:
            ax.plot(means.index, means[column], style, label=column)
    ax.set_xticks(means.index, [str(i) if i < cap else f"{cap}+" for i in means.index])
    ax.set_xlabel("repeat purchases in calibration")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title("Holdout purchases: predicted vs actual")
    ax.legend()
    fig.tight_layout()
    return fig


def cumulative_tracking(days, actual, expected, calibration_end):
    """Cumulative repeat purchases over time, actual vs the model's expectation."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(days, actual, "k-", label="actual")
    ax.plot(days, expected, "C0--", label="model")
    ax.axvline(calibration_end, color="grey", linestyle=":", label="calibration end")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Tracking of cumulative repeat purchases")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def matrix(values: np.ndarray, frequencies, recencies, title: str, colorbar: str, unit: str):
    """A heat map over (frequency, recency), as lifetimes' P(alive) matrix."""
    fig, ax = plt.subplots(figsize=(7, 5.5))
    image = ax.imshow(values, aspect="auto", origin="lower", cmap="viridis",
                      extent=[recencies[0], recencies[-1], frequencies[0], frequencies[-1]])
    fig.colorbar(image, ax=ax, label=colorbar)
    ax.set_xlabel(f"recency: age at last purchase ({unit})")
    ax.set_ylabel("frequency: repeat purchases")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion(matrix_values: np.ndarray, labels, title: str = "Confusion matrix (held-out customers)"):
    shares = matrix_values / np.maximum(matrix_values.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(matrix_values[i, j])}\n{shares[i, j]:.0%}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def importances(names, values, title: str = "Feature importance (total gain)", top: int = 20):
    order = np.argsort(values)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.5))
    ax.barh(np.asarray(names)[order], np.asarray(values)[order])
    ax.set_title(title)
    fig.tight_layout()
    return fig


def calibration_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str):
    """Reliability diagram: mean predicted probability vs observed frequency per bin."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    for label, (predicted, observed) in curves.items():
        ax.plot(predicted, observed, "o-", label=label)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
