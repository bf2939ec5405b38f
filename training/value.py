"""``retain train clv``: fit value models on a calibration period, evaluate them on the
holdout period against a naive baseline and the current champion, log everything to MLflow,
register ``retain-clv`` and promote it only when it wins."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable

import mlflow
import numpy as np
import pandas as pd

from retain.data import Dataset
from retain.errors import RetainError
from retain.settings import Settings
from retain.features import FeatureConfig, calibration_holdout, rfm_summary
from retain.features.eligibility import scorable_features
from retain.models.value import (
    FitError, LearnedConfig, LearnedValueModel, ProbabilisticValueModel, SubscriptionValueModel, ValueConfig, ValueModel,
)
from retain.models.value.coverage import pit_histogram
from retain.models.value.purchase import FAMILIES
from retain.models.value.spend import SpendModel
from retain.models.value.subscription import (
    FAMILY as SUBSCRIPTION_FAMILY, LABEL as SUBSCRIPTION_LABEL, SUBSCRIPTION, BusinessChoice, detect_business,
)
from retain.training import plots
from retain.training.evaluate import decile_calibration, naive_value_forecast, value_metrics
from retain.training.publish import Candidate, publish
from retain.console import strict_json
from retain.models.registry import VALUE_MODEL_NAME, display_uri
from retain.training.gate import Decision, ValueGate
from retain.training.publish import fingerprint

EXPERIMENT = "retain-clv"
LEARNED = "learned"
# The non-contractual families `--model` accepts (besides the subscription family, sbg),
# simplest first (the order breaks ties in selection).
VALUE_FAMILIES = (*FAMILIES, LEARNED)
FAMILY_LABELS = {**{name: spec[0] for name, spec in FAMILIES.items()}, LEARNED: "learned (LightGBM)",
                 SUBSCRIPTION_FAMILY: SUBSCRIPTION_LABEL}
# Promoted on ranking and calibration together (``ValueGate``: higher spend Gini without a
# worse aggregate forecast); ``auto`` chooses the family by the same rule (``select_family``).
VALUE_GATE = ValueGate()


@dataclass
class ValueTrainingResult:
    run_id: str
    model_version: str | None
    chosen_model: str
    params: dict
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    comparison: dict[str, dict]
    promoted: bool
    reason: str
    warnings: list[str] = field(default_factory=list)
    tracking_uri: str = ""  # the MLflow store the run and version went to (no password)
    business: str = ""  # subscription or non-contractual: which kind of model family was used
    business_reason: str = ""  # why (detected, or --business given)

    def to_json(self) -> str:
        return strict_json(asdict(self))


def check_windows(transactions: pd.DataFrame, calibration_end: pd.Timestamp,
                  holdout_end: pd.Timestamp | None) -> pd.Timestamp:
    """Check the calibration and holdout windows against the data; returns the holdout end."""
    first = transactions["timestamp"].min()
    last_day = transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
    if calibration_end <= first.normalize():
        raise RetainError(
            f"calibration end {calibration_end.date()} is on or before the first purchase ({first.date()}): "
            "no customer has history to fit on; choose a later --calibration-end"
        )
    holdout_end = last_day if holdout_end is None else holdout_end
    if holdout_end <= calibration_end:
        raise RetainError(
            f"holdout end {holdout_end.date()} must be after calibration end {calibration_end.date()}"
            + (" (the data ends there; choose an earlier --calibration-end)" if holdout_end == last_day else "")
        )
    if holdout_end > last_day:
        raise RetainError(
            f"holdout end {holdout_end.date()} is after the last transaction ({(last_day - pd.Timedelta(days=1)).date()}): "
            "days without data would count as days without purchases; use --holdout-end "
            f"{last_day.date()} or earlier"
        )
    when = transactions["timestamp"]
    if not ((when >= calibration_end) & (when < holdout_end)).any():
        raise RetainError(
            f"the holdout window {calibration_end.date()} .. {holdout_end.date()} holds no transactions; "
            "choose an earlier --calibration-end or a later --holdout-end"
        )
    return holdout_end


def _holdout_days(model: ValueModel, table: pd.DataFrame) -> float:
    return float(table["holdout_duration"].iloc[0]) * model.time_unit_days


def _holdout_predictions(model: ValueModel, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return model.means_over(_holdout_days(model, table), table)


def _tracking_series(transactions, table, model: ValueModel, calibration_end, holdout_end):
    """Daily cumulative repeat purchases of the calibration customers, actual and expected
    (each cohort of first-purchase days times the model's unconditional expectation)."""
    ids = set(table["customer_id"])
    mask = transactions["customer_id"].astype(str).isin(ids).to_numpy() & (transactions["amount"].to_numpy() >= 0)
    days = pd.DataFrame({
        "customer_id": np.asarray(transactions["customer_id"], dtype=object)[mask].astype(str),
        "day": transactions["timestamp"].to_numpy()[mask].astype("datetime64[D]"),
    }).drop_duplicates()
    days = days[days["day"] < np.datetime64(holdout_end.date(), "D")]
    first = days.groupby("customer_id")["day"].transform("min")
    start = days["day"].min()
    grid = pd.date_range(start, holdout_end - pd.Timedelta(days=1), freq="D")
    repeat_days = days.loc[days["day"] > first, "day"]
    actual = np.cumsum(np.bincount(((repeat_days - start) / np.timedelta64(1, "D")).astype(int), minlength=len(grid)))
    cohort_offsets = ((days.groupby("customer_id")["day"].min() - start) / np.timedelta64(1, "D")).astype(int)
    cohorts = np.bincount(cohort_offsets, minlength=len(grid))
    ages = np.arange(len(grid)) / model.time_unit_days
    per_customer = np.concatenate([[0.0], model.purchase.expected_purchases_new(ages[1:])])
    expected = np.convolve(cohorts, per_customer)[: len(grid)]
    return grid, actual[: len(grid)], expected


def purchases_pit(model: ValueModel, table: pd.DataFrame) -> list[float]:
    """The PIT histogram (ten bins) of the model's holdout purchase counts (``pit_histogram``)."""
    outcomes = model.outcomes(table, _holdout_days(model, table))
    return [float(v) for v in pit_histogram(outcomes, table["holdout_purchases"])]


def _log_pit(model: ValueModel, table: pd.DataFrame, metrics: dict[str, float]) -> list[float]:
    shares = purchases_pit(model, table)
    figure = plots.pit_histogram(shares, metrics["purchases_interval_coverage"],
                                 metrics["purchases_interval_share_inside"], model.config.interval)
    mlflow.log_figure(figure, "plots/pit_histogram.png")
    plots.close(figure)
    return shares


def _log_plots(transactions, table, model: ValueModel, purchases, baseline_purchases, calibration_end, holdout_end):
    """The holdout and model plots of the run: a subscription model's retention curve, or
    the purchase model's P(alive) and expected-purchases matrices and cumulative tracking."""
    if model.business == SUBSCRIPTION:
        return _log_subscription_plots(table, model, purchases, baseline_purchases)
    figures = {
        "holdout_by_frequency.png": plots.holdout_by_frequency(
            table["frequency"], purchases, table["holdout_purchases"], baseline_purchases),
        "cumulative_tracking.png": plots.cumulative_tracking(
            *_tracking_series(transactions, table, model, calibration_end, holdout_end), calibration_end),
    }
    top_frequency = int(max(5, np.quantile(table["frequency"], 0.99)))
    age = float(table["T"].max())
    frequencies = np.arange(top_frequency + 1, dtype=float)
    recencies = np.linspace(0, age, 60)
    f_grid, r_grid = np.meshgrid(frequencies, recencies, indexing="ij")
    shape = f_grid.shape
    args = (f_grid.ravel(), r_grid.ravel(), np.full(f_grid.size, age))
    unit = "days" if model.time_unit_days == 1 else f"units of {model.time_unit_days:g} days"
    figures["p_alive_matrix.png"] = plots.matrix(
        model.purchase.p_alive(*args).reshape(shape), frequencies, recencies,
        f"P(alive) for a customer of age {age:g}", "P(alive)", unit)
    horizon = model.config.horizon_days / model.time_unit_days
    figures["frequency_recency_matrix.png"] = plots.matrix(
        model.purchase.expected_purchases(horizon, *args).reshape(shape), frequencies, recencies,
        f"Expected purchases in the next {model.config.horizon_days:g} days", "expected purchases", unit)
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plots.close(figure)


def _log_subscription_plots(table, model: SubscriptionValueModel, purchases, baseline_purchases):
    figures = {
        "holdout_by_frequency.png": plots.holdout_by_frequency(
            table["frequency"], purchases, table["holdout_purchases"], baseline_purchases),
        "retention_curve.png": plots.retention_curve(*model.retention_curves(table), model.period_days),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plots.close(figure)


def _fit_subscription(table, config, time_unit_days, choice: BusinessChoice, progress):
    """The subscription family (sBG with the customers' attributes as covariates), fitted
    on the calibration table and scored on its holdout like the other families."""
    progress(f"fitting {SUBSCRIPTION_LABEL} on {len(table):,} subscribers (billing period {choice.period_days:.1f} days)")
    model = SubscriptionValueModel(config, time_unit_days, period_days=choice.period_days,
                                   business_reason=choice.reason).fit(table)
    purchases, spend, metrics = _holdout_evaluation(model, table)
    progress(f"  {SUBSCRIPTION_LABEL}: holdout bills MAE {metrics['purchases_mae']:.4f}, spend Gini "
             f"{metrics['spend_gini']:.3f}, total error {metrics['total_purchases_pct_error']:+.1f}%, "
             f"{config.interval:.0%} interval coverage {metrics['purchases_interval_coverage']:.1%}")
    entry = {"params": {**model.purchase.params_, "kappa": model.purchase.kappa_},
             "coefficients": model.purchase.coef_, "period_days": model.period_days, "metrics": metrics}
    return {SUBSCRIPTION_FAMILY: model}, {SUBSCRIPTION_FAMILY: (purchases, spend)}, {SUBSCRIPTION_FAMILY: entry}


# --- comparing the families ----------------------------------------------------------

# Metrics summarised over the rolling-origin windows (mean and standard deviation).
SUMMARY_METRICS = ("purchases_mae", "total_purchases_pct_error", "total_purchases_abs_pct_error",
                   "total_spend_pct_error", "spend_gini", "purchases_gini", "top10_revenue_share",
                   "purchases_spearman", "spend_spearman",
                   "purchases_interval_coverage", "spend_interval_coverage")


class WindowTables:
    """Feature tables with holdout outcomes (``calibration_holdout``) of the earlier windows
    and of the learned family's inner windows, built once: the learned family trains on the
    window just before its calibration end, which is the next earlier window of the rolling
    origin when the windows have the same length.

    On bases of more than ``max_customers`` customers these tables hold a seeded sample of
    that many customers (the same customers in every window, by a hash of the id): the
    full feature table is costly to build per window on a large base, the learned
    model trains on at most 200,000 customers anyway, and a quarter of a million customers
    measure a window's metrics to well within their spread over windows. The given window
    is always scored on every customer."""

    def __init__(self, transactions: pd.DataFrame, feature_config: FeatureConfig, max_customers: int = 250_000):
        self.transactions = transactions
        self.feature_config = feature_config
        self.max_customers = max_customers
        self._tables: dict[tuple[pd.Timestamp, pd.Timestamp], pd.DataFrame] = {}
        self._sample: pd.DataFrame | None = None

    def sampled_transactions(self) -> pd.DataFrame:
        if self._sample is None:
            codes, ids = pd.factorize(self.transactions["customer_id"])  # fast on categorical ids
            if len(ids) <= self.max_customers:
                self._sample = self.transactions
            else:
                # hash the id's text, so the same customers are kept whatever the id column's dtype
                hashed = pd.util.hash_array(np.asarray(ids, dtype=object).astype(str)) % np.uint64(1_000_000)
                keep = hashed < np.uint64(int(1_000_000 * self.max_customers / len(ids)))
                self._sample = self.transactions[keep[codes]]
        return self._sample

    def table(self, calibration_end, holdout_end) -> pd.DataFrame:
        key = (pd.Timestamp(calibration_end), pd.Timestamp(holdout_end))
        if key not in self._tables:
            self._tables[key] = calibration_holdout(self.sampled_transactions(), *key, config=self.feature_config)[0]
        return self._tables[key]


def _fit_learned(table, fitted, config, windows: WindowTables) -> LearnedValueModel:
    """The learned family on one calibration table: its inner window ends at the table's
    calibration end (as_of) and is as long as the holdout (shortened if history is short);
    its tables come from ``windows`` (built once, shared with the rolling origin)."""
    calibration_end = pd.Timestamp(table["as_of"].iloc[0])
    days = float(table["holdout_duration"].iloc[0]) * windows.feature_config.time_unit_days
    model = LearnedValueModel(window_days=days, config=config, feature_config=windows.feature_config,
                              base=fitted.get(LearnedConfig().base_family))
    return model.fit(windows.transactions, calibration_end, table, tables=windows.table)


def _fit_families(table, families, spend_model, config, time_unit_days, *, strict: bool, progress,
                  windows: WindowTables | None = None):
    """Each family fitted on one calibration table and scored on its holdout (the learned
    family needs ``windows``: the transactions and feature settings)."""
    fitted: dict[str, ValueModel] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    comparison: dict[str, dict] = {}
    for name in families:
        progress(f"fitting {FAMILY_LABELS[name]} on {len(table):,} customers")
        try:
            if name == LEARNED:
                model = _fit_learned(table, fitted, config, windows)
            else:
                model = ProbabilisticValueModel(name, config, time_unit_days, spend=spend_model).fit(table)
            purchases, spend, metrics = _holdout_evaluation(model, table)
            if not (np.isfinite(purchases).all() and np.isfinite(spend).all()):
                raise FitError(f"the {FAMILY_LABELS[name]} predictions are not finite for some customers")
        except FitError as exc:
            if strict:
                raise
            comparison[name] = {"error": str(exc)}
            progress(f"  {FAMILY_LABELS[name]}: {exc}")
            continue
        fitted[name] = model
        predictions[name] = (purchases, spend)
        comparison[name] = {"params": model.params(), "metrics": metrics,
                            "spend_deciles": decile_calibration(table["holdout_spend"], spend).to_dict(orient="list")}
        if getattr(model.purchase, "limit_", ""):  # a boundary fit: the limiting model, in words
            comparison[name]["note"] = model.purchase.description
            progress(f"  {FAMILY_LABELS[name]}: {model.purchase.description}")
        progress(f"  {FAMILY_LABELS[name]}: holdout purchases MAE {metrics['purchases_mae']:.4f}, "
                 f"spend Gini {metrics['spend_gini']:.3f}, total error {metrics['total_purchases_pct_error']:+.1f}%, "
                 f"{config.interval:.0%} interval coverage {metrics['purchases_interval_coverage']:.1%}")
    return fitted, predictions, comparison


def _holdout_evaluation(model: ValueModel, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """A fitted model's expected purchases and spend over the holdout of its calibration
    table, and its metrics there: errors, ranking, interval coverage and, where the
    forecasts come from a likelihood fit, its log-likelihood."""
    actual_purchases, actual_spend = table["holdout_purchases"], table["holdout_spend"]
    forecast = model.forecast(table, _holdout_days(model, table))
    purchases, spend = forecast.purchases, forecast.spend
    metrics = value_metrics(actual_purchases, actual_spend, purchases, spend)
    metrics.update(forecast.outcomes.coverage(actual_purchases, actual_spend, model.config.interval))
    if model.log_likelihood is not None:
        metrics["log_likelihood"] = model.log_likelihood
    return purchases, spend, metrics


def _earlier_windows(transactions, calibration_end, holdout_end, windows: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Rolling origin: up to ``windows - 1`` earlier (calibration end, holdout end) pairs with
    the same holdout length, each ending where the next begins, kept while the calibration
    period before them is at least one holdout length long."""
    length = holdout_end - calibration_end
    first = transactions["timestamp"].min().normalize()
    found = []
    for k in range(1, max(windows, 1)):
        end = calibration_end - k * length
        if end - first < length:
            break
        found.append((end, end + length))
    return found


def window_table(transactions: pd.DataFrame, calibration_end, holdout_end, feature_config: FeatureConfig,
                 current_value_column: str) -> pd.DataFrame:
    """What comparing the families needs on an earlier window, without the full feature
    table (costly on a large base): frequency, recency, T and monetary as ``build_features``
    computes them (``rfm_summary``), and the holdout outcomes as ``calibration_holdout``
    counts them (distinct purchase days, their spend; tested equal). The current-value
    feature only places tier edges, which the comparison does not use: it is left at 0."""
    calibration_end, holdout_end = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    table = rfm_summary(transactions, calibration_end, feature_config).reset_index()
    table["customer_id"] = np.asarray(table["customer_id"], dtype=object).astype(str)
    when = transactions["timestamp"].to_numpy()
    inside = ((when >= np.datetime64(calibration_end.date(), "D")) & (when < np.datetime64(holdout_end.date(), "D"))
              & (transactions["amount"].to_numpy() >= 0))
    window = pd.DataFrame({
        "customer_id": np.asarray(transactions["customer_id"], dtype=object)[inside].astype(str),
        "day": when[inside].astype("datetime64[D]"),
        "amount": transactions["amount"].to_numpy()[inside],
    })
    per_day = window.groupby(["customer_id", "day"], sort=False)["amount"].sum().groupby(level="customer_id").agg(
        ["count", "sum"]).reindex(table["customer_id"]).fillna(0.0)
    table["holdout_purchases"] = per_day["count"].to_numpy()
    table["holdout_spend"] = per_day["sum"].to_numpy()
    table["holdout_duration"] = (holdout_end - calibration_end) / pd.Timedelta(days=1) / feature_config.time_unit_days
    table[current_value_column] = 0.0
    return table


def _rolling_origin(transactions, earlier, fitted, comparison, config, feature_config, progress,
                    windows: WindowTables | None = None) -> None:
    """Refit every family on each earlier window and add ``windows`` (per-window metrics),
    ``mean``/``std`` over all windows and ``selection_score`` to its comparison entry.
    With the learned family the windows' full feature tables come from ``windows``."""
    if LEARNED in fitted and windows is None:
        windows = WindowTables(transactions, feature_config)
    per_family = {name: [{**comparison[name]["metrics"], "calibration_end": "given"}] for name in fitted}
    for calibration_end, holdout_end in earlier:
        progress(f"rolling origin: calibration before {calibration_end.date()}, holdout to {holdout_end.date()}")
        try:
            if LEARNED in fitted:
                table = windows.table(calibration_end, holdout_end)
            else:
                table = window_table(transactions, calibration_end, holdout_end, feature_config,
                                     config.current_value_column)
            spend_model = SpendModel(penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers).fit(
                table["frequency"], table["monetary"])
        except (FitError, RetainError) as exc:
            progress(f"  window skipped: {exc}")
            continue
        models, predictions, window = _fit_families(
            table, list(fitted), spend_model, config, feature_config.time_unit_days, strict=False, progress=progress,
            windows=windows)
        if len(models) < len(fitted):  # compare like with like: every family on every window
            progress("  window skipped: not every family could be fitted on it")
            continue
        for name in fitted:
            per_family[name].append({**window[name]["metrics"], "calibration_end": str(calibration_end.date())})
    for name, rows in per_family.items():
        frame = pd.DataFrame(rows)[list(SUMMARY_METRICS)]
        comparison[name]["windows"] = rows
        comparison[name]["mean"] = frame.mean().to_dict()
        comparison[name]["std"] = frame.std(ddof=0).to_dict()
    scores = selection_scores({name: comparison[name]["mean"] for name in fitted})
    for name, score in scores.items():
        comparison[name]["selection_score"] = score
        mean, std = comparison[name]["mean"], comparison[name]["std"]
        progress(f"  {FAMILY_LABELS[name]} over {len(per_family[name])} window(s): spend Gini "
                 f"{mean['spend_gini']:.3f} ± {std['spend_gini']:.3f}, total error "
                 f"{mean['total_purchases_pct_error']:+.1f}% ± {std['total_purchases_pct_error']:.1f}, purchases MAE "
                 f"{mean['purchases_mae']:.4f} ± {std['purchases_mae']:.4f}; selection score {score:.3f}")


def selection_scores(means: dict[str, dict[str, float]], gate: ValueGate = VALUE_GATE) -> dict[str, float]:
    """The documented selection rule (docs/value-models.md), the gate's rule over the
    families' means over the windows: a family is calibrated when its mean absolute
    aggregate error is within the gate's tolerance (15%) or no worse than the best family's;
    its score is its mean spend Gini, less 1 when it is not calibrated (so every calibrated
    family ranks above every other); the highest score is chosen. A family that ranks best
    but over-forecasts the total by 50% is not chosen while another stays within 15%."""
    best_aggregate = min(m[gate.aggregate] for m in means.values())
    bound = {gate.aggregate: best_aggregate}
    return {name: float(m[gate.ranking] - (0.0 if gate.calibrated(m, bound) else 1.0)) for name, m in means.items()}


def select_family(comparison: dict[str, dict]) -> str:
    """The family with the highest selection score; the simpler family (BG/NBD, MBG/NBD,
    Pareto/NBD, learned order) on a tie."""
    scored = [name for name in VALUE_FAMILIES if "selection_score" in comparison.get(name, {})]
    return max(scored, key=lambda name: (round(comparison[name]["selection_score"], 9),
                                         -VALUE_FAMILIES.index(name)))


def train_value_model(
    dataset: Dataset,
    calibration_end,
    holdout_end=None,
    *,
    family: str = "auto",
    business: str = "auto",
    config: ValueConfig | None = None,
    feature_config: FeatureConfig | None = None,
    settings: Settings,
    windows: int = 3,
    progress: Callable[[str], None] = lambda message: None,
) -> ValueTrainingResult:
    """``windows``: with ``family="auto"``, how many holdout windows (the given one and
    earlier ones of the same length, rolling origin) the families are compared on.
    ``business``: auto (detect regular bills: ``retain.models.value.subscription.detect_business``),
    subscription (the sBG family) or non-contractual (the BG/NBD families)."""
    config = config or ValueConfig()
    feature_config = feature_config or FeatureConfig()
    if family != "auto" and family not in VALUE_FAMILIES and family != SUBSCRIPTION_FAMILY:
        raise RetainError(f"--model must be auto or one of {sorted([*VALUE_FAMILIES, SUBSCRIPTION_FAMILY])}, "
                          f"not {family!r}")
    transactions = dataset.transactions
    calibration_end = pd.Timestamp(calibration_end).normalize()
    holdout_end = check_windows(transactions, calibration_end, None if holdout_end is None else pd.Timestamp(holdout_end).normalize())

    progress(f"features: calibration before {calibration_end.date()}, holdout to {holdout_end.date()}")
    # the customers' attributes: covariates of the subscription model
    table, reference = calibration_holdout(transactions, calibration_end, holdout_end, customers=dataset.customers,
                                           config=feature_config)
    actual_purchases, actual_spend = table["holdout_purchases"], table["holdout_spend"]
    choice = _business_for(table, business, family)
    progress(f"business: {choice.kind}: {choice.reason}")

    window_tables = WindowTables(transactions, feature_config)
    if choice.kind == SUBSCRIPTION:
        fitted, predictions, comparison = _fit_subscription(
            table, config, feature_config.time_unit_days, choice, progress)
    else:
        families = list(VALUE_FAMILIES) if family == "auto" else [family]
        progress(f"fitting Gamma-Gamma on the repeat buyers among {len(table):,} customers")
        spend_model = SpendModel(penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers).fit(
            table["frequency"], table["monetary"])
        progress(f"  spend: {spend_model.description}")
        fitted, predictions, comparison = _fit_families(
            table, families, spend_model, config, feature_config.time_unit_days, strict=family != "auto",
            progress=progress, windows=window_tables)
    if not fitted:
        raise FitError("no purchase model could be fitted: " + "; ".join(v["error"] for v in comparison.values()))
    if family == "auto" and len(fitted) > 1:
        earlier = _earlier_windows(transactions, calibration_end, holdout_end, windows)
        _rolling_origin(transactions, earlier, fitted, comparison, config, feature_config, progress, window_tables)
        chosen = select_family(comparison)
    else:
        chosen = next(iter(fitted))
    model = fitted[chosen]
    purchases, spend = predictions[chosen]
    metrics = comparison[chosen]["metrics"]
    if family == "auto" and len(fitted) > 1:
        progress(f"chose {FAMILY_LABELS[chosen]}: highest selection score "
                 f"({comparison[chosen]['selection_score']:.3f}; see docs/value-models.md)")

    duration = float(table["holdout_duration"].iloc[0])
    baseline_purchases, baseline_spend = naive_value_forecast(table, duration)
    baseline = value_metrics(actual_purchases, actual_spend, baseline_purchases, baseline_spend)

    warnings = [w for w in [model.spend.correlation_warning] if w]
    run = _TrainingRun(
        requested=family, chosen=chosen, choice=choice, model=model, config=config, feature_config=feature_config,
        transactions=transactions, table=table, calibration_end=calibration_end, holdout_end=holdout_end,
        metrics=metrics, baseline=baseline, comparison=comparison, warnings=warnings, purchases=purchases,
        baseline_purchases=baseline_purchases)
    published = publish(Candidate(
        model_name=VALUE_MODEL_NAME, experiment=EXPERIMENT, run_name=f"clv-{chosen}-{calibration_end.date()}",
        gate=VALUE_GATE, metrics=metrics, baselines={"naive": baseline},
        score_champion=partial(_score_champion, run), log_run=partial(_log_run, run), model=model, feature_config=feature_config, reference=reference,
        version_column="clv_model_version", example=table,
        profile_features=scorable_features(dataset, holdout_end, feature_config, reference)[0],
    ), settings=settings, progress=progress)
    return ValueTrainingResult(
        run_id=published.run_id, model_version=published.version, chosen_model=chosen,
        params={**model.params(), **model.spend.params_}, metrics=metrics,
        baseline_metrics=baseline, champion_metrics=published.champion_metrics, comparison=comparison,
        promoted=published.decision.promote, reason=published.decision.reason,
        tracking_uri=display_uri(published.tracking_uri), warnings=warnings,
        business=choice.kind, business_reason=choice.reason,
    )


@dataclass(frozen=True, eq=False)
class _TrainingRun:
    """What one ``train_value_model`` run compares and logs: ``requested`` is the family
    asked for (``auto`` or one name), ``chosen`` the one fitted or selected, ``model`` it
    fitted on ``table`` (the calibration features with holdout outcomes); ``purchases``
    and ``baseline_purchases`` its and the naive baseline's holdout predictions."""

    requested: str
    chosen: str
    choice: BusinessChoice
    model: ValueModel
    config: ValueConfig
    feature_config: FeatureConfig
    transactions: pd.DataFrame
    table: pd.DataFrame
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    metrics: dict[str, float]
    baseline: dict[str, float]
    comparison: dict[str, dict]
    warnings: list[str]
    purchases: np.ndarray
    baseline_purchases: np.ndarray


def _score_champion(run: _TrainingRun, champion: ValueModel) -> dict[str, float]:
    """The current champion's metrics on the run's holdout (its table rebuilt in the
    champion's time unit when that differs)."""
    table = run.table
    if champion.time_unit_days != run.feature_config.time_unit_days:
        table, _ = calibration_holdout(run.transactions, run.calibration_end, run.holdout_end,
                                       config=FeatureConfig(time_unit_days=champion.time_unit_days))
    return value_metrics(run.table["holdout_purchases"], run.table["holdout_spend"],
                         *_holdout_predictions(champion, table))


def _log_run(run: _TrainingRun, decision: Decision, champion_metrics: dict | None) -> None:
    """Params, tags, metrics, the evaluation record and the plots of the run (called inside it)."""
    config, model, choice = run.config, run.model, run.choice
    mlflow.log_params({
        "model": run.requested, "chosen_model": run.chosen,
        "calibration_end": str(run.calibration_end.date()), "holdout_end": str(run.holdout_end.date()),
        "time_unit_days": run.feature_config.time_unit_days, "horizon_days": config.horizon_days,
        "margin": config.margin, "annual_discount_rate": config.annual_discount_rate,
        "penalizer": config.penalizer, "interval": config.interval, "customers": len(run.table),
        "business": choice.kind,
    })
    mlflow.set_tag("business_reason", choice.reason)
    mlflow.set_tags(fingerprint({"transactions": run.transactions[["customer_id", "timestamp", "amount"]]},
                                {"transactions": "timestamp"}))
    mlflow.log_metrics(run.metrics)
    mlflow.log_metrics({f"baseline_{k}": v for k, v in run.baseline.items()})
    if champion_metrics:
        mlflow.log_metrics({f"champion_{k}": v for k, v in champion_metrics.items()})
    for name, entry in run.comparison.items():
        if "metrics" in entry:
            mlflow.log_metrics({f"{name}_{k}": v for k, v in entry["metrics"].items()})
    mlflow.log_metrics({f"param_{k}": v for k, v in {**model.purchase.params_, **model.spend.params_}.items()})
    mlflow.log_metrics(model.fit_metrics())
    pit = _log_pit(model, run.table, run.metrics)
    mlflow.log_dict({"chosen": run.chosen, "business": choice.kind, "business_reason": choice.reason,
                     "comparison": run.comparison, "baseline": run.baseline, "champion": champion_metrics,
                     "decision": decision.reason, "standard_errors": model.purchase.standard_errors(),
                     "purchases_pit_histogram": pit, "interval": config.interval, "warnings": run.warnings},
                    "evaluation.json")
    _log_plots(run.transactions, run.table, model, run.purchases, run.baseline_purchases, run.calibration_end,
               run.holdout_end)


def _business_for(table: pd.DataFrame, business: str, family: str) -> BusinessChoice:
    """The kind of business (``detect_business``), checked against an explicit ``--model``:
    BG/NBD and its peers on a subscription base run to boundary parameters, and the sBG
    needs regular bills, so neither is used on the other kind silently."""
    choice = detect_business(table, business)
    if choice.kind == SUBSCRIPTION and family in VALUE_FAMILIES:
        raise RetainError(
            f"--model {family} is a non-contractual model, but this is a subscription base ({choice.reason}); "
            f"use --model auto or {SUBSCRIPTION_FAMILY}, or --business non-contractual to fit {family} anyway")
    if choice.kind != SUBSCRIPTION and family == SUBSCRIPTION_FAMILY:
        raise RetainError(f"--model {SUBSCRIPTION_FAMILY} is for subscription bases, and {choice.reason}; "
                          "use --business subscription to fit it anyway")
    return choice
