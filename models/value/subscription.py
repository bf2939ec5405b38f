"""Subscription (contractual) value: the shifted-beta-geometric model with covariates.

BG/NBD and its peers describe *non-contractual* buying: purchases at any time, drop-out
unobserved. Where every customer pays a bill each period, drop-out is observed (the bill
stops) and the purchase process is a clock; BG/NBD then runs to boundary parameters
(r, alpha -> inf, a, b -> 0). The model that field uses is the shifted-beta-geometric
(sBG; [FH2007]): each customer renews each period with probability 1 - theta,
theta ~ Beta(alpha, beta).

Covariates: the Beta *mean* churn probability follows a logistic link on the customer's
attributes, mu_i = expit(x_i' gamma), with one concentration kappa = alpha + beta for all,
so alpha_i = mu_i kappa and beta_i = (1 - mu_i) kappa (the beta-regression parametrisation
of [FCN2004]). Without covariates this is exactly the paper's sBG
(gamma_0 = logit(alpha/(alpha+beta))). Why this and not per-segment (alpha, beta): one
coefficient per attribute level rather than two parameters per *combination* of levels,
so four attributes with 3-4 levels cost 10 coefficients, not 288 small-segment fits;
heterogeneity within a segment (the reason retention rises with tenure) stays in kappa.

``SubscriptionValueModel`` gives the same outputs as the other value families
(``retain.models.value.ValueModel``: p_alive, expected_purchases = expected bills,
expected_order_value = the bill, clv with an 80% predictive interval, tiers), so scoring, the pyfunc, publishing, the churn model's
value features and the report do not depend on the family. ``detect_business`` decides
whether a base is a subscription base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, logit

from retain.errors import RetainError
from retain.models.value.config import ValueConfig
from retain.models.value.coverage import band_share
from retain.models.value.protocol import NON_CONTRACTUAL, SUBSCRIPTION, Forecast
from retain.models.value.purchase import FitError, collapse, covariance_from
from retain.models.value.scores import PASSTHROUGH_COLUMNS, fit_tier_edges, score_table
from retain.models.value.tiers import TierEdges

BUSINESSES = ("auto", SUBSCRIPTION, NON_CONTRACTUAL)
FAMILY = "sbg"
LABEL = "sBG"
ATTRIBUTE_PREFIX = "attr_"


# --- detection ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectionRule:
    """A base is a subscription base when, among customers with at least ``min_gaps`` gaps
    between purchase days, at least ``min_regular_share`` are *regular*: their mean gap is
    within ``period_tolerance`` of the base's period (the median of those customers' mean
    gaps) and their gaps vary little (standard deviation / mean <= ``max_gap_cv``), and
    there are at least ``min_customers`` such customers to judge by. Poisson buyers have a
    gap coefficient of variation near 1; calendar-month bills about 0.04."""

    min_gaps: int = 2
    period_tolerance: float = 0.2
    max_gap_cv: float = 0.25
    min_regular_share: float = 0.6
    min_customers: int = 30
    min_period_days: float = 5.0


@dataclass(frozen=True)
class BusinessChoice:
    kind: str           # subscription or non-contractual
    reason: str
    period_days: float = float("nan")
    regular_share: float = float("nan")


def detect_business(features: pd.DataFrame, requested: str = "auto",
                    rule: DetectionRule | None = None) -> BusinessChoice:
    """Which value-model family a base needs, and why (``rule``: ``DetectionRule``).
    ``requested`` subscription or non-contractual is taken as given (the billing period is
    still measured: the sBG needs it); auto applies the rule."""
    rule = rule or DetectionRule()
    if requested not in BUSINESSES:
        raise RetainError(f"--business must be one of {', '.join(BUSINESSES)}, not {requested!r}")
    for column in ("mean_gap_days", "std_gap_days", "frequency"):
        if column not in features.columns:
            raise RetainError(f"detecting the kind of business needs the feature {column!r}; build the table "
                              "with retain.features.build_features")
    frequency = features["frequency"].to_numpy(dtype=float)
    mean_gap = features["mean_gap_days"].to_numpy(dtype=float)
    std_gap = features["std_gap_days"].to_numpy(dtype=float)
    judged = (frequency >= rule.min_gaps) & np.isfinite(mean_gap) & np.isfinite(std_gap) & (mean_gap > 0)
    period = float(np.median(mean_gap[judged])) if judged.any() else float("nan")
    regular = judged & (np.abs(mean_gap - period) <= rule.period_tolerance * period) & (
        std_gap <= rule.max_gap_cv * np.where(mean_gap > 0, mean_gap, np.inf))
    share = float(regular.sum() / judged.sum()) if judged.any() else 0.0
    measured = (f"{share:.0%} of {int(judged.sum()):,} customers with {rule.min_gaps}+ gaps pay at a regular "
                f"period of {period:.1f} days (mean gap within {rule.period_tolerance:.0%} of it, gap variation "
                f"<= {rule.max_gap_cv:.0%} of the mean)" if judged.any() else
                f"no customer has {rule.min_gaps}+ gaps between purchase days")
    if requested == NON_CONTRACTUAL:
        return BusinessChoice(NON_CONTRACTUAL, f"--business non-contractual given ({measured})", period, share)
    if requested == SUBSCRIPTION:
        if not (np.isfinite(period) and period >= rule.min_period_days):
            raise RetainError(f"--business subscription needs a billing period to measure, but {measured}; "
                              "the calibration period must hold at least three bills for some customers")
        return BusinessChoice(SUBSCRIPTION, f"--business subscription given ({measured})", period, share)
    is_subscription = (judged.sum() >= rule.min_customers and share >= rule.min_regular_share
                       and period >= rule.min_period_days)
    if is_subscription:
        return BusinessChoice(SUBSCRIPTION, f"detected regular bills: {measured}, at least "
                              f"{rule.min_regular_share:.0%} needed", period, share)
    return BusinessChoice(NON_CONTRACTUAL, f"no regular bills: {measured}; a subscription base needs at least "
                          f"{rule.min_regular_share:.0%} of {rule.min_customers}+ customers", period, share)


# --- histories ---------------------------------------------------------------------------

SIGNUP_AGE = "attr_signup_date_days"  # the customers table's signup_date, as an age at the cutoff


def billing_histories(features: pd.DataFrame, period_days: float, time_unit_days: float,
                      grace: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per customer: bills paid n, days from the last bill to the cutoff, whether the
    subscription lapsed (the next bill is overdue by more than ``grace`` periods), and the
    renewals made before the data begins.

    n counts the distinct billing days plus those earlier renewals: when the customers
    table's ``signup_date`` lies whole periods before the first bill in the data (a base
    whose history starts after many customers joined), the customer renewed
    round((signup age - first bill age) / period) times unseen. T is the age at the
    cutoff's eve (lifetimes), hence the + 1."""
    frequency = features["frequency"].to_numpy(dtype=float)
    T = features["T"].to_numpy(dtype=float)
    since_last = (T - features["recency"].to_numpy(dtype=float)) * time_unit_days + 1
    lapsed = since_last > period_days * (1 + grace)
    earlier = np.zeros(len(features))
    if SIGNUP_AGE in features.columns:
        unseen = (features[SIGNUP_AGE].to_numpy(dtype=float) - (T * time_unit_days + 1)) / period_days
        earlier = np.where(np.isfinite(unseen), np.maximum(np.rint(unseen), 0.0), 0.0)
    return frequency + 1 + earlier, since_last, lapsed, earlier


