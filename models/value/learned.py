"""A learned value model: LightGBM on the feature table plus a probabilistic model's outputs.

It answers the same questions as ``ProbabilisticValueModel`` (P(alive), expected purchases, expected
order value, CLV with an 80% predictive interval, tiers) in the same columns, so scoring,
the pyfunc, publishing and the report do not care which family won.

Training never sees the period it is judged on: it is fitted on an *inner window inside the
calibration period*. Features are taken at an inner cutoff (calibration end minus the
window), the targets are what each of those customers bought and spent between the inner
cutoff and the calibration end. Scoring then applies the learned mapping to features at the
calibration end (or any later as-of date).

- Purchases: a Poisson-loss booster on the count of purchase days in the window.
- Spend: a Tweedie-loss booster (compound Poisson-Gamma: an exact zero for most customers
  and a heavy right tail for the few big spenders) on the spend in the window.
- Inputs: every numeric feature of the table plus the probabilistic model's P(alive),
  expected purchases and P(no purchase) over the window, expected order value and expected
  spend (``BASE_FEATURES``), each from a model fitted at the same cutoff as the features.
- Interval: the count is negative binomial around the learned mean with one dispersion,
  and spend given a purchase lognormal around the learned conditional mean with one log-sd,
  both fitted by maximum likelihood on customers held out of the boosters' training
  (the same two-part form as ``ProbabilisticValueModel``'s interval, so coverage is measured the same way).
- Horizons other than the window: the learned mean times the probabilistic model's ratio of
  expected purchases over the horizon to those over the window (per customer); discounting
  as the probabilistic model's schedule. P(alive) and P(alive at the horizon) are the
  probabilistic model's: a booster has no notion of being alive.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import betainc, gammaln, ndtr, ndtri

from retain.features import FeatureConfig, calibration_holdout
from retain.models.value.config import ValueConfig
from retain.models.value.coverage import coverage
from retain.models.value.probabilistic import ProbabilisticValueModel
from retain.models.value.protocol import NON_CONTRACTUAL, Forecast
from retain.models.value.purchase import FitError, GivenHistories, PurchaseModel, histories_of
from retain.models.value.scores import check_columns, fit_tier_edges, score_table
from retain.models.value.spend import SpendModel
from retain.models.value.tiers import TierEdges

# Outputs of the probabilistic model used as inputs, computed over the learned window.
BASE_FEATURES = ("base_p_alive", "base_expected_purchases", "base_p_no_purchase", "base_expected_order_value",
                 "base_expected_spend")
# Feature columns never used as inputs: outcomes, keys and text.
_NOT_INPUTS_PREFIX = ("holdout_",)
MIN_TRAINING_CUSTOMERS = 200
MIN_WINDOW_DAYS = 28


@dataclass(frozen=True)
class LearnedConfig:
    """Booster settings. ``n_jobs`` 1 by default: on a shared 2-core machine two threads can
    stall (seen with LightGBM; it is configurable). ``max_training_rows`` caps the inner-window customers the
    boosters see (a seeded random sample), which bounds training time on large bases;
    ``validation_share`` of them are held out for early stopping and for fitting the
    interval's dispersion. ``learning_rate`` None: 0.05 below ``large_base_rows`` training
    customers, 0.1 from there (about half the trees: scoring time grows with trees times
    customers, and a large base needs the small step less)."""

    n_estimators: int = 300
    learning_rate: float | None = None
    large_base_rows: int = 100_000
    num_leaves: int = 31
    min_child_samples: int = 100
    tweedie_variance_power: float = 1.5
    early_stopping_rounds: int = 30
    max_training_rows: int = 200_000
    validation_share: float = 0.2
    base_family: str = "bgnbd"
    n_jobs: int = 1
    seed: int = 0

    def __post_init__(self):
        if not 1 < self.tweedie_variance_power < 2:
            raise ValueError("tweedie_variance_power must be between 1 and 2 (compound Poisson-Gamma)")
        if not 0 < self.validation_share < 0.5:
            raise ValueError("validation_share must be between 0 and 0.5")

    def base_families(self) -> tuple[str, ...]:
        """``base_family`` first, then the other probabilistic families: the probabilistic
        inputs come from the first that fits (at a boundary a family is its limiting model,
        ``PurchaseModel.fit``; one that truly fails is passed over)."""
        return (self.base_family, *[f for f in ("bgnbd", "mbgnbd", "pareto") if f != self.base_family])

    def step(self, training_rows: int) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 0.05 if training_rows < self.large_base_rows else 0.1


def inner_window_days(transactions: pd.DataFrame, calibration_end, horizon_days: float) -> float:
    """The inner window: ``horizon_days`` (the holdout length), shortened to half the
    calibration period when that is shorter, so that the inner cutoff keeps half the
    calibration history before it; whole days."""
    calibration_end = pd.Timestamp(calibration_end).normalize()
    span = (calibration_end - transactions["timestamp"].min().normalize()) / pd.Timedelta(days=1)
    days = float(np.floor(min(horizon_days, span / 2)))
    if days < MIN_WINDOW_DAYS:
        raise FitError(
            f"the calibration period before {calibration_end.date()} holds {span:g} days of history; the learned "
            f"model needs at least {2 * MIN_WINDOW_DAYS} (an inner window of {MIN_WINDOW_DAYS} days and as much "
            "history before it): use a later calibration end"
        )
    return days


@dataclass
class LearnedValueModel:
    """A learned value model.

    Settings: ``window_days``, the horizon the boosters learn to predict (the holdout
    length; ``fit`` shortens it with ``inner_window_days`` where the history is short);
    ``config``, the value settings (horizon, margin, interval level); ``learned_config``,
    the boosters'; ``feature_config``, how the feature tables are built; ``base``, the
    probabilistic model already fitted on the feature table ``fit`` receives, if the caller
    has it (``fit`` fits it otherwise). Its outputs are inputs; its P(alive), horizon shape
    and discounting are used as the module docstring describes.

    ``fit`` sets the attributes ending in ``_`` (``window_days_``: the window actually
    learned), ``base`` and ``tier_edges``, and returns the model."""

    window_days: float = 365.0
    config: ValueConfig = field(default_factory=ValueConfig)
    learned_config: LearnedConfig = field(default_factory=LearnedConfig)
    feature_config: FeatureConfig = field(default_factory=FeatureConfig)
    base: ProbabilisticValueModel | None = None
    tier_edges: TierEdges | None = None
    window_days_: float = float("nan")
    feature_names_: list[str] = field(default_factory=list)
    purchases_booster_: lgb.Booster | None = None
    spend_booster_: lgb.Booster | None = None
    count_dispersion_: float = float("nan")  # negative-binomial shape k: Var N = mu + mu^2 / k
    spend_log_sd_: float = float("nan")  # log-sd of spend given a purchase
    training_rows_: int = 0
    inner_cutoff_: str = ""

    family = "learned"
    business = NON_CONTRACTUAL

    # --- fitting -------------------------------------------------------------------

    def fit(self, transactions: pd.DataFrame, calibration_end, features: pd.DataFrame, *,
            tables: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None = None) -> "LearnedValueModel":
        """Fit on ``transactions`` strictly before ``calibration_end`` only (rows at or after
        it are dropped here, whatever the caller passes). ``features``: the feature table at
        ``calibration_end`` (the customers the model is then evaluated and tiered on).
        ``tables(cutoff, end)``: builds the ``calibration_holdout`` table of a window from
        the same transactions (e.g. a cache that the rolling origin shares); by default
        ``calibration_holdout`` on the history. The inner window's table it returns is
        checked to run from the inner cutoff to ``calibration_end``."""
        config, learned_config, feature_config = self.config, self.learned_config, self.feature_config
        unit = feature_config.time_unit_days
        calibration_end = pd.Timestamp(calibration_end).normalize()
        check_columns(features)
        history = transactions[transactions["timestamp"].to_numpy() < np.datetime64(calibration_end.date(), "D")]
        window = inner_window_days(history, calibration_end, self.window_days)
        inner_cutoff = calibration_end - pd.Timedelta(days=window)
        if tables is None:
            inner, _ = calibration_holdout(history, inner_cutoff, calibration_end, config=feature_config)
        else:
            inner = tables(inner_cutoff, calibration_end)
            if len(inner) and (pd.Timestamp(inner["as_of"].iloc[0]) != inner_cutoff
                               or float(inner["holdout_duration"].iloc[0]) * unit != window):
                raise ValueError(f"the inner table must run from {inner_cutoff.date()} to {calibration_end.date()}")
        if len(inner) < MIN_TRAINING_CUSTOMERS:
            raise FitError(
                f"only {len(inner):,} customers bought before the inner cutoff {inner_cutoff.date()}; the learned model "
                f"needs at least {MIN_TRAINING_CUSTOMERS}: use a later calibration end or more history")
        # the inner base model only feeds inputs: its parts, no tier edges (a pass over every customer)
        inner_spend = SpendModel(penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers).fit(
            inner["frequency"], inner["monetary"])
        inner_purchase = _first_that_fits(
            learned_config.base_families(),
            lambda family: PurchaseModel(family, penalizer=config.penalizer).fit(
                inner["frequency"], inner["recency"], inner["T"]))
        inner_base = ProbabilisticValueModel(inner_purchase.family, config, unit, spend=inner_spend,
                                             purchase=inner_purchase)
        if self.base is None:
            self.base = _first_that_fits(
                learned_config.base_families(),
                lambda family: ProbabilisticValueModel(family, config, unit).fit(features))
        inputs = _inputs(inner, inner_base, window, None)
        names = list(inputs.columns)
        rng = np.random.default_rng(learned_config.seed)
        rows = np.arange(len(inner))
        if len(rows) > learned_config.max_training_rows:
            rows = np.sort(rng.choice(rows, learned_config.max_training_rows, replace=False))
        held = rng.random(len(rows)) < learned_config.validation_share
        train, valid = rows[~held], rows[held]
        purchases = inner["holdout_purchases"].to_numpy(dtype=float)
        spend = np.maximum(inner["holdout_spend"].to_numpy(dtype=float), 0.0)
        boosters = {}
        for target, objective, values in (("purchases", {"objective": "poisson"}, purchases),
                                          ("spend", {"objective": "tweedie",
                                                     "tweedie_variance_power": learned_config.tweedie_variance_power},
                                           spend)):
            boosters[target] = _train_booster(inputs, values, _offset(inputs, target), train, valid, objective,
                                              learned_config)
        valid_inputs = inputs.iloc[valid]
        mean_count = _predict(boosters["purchases"], valid_inputs, "purchases", learned_config.n_jobs)
        mean_spend = _predict(boosters["spend"], valid_inputs, "spend", learned_config.n_jobs)
        self.count_dispersion_ = _fit_count_dispersion(purchases[valid], mean_count)
        self.spend_log_sd_ = _fit_spend_log_sd(spend[valid], mean_spend, _p_zero(mean_count, self.count_dispersion_))
        self.window_days_, self.feature_names_ = window, names
        self.purchases_booster_, self.spend_booster_ = boosters["purchases"], boosters["spend"]
        self.training_rows_, self.inner_cutoff_ = len(rows), str(inner_cutoff.date())
        values = self.predict_values(features, with_interval=False)
        self.tier_edges = fit_tier_edges(features, values["clv"], config)
        return self

    # --- what scoring and training read ----------------------------------------------

    @property
    def time_unit_days(self) -> float:
        return self.feature_config.time_unit_days

    @property
    def purchase(self) -> PurchaseModel:
        """The probabilistic purchase model underneath (plots, logged parameters)."""
        return self.base.purchase

    @property
    def spend(self) -> SpendModel:
        return self.base.spend

    @property
    def input_columns(self) -> tuple[str, ...]:
        names = [n for n in self.feature_names_ if n not in BASE_FEATURES]
        return tuple(dict.fromkeys([*self.base.input_columns, *names]))

    def _given(self, features: pd.DataFrame) -> tuple[np.ndarray, GivenHistories]:
        """Each row's history and the base purchase model given the distinct histories: what
        the inputs, the horizon ratio and P(alive) share."""
        histories, inverse = histories_of(features)
        return inverse, self.base.purchase.given(*histories)

    def _window_means(self, features: pd.DataFrame, inverse: np.ndarray, given: GivenHistories
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Learned expected purchases and spend over ``window_days_``."""
        features = _with_inputs(features, [n for n in self.feature_names_ if n not in BASE_FEATURES])
        inputs = _inputs(features, self.base, self.window_days_, self.feature_names_, inverse, given)
        threads = self.learned_config.n_jobs
        return (_predict(self.purchases_booster_, inputs, "purchases", threads),
                _predict(self.spend_booster_, inputs, "spend", threads))

    def _horizon_ratio(self, days: float, inverse: np.ndarray, given: GivenHistories) -> np.ndarray:
        """Per customer: the probabilistic model's expected purchases over ``days`` against
        those over the window (days / window where it expects none over the window)."""
        if days == self.window_days_:
            return np.ones(len(inverse))
        over_days, over_window = given.expected_purchases(np.array([days, self.window_days_]) / self.time_unit_days)
        ratio = np.divide(over_days, over_window, out=np.full(len(over_days), days / self.window_days_),
                          where=over_window > 1e-12)
        return ratio[inverse]

    def means_over(self, days: float, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected repeat purchases and spend (undiscounted) in the next ``days``: one pass
        of the boosters for both (``expected_over`` times ``expected_order_value`` is two)."""
        return self._means_over(days, features, *self._given(features))

    def _means_over(self, days: float, features: pd.DataFrame, inverse: np.ndarray, given: GivenHistories
                    ) -> tuple[np.ndarray, np.ndarray]:
        count, spend = self._window_means(features, inverse, given)
        ratio = self._horizon_ratio(days, inverse, given)
        return count * ratio, spend * ratio

    def expected_over(self, days: float, features: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``days`` per customer."""
        return self.means_over(days, features)[0]

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        """Learned spend over learned purchases in the window (the probabilistic model's
        expected order value where the learned count is near zero)."""
        count, spend = self._window_means(features, *self._given(features))
        return np.where(count > 1e-9, spend / np.maximum(count, 1e-300), self.base.expected_order_value(features))

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        check_columns(features)
        base = replace(self.base, config=self.config)
        horizon = self.config.horizon_days
        inverse, given = self._given(features)
        count, spend = self._means_over(horizon, features, inverse, given)
        discounted, plain = base.discounted_purchases(given)
        discount = np.divide(discounted, plain, out=np.ones_like(plain), where=plain > 0)[inverse]
        units = horizon / self.time_unit_days
        values = {
            "p_alive": given.alive[inverse],
            "p_alive_horizon": given.p_alive_at(units)[inverse],
            "p_no_purchase_horizon": _p_zero(count, self.count_dispersion_),
            "expected_purchases": count,
            "expected_order_value": np.where(count > 1e-9, spend / np.maximum(count, 1e-300),
                                             base.expected_order_value(features)),
            "clv": self.config.margin * discount * spend,
        }
        if with_interval:
            outcomes = CountSpendOutcomes(count, spend, self.count_dispersion_, self.spend_log_sd_)
            low, high = (1 - self.config.interval) / 2, (1 + self.config.interval) / 2
            values.update({
                "expected_purchases_low": outcomes.count_quantile(low),
                "expected_purchases_high": outcomes.count_quantile(high),
                "clv_low": self.config.margin * discount * outcomes.spend_quantile(low),
                "clv_high": self.config.margin * discount * outcomes.spend_quantile(high),
            })
        return values

    def outcomes(self, features: pd.DataFrame, days: float) -> "CountSpendOutcomes":
        return self.forecast(features, days).outcomes

    def forecast(self, features: pd.DataFrame, days: float) -> Forecast:
        """The learned means over ``days`` and the distribution around them: one pass of the boosters."""
        count, spend = self.means_over(days, features)
        return Forecast(count, spend, CountSpendOutcomes(count, spend, self.count_dispersion_, self.spend_log_sd_))

    def predictive_interval(self, features: pd.DataFrame, days: float, level: float | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer: the equal-tailed ``level`` interval of repeat purchases and of
        (undiscounted) spend in the next ``days``."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).interval(level)

    def interval_coverage(self, features: pd.DataFrame, days: float, actual_purchases, actual_spend,
                          level: float | None = None) -> dict[str, float]:
        """The same measures as ``ProbabilisticValueModel.interval_coverage`` (randomized PIT
        coverage and plain share inside), for this model's predictive distribution."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).coverage(actual_purchases, actual_spend, level)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value scores, one row per input row, in input order: every family's columns."""
        return score_table(features, self.predict_values(features), self.tier_edges, self.config)

    def describe(self) -> dict:
        return {
            "purchase_model": "learned",
            "base_model": self.base.purchase.family,
            "purchase_params": self.base.purchase.params_,
            "spend_params": self.base.spend.params_,
            "window_days": self.window_days_,
            "inner_cutoff": self.inner_cutoff_,
            "trees": {"purchases": self.purchases_booster_.num_trees(), "spend": self.spend_booster_.num_trees()},
            "count_dispersion": self.count_dispersion_,
            "spend_log_sd": self.spend_log_sd_,
            "time_unit_days": self.time_unit_days,
            **self.config.money_terms(),
        }

    def params(self) -> dict[str, float]:
        return {"window_days": self.window_days_, "training_customers": self.training_rows_,
                "purchases_trees": self.purchases_booster_.num_trees(), "spend_trees": self.spend_booster_.num_trees(),
                "count_dispersion": self.count_dispersion_, "spend_log_sd": self.spend_log_sd_}

    def fit_metrics(self) -> dict[str, float]:
        return {"frequency_monetary_correlation": self.spend.frequency_monetary_correlation_}

    @property
    def log_likelihood(self) -> None:
        """None: the boosters' forecasts do not come from the base model's likelihood."""
        return None


def _first_that_fits(families: tuple[str, ...], fit: Callable[[str], object]):
    """``fit(family)`` of the first family that fits; the FitErrors of all, if none does."""
    reasons = []
    for family in families:
        try:
            return fit(family)
        except FitError as exc:
            reasons.append(str(exc))
    raise FitError("no probabilistic model could be fitted for the learned model's inputs: " + "; ".join(reasons))


# --- inputs ------------------------------------------------------------------------------


def _inputs(features: pd.DataFrame, base: ProbabilisticValueModel, window_days: float, names: list[str] | None,
            inverse: np.ndarray | None = None, given: GivenHistories | None = None) -> pd.DataFrame:
    """The boosters' input frame: numeric feature columns (``names``, or every numeric one
    but outcomes) and the base model's outputs over the window; ``inverse`` and ``given``:
    each row's history and the base purchase model given them (found here if not given)."""
    if names is None:
        names = [c for c in features.columns
                 if not c.startswith(_NOT_INPUTS_PREFIX) and c not in BASE_FEATURES
                 and pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])]
        names = names + list(BASE_FEATURES)
    if given is None:
        histories, inverse = histories_of(features)
        given = base.purchase.given(*histories)
    units = window_days / base.time_unit_days
    expected = given.expected_purchases(units)
    order_value = base.expected_order_value(features)
    derived = {
        "base_p_alive": given.alive[inverse],
        "base_expected_purchases": expected[inverse],
        "base_p_no_purchase": given.p_no_purchase(units)[inverse],
        "base_expected_order_value": order_value,
        "base_expected_spend": expected[inverse] * order_value,
    }
    columns = {n: (derived[n] if n in derived else features[n].to_numpy(dtype=float)) for n in names}
    return pd.DataFrame(columns)


