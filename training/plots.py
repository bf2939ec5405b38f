"""Every figure retain draws: MLflow runs and the report both take them from here."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from retain.models.value.tiers import QUADRANT_MATRIX_NAMES, QUADRANTS  # noqa: E402


def _thousands():
    return matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:,.0f}")


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
    ax.set_xlabel("date")
    ax.set_ylabel("cumulative repeat purchases")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title("Tracking of cumulative repeat purchases")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def retention_curve(renewals, actual, fitted, period_days: float):
    """Share of subscribers still paying after each renewal: actual (Kaplan-Meier [KM1958],
    [KM1958]) vs the sBG ([FH2007])."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(renewals, actual, "k-", label="actual (Kaplan-Meier)")
    ax.plot(renewals, fitted, "C0--", label="sBG")
    ax.set_xlabel(f"renewals (billing period {period_days:.1f} days)")
    ax.set_ylabel("share still subscribed")
    ax.set_ylim(0, 1.02)
    ax.set_title("Retention by tenure")
    ax.legend()
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
    ax.set_xlabel("importance (total gain of the splits on the feature)")
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


def category_counts(counts: pd.Series, title: str, category_label: str, values: pd.Series | None = None,
                    value_label: str = "total CLV"):
    """Customers per category as horizontal bars, each labelled with its count and share;
    with ``values``, a second panel shows a value (e.g. total CLV) per category."""
    counts = counts.astype(float)
    labels = [str(name).replace("_", " ") for name in counts.index]
    panels = 2 if values is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels + 1.5, 0.42 * len(counts) + 1.6), squeeze=False,
                             sharey=True)
    positions = np.arange(len(counts))[::-1]  # first category at the top
    total = max(counts.sum(), 1.0)
    ax = axes[0, 0]
    ax.barh(positions, counts.to_numpy(), color="C0")
    for y, count in zip(positions, counts.to_numpy()):
        ax.text(count, y, f" {count:,.0f} ({count / total:.0%})", va="center", fontsize=8)
    ax.set_yticks(positions, labels)
    ax.set_xlim(0, counts.max() * 1.35 if len(counts) and counts.max() > 0 else 1)
    ax.set_xlabel("customers")
    ax.set_ylabel(category_label)
    ax.xaxis.set_major_formatter(_thousands())
    if values is not None:
        values = values.reindex(counts.index).fillna(0.0).astype(float)
        ax2 = axes[0, 1]
        ax2.barh(positions, values.to_numpy(), color="C2")
        for y, value in zip(positions, values.to_numpy()):
            ax2.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        ax2.set_xlim(0, values.max() * 1.3 if len(values) and values.max() > 0 else 1)
        ax2.set_xlabel(value_label)
        ax2.xaxis.set_major_formatter(_thousands())
        ax2.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5))  # amounts in the millions would overlap
        ax2.tick_params(axis="y", left=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def clv_distribution(clv, horizon_days: float | None, title: str = "Customer lifetime value (CLV)"):
    """Histogram of CLV on a log scale (values span orders of magnitude), with the median
    and mean marked."""
    clv = np.asarray(clv, dtype=float)
    clv = clv[np.isfinite(clv)]
    fig, ax = plt.subplots(figsize=(8, 4))
    positive = clv[clv > 0]
    if len(positive):
        low, high = positive.min(), positive.max()
        bins = np.geomspace(low, high * 1.0001, 40) if high > low else 10
        ax.hist(positive, bins=bins, color="C0", alpha=0.85)
        ax.set_xscale("log")
        for value, label, style in ((np.median(positive), "median", "--"), (positive.mean(), "mean", ":")):
            ax.axvline(value, color="black", linestyle=style, label=f"{label}: {value:,.0f}")
        ax.legend()
    horizon = f" over the next {horizon_days:g} days" if horizon_days else ""
    ax.set_xlabel(f"CLV{horizon} (currency of the transactions, log scale)")
    ax.set_ylabel("customers")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def value_matrix(counts: pd.DataFrame, values: pd.DataFrame, title: str = "Value matrix: current x future value",
                 value_label: str = "total CLV"):
    """The 2 x 2 value matrix (rows: current value low/high; columns: future value low/high),
    each cell with its quadrant name, customers and value."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    shares = counts.to_numpy(dtype=float) / max(counts.to_numpy(dtype=float).sum(), 1.0)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=max(shares.max(), 1e-9) * 1.6, origin="lower")
    names = {(int(now), int(later)): name for (now, later), name in QUADRANTS.items()}
    for (i, j), name in names.items():
        ax.text(j, i, f"{name}\n({QUADRANT_MATRIX_NAMES[name]})\n{int(counts.iat[i, j]):,} customers ({shares[i, j]:.0%})\n"
                      f"{value_label} {values.iat[i, j]:,.0f}", ha="center", va="center", fontsize=10)
    ax.set_xticks([0, 1], ["low", "high"])
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_xlabel("future value (CLV)")
    ax.set_ylabel("current value (spend so far)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def drift_bars(psi: pd.Series, threshold: float, title: str = "Drift against the training data"):
    """Population stability index per column, with the alert threshold."""
    psi = psi.astype(float).sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(psi) + 1.6))
    colours = ["C3" if value > threshold else ("C1" if value > 0.1 else "C2") for value in psi.to_numpy()]
    ax.barh(np.arange(len(psi)), psi.to_numpy(), color=colours)
    ax.set_yticks(np.arange(len(psi)), psi.index)
    ax.axvline(threshold, color="black", linestyle=":", label=f"alert threshold {threshold:g}")
    ax.set_xlabel("population stability index (PSI; 0 = same distribution)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def to_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding), and closed."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def close(fig) -> None:
    plt.close(fig)


def pit_histogram(shares, coverage: float, share_inside: float, level: float):
    """The PIT histogram of holdout purchases ([CGH2009]) beside the two coverage figures: the
    randomized PIT coverage of the central ``level`` (what calibration is judged on) and the
    plain share of customers inside their interval (at least ``level`` for whole-number
    counts: a customer whose most likely outcome is 0 with 90% gets the interval [0, 0])."""
    shares = np.asarray(shares, dtype=float)
    bins = len(shares)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar((np.arange(bins) + 0.5) / bins, shares, width=0.9 / bins, color="C0", label="holdout customers")
    ax.axhline(1 / bins, color="k", linestyle=":", label="calibrated (flat)")
    low, high = (1 - level) / 2, (1 + level) / 2
    ax.axvspan(low, high, color="grey", alpha=0.12, label=f"central {level:.0%}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT: where the actual purchase count falls in its predictive distribution")
    ax.set_ylabel("share of customers")
    ax.set_title(f"PIT coverage of the central {level:.0%}: {coverage:.1%} (plain share inside {share_inside:.1%})",
                 fontsize=10)
    ax.legend(loc="upper center", fontsize=8)
    fig.tight_layout()
    return fig