# --- covariates --------------------------------------------------------------------------

@dataclass
class CovariateDesign:
    """How attribute columns become the design matrix: categorical columns as one dummy
    per level except the most common (levels with fewer than ``min_level_customers``
    customers, unseen levels and missing values count as that reference level, unless
    missing is common enough to be a level of its own); numeric columns standardised,
    missing values at the mean."""

    categorical: dict[str, list] = field(default_factory=dict)  # column -> levels with a dummy
    reference: dict[str, object] = field(default_factory=dict)  # column -> reference level
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (mean, sd)

    MISSING = "(missing)"

    @classmethod
    def from_features(cls, features: pd.DataFrame, columns, min_level_customers: int = 30,
                      max_levels: int = 20) -> "CovariateDesign":
        design = cls()
        for column in columns:
            values = features[column]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                numbers = values.to_numpy(dtype=float)
                known = np.isfinite(numbers)
                if known.sum() < min_level_customers or np.nanstd(numbers[known]) == 0:
                    continue
                design.numeric[column] = (float(numbers[known].mean()), float(numbers[known].std()))
                continue
            codes, uniques = _labels(values)
            counts = pd.Series(np.bincount(codes, minlength=len(uniques)), index=uniques).sort_values(
                ascending=False, kind="stable")
            common = [level for level, count in counts.items() if count >= min_level_customers]
            if len(common) < 2 or len(counts) > max_levels * 5:
                continue  # a constant, or an identifier-like column
            common = common[:max_levels]
            design.reference[column] = common[0]
            design.categorical[column] = common[1:]
        return design

    @property
    def names(self) -> list[str]:
        """Coefficient names: ``column=level`` per dummy, the column per numeric."""
        return ([f"{column}={level}" for column, levels in self.categorical.items() for level in levels]
                + list(self.numeric))

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def codes(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per categorical column, each row's level index (0 = reference); per numeric column
        its standardised value. A column absent from ``features`` reads as missing."""
        out = {}
        n = len(features)
        for column, levels in self.categorical.items():
            if column not in features.columns:
                out[column] = np.zeros(n, dtype=np.int64)
                continue
            codes, uniques = _labels(features[column])
            position = pd.Index(levels).get_indexer(uniques)  # per distinct value: few, fast
            out[column] = position[codes] + 1  # -1 (reference, rare, unseen) -> 0
        for column, (mean, sd) in self.numeric.items():
            values = (features[column].to_numpy(dtype=float) if column in features.columns else np.full(n, np.nan))
            out[column] = np.where(np.isfinite(values), (values - mean) / sd, 0.0)
        return out

    def linear_predictor(self, codes: dict[str, np.ndarray], coefficients: np.ndarray) -> np.ndarray:
        """x'gamma without building the design matrix: a lookup per categorical column."""
        eta = np.full(len(next(iter(codes.values()))) if codes else 0, coefficients[0])
        position = 1
        for column, levels in self.categorical.items():
            eta = eta + np.concatenate([[0.0], coefficients[position:position + len(levels)]])[codes[column]]
            position += len(levels)
        for column in self.numeric:
            eta = eta + coefficients[position] * codes[column]
            position += 1
        return eta

    def matrix(self, codes: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Intercept, dummies, numerics."""
        parts = [np.ones((n, 1))]
        for column, levels in self.categorical.items():
            parts.append((codes[column][:, None] == np.arange(1, len(levels) + 1)[None, :]).astype(float))
        for column in self.numeric:
            parts.append(codes[column][:, None])
        return np.hstack(parts)


def _labels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code among the distinct values as text (missing -> MISSING): factorised
    first, so that only the distinct values are turned into text."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    text = np.array([str(u) for u in uniques] + [CovariateDesign.MISSING], dtype=object)
    codes = np.where(codes < 0, len(uniques), codes)
    # distinct values whose text coincides (1 and "1") share one code
    merged, inverse = np.unique(text, return_inverse=True)
    return inverse[codes], merged


def default_covariates(features: pd.DataFrame) -> list[str]:
    """The customers table's attributes (``attr_*``) except dates (``*_days``: an age
    measured at the cutoff, which tenure already carries)."""
    return [c for c in features.columns if c.startswith(ATTRIBUTE_PREFIX) and not c.endswith("_days")]


# --- the sBG likelihood ------------------------------------------------------------------

def sbg_log_likelihood(alpha, beta, t, churned, earlier=0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: log-likelihood and its derivatives in alpha and beta ([FH2007],
    eqs. 3 and 4 with B(.,.) for the products):
      churned at renewal t (t >= 1):  P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
      still a customer after t renewals (t >= 0): S(t) = B(alpha, beta + t) / B(alpha, beta),
    each divided by S(earlier) for a customer first seen after ``earlier`` renewals (left
    truncation: only those who survived them can be in the data).
    In log Beta functions throughout, so long tenures neither underflow nor overflow."""
    alpha, beta, t, earlier = (np.asarray(v, dtype=float) for v in (alpha, beta, t, earlier))
    churned = np.asarray(churned, dtype=bool)
    base = betaln(alpha, beta)
    psi_ab, psi_a, psi_b = digamma(alpha + beta), digamma(alpha), digamma(beta)
    psi_abt = digamma(alpha + beta + t)
    t_churn = np.maximum(t, 1.0)
    log_like = np.where(churned, betaln(alpha + 1, beta + t_churn - 1), betaln(alpha, beta + t)) - base
    d_alpha = np.where(churned, digamma(alpha + 1) - psi_a, 0.0) + psi_ab - psi_abt
    d_beta = np.where(churned, digamma(beta + t_churn - 1), digamma(beta + t)) - psi_abt - psi_b + psi_ab
    if np.any(earlier > 0):  # minus log S(earlier) = log B(alpha, beta) - log B(alpha, beta + earlier)
        psi_abe = digamma(alpha + beta + earlier)
        log_like = log_like - (betaln(alpha, beta + earlier) - base)
        d_alpha = d_alpha - (psi_ab - psi_abe)
        d_beta = d_beta - (digamma(beta + earlier) - psi_abe - psi_b + psi_ab)
    return log_like, d_alpha, d_beta


def survival_ratio(alpha, beta, renewals) -> np.ndarray:
    """S(t + k) / S(t) given t survived renewals folded into beta: the chance of making the
    next k renewals, B(alpha, beta + k) / B(alpha, beta) = prod_{i<k} (beta + i) / (alpha + beta + i)."""
    return np.exp(betaln(alpha, beta + renewals) - betaln(alpha, beta))


# --- the fitter --------------------------------------------------------------------------

@dataclass
class ShiftedBetaGeometric:
    """sBG with a logistic link on the Beta mean (module docstring).

    ``fit(n_bills, lapsed, features)`` leaves ``coef_`` (intercept and per-covariate logit
    coefficients), ``kappa_`` (alpha + beta), ``params_`` (alpha and beta of the reference
    customer: reference levels, numerics at their mean; the paper's alpha and beta when
    there are no covariates), ``log_likelihood_``, ``cov_`` (covariance of the coefficients
    and log kappa, inverse observed information) and ``design_``. ``ridge`` is a small L2
    penalty on the covariate coefficients (not the intercept, not kappa): a level in which
    no customer ever churned would otherwise push its coefficient to infinity."""

    covariates: tuple[str, ...] | None = None  # None: default_covariates(features)
    ridge: float = 0.01
    min_level_customers: int = 30
    family: str = FAMILY
    coef_: dict[str, float] = field(default_factory=dict)
    kappa_: float = float("nan")
    params_: dict[str, float] = field(default_factory=dict)
    log_likelihood_: float = float("nan")
    cov_: np.ndarray | None = None
    design_: CovariateDesign = field(default_factory=CovariateDesign)
    n_customers_: int = 0

    @property
    def label(self) -> str:
        return LABEL

    def fit(self, n_bills, lapsed, features: pd.DataFrame | None = None, earlier=None) -> "ShiftedBetaGeometric":
        """``n_bills`` >= 1 bills paid; ``lapsed``: the customer stopped (churned at renewal
        n), else still a customer after n - 1 renewals (right-censored); ``earlier``: of
        those renewals, how many came before the data begins (left-truncated; default none)."""
        n_bills = np.asarray(n_bills, dtype=float)
        lapsed = np.asarray(lapsed, dtype=bool)
        if len(n_bills) == 0 or (n_bills < 1).any():
            raise FitError("the sBG model needs customers with at least one bill each")
        renewals = np.where(lapsed, n_bills, n_bills - 1)
        earlier = np.zeros(len(n_bills)) if earlier is None else np.minimum(np.asarray(earlier, dtype=float), n_bills - 1)
        if not lapsed.any():
            raise FitError(f"none of {len(n_bills):,} subscribers has stopped paying in the calibration period, so "
                           "the sBG model cannot learn how they churn: use a later calibration end")
        if not (renewals - lapsed > 0).any():
            raise FitError("no subscriber renewed even once in the calibration period: use a later calibration end")
        features = features if features is not None else pd.DataFrame(index=range(len(n_bills)))
        columns = list(self.covariates) if self.covariates is not None else default_covariates(features)
        missing = [c for c in columns if c not in features.columns]
        if missing:
            raise RetainError(f"the feature table lacks the covariate column(s) {missing}")
        self.design_ = CovariateDesign.from_features(features, columns, self.min_level_customers)
        codes = self.design_.codes(features)
        distinct, counts, _ = collapse({"t": renewals, "churned": lapsed.astype(float), "earlier": earlier,
                                        **{k: v.astype(float) for k, v in codes.items()}})
        design = self.design_.matrix({k: distinct[k] for k in codes}, len(counts))
        t, churned, weights = distinct["t"], distinct["churned"] > 0, counts.astype(float)
        seen_from = distinct["earlier"]
        total = weights.sum()
        penalty = np.full(design.shape[1], self.ridge / total)
        penalty[0] = 0.0

        def objective(theta):
            gamma, log_kappa = theta[:-1], theta[-1]
            mu = expit(design @ gamma)
            kappa = np.exp(log_kappa)
            alpha, beta = mu * kappa, (1 - mu) * kappa
            log_like, d_alpha, d_beta = sbg_log_likelihood(alpha, beta, t, churned, seen_from)
            value = -(weights * log_like).sum() / total + 0.5 * (penalty * gamma * gamma).sum()
            d_eta = weights * (d_alpha - d_beta) * kappa * mu * (1 - mu)
            gradient = np.append(-(design.T @ d_eta) / total + penalty * gamma,
                                 -(weights * (d_alpha * alpha + d_beta * beta)).sum() / total)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(theta)
            return value, gradient

        # start: the pooled per-renewal churn rate and a moderate heterogeneity
        exposure = (weights * (t - seen_from)).sum()  # renewals at risk while in the data
        rate = np.clip((weights * churned).sum() / max(exposure, 1.0), 1e-4, 0.9)
        start = np.zeros(design.shape[1] + 1)
        start[0], start[-1] = logit(rate), np.log(2.0)
        with np.errstate(all="ignore"):
            result = minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
        theta = result.x
        if not (np.all(np.isfinite(theta)) and np.abs(result.jac).max() < 1e-4):
            raise FitError(f"the sBG fit did not converge on {int(total):,} subscribers ({result.message}); "
                           "check that the bills are regular or use --business non-contractual")
        # a large alpha + beta is a churn rate the same for everyone (a plain geometric): usable;
        # a tiny one means each subscriber either never or always churns, which the data cannot tell apart
        if not np.exp(theta[-1]) > 1e-6:
            raise FitError(f"the sBG fit ran to alpha + beta = {np.exp(theta[-1]):.3g} (subscribers who either "
                           "never or always churn): no usable model; use a longer calibration period")
        names = ["intercept", *self.design_.names]
        self.coef_ = dict(zip(names, map(float, theta[:-1])))
        self.kappa_ = float(np.exp(theta[-1]))
        mu = float(expit(theta[0]))
        self.params_ = {"alpha": mu * self.kappa_, "beta": (1 - mu) * self.kappa_}
        self.n_customers_ = int(total)
        self.log_likelihood_ = -float(objective(theta)[0] - 0.5 * (penalty * theta[:-1] ** 2).sum()) * total
        self.cov_ = covariance_from(_jacobian(lambda th: objective(th)[1], theta) * total)
        return self

    def alpha_beta(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's (alpha, beta) from their attributes."""
        gamma = np.array(list(self.coef_.values()))
        codes = self.design_.codes(features)
        eta = self.design_.linear_predictor(codes, gamma) if codes else np.full(len(features), gamma[0])
        mu = expit(eta)
        return mu * self.kappa_, (1 - mu) * self.kappa_

    def standard_errors(self) -> dict[str, float]:
        """Of the logit coefficients and of log kappa (``log_kappa``)."""
        names = [*self.coef_, "log_kappa"]
        if self.cov_ is None:
            return {name: float("nan") for name in names}
        return {name: float(np.sqrt(max(v, 0.0))) for name, v in zip(names, np.diag(self.cov_))}

    def retention_curve(self, periods: int, alpha: float | None = None, beta: float | None = None) -> np.ndarray:
        """S(0..periods) for one (alpha, beta), by default the reference customer's."""
        alpha = self.params_["alpha"] if alpha is None else alpha
        beta = self.params_["beta"] if beta is None else beta
        return survival_ratio(alpha, beta, np.arange(periods + 1, dtype=float))


def _jacobian(gradient, at: np.ndarray, step: float = 1e-5) -> np.ndarray:
    columns = [(gradient(at + step * unit) - gradient(at - step * unit)) / (2 * step) for unit in np.eye(len(at))]
    hessian = np.column_stack(columns)
    return (hessian + hessian.T) / 2


# --- the value model ---------------------------------------------------------------------

@dataclass
class BillModel:
    """The bill amount: each customer's mean spend per billing day (first bill included);
    the base's mean bill for a customer without one. Subscription bills barely vary within
    a customer, so no spend model is fitted (Gamma-Gamma would run to p -> inf)."""

    params_: dict[str, float] = field(default_factory=dict)
    frequency_monetary_correlation_: float = float("nan")
    correlation_warning: str | None = None

    def fit(self, features: pd.DataFrame) -> "BillModel":
        bill = _own_bill(features)
        known = np.isfinite(bill) & (bill > 0)
        if not known.any():
            raise FitError("no subscriber has a positive bill in the calibration period")
        self.params_ = {"mean_bill": float(bill[known].mean())}
        return self

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        bill = _own_bill(features)
        return np.where(np.isfinite(bill) & (bill > 0), bill, self.params_["mean_bill"])


def _own_bill(features: pd.DataFrame) -> np.ndarray:
    if "total_spend" in features.columns and "purchase_days" in features.columns:
        days = features["purchase_days"].to_numpy(dtype=float)
        return np.divide(features["total_spend"].to_numpy(dtype=float), days,
                         out=np.full(len(features), np.nan), where=days > 0)
    frequency = features["frequency"].to_numpy(dtype=float)
    return np.where(frequency > 0, features["monetary"].to_numpy(dtype=float), np.nan)


@dataclass
class SubscriptionValueModel:
    """A sBG and the bill amounts, with the value settings and tier edges: the same outputs
    as the other value families (docs/value-models.md, "Subscription businesses").

    Settings: ``period_days``, the billing period; ``grace``: a bill overdue by more than
    this share of a period means the subscription lapsed (churned); until then the renewal
    is pending and counts with the customer's renewal probability; ``covariates``: the
    attribute columns of the sBG (``default_covariates`` when None); ``business_reason``:
    why this base was taken for a subscription base. ``fit(features)`` sets ``purchase``
    (the sBG), ``spend`` (the bills) and ``tier_edges`` and returns the model."""

    config: ValueConfig = field(default_factory=ValueConfig)
    time_unit_days: float = 1.0
    period_days: float = 30.0
    grace: float = 0.5
    covariates: tuple[str, ...] | None = None
    business_reason: str = ""
    purchase: ShiftedBetaGeometric | None = None
    spend: BillModel | None = None
    tier_edges: TierEdges | None = None

    family = FAMILY
    business = SUBSCRIPTION

    def fit(self, features: pd.DataFrame) -> "SubscriptionValueModel":
        if not self.period_days > 0:
            raise RetainError(f"the billing period must be positive, not {self.period_days}")
        _check_columns(features)
        n_bills, _, lapsed, earlier = billing_histories(features, self.period_days, self.time_unit_days, self.grace)
        self.purchase = ShiftedBetaGeometric(covariates=self.covariates).fit(n_bills, lapsed, features, earlier)
        self.spend = BillModel().fit(features)
        values = self.predict_values(features, with_interval=False)
        self.tier_edges = fit_tier_edges(features, values["clv"], self.config)
        return self

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*PASSTHROUGH_COLUMNS, self.config.current_value_column, "total_spend",
                                    "purchase_days", *self.purchase.design_.columns]))

    # --- the renewal process -------------------------------------------------------------

    def _renewals(self, features: pd.DataFrame, days: float) -> "_Renewals":
        """The renewals due in the next ``days`` and the chance of making each, once per
        distinct (alpha, beta', days since the last bill) (far fewer than customers)."""
        _check_columns(features)
        n_bills, since_last, lapsed, _ = billing_histories(features, self.period_days, self.time_unit_days, self.grace)
        alpha, beta = self.purchase.alpha_beta(features)
        # after n - 1 renewals theta | history ~ Beta(alpha, beta + n - 1) (the survivors are the loyal ones)
        since_last = np.where(lapsed, -1.0, since_last)  # lapsed: no renewals, whatever the history
        patterns, _, inverse = collapse({"alpha": alpha, "beta": beta + n_bills - 1, "since": since_last})
        alpha, beta_now, since_last = patterns["alpha"], patterns["beta"], patterns["since"]
        lapsed = since_last < 0
        # renewal j is due j periods after the last bill, counted in days from the cutoff;
        # one overdue within the grace period is pending: paid now if at all
        count = int(np.ceil((days + self.period_days * (1 + self.grace)) / self.period_days)) + 1
        j = np.arange(1, count + 1, dtype=float)
        due = j[None, :] * self.period_days - since_last[:, None]
        inside = (due < days) & ~lapsed[:, None]
        # S(n-1+j)/S(n-1) = prod_{i<j} (beta' + i)/(alpha + beta' + i): a running product, not
        # two log Beta functions per cell
        step = (beta_now[:, None] + j[None, :] - 1) / (alpha[:, None] + beta_now[:, None] + j[None, :] - 1)
        chance = np.where(inside, np.cumprod(step, axis=1), 0.0)
        return _Renewals(chance=chance, due=np.maximum(due, 0.0), inside=inside, lapsed=lapsed,
                         pending=(since_last > self.period_days) & ~lapsed, next_renewal=step[:, 0], inverse=inverse)

    def expected_over(self, days: float, features: pd.DataFrame) -> np.ndarray:
        """Expected bills in the next ``days`` per customer."""
        renewals = self._renewals(features, days)
        return renewals.chance.sum(axis=1)[renewals.inverse]

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        return self.spend.expected_order_value(features)

    def means_over(self, days: float, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected bills and spend (bills x bill amount, undiscounted) in the next ``days``."""
        bills = self.expected_over(days, features)
        return bills, bills * self.expected_order_value(features)

    def predict_values(self, features: pd.DataFrame, with_interval: bool = True) -> dict[str, np.ndarray]:
        """p_alive: 1 for a customer whose current period is paid, the chance of renewing for
        one whose bill is due but not yet seen (within the grace period), 0 once lapsed.
        p_alive_horizon: the chance of making every renewal due within the horizon.
        expected_purchases: expected bills in the horizon, sum_j S(n-1+j)/S(n-1).
        clv: margin x bill x sum_j S(n-1+j)/S(n-1) (1 + rate)^(-due_j / 365), each bill
        discounted at its own due date."""
        horizon = self.config.horizon_days
        renewals = self._renewals(features, horizon)
        chance, inverse = renewals.chance, renewals.inverse
        bill = self.expected_order_value(features)
        discount = np.exp(renewals.due * (-np.log1p(self.config.annual_discount_rate) / 365.0))
        due_count = renewals.inside.sum(axis=1)
        last_chance = np.where(due_count > 0, chance[np.arange(len(chance)), np.maximum(due_count - 1, 0)], 1.0)
        values = {
            "p_alive": np.where(renewals.lapsed, 0.0, np.where(renewals.pending, renewals.next_renewal, 1.0))[inverse],
            "p_alive_horizon": np.where(renewals.lapsed, 0.0, last_chance)[inverse],
            "p_no_purchase_horizon": np.where(due_count > 0, 1.0 - chance[:, 0], 1.0)[inverse],
            "expected_purchases": chance.sum(axis=1)[inverse],
            "expected_order_value": bill,
            "clv": self.config.margin * bill * (chance * discount).sum(axis=1)[inverse],
        }
        if with_interval:
            low, high = (1 - self.config.interval) / 2, (1 + self.config.interval) / 2
            cumulative = np.cumsum(discount * renewals.inside, axis=1)
            for name, level in (("low", low), ("high", high)):
                bills = renewals.pattern_quantile(level)
                paid = np.where(bills > 0, cumulative[np.arange(len(bills)), np.maximum(bills - 1, 0)], 0.0)
                values[f"expected_purchases_{name}"] = bills.astype(float)[inverse]
                values[f"clv_{name}"] = self.config.margin * bill * paid[inverse]
        return values

    def outcomes(self, features: pd.DataFrame, days: float) -> "RenewalOutcomes":
        return RenewalOutcomes(self._renewals(features, days), self.expected_order_value(features))

    def forecast(self, features: pd.DataFrame, days: float) -> Forecast:
        outcomes = self.outcomes(features, days)
        bills = outcomes.renewals.chance.sum(axis=1)[outcomes.renewals.inverse]
        return Forecast(bills, bills * outcomes.bill, outcomes)

    def predictive_interval(self, features: pd.DataFrame, days: float, level: float | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per customer: the equal-tailed ``level`` interval of bills and of spend
        (undiscounted, bills x bill amount) in the next ``days``."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).interval(level)

    def interval_coverage(self, features: pd.DataFrame, days: float, actual_purchases, actual_spend,
                          level: float | None = None) -> dict[str, float]:
        """As the other families' (randomized PIT coverage and plain share inside), with
        spend read in whole bills (``RenewalOutcomes.coverage``)."""
        level = self.config.interval if level is None else level
        return self.outcomes(features, days).coverage(actual_purchases, actual_spend, level)

    def retention_curves(self, features: pd.DataFrame, periods: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Renewals 0..K, the share of subscribers still paying after each (Kaplan-Meier [KM1958],
        [KM1958], over the histories, lapsed = churned, the others censored) and the model's
        S(k) = B(alpha_i, beta_i + k) / B(alpha_i, beta_i) averaged over the same customers."""
        n_bills, _, lapsed, earlier = billing_histories(features, self.period_days, self.time_unit_days, self.grace)
        t = np.where(lapsed, n_bills, n_bills - 1)
        periods = int(t.max()) if periods is None else periods
        k = np.arange(periods + 1)
        # at risk of failing renewal j: seen in the data by then (left truncation) and not yet gone
        at_risk = np.array([((t >= j) & (earlier < j)).sum() for j in k[1:]], dtype=float)
        failed = np.bincount(t[lapsed].astype(np.int64), minlength=periods + 1)[1:periods + 1]
        actual = np.concatenate([[1.0], np.cumprod(1 - np.divide(failed, at_risk, out=np.zeros_like(at_risk),
                                                                  where=at_risk > 0))])
        alpha, beta = self.purchase.alpha_beta(features)
        fitted = survival_ratio(alpha[:, None], beta[:, None], k[None, :].astype(float)).mean(axis=0)
        return k, actual, fitted

    # --- the score table -----------------------------------------------------------------

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The value model's scores, one row per input row, in input order."""
        return score_table(features, self.predict_values(features), self.tier_edges, self.config)

    def describe(self) -> dict:
        return {
            "purchase_model": FAMILY,
            "business": SUBSCRIPTION,
            "business_reason": self.business_reason,
            "purchase_params": self.purchase.params_,
            "coefficients": self.purchase.coef_,
            "kappa": self.purchase.kappa_,
            "spend_params": self.spend.params_,
            "period_days": self.period_days,
            "time_unit_days": self.time_unit_days,
            **self.config.money_terms(),
        }

    def params(self) -> dict[str, float]:
        return self.purchase.params_

    def fit_metrics(self) -> dict[str, float]:
        return {**{f"coef_{metric_name(k)}": v for k, v in self.purchase.coef_.items()},
                "billing_period_days": self.period_days}

    @property
    def log_likelihood(self) -> float:
        return self.purchase.log_likelihood_


@dataclass(frozen=True)
class _Renewals:
    """Per distinct pattern i of (alpha, beta', days since the last bill): ``chance[i, j]`` =
    P(renewal j+1 is made | history), 0 beyond the window (so P(N >= j+1) for the count N of
    bills in it); ``due[i, j]`` its due day from the cutoff."""

    chance: np.ndarray
    due: np.ndarray
    inside: np.ndarray
    lapsed: np.ndarray
    pending: np.ndarray
    next_renewal: np.ndarray
    inverse: np.ndarray  # each customer's pattern (row of the arrays above)

    def pattern_quantile(self, level: float) -> np.ndarray:
        """Per pattern, the smallest n with P(N <= n) >= level: how many j have P(N >= j) > 1 - level."""
        return (self.chance > 1 - level).sum(axis=1)

    def count_quantile(self, level: float) -> np.ndarray:
        """``pattern_quantile`` per customer."""
        return self.pattern_quantile(level)[self.inverse]

    def count_cdf(self, n: np.ndarray) -> np.ndarray:
        """Per customer P(N <= n) = 1 - P(N >= n + 1); 0 for n < 0."""
        n = np.asarray(n).astype(np.int64)
        column = np.clip(n, 0, self.chance.shape[1] - 1)
        above = np.where(n + 1 <= self.chance.shape[1], self.chance[self.inverse, column], 0.0)
        return np.where(n < 0, 0.0, 1.0 - above)


@dataclass(frozen=True)
class RenewalOutcomes:
    """The bills N in a horizon (``renewals``) and the spend S = N x ``bill``, each
    customer's bill amount."""

    renewals: _Renewals
    bill: np.ndarray

    def count_quantile(self, level: float) -> np.ndarray:
        return self.renewals.count_quantile(level).astype(float)

    def count_cdf(self, n: np.ndarray) -> np.ndarray:
        return self.renewals.count_cdf(n)

    def spend_quantile(self, level: float) -> np.ndarray:
        return self.count_quantile(level) * self.bill

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        low, high = (self.count_quantile(q) for q in ((1 - level) / 2, (1 + level) / 2))
        return low, high, low * self.bill, high * self.bill

    def coverage(self, actual_purchases, actual_spend, level: float) -> dict[str, float]:
        """The measures of ``retain.models.value.coverage.coverage``; spend is bills x bill
        amount here, so an actual spend is read as the nearest whole number of bills at the
        customer's bill."""
        renewals, bill = self.renewals, self.bill
        low_q, high_q = (1 - level) / 2, (1 + level) / 2
        purchases = np.asarray(actual_purchases, dtype=float)
        spend = np.asarray(actual_spend, dtype=float)
        spend_bills = np.rint(np.divide(spend, bill, out=np.zeros_like(spend), where=bill > 0))

        def covered(counts):
            return band_share(renewals.count_cdf(counts - 1), renewals.count_cdf(counts), low_q, high_q)

        count_low, count_high = renewals.count_quantile(low_q), renewals.count_quantile(high_q)
        inside = (purchases >= count_low) & (purchases <= count_high)
        spend_inside = (spend_bills >= count_low) & (spend_bills <= count_high)
        return {
            "purchases_interval_coverage": float(covered(purchases).mean()),
            "spend_interval_coverage": float(covered(spend_bills).mean()),
            "purchases_interval_share_inside": float(inside.mean()),
            "spend_interval_share_inside": float(spend_inside.mean()),
            "purchases_interval_mean_width": float((count_high - count_low).mean()),
        }


def _check_columns(features: pd.DataFrame) -> None:
    missing = [c for c in ("customer_id", "frequency", "recency", "T", "monetary") if c not in features.columns]
    if missing:
        raise RetainError(f"the feature table lacks column(s) {missing}; build it with retain.features.build_features")


def metric_name(name: str) -> str:
    """A coefficient name as MLflow accepts it (letters, digits, _ - . / and spaces)."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", name)