def _with_inputs(features: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Feature columns the boosters read but the table lacks (e.g. discount features for
    transactions without a discount column) become missing values, as in the churn model:
    LightGBM sends them down each split's default branch. Warns naming them; frequency,
    recency, T and monetary stay required."""
    missing = [n for n in names if n not in features.columns]
    if not missing:
        return features
    warnings.warn(f"features missing at scoring time, treated as unknown by the learned value model: {missing}",
                  stacklevel=3)
    return features.assign(**{n: np.nan for n in missing})


def _offset(inputs: pd.DataFrame, target: str) -> np.ndarray:
    """The log of the probabilistic model's expectation: the boosters start from it and
    learn a multiplicative correction (log link), so that where the features say nothing
    more the learned model is the probabilistic one."""
    column = "base_expected_purchases" if target == "purchases" else "base_expected_spend"
    return np.log(np.maximum(inputs[column].to_numpy(dtype=float), 1e-6))


def _predict(booster: lgb.Booster, inputs: pd.DataFrame, target: str, threads: int) -> np.ndarray:
    return np.exp(booster.predict(inputs, raw_score=True, num_threads=threads) + _offset(inputs, target))


def _train_booster(inputs: pd.DataFrame, target: np.ndarray, offset: np.ndarray, train: np.ndarray,
                   valid: np.ndarray, objective: dict, config: LearnedConfig) -> lgb.Booster:
    params = {
        **objective, "learning_rate": config.step(len(train) + len(valid)), "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples, "num_threads": config.n_jobs, "seed": config.seed,
        "deterministic": True, "force_row_wise": True, "verbosity": -1,
        "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
    }
    train_set = lgb.Dataset(inputs.iloc[train], target[train], init_score=offset[train], free_raw_data=True)
    valid_set = lgb.Dataset(inputs.iloc[valid], target[valid], init_score=offset[valid], reference=train_set)
    return lgb.train(params, train_set, num_boost_round=config.n_estimators, valid_sets=[valid_set],
                     callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])


# --- the predictive distribution -------------------------------------------------------


def _p_zero(mean: np.ndarray, dispersion: float) -> np.ndarray:
    """P(N = 0) of a negative binomial with mean ``mean`` and shape ``dispersion``."""
    mean = np.maximum(np.asarray(mean, dtype=float), 0.0)
    return np.exp(-dispersion * np.log1p(mean / dispersion))


def _fit_count_dispersion(counts: np.ndarray, mean: np.ndarray) -> float:
    """Maximum-likelihood negative-binomial shape k around the learned means, on customers
    the booster did not train on."""
    mean = np.maximum(mean, 1e-9)

    def negative_log_likelihood(log_k):
        k = np.exp(log_k)
        return -(gammaln(counts + k) - gammaln(k) - gammaln(counts + 1)
                 + k * np.log(k / (k + mean)) + counts * np.log(mean / (k + mean))).sum()

    return float(np.exp(minimize_scalar(negative_log_likelihood, bounds=(-6.0, 8.0), method="bounded").x))


def _fit_spend_log_sd(spend: np.ndarray, mean_spend: np.ndarray, p_zero: np.ndarray) -> float:
    """Maximum-likelihood log-sd of spend given a purchase: log S ~ N(log m - s^2/2, s^2),
    m = learned mean spend / P(purchase), on the held-out buyers."""
    buyers = spend > 0
    if buyers.sum() < 10:
        return 1.0
    log_mean = np.log(np.maximum(mean_spend[buyers], 1e-12) / np.maximum(1 - p_zero[buyers], 1e-12))
    log_spend = np.log(spend[buyers])

    def negative_log_likelihood(log_sd):
        s = np.exp(log_sd)
        return (np.log(s) + (log_spend - log_mean + s * s / 2) ** 2 / (2 * s * s)).sum()

    return float(np.exp(minimize_scalar(negative_log_likelihood, bounds=(-4.0, 2.0), method="bounded").x))


@dataclass(frozen=True)
class CountSpendOutcomes:
    """Count N ~ negative binomial (mean ``count``, shape ``dispersion``); spend S = 0 when
    N = 0, else lognormal with mean ``spend`` / P(N > 0) and log-sd ``log_sd``."""

    count: np.ndarray
    spend: np.ndarray
    dispersion: float
    log_sd: float

    @property
    def quiet(self) -> np.ndarray:
        return _p_zero(self.count, self.dispersion)

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The equal-tailed ``level`` interval of the count and of spend, per customer."""
        low, high = (1 - level) / 2, (1 + level) / 2
        return (self.count_quantile(low), self.count_quantile(high),
                self.spend_quantile(low), self.spend_quantile(high))

    def coverage(self, actual_purchases, actual_spend, level: float) -> dict[str, float]:
        return coverage(self, actual_purchases, actual_spend, level)

    def _success(self) -> np.ndarray:
        return self.dispersion / (self.dispersion + np.maximum(self.count, 1e-12))

    def count_quantile(self, level: float) -> np.ndarray:
        """Smallest n with P(N <= n) >= level, by the recursion pmf(n+1) = pmf(n) (k+n)/(n+1) (1-p)
        over the customers not yet there (far faster than scipy's ppf)."""
        k, success = self.dispersion, self._success()
        pmf = success ** k
        cdf = pmf.copy()
        quantile = np.zeros(len(success))
        active = np.flatnonzero(cdf < level)
        n = 0
        while len(active) and n < 100_000:
            pmf_active = pmf[active] * (k + n) / (n + 1) * (1 - success[active])
            pmf[active] = pmf_active
            cdf[active] += pmf_active
            n += 1
            quantile[active] = n
            active = active[cdf[active] < level - 1e-12]
        return quantile

    def count_cdf(self, n: np.ndarray) -> np.ndarray:
        """P(N <= n) = I_p(k, n+1); 0 for n < 0."""
        n = np.asarray(n, dtype=float)
        return np.where(n < 0, 0.0, betainc(self.dispersion, np.maximum(n, 0) + 1, self._success()))

    def _location(self) -> np.ndarray:
        positive = np.maximum(1.0 - self.quiet, 1e-300)
        return np.log(np.maximum(self.spend / positive, 1e-300)) - self.log_sd ** 2 / 2

    def spend_quantile(self, level: float) -> np.ndarray:
        quiet = self.quiet
        within = np.clip((level - quiet) / np.maximum(1.0 - quiet, 1e-300), 1e-12, 1 - 1e-12)
        return np.where(level <= quiet, 0.0, np.exp(self._location() + self.log_sd * ndtri(within)))

    def spend_cdf(self, spend: np.ndarray) -> np.ndarray:
        quiet = self.quiet
        with np.errstate(divide="ignore"):
            inside = ndtr((np.log(np.maximum(spend, 0.0)) - self._location()) / self.log_sd)
        return quiet + (1.0 - quiet) * inside
