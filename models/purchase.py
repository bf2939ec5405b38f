"""Purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD) on the lifetimes fitters.

lifetimes does the maximum-likelihood fit; this module adds what it lacks: fitting on
customers collapsed by identical (frequency, recency, T), P(alive) at a future horizon,
the probability of no purchase in a horizon, a parameter covariance for every family
(lifetimes has none for Pareto/NBD) and predictions evaluated once per distinct history.
A fitted model keeps only its parameters, so it pickles small and scores any subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

from retain.errors import RetainError

MIN_REPEAT_BUYERS = 10

FAMILIES = {
    "bgnbd": ("BG/NBD", BetaGeoFitter, ("r", "alpha", "a", "b")),
    "mbgnbd": ("MBG/NBD", ModifiedBetaGeoFitter, ("r", "alpha", "a", "b")),
    "pareto": ("Pareto/NBD", ParetoNBDFitter, ("r", "alpha", "s", "beta")),
}


class FitError(RetainError):
    """A model could not be fitted; the message says what to change."""


def collapse(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given equal-length columns, their counts, and each input row's
    position among them (so that ``distinct[col][inverse]`` restores the input)."""
    names = list(columns)
    key = np.zeros(len(columns[names[0]]), dtype=np.int64)
    levels = []
    for name in names:
        # one integer key per row from per-column codes: far faster than factorizing tuples
        codes, uniques = pd.factorize(np.asarray(columns[name], dtype=float))
        if len(uniques) and key.max(initial=0) > np.iinfo(np.int64).max // len(uniques):
            raise OverflowError("too many distinct combinations to collapse")
        key = key * len(uniques) + codes
        levels.append(uniques)
    inverse, first_keys = pd.factorize(key)
    counts = np.bincount(inverse, minlength=len(first_keys))
    distinct = {}
    for name, uniques in zip(reversed(names), reversed(levels)):
        distinct[name] = uniques[first_keys % len(uniques)]
        first_keys = first_keys // len(uniques)
    return {name: distinct[name] for name in names}, counts, inverse


def covariance_from(information: np.ndarray) -> np.ndarray | None:
    """Inverse observed information, or None where it is singular (no interval then)."""
    try:
        return np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None


def numeric_hessian(function, at: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian; the functions here are smooth log-likelihoods in log space."""
    k = len(at)
    hessian = np.empty((k, k))
    unit = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            value = (
                function(at + unit[i] + unit[j]) - function(at + unit[i] - unit[j])
                - function(at - unit[i] + unit[j]) + function(at - unit[i] - unit[j])
            ) / (4 * step * step)
            hessian[i, j] = hessian[j, i] = value
    return hessian


def _bgnbd_objective(log_params, x, t_x, T, weights, x_groups=None) -> tuple[float, np.ndarray]:
    """BG/NBD total negative log-likelihood (Fader, Hardie & Lee 2005, eq. 6) and its
    gradient in log parameters. The same likelihood as lifetimes' BetaGeoFitter, whose
    autograd gradient costs about ten times more; the terms in x alone are evaluated once
    per distinct x."""
    r, alpha, a, b = np.exp(log_params)
    distinct_x, x_weight = x_groups or _x_groups(x, weights)
    x_terms = (gammaln(r + distinct_x) - gammaln(r) + r * np.log(alpha)
               + gammaln(a + b) + gammaln(b + distinct_x) - gammaln(b) - gammaln(a + b + distinct_x))
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    repeat = x > 0
    b_x = np.where(repeat, b + x - 1, 1.0)
    alive_term = -(r + x) * log_alpha_T
    dropped_term = np.where(repeat, np.log(a) - np.log(b_x) - (r + x) * log_alpha_tx, -np.inf)
    top = np.maximum(alive_term, dropped_term)
    e_alive, e_dropped = np.exp(alive_term - top), np.exp(dropped_term - top)
    log_likelihood = (x_weight * x_terms).sum() + (weights * (top + np.log(e_alive + e_dropped))).sum()
    share_alive = e_alive / (e_alive + e_dropped)
    share_dropped = 1.0 - share_alive
    d_r = (x_weight * (digamma(r + distinct_x) - digamma(r) + np.log(alpha))).sum() - (
        weights * (share_alive * log_alpha_T + share_dropped * log_alpha_tx)).sum()
    d_alpha = weights.sum() * r / alpha - (
        weights * (r + x) * (share_alive / (alpha + T) + share_dropped / (alpha + t_x))).sum()
    d_a = (x_weight * (digamma(a + b) - digamma(a + b + distinct_x))).sum() + (weights * share_dropped).sum() / a
    d_b = (x_weight * (digamma(a + b) + digamma(b + distinct_x) - digamma(b) - digamma(a + b + distinct_x))).sum() - (
        weights * share_dropped / b_x).sum()
    gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return -log_likelihood, -gradient


def _x_groups(x, weights) -> tuple[np.ndarray, np.ndarray]:
    distinct_x, which = np.unique(x, return_inverse=True)
    return distinct_x, np.bincount(which, weights=weights)


def _fit_bgnbd(x, t_x, T, weights) -> np.ndarray:
    """Maximum likelihood with BFGS on time scaled so that max T = 1 (as lifetimes does,
    for conditioning); returns log parameters in the original time unit. Large bases start
    from a fit on a 5% sample of histories, with that fit's curvature scaled up as the
    first inverse-Hessian guess: the full fit then takes a handful of steps, not forty."""
    scale = 1.0 / T.max()
    data = (x, t_x * scale, T * scale, weights)
    start, options = np.zeros(4), {"gtol": 1e-9 * weights.sum()}
    if len(x) > 40_000:
        sample = np.random.default_rng(0).random(len(x)) < max(0.05, 20_000 / len(x))
        part = tuple(column[sample] for column in data)
        warm = minimize(_bgnbd_objective, start, jac=True, method="BFGS",
                        args=(*part, _x_groups(part[0], part[3])), options={"gtol": 1e-9 * part[3].sum()})
        curvature = _gradient_jacobian(lambda lp: _bgnbd_objective(lp, *part)[1], warm.x) * (weights.sum() / part[3].sum())
        if warm.success and np.all(np.linalg.eigvalsh(curvature) > 0):
            inverse = np.linalg.inv(curvature)
            start, options["hess_inv0"] = warm.x, (inverse + inverse.T) / 2
    result = minimize(_bgnbd_objective, x0=start, jac=True, method="BFGS",
                      args=(*data, _x_groups(x, weights)), options=options)
    if not np.all(np.isfinite(result.x)) or np.abs(result.jac).max() > 1e-4 * weights.sum():
        raise FitError(
            f"the BG/NBD fit did not converge on {int(weights.sum()):,} customers ({result.message}); "
            "try a penalizer (e.g. --penalizer 0.001) or a longer calibration period"
        )
    log_params = result.x.copy()
    log_params[1] -= np.log(scale)
    return log_params


def _gradient_jacobian(gradient, at: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian as the central-difference Jacobian of an analytic gradient."""
    columns = [(gradient(at + step * unit) - gradient(at - step * unit)) / (2 * step) for unit in np.eye(len(at))]
    hessian = np.column_stack(columns)
    return (hessian + hessian.T) / 2


def _on_distinct(function, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``function(x, T)`` evaluated once per distinct (x, T) pair: the hypergeometric terms
    depend on nothing else, and there are far fewer pairs than customers."""
    distinct, _, inverse = collapse({"x": x, "T": T})
    values = function(distinct["x"], distinct["T"])
    return values[..., inverse]


def _bgnbd_expected_purchases(horizons: np.ndarray, x: np.ndarray, T: np.ndarray, params) -> np.ndarray:
    """The numerator of FHL (2005) eq. 10, one row per horizon; times P(alive) it is the
    conditional expectation (the denominator of eq. 10 is 1 / P(alive))."""
    r, alpha, a, b = (params[name] for name in ("r", "alpha", "a", "b"))

    def numerator(x, T):
        t = horizons[:, None]
        z = t / (alpha + T + t)
        c = a + b + x - 1
        log_hyp = np.log(hyp2f1(r + x, b + x, c, z))
        # where 2F1 overflows, Euler's transformation gives the same value stably (as lifetimes does)
        log_alt = np.log(hyp2f1(c - r - x, c - b - x, c, z)) + (c - r - b - 2 * x) * np.log1p(-z)
        log_hyp = np.where(np.isinf(log_hyp), log_alt, log_hyp)
        return (c / (a - 1)) * (1 - np.exp(log_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T))))

    return _on_distinct(numerator, x, T)


@dataclass
class PurchaseModel:
    """One purchase-count model family. ``fit`` leaves ``params_`` (time in the feature
    table's unit), ``log_likelihood_`` (the total over customers), ``log_params_cov_``
    (covariance of the log parameters, inverse observed information) and ``n_customers_``."""

    family: str = "bgnbd"
    penalizer: float = 0.0
    params_: dict[str, float] = field(default_factory=dict)
    log_likelihood_: float = float("nan")
    log_params_cov_: np.ndarray | None = None
    n_customers_: int = 0
    n_patterns_: int = 0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"purchase model must be one of {sorted(FAMILIES)}, not {self.family!r}")

    @property
    def label(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return FAMILIES[self.family][2]

    # --- fitting -------------------------------------------------------------------

    def fit(self, frequency, recency, T) -> "PurchaseModel":
        """Maximum likelihood on the distinct (frequency, recency, T) rows weighted by their
        counts: the same likelihood as one row per customer, evaluated far fewer times."""
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        repeaters = int((frequency > 0).sum())
        if repeaters < MIN_REPEAT_BUYERS:
            raise FitError(
                f"only {repeaters} of {len(frequency):,} customers bought more than once in the calibration period; "
                f"the {self.label} model needs at least {MIN_REPEAT_BUYERS} to learn how customers drop out: "
                "use a later calibration end or more history"
            )
        distinct, counts, _ = collapse({"frequency": frequency, "recency": recency, "T": T})
        data = (distinct["frequency"], distinct["recency"], distinct["T"], counts.astype(float))
        if self.family == "bgnbd" and self.penalizer == 0:
            log_params = _fit_bgnbd(*data)
        else:
            log_params = self._fit_with_lifetimes(*data)
        self.params_ = dict(zip(self.param_names, map(float, np.exp(log_params))))
        if not all(np.isfinite(v) and 1e-6 < v < 1e6 for v in self.params_.values()):
            shown = ", ".join(f"{k}={v:.3g}" for k, v in self.params_.items())
            raise FitError(
                f"the {self.label} fit ran to extreme parameters ({shown}), so it has not converged to a usable "
                "model; try a penalizer (e.g. --penalizer 0.001) or a longer calibration period"
            )
        self.n_customers_ = int(counts.sum())
        self.n_patterns_ = len(counts)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = -self._total_negative_log_likelihood(self._log_params(), *data)
        if not np.isfinite(self.log_likelihood_):
            self._raise_not_finite(data[0])
        if self.family == "bgnbd":
            groups = _x_groups(data[0], data[3])
            information = _gradient_jacobian(lambda lp: _bgnbd_objective(lp, *data, groups)[1], self._log_params())
        else:
            information = numeric_hessian(lambda lp: self._total_negative_log_likelihood(lp, *data), self._log_params())
        self.log_params_cov_ = covariance_from(information)
        return self

    def _fit_with_lifetimes(self, frequency, recency, T, weights) -> np.ndarray:
        fitter = FAMILIES[self.family][1](penalizer_coef=self.penalizer)
        extra = {}
        if self.family == "pareto":
            # lifetimes starts Nelder-Mead from a random point; a fixed start makes fits repeatable
            extra = {"initial_params": np.ones(4)}
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                # lifetimes' Pareto/NBD likelihood overflows for extreme histories; checked below
                warnings.simplefilter("ignore", RuntimeWarning)
                fitter.fit(frequency, recency, T, weights=weights, **extra)
        except ConvergenceError:
            raise FitError(
                f"the {self.label} fit did not converge on {int(weights.sum()):,} customers; "
                "try a penalizer (e.g. --penalizer 0.001) or a longer calibration period"
            ) from None
        return np.log(fitter.params_[list(self.param_names)].to_numpy(dtype=float))

    def _raise_not_finite(self, frequency) -> None:
        raise FitError(
            f"the {self.label} likelihood is not finite on this data (lifetimes' formula overflows for "
            f"histories such as frequency {int(np.max(frequency))}); use a coarser time unit "
            "(e.g. --time-unit-days 7) or another model"
        )

    def _log_params(self) -> np.ndarray:
        return np.log([self.params_[name] for name in self.param_names])

    def _total_negative_log_likelihood(self, log_params, frequency, recency, T, weights) -> float:
        # lifetimes' objectives are normalised differently per family; undo that to get the total
        if self.family == "bgnbd":
            mean = BetaGeoFitter()._negative_log_likelihood(log_params, frequency, recency, T, weights, 0.0)
            return float(mean * weights.sum())
        if self.family == "mbgnbd":
            mean = ModifiedBetaGeoFitter._negative_log_likelihood(log_params, frequency, recency, T, weights, 0.0)
            return float(mean * weights.sum())
        scaled = ParetoNBDFitter._negative_log_likelihood(np.exp(log_params), frequency, recency, T, weights, 0.0)
        return float(scaled * weights.mean())

    # --- prediction ----------------------------------------------------------------

    def _fitter(self, params: dict[str, float] | None = None):
        fitter = FAMILIES[self.family][1]()
        fitter.params_ = pd.Series(params or self.params_)[list(self.param_names)]
        return fitter

    def _require_fitted(self) -> None:
        if not self.params_:
            raise RuntimeError("fit the purchase model before predicting")

    def p_alive(self, frequency, recency, T, params=None) -> np.ndarray:
        """P(alive) now: lifetimes' conditional_probability_alive (FHL 2005 eq. 13 for BG/NBD)."""
        self._require_fitted()
        fitter = self._fitter(params)
        value = fitter.conditional_probability_alive(
            np.asarray(frequency, float), np.asarray(recency, float), np.asarray(T, float)
        )
        return np.clip(np.asarray(value, dtype=float), 0.0, 1.0)

    def expected_purchases(self, t, frequency, recency, T, params=None) -> np.ndarray:
        """Expected repeat purchases in (T, T + t] given the history (FHL 2005 eq. 10).
        ``t`` may be a 1-D array of horizons: the result then has one row per horizon."""
        self._require_fitted()
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        horizons = np.atleast_1d(np.asarray(t, dtype=float))
        if self.family == "bgnbd":
            result = _bgnbd_expected_purchases(horizons, frequency, T, params or self.params_)
            result *= self.p_alive(frequency, recency, T, params)
        else:
            fitter = self._fitter(params)
            result = np.vstack([
                fitter.conditional_expected_number_of_purchases_up_to_time(h, frequency, recency, T)
                if h > 0 else np.zeros(len(frequency)) for h in horizons
            ])
        result = np.maximum(np.where(horizons[:, None] > 0, result, 0.0), 0.0)
        return result if np.ndim(t) else result[0]

    def p_alive_at(self, t: float, frequency, recency, T, alive: np.ndarray | None = None) -> np.ndarray:
        """P(still alive at T + t | history).

        BG/NBD: given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x); each of
        the Poisson(lambda t) purchases in (T, T+t] is survived with prob. 1-p, so
        P(survive) = E[exp(-lambda p t)] = E_p[(1 + p t/(alpha+T))^-(r+x)]
                   = 2F1(r+x, a; a+b+x; -t/(alpha+T))   (Euler's integral).
        MBG/NBD: the same with p ~ Beta(a, b+x+1) (a drop-out chance at every purchase,
        the first included). Pareto/NBD: mu ~ Gamma(s, beta+T), P(survive) = ((beta+T)/(beta+T+t))^s.
        """
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        alive = self.p_alive(frequency, recency, T) if alive is None else alive
        p = self.params_
        if self.family == "pareto":
            survive = ((p["beta"] + T) / (p["beta"] + T + t)) ** p["s"]
        else:
            extra = 1.0 if self.family == "mbgnbd" else 0.0
            survive = _on_distinct(
                lambda x, age: hyp2f1(p["r"] + x, p["a"], p["a"] + p["b"] + x + extra, -t / (p["alpha"] + age)),
                frequency, T)
        return np.clip(alive * survive, 0.0, 1.0)

    def p_no_purchase(self, t: float, frequency, recency, T, alive: np.ndarray | None = None) -> np.ndarray:
        """P(no purchase in (T, T + t] | history).

        BG/NBD and MBG/NBD: dead, or alive with no Poisson event in t (drop-out happens only
        at a purchase): (1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x).
        Pareto/NBD: lifetimes' conditional P(N = 0) (Fader & Hardie note 028, eq. 16).
        """
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        if self.family == "pareto":
            value = self._fitter().conditional_probability_of_n_purchases_up_to_time(0, t, frequency, recency, T)
            return np.clip(np.asarray(value, dtype=float), 0.0, 1.0)
        alive = self.p_alive(frequency, recency, T) if alive is None else alive
        p = self.params_
        quiet = ((p["alpha"] + T) / (p["alpha"] + T + t)) ** (p["r"] + frequency)
        return np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected repeat purchases by a new customer in their first t units (unconditional)."""
        return np.asarray(self._fitter().expected_number_of_purchases_up_to_time(np.asarray(t, float)), dtype=float)

    def standard_errors(self) -> dict[str, float]:
        """Delta-method standard errors of the parameters."""
        if self.log_params_cov_ is None:
            return {name: float("nan") for name in self.param_names}
        variance = np.diag(self.log_params_cov_)
        return {name: float(self.params_[name] * np.sqrt(max(v, 0.0))) for name, v in zip(self.param_names, variance)}
