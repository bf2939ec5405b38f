"""Purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD) on retain's own likelihoods.

Each family is fitted by BFGS on its exact log-likelihood with an analytic gradient, on
customers collapsed by identical (frequency, recency, T), in log space throughout so that
daily histories with hundreds of purchases neither overflow nor underflow. The estimates
are lifetimes' (tested against its fitters and the published CDNOW values); this module
adds what lifetimes lacks: convergence and speed on large daily bases, P(alive) at a
future horizon, the probability of no purchase in a horizon, a parameter covariance for
every family and predictions evaluated once per distinct history. A fitted model keeps
only its parameters, so it pickles small and scores any subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from retain.data.frames import float_array
from retain.data import fast_paths
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
    n = len(columns[names[0]])
    if fast_paths.is_small(n):
        return fast_paths.distinct_rows_by_dict({name: np.asarray(columns[name], dtype=float) for name in names})
    key = np.zeros(n, dtype=np.int64)
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


def _bgnbd_objective(log_params, x, t_x, T, weights, groups=None) -> tuple[float, np.ndarray]:
    """BG/NBD total negative log-likelihood ([FHL2005a] eq. 6) and its
    gradient in log parameters. The same likelihood as lifetimes' BetaGeoFitter, whose
    autograd gradient costs far more; the terms in x alone are evaluated once
    per distinct x."""
    return _beta_geometric_objective(log_params, x, t_x, T, weights, groups, modified=False)


def _mbgnbd_objective(log_params, x, t_x, T, weights, groups=None) -> tuple[float, np.ndarray]:
    """MBG/NBD ([BDF2007]) total negative log-likelihood and its
    gradient: BG/NBD with a drop-out chance at time zero too, so (1 - p)^(x+1) survives the
    history and the 'dropped after the last purchase' term exists for x = 0 as well. The
    same likelihood as lifetimes' ModifiedBetaGeoFitter."""
    return _beta_geometric_objective(log_params, x, t_x, T, weights, groups, modified=True)


def _beta_geometric_objective(log_params, x, t_x, T, weights, groups, modified: bool) -> tuple[float, np.ndarray]:
    r, alpha, a, b = np.exp(log_params)
    distinct_x, x_weight = (groups or _groups(x, t_x, T, weights))[:2]
    extra = 1.0 if modified else 0.0
    x_terms = (gammaln(r + distinct_x) - gammaln(r) + r * np.log(alpha)
               + gammaln(a + b) + gammaln(b + distinct_x + extra) - gammaln(b) - gammaln(a + b + distinct_x + extra))
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    # BG/NBD: drop-out after the last of x >= 1 purchases; MBG/NBD: after any of x + 1 "events"
    dropped_possible = np.ones_like(x, dtype=bool) if modified else x > 0
    b_x = np.where(dropped_possible, b + x - 1 + extra, 1.0)
    alive_term = -(r + x) * log_alpha_T
    dropped_term = np.where(dropped_possible, np.log(a) - np.log(b_x) - (r + x) * log_alpha_tx, -np.inf)
    top = np.maximum(alive_term, dropped_term)
    e_alive, e_dropped = np.exp(alive_term - top), np.exp(dropped_term - top)
    log_likelihood = (x_weight * x_terms).sum() + (weights * (top + np.log(e_alive + e_dropped))).sum()
    share_alive = e_alive / (e_alive + e_dropped)
    share_dropped = 1.0 - share_alive
    d_r = (x_weight * (digamma(r + distinct_x) - digamma(r) + np.log(alpha))).sum() - (
        weights * (share_alive * log_alpha_T + share_dropped * log_alpha_tx)).sum()
    d_alpha = weights.sum() * r / alpha - (
        weights * (r + x) * (share_alive / (alpha + T) + share_dropped / (alpha + t_x))).sum()
    d_a = (x_weight * (digamma(a + b) - digamma(a + b + distinct_x + extra))).sum() + (weights * share_dropped).sum() / a
    d_b = (x_weight * (digamma(a + b) + digamma(b + distinct_x + extra) - digamma(b)
                       - digamma(a + b + distinct_x + extra))).sum() - (weights * share_dropped / b_x).sum()
    gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return -log_likelihood, -gradient


# --- Pareto/NBD -------------------------------------------------------------------------
#
# With lambda ~ Gamma(r, alpha) and mu ~ Gamma(s, beta), a customer with x purchases, the
# last at t_x, observed to T, has likelihood ([Hardie-note-009] eq. 18, as an integral)
#   L = K(x) [ (alpha+T)^-(r+x) (beta+T)^-s + s * integral_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du ],
#   K(x) = Gamma(r+x) alpha^r beta^s / Gamma(r)
# (alive at T, or died at some u in (t_x, T]). The integral is G(t_x) - G(T) with
#   G(y; p, q) = integral_y^inf (alpha+u)^-p (beta+u)^-q du.
# lifetimes evaluates G as 2F1(r+s+x, .; r+s+x+1; z) / (max(alpha,beta)+y)^(r+s+x) outside
# log space: for daily histories with x > ~100 the power underflows and the 2F1 overflows.
# Here log G comes from Euler's transformation ([AS1965] 15.3.3) of that 2F1, which leaves
# 2F1(1, p; p+q; z) with z in [0, 1): bounded and well within scipy's accurate range,
# whatever x is.


def _log_g(p, q, y, alpha: float, beta: float) -> np.ndarray:
    """log G(y; p, q) = log integral_y^inf (alpha+u)^-p (beta+u)^-q du, for p + q > 1.

    With w = (alpha-beta)/(alpha+u) (alpha >= beta) the integral is
    (alpha+y)^-(p+q-1) 2F1(p+q-1, q; p+q; z) / (p+q-1), z = (alpha-beta)/(alpha+y), and Euler's
    transformation 2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) gives
    log G = -p log(alpha+y) - (q-1) log(beta+y) - log(p+q-1) + log 2F1(1, p; p+q; z).
    For alpha < beta the roles of (alpha, p) and (beta, q) swap."""
    if alpha >= beta:
        big, small, p_big, q_small = alpha, beta, p, q
    else:
        big, small, p_big, q_small = beta, alpha, q, p
    z = (big - small) / (big + y)
    return (-p_big * np.log(big + y) - (q_small - 1) * np.log(small + y) - np.log(p + q - 1)
            + np.log(hyp2f1(1.0, p_big, p + q, z)))


def _log_difference(log_high, log_low) -> np.ndarray:
    """log(exp(log_high) - exp(log_low)) for log_high >= log_low; -inf where they are equal."""
    with np.errstate(divide="ignore"):
        return log_high + np.log(-np.expm1(np.minimum(log_low - log_high, 0.0)))


_FD_STEP = 1e-4  # central-difference step for d log G / dr and d log G / ds (rounding ~1e-12 relative)


def _pareto_groups(x, t_x, T, weights):
    """Distinct x (with summed weights) and the distinct (x, y) pairs with y in {t_x, T}:
    G depends on nothing else, and there are far fewer pairs than histories."""
    distinct_x, x_weight = _x_groups(x, weights)
    pairs, _, inverse = collapse({"x": np.concatenate([x, x]), "y": np.concatenate([t_x, T])})
    return distinct_x, x_weight, (pairs["x"], pairs["y"], inverse[: len(x)], inverse[len(x):])


def _pareto_objective(log_params, x, t_x, T, weights, groups=None) -> tuple[float, np.ndarray]:
    """Pareto/NBD total negative log-likelihood ([Hardie-note-009] eq. 18, in log space) and its
    gradient in log parameters. The gradient is analytic through the likelihood; of log G,
    the alpha and beta derivatives are exact (d G / d alpha = -p G(p+1, q), d G / d beta =
    -q G(p, q+1)) and the r and s derivatives central differences of log G on the distinct
    (x, y) pairs (they have no closed form)."""
    r, alpha, s, beta = np.exp(log_params)
    distinct_x, x_weight, (pair_x, pair_y, at_tx, at_T) = groups or _pareto_groups(x, t_x, T, weights)
    p, q = r + pair_x, s + 1.0
    log_g = _log_g(p, q, pair_y, alpha, beta)
    log_g_alpha_shift = _log_g(p + 1, q, pair_y, alpha, beta)
    d_log_g = {
        "r": (_log_g(p + _FD_STEP, q, pair_y, alpha, beta) - _log_g(p - _FD_STEP, q, pair_y, alpha, beta)) / (2 * _FD_STEP),
        "alpha": -p * np.exp(log_g_alpha_shift - log_g),
        "s": (_log_g(p, q + _FD_STEP, pair_y, alpha, beta) - _log_g(p, q - _FD_STEP, pair_y, alpha, beta)) / (2 * _FD_STEP),
    }
    # d G / d beta = -q G(p, q+1), and integrating d/du[(alpha+u)^-p (beta+u)^-q] from y to infinity gives
    # p G(p+1, q) + q G(p, q+1) = (alpha+y)^-p (beta+y)^-q: one 2F1 fewer than computing G(p, q+1)
    log_edge = -p * np.log(alpha + pair_y) - q * np.log(beta + pair_y)
    log_p_g_next = np.log(p) + log_g_alpha_shift
    d_log_g["beta"] = -np.exp(_log_difference(log_edge, np.minimum(log_p_g_next, log_edge)) - log_g)
    x_terms = gammaln(r + distinct_x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_alpha_T, log_beta_T = np.log(alpha + T), np.log(beta + T)
    alive_term = -(r + x) * log_alpha_T - s * log_beta_T
    log_g_tx, log_g_T = log_g[at_tx], log_g[at_T]
    log_integral = _log_difference(log_g_tx, log_g_T)
    dead_term = np.log(s) + log_integral
    top = np.maximum(alive_term, dead_term)
    e_alive, e_dead = np.exp(alive_term - top), np.exp(dead_term - top)
    log_likelihood = (x_weight * x_terms).sum() + (weights * (top + np.log(e_alive + e_dead))).sum()
    share_alive = e_alive / (e_alive + e_dead)
    share_dead = 1.0 - share_alive
    # d log(G(t_x) - G(T)) = (d log G(t_x) - ratio d log G(T)) / (1 - ratio), ratio = G(T)/G(t_x)
    ratio = np.exp(np.minimum(log_g_T - log_g_tx, 0.0))
    dead_weight = np.where(share_dead > 0, weights * share_dead / np.where(share_dead > 0, 1.0 - ratio, 1.0), 0.0)
    # sum over histories of weight x share_dead x d log(integral), gathered onto the pairs first
    on_pairs = (np.bincount(at_tx, weights=dead_weight, minlength=len(pair_x))
                - np.bincount(at_T, weights=dead_weight * ratio, minlength=len(pair_x)))
    # elementwise sums, not "@": BLAS threads can stall on a busy machine
    d_integral = {name: (on_pairs * d).sum() for name, d in d_log_g.items()}
    total, dead_total = weights.sum(), (weights * share_dead).sum()
    alive_weight = weights * share_alive
    d_r = (x_weight * (digamma(r + distinct_x) - digamma(r))).sum() + total * np.log(alpha) - (
        alive_weight * log_alpha_T).sum() + d_integral["r"]
    d_alpha = total * r / alpha - (alive_weight * (r + x) / (alpha + T)).sum() + d_integral["alpha"]
    d_s = total * np.log(beta) - (alive_weight * log_beta_T).sum() + dead_total / s + d_integral["s"]
    d_beta = total * s / beta - s * (alive_weight / (beta + T)).sum() + d_integral["beta"]
    gradient = np.array([d_r * r, d_alpha * alpha, d_s * s, d_beta * beta])
    return -log_likelihood, -gradient


def _pareto_log_integral(x, t_x, T, params) -> np.ndarray:
    """log of integral_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du, per history."""
    r, alpha, s, beta = (params[name] for name in ("r", "alpha", "s", "beta"))
    pairs, _, inverse = collapse({"x": np.concatenate([x, x]), "y": np.concatenate([t_x, T])})
    log_g = _log_g(r + pairs["x"], s + 1.0, pairs["y"], alpha, beta)[inverse]
    return _log_difference(log_g[: len(x)], log_g[len(x):])


def _x_groups(x, weights) -> tuple[np.ndarray, np.ndarray]:
    distinct_x, which = np.unique(x, return_inverse=True)
    return distinct_x, np.bincount(which, weights=weights)


def _groups(x, t_x, T, weights):
    return _x_groups(x, weights)


def _nbd_objective(log_params, x, t_x, T, weights, groups=None) -> tuple[float, np.ndarray]:
    """NBD total negative log-likelihood (r, alpha: Poisson purchases at a gamma-distributed
    rate, nobody drops out; [Hardie-note-009]'s limit s -> 0) and its gradient in log
    parameters: the limit of BG/NBD and MBG/NBD as the drop-out probability a/(a+b) -> 0
    and of Pareto/NBD as s -> 0, with the same constants."""
    r, alpha = np.exp(log_params)
    distinct_x, x_weight = (groups or _groups(x, t_x, T, weights))[:2]
    log_alpha_T = np.log(alpha + T)
    log_likelihood = ((x_weight * (gammaln(r + distinct_x) - gammaln(r) + r * np.log(alpha))).sum()
                      - (weights * (r + x) * log_alpha_T).sum())
    d_r = (x_weight * (digamma(r + distinct_x) - digamma(r) + np.log(alpha))).sum() - (weights * log_alpha_T).sum()
    d_alpha = weights.sum() * r / alpha - (weights * (r + x) / (alpha + T)).sum()
    return -log_likelihood, -np.array([d_r * r, d_alpha * alpha])


# The limiting model a family reaches when the data show no drop-out (its name, parameters).
NO_DROPOUT = "nbd"
NO_DROPOUT_PARAMS = ("r", "alpha")
NO_DROPOUT_WORDS = "no detectable dropout: this is the NBD model (purchases at each customer's own steady rate)"
# 5% critical value of chi-square with 2 degrees of freedom: a family's two drop-out
# parameters must raise the log-likelihood by more than half of it to count as detected.
_DROPOUT_DETECTED = 5.991

# objective, precomputed groups, and which log parameters carry the time unit
_OBJECTIVES = {
    NO_DROPOUT: (_nbd_objective, _groups, (1,)),
    "bgnbd": (_bgnbd_objective, _groups, (1,)),
    "mbgnbd": (_mbgnbd_objective, _groups, (1,)),
    "pareto": (_pareto_objective, _pareto_groups, (1, 3)),
}


def _penalized(objective, penalizer: float):
    """lifetimes' penalty, penalizer x sum(params^2) per customer, on the total."""
    if penalizer == 0:
        return objective

    def with_penalty(log_params, x, t_x, T, weights, groups=None):
        value, gradient = objective(log_params, x, t_x, T, weights, groups)
        params = np.exp(log_params)
        total = weights.sum() * penalizer
        return value + total * (params ** 2).sum(), gradient + 2 * total * params ** 2
    return with_penalty


def _fit_maximum_likelihood(family: str, x, t_x, T, weights, penalizer: float = 0.0) -> np.ndarray:
    """Maximum likelihood with BFGS on the analytic gradient, time scaled so that max T = 1
    (as lifetimes does, for conditioning; a penalizer applies on that scale, as in lifetimes);
    returns log parameters in the original time unit. Bases of more than 40,000 distinct
    histories start from a fit on a sample of them (5%, and at least 20,000), with that
    fit's curvature scaled up as the first inverse-Hessian guess: the full fit then takes a
    handful of steps, not forty."""
    label, names = (("NBD", NO_DROPOUT_PARAMS) if family == NO_DROPOUT
                    else (FAMILIES[family][0], FAMILIES[family][2]))
    objective, grouping, time_params = _OBJECTIVES[family]
    objective = _finite_or_infinite(_penalized(objective, penalizer))
    scale = 1.0 / T.max()
    data = (x, t_x * scale, T * scale, weights)
    # Pareto/NBD's gradient carries central-difference rounding (about 1e-9 of the total at
    # 1M customers), so its tolerance is looser; still 1,000 times tighter than the check below
    tolerance = 1e-7 if family == "pareto" else 1e-9

    def bfgs(part, start, inverse_hessian=None, tolerance=tolerance):
        groups = grouping(*part)
        if inverse_hessian is None:
            # the curvature at the start as the first inverse-Hessian guess: without it the
            # first quasi-Newton steps can jump to where the likelihood is not finite
            inverse_hessian = _inverse_curvature(lambda lp: objective(lp, *part, groups)[1], start)
        options = {"gtol": tolerance * part[3].sum()}
        if inverse_hessian is not None:
            options["hess_inv0"] = inverse_hessian
        result = minimize(objective, start, jac=True, method="BFGS", args=(*part, groups), options=options)
        return result, groups

    start, inverse_hessian = _starting_point(*data, time_params)[: len(names)], None
    with np.errstate(all="ignore"):
        if len(x) > 40_000:
            sample = np.random.default_rng(0).random(len(x)) < max(0.05, 20_000 / len(x))
            part = tuple(column[sample] for column in data)
            # only a starting point for the full fit: a looser tolerance saves sample steps
            warm, part_groups = bfgs(part, start, tolerance=1e-6)
            if warm.success:
                inverse_hessian = _inverse_curvature(
                    lambda lp: objective(lp, *part, part_groups)[1], warm.x, weights.sum() / part[3].sum())
                start = warm.x if inverse_hessian is not None else start
        result, _ = bfgs(data, start, inverse_hessian)
    log_params = result.x.copy()
    log_params[list(time_params)] -= np.log(scale)
    try:
        _check_not_extreme(label, dict(zip(names, np.exp(log_params))))
        if not np.all(np.isfinite(result.jac)) or np.abs(result.jac).max() > 1e-4 * weights.sum():
            raise FitError(
                f"the {label} fit did not converge on {int(weights.sum()):,} customers ({result.message}); "
                "try a penalizer (e.g. --penalizer 0.001) or a longer calibration period"
            )
    except FitError as exc:
        exc.log_params = log_params  # where the optimiser stopped: the caller may recognise a limit
        raise
    return log_params


def _finite_or_infinite(objective):
    """Where the likelihood is not finite (far outside the data's range), report +inf so
    that the line search steps back instead of stopping."""
    def guarded(log_params, *args):
        value, gradient = objective(log_params, *args)
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return np.inf, np.zeros_like(log_params)
        return value, gradient
    return guarded


def _inverse_curvature(gradient, at: np.ndarray, factor: float = 1.0) -> np.ndarray | None:
    """Inverse of the (factor-scaled) Hessian at ``at``, or None unless positive definite."""
    curvature = _gradient_jacobian(gradient, at, central=False) * factor  # a first guess: forward is enough
    if not np.all(np.isfinite(curvature)) or not np.all(np.linalg.eigvalsh(curvature) > 0):
        return None
    inverse = np.linalg.inv(curvature)
    return (inverse + inverse.T) / 2


def _starting_point(x, t_x, T, weights, time_params) -> np.ndarray:
    """Log parameters to start from: shapes 1 and scales that match the mean purchase rate
    (alpha) and a mean lifetime of the whole observation period (beta), so that the first
    BFGS steps on daily data with heavy buyers do not leave the region where the likelihood
    is finite."""
    start = np.zeros(4)
    rate = (weights * x).sum() / max((weights * T).sum(), 1e-12)
    start[1] = np.log(1.0 / max(rate, 1e-6)) if rate > 0 else 0.0
    if len(time_params) > 1:
        start[3] = np.log((weights * T).sum() / weights.sum())
    return start


def _check_not_extreme(label: str, params: dict[str, float]) -> None:
    """A parameter at 1e-6 or 1e6 means the likelihood kept rising towards a boundary (e.g. a
    drop-out rate the same for everyone): no usable model, whatever the optimiser reports."""
    if not all(np.isfinite(v) and 1e-6 < v < 1e6 for v in params.values()):
        shown = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
        raise FitError(
            f"the {label} fit ran to extreme parameters ({shown}), so it has not converged to a usable "
            "model; try a penalizer (e.g. --penalizer 0.001) or a longer calibration period"
        )


def _gradient_jacobian(gradient, at: np.ndarray, step: float = 1e-5, central: bool = True) -> np.ndarray:
    """Hessian as the central-difference (or, for costly gradients, forward-difference with
    a larger step) Jacobian of an analytic gradient."""
    if central:
        columns = [(gradient(at + step * unit) - gradient(at - step * unit)) / (2 * step) for unit in np.eye(len(at))]
    else:
        step, base = 1e-4, gradient(at)
        columns = [(gradient(at + step * unit) - base) / step for unit in np.eye(len(at))]
    hessian = np.column_stack(columns)
    return (hessian + hessian.T) / 2


def distinct_pairs(x: np.ndarray, T: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The distinct (x, T) pairs and each row's position among them (``GivenHistories.pairs``)."""
    distinct, _, inverse = collapse({"x": x, "T": T})
    return distinct, inverse


def _on_distinct(function, x: np.ndarray, T: np.ndarray, pairs=None) -> np.ndarray:
    """``function(x, T)`` evaluated once per distinct (x, T) pair: the hypergeometric terms
    depend on nothing else, and there are far fewer pairs than customers. ``pairs``:
    ``distinct_pairs(x, T)``, computed here if not given."""
    distinct, inverse = pairs or distinct_pairs(x, T)
    values = function(distinct["x"], distinct["T"])
    return values[..., inverse]


def _beta_geometric_expected_purchases(horizons: np.ndarray, x: np.ndarray, T: np.ndarray, params,
                                       modified: bool, pairs=None) -> np.ndarray:
    """The numerator of [FHL2005a] eq. 10 (BG/NBD) or of [BDF2007] eq. 6
    (MBG/NBD: p ~ Beta(a, b+x+1) a posteriori), one row per horizon; times P(alive) it is
    the conditional expectation (the denominator is 1 / P(alive))."""
    r, alpha, a, b = (params[name] for name in ("r", "alpha", "a", "b"))
    extra = 1.0 if modified else 0.0

    def numerator(x, T):
        t = horizons[:, None]
        z = t / (alpha + T + t)
        c = a + b + x - 1 + extra
        second = b + x + extra
        with np.errstate(all="ignore"):
            log_hyp = np.log(hyp2f1(r + x, second, c, z))
            # where 2F1 overflows, Euler's transformation gives the same value stably (as lifetimes
            # does); evaluated there only, as 2F1 is most of the cost
            overflowed = ~np.isfinite(log_hyp)
            x_o, second_o, c_o = (np.broadcast_to(v, z.shape)[overflowed] for v in (x, second, c))
            z_o = z[overflowed]
            log_hyp[overflowed] = (np.log(hyp2f1(c_o - r - x_o, c_o - second_o, c_o, z_o))
                                   + (c_o - r - second_o - x_o) * np.log1p(-z_o))
        return (c / (a - 1)) * (1 - np.exp(log_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T))))

    return _on_distinct(numerator, x, T, pairs)


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
    limit_: str = ""  # NO_DROPOUT where the family's fit reached its no-drop-out limit

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"purchase model must be one of {sorted(FAMILIES)}, not {self.family!r}")

    @property
    def label(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return NO_DROPOUT_PARAMS if self.limit_ else FAMILIES[self.family][2]

    @property
    def description(self) -> str:
        """The fitted model in words: the family, or the limit its fit reached."""
        return f"{self.label}: {NO_DROPOUT_WORDS}" if self.limit_ else self.label

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
        self.limit_ = ""
        try:
            log_params = _fit_maximum_likelihood(self.family, *data, penalizer=self.penalizer)
        except FitError as exc:
            log_params = self._no_dropout_limit(data, exc)
            self.limit_ = NO_DROPOUT
        self.params_ = dict(zip(self.param_names, map(float, np.exp(log_params))))
        self.n_customers_ = int(counts.sum())
        self.n_patterns_ = len(counts)
        objective, grouping, _ = _OBJECTIVES[self.limit_ or self.family]
        groups = grouping(*data)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = -float(objective(self._log_params(), *data, groups)[0])
            information = _gradient_jacobian(lambda lp: objective(lp, *data, groups)[1], self._log_params(),
                                             central=self.family != "pareto")
        if not np.isfinite(self.log_likelihood_):
            raise FitError(f"the {self.label} likelihood is not finite on this data; try another model")
        self.log_params_cov_ = covariance_from(information) if np.all(np.isfinite(information)) else None
        return self

    def _no_dropout_limit(self, data, failure: FitError) -> np.ndarray:
        """Where the family's fit ran to a boundary: the NBD's log parameters if the NBD
        (no drop-out, the limit every family reaches as drop-out vanishes) fits as well as
        the family did where its fit stopped (the likelihood-ratio statistic below the 5%
        critical value of chi-square with 2 degrees of freedom); else ``failure`` is raised:
        a fit that truly failed."""
        try:
            nbd = _fit_maximum_likelihood(NO_DROPOUT, *data, penalizer=self.penalizer)
        except FitError:
            raise failure from None
        objective, grouping, _ = _OBJECTIVES[self.family]
        stopped = getattr(failure, "log_params", None)
        with np.errstate(all="ignore"):
            nbd_fit = -_OBJECTIVES[NO_DROPOUT][0](nbd, *data)[0]
            family_fit = -objective(stopped, *data, grouping(*data))[0] if stopped is not None else np.inf
        if not np.isfinite(family_fit):
            family_fit = nbd_fit if stopped is not None else np.inf
        if 2 * (family_fit - nbd_fit) > _DROPOUT_DETECTED:
            raise failure
        return nbd

    def _log_params(self) -> np.ndarray:
        return np.log([self.params_[name] for name in self.param_names])

    # --- prediction ----------------------------------------------------------------

    def _fitter(self, params: dict[str, float] | None = None):
        fitter = FAMILIES[self.family][1]()
        fitter.params_ = pd.Series(params or self.params_)[list(self.param_names)]
        return fitter

    def _require_fitted(self) -> None:
        if not self.params_:
            raise RuntimeError("fit the purchase model before predicting")

    def p_alive(self, frequency, recency, T, params=None) -> np.ndarray:
        """P(alive now | history), in log-odds form so that no power overflows.
        BG/NBD ([Hardie-note-021]): 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), 1 for x = 0.
        MBG/NBD ([BDF2007]): 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), below 1 for x = 0.
        Pareto/NBD ([Hardie-note-009] eq. 36): the alive share of the likelihood,
        (alpha+T)^-(r+x) (beta+T)^-s / [(alpha+T)^-(r+x) (beta+T)^-s + s (G(t_x) - G(T))]."""
        self._require_fitted()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        p = params or self.params_
        if self.limit_:
            return np.ones(np.broadcast(x, t_x, T).shape)
        with np.errstate(all="ignore"):
            if self.family == "pareto":
                alive_term = -(p["r"] + x) * np.log(p["alpha"] + T) - p["s"] * np.log(p["beta"] + T)
                value = expit(alive_term - np.log(p["s"]) - _pareto_log_integral(x, t_x, T, p))
            else:
                shift = 0.0 if self.family == "mbgnbd" else -1.0
                log_odds_dead = (np.log(p["a"]) - np.log(np.maximum(p["b"] + x + shift, 1e-300))
                                 + (p["r"] + x) * (np.log(p["alpha"] + T) - np.log(p["alpha"] + t_x)))
                value = expit(-log_odds_dead)
                if self.family == "bgnbd":
                    value = np.where(x > 0, value, 1.0)
        return np.clip(np.asarray(value, dtype=float), 0.0, 1.0)

    def given(self, frequency, recency, T, params: dict[str, float] | None = None) -> "GivenHistories":
        """The predictions for these histories, sharing P(alive) and the distinct
        (frequency, T) pairs between them (``GivenHistories``)."""
        self._require_fitted()
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        return GivenHistories(self, frequency, recency, T, params)

    def expected_purchases(self, t, frequency, recency, T, params=None) -> np.ndarray:
        """Expected repeat purchases in (T, T + t] given the history: [FHL2005a] eq. 10
        (BG/NBD), [BDF2007] (MBG/NBD), [Hardie-note-009] eq. 41 (Pareto/NBD:
        P(alive) (r+x)(beta+T)/((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]).
        ``t`` may be a 1-D array of horizons: the result then has one row per horizon."""
        return self.given(frequency, recency, T, params).expected_purchases(t)

    def p_alive_at(self, t: float, frequency, recency, T) -> np.ndarray:
        """P(still alive at T + t | history) (``GivenHistories.p_alive_at``)."""
        return self.given(frequency, recency, T).p_alive_at(t)

    def p_no_purchase(self, t: float, frequency, recency, T) -> np.ndarray:
        """P(no purchase in (T, T + t] | history) (``GivenHistories.p_no_purchase``)."""
        return self.given(frequency, recency, T).p_no_purchase(t)

    def _expected_purchases(self, t, frequency, recency, T, p, alive, pairs) -> np.ndarray:
        horizons = np.atleast_1d(np.asarray(t, dtype=float))
        if self.limit_:  # no drop-out: the posterior mean rate (r+x)/(alpha+T) times t
            result = alive * (p["r"] + frequency) / (p["alpha"] + T) * horizons[:, None]
        elif self.family == "pareto":
            log_ratio = np.log((p["beta"] + T) / (p["beta"] + T + horizons[:, None]))
            s_minus_1 = p["s"] - 1
            # [1 - u^(s-1)] / (s-1) = -expm1((s-1) log u) / (s-1), which tends to -log u at s = 1
            shape = -np.expm1(s_minus_1 * log_ratio) / s_minus_1 if abs(s_minus_1) > 1e-9 else -log_ratio
            result = alive * (p["r"] + frequency) * (p["beta"] + T) / (p["alpha"] + T) * shape
        else:
            result = _beta_geometric_expected_purchases(horizons, frequency, T, p, modified=self.family == "mbgnbd",
                                                        pairs=pairs)
            result = result * alive
        result = np.maximum(np.where(horizons[:, None] > 0, result, 0.0), 0.0)
        return result if np.ndim(t) else result[0]

    def _p_alive_at(self, t: float, frequency, recency, T, p, alive, pairs) -> np.ndarray:
        """P(still alive at T + t | history).

        BG/NBD: given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x); each of
        the Poisson(lambda t) purchases in (T, T+t] is survived with prob. 1-p, so
        P(survive) = E[exp(-lambda p t)] = E_p[(1 + p t/(alpha+T))^-(r+x)]
                   = 2F1(r+x, a; a+b+x; -t/(alpha+T))   (Euler's integral, [AS1965] 15.3.1).
        MBG/NBD: the same with p ~ Beta(a, b+x+1) (a drop-out chance at every purchase,
        the first included). Pareto/NBD: mu ~ Gamma(s, beta+T), P(survive) = ((beta+T)/(beta+T+t))^s.
        """
        if self.limit_:
            survive = np.ones(np.shape(T))
        elif self.family == "pareto":
            survive = ((p["beta"] + T) / (p["beta"] + T + t)) ** p["s"]
        else:
            extra = 1.0 if self.family == "mbgnbd" else 0.0
            survive = _on_distinct(
                lambda x, age: hyp2f1(p["r"] + x, p["a"], p["a"] + p["b"] + x + extra, -t / (p["alpha"] + age)),
                frequency, T, pairs)
        return np.clip(alive * survive, 0.0, 1.0)

    def _p_no_purchase(self, t: float, frequency, recency, T, p, alive) -> np.ndarray:
        """P(no purchase in (T, T + t] | history).

        BG/NBD and MBG/NBD: dead, or alive with no Poisson event in t (drop-out happens only
        at a purchase): (1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x).
        Pareto/NBD: dead, or alive and neither a purchase nor death comes first in t:
        with lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T) given alive,
        P = ((alpha+T)/(alpha+T+t))^(r+x) ((beta+T)/(beta+T+t))^s
            + s (alpha+T)^(r+x) (beta+T)^s [G(T) - G(T+t)]   (G as in the likelihood),
        the same value as lifetimes' conditional P(N = 0) ([Hardie-note-028] eq. 16), in log space.
        """
        if self.family == "pareto" and not self.limit_:
            return self._pareto_p_no_purchase(t, frequency, recency, T, p, alive)
        quiet = ((p["alpha"] + T) / (p["alpha"] + T + t)) ** (p["r"] + frequency)
        return np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)

    def _pareto_p_no_purchase(self, t, frequency, recency, T, p, alive) -> np.ndarray:
        r_x, s = p["r"] + frequency, p["s"]
        log_alpha_T, log_beta_T = np.log(p["alpha"] + T), np.log(p["beta"] + T)
        quiet_alive = np.exp(r_x * (log_alpha_T - np.log(p["alpha"] + T + t)) + s * (log_beta_T - np.log(p["beta"] + T + t)))
        with np.errstate(all="ignore"):
            log_g = lambda y: _on_distinct(lambda x, y: _log_g(p["r"] + x, s + 1.0, y, p["alpha"], p["beta"]), frequency, y)
            log_dies_quiet = np.log(s) + r_x * log_alpha_T + s * log_beta_T + _log_difference(log_g(T), log_g(T + t))
        quiet = quiet_alive + np.where(t > 0, np.exp(log_dies_quiet), 0.0)
        return np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected repeat purchases by a new customer in their first t units (unconditional)."""
        if self.limit_:
            return self.params_["r"] / self.params_["alpha"] * np.asarray(t, float)
        return np.asarray(self._fitter().expected_number_of_purchases_up_to_time(np.asarray(t, float)), dtype=float)

    def standard_errors(self) -> dict[str, float]:
        """Delta-method standard errors of the parameters."""
        if self.log_params_cov_ is None:
            return {name: float("nan") for name in self.param_names}
        variance = np.diag(self.log_params_cov_)
        return {name: float(self.params_[name] * np.sqrt(max(v, 0.0))) for name, v in zip(self.param_names, variance)}


@dataclass(frozen=True, eq=False)
class GivenHistories:
    """A fitted purchase model's predictions for one set of histories (``PurchaseModel.given``).

    Several predictions for the same histories share P(alive) (under ``params``, the
    model's own by default) and the distinct (frequency, T) pairs: each is computed on first
    use and kept here, so a caller asks for as many predictions as it needs without passing
    intermediates around."""

    model: "PurchaseModel"
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    params: dict[str, float] | None = None

    @property
    def histories(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.frequency, self.recency, self.T

    @cached_property
    def alive(self) -> np.ndarray:
        """P(alive now | history)."""
        return self.model.p_alive(*self.histories, self.params)

    @cached_property
    def pairs(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``distinct_pairs`` of (frequency, T)."""
        return distinct_pairs(self.frequency, self.T)

    @property
    def _params(self) -> dict[str, float]:
        return self.params or self.model.params_

    def expected_purchases(self, t) -> np.ndarray:
        """``PurchaseModel.expected_purchases``; ``t`` may be a 1-D array of horizons."""
        pairs = None if self.model.family == "pareto" else self.pairs  # Pareto/NBD's closed form needs none
        return self.model._expected_purchases(t, *self.histories, self._params, self.alive, pairs)

    def p_alive_at(self, t: float) -> np.ndarray:
        """P(still alive at T + t | history)."""
        pairs = None if self.model.family == "pareto" else self.pairs
        return self.model._p_alive_at(t, *self.histories, self._params, self.alive, pairs)

    def p_no_purchase(self, t: float) -> np.ndarray:
        """P(no purchase in (T, T + t] | history)."""
        return self.model._p_no_purchase(t, *self.histories, self._params, self.alive)

    def count_tail(self, t: float, cutoff: float = 1e-5) -> "CountTail":
        """``count_tail`` over this forecast's distinct (frequency, T) pairs."""
        pairs, _ = self.pairs
        return count_tail(self.model, t, pairs["x"], pairs["T"], cutoff)


def histories_of(features: pd.DataFrame) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The distinct (frequency, recency, T) histories of a feature table and each row's
    position among them: every purchase-model prediction is made once per history."""
    distinct, _, inverse = collapse({
        "frequency": float_array(features, "frequency"),
        "recency": float_array(features, "recency"),
        "T": float_array(features, "T"),
    })
    return (distinct["frequency"], distinct["recency"], distinct["T"]), inverse


@dataclass(frozen=True)
class CountTail:
    """The distribution of repeat purchases N in (T, T+t] given alive at T, per distinct
    (frequency, T) pair: ``tail[start[j] + n - 1]`` = P(N >= n | alive) for n = 1 .. ``length[j]``
    (decreasing in n); beyond ``length[j]`` it is below ``cutoff``. With P(alive) from the
    full history, P(N >= n) = P(alive) P(N >= n | alive) for n >= 1."""

    tail: np.ndarray
    start: np.ndarray
    length: np.ndarray
    cutoff: float

    def at(self, pair: np.ndarray, n: np.ndarray) -> np.ndarray:
        """P(N >= n | alive) for each (pair, n); 1 for n <= 0, 0 beyond the stored tail."""
        n = np.asarray(n, dtype=np.int64)
        inside = (n >= 1) & (n <= self.length[pair])
        index = np.where(inside, self.start[pair] + n - 1, 0)
        return np.where(n <= 0, 1.0, np.where(inside, self.tail[index] if len(self.tail) else 0.0, 0.0))

    def count_above(self, pair: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """How many n >= 1 have P(N >= n | alive) > threshold, per pair (the tail decreases,
        so this is one binary search in each pair's stretch)."""
        # one sorted key for all pairs: pair id + (1 - tail), increasing within and across pairs
        keys = np.repeat(np.arange(len(self.start), dtype=float), self.length) * 2 + (1 - self.tail)
        queries = pair * 2.0 + (1 - np.minimum(np.asarray(threshold, dtype=float), 1.0))
        order = np.argsort(queries, kind="stable")  # sorted queries: the search walks memory in order
        position = np.empty(len(queries), dtype=np.int64)
        position[order] = np.searchsorted(keys, queries[order], side="left")
        return np.clip(position - self.start[pair], 0, self.length[pair])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """E[N | alive] = sum_n P(N >= n) and E[N^2 | alive] = sum_n (2n - 1) P(N >= n), per pair."""
        pair = np.repeat(np.arange(len(self.start)), self.length)
        n = np.arange(len(self.tail)) - np.repeat(self.start, self.length) + 1
        first = np.bincount(pair, weights=self.tail, minlength=len(self.start))
        second = np.bincount(pair, weights=(2 * n - 1) * self.tail, minlength=len(self.start))
        return first, second


_DEATH_NODES = 12  # Gauss-Legendre nodes over the Pareto/NBD death time within the horizon
_COUNT_BLOCK = 16  # count_tail: counts whose factors are computed together, at most
_COUNT_BLOCK_PAIRS = 32_768  # count_tail: shorter blocks above this many pairs (down to 1 count)


def count_tail(model: "PurchaseModel", t: float, x: np.ndarray, T: np.ndarray, cutoff: float = 1e-5,
               max_count: int = 100_000) -> CountTail:
    """P(N(t) >= n | alive at T) for n = 1, 2, ... per (x, T) pair, until it falls below
    ``cutoff``.

    Given alive, lambda ~ Gamma(r+x, alpha+T), so the Poisson count K of purchase chances in
    a time u is negative binomial: P(K >= n) = I_{1-p}(n, r+x), p = (alpha+T)/(alpha+T+u),
    computed by the NB recursion pmf(k+1) = pmf(k) (r+x+k)/(k+1) (1-p).
    BG/NBD: the customer drops out after each purchase with p_d ~ Beta(a, b+x) (MBG/NBD:
    Beta(a, b+x+1)), so N >= n needs K >= n and n-1 survivals:
        P(N >= n | alive) = B(a, b'+n-1) / B(a, b') * P(K(t) >= n),  b' = b+x (+1).
    Pareto/NBD: death comes at tau with P(tau > u) = ((beta+T)/(beta+T+u))^s, so
        P(N >= n | alive) = P(tau > t) P(K(t) >= n) + int_0^t f_tau(u) P(K(u) >= n) du
    (Gauss-Legendre over u)."""
    p = model.params_
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    shape = p["r"] + x
    if model.family == "pareto" and not model.limit_:
        nodes, weights = np.polynomial.legendre.leggauss(_DEATH_NODES)
        u = (nodes + 1) / 2 * t
        scale = p["beta"] + T[:, None]
        density = p["s"] / scale * (1 + u / scale) ** -(p["s"] + 1) * (weights * t / 2)
        times = np.column_stack([np.broadcast_to(u, (len(x), _DEATH_NODES)), np.full(len(x), t)])
        node_weight = np.column_stack([density, (scale[:, 0] / (scale[:, 0] + t)) ** p["s"]])
        survival_step = np.ones(len(x))
        b_prime = None
    else:
        times = np.full((len(x), 1), float(t))
        node_weight = None  # one time node of weight 1: P(K >= n) itself
        # no drop-out (the NBD limit): every purchase chance is a purchase
        b_prime = None if model.limit_ else p["b"] + x + (1.0 if model.family == "mbgnbd" else 0.0)
        survival_step = np.ones(len(x))  # B(a, b'+n-1) / B(a, b'), 1 at n = 1
    miss = times / (p["alpha"] + T[:, None] + times)  # 1 - p of the negative binomial
    with np.errstate(all="ignore"):
        pmf = np.exp(shape[:, None] * np.log1p(-miss))  # P(K = 0)
    survival = np.ones_like(pmf)  # P(K >= 0)
    active = np.arange(len(x))
    # per active pair, filtered with it; a + b' summed once (the same sum the step would make)
    active_shape, active_b_prime = shape, b_prime
    active_a_b_prime = None if b_prime is None else p["a"] + b_prime
    pieces_pair, pieces_value = [], []
    n = 1
    while len(active) and n <= max_count:
        # the factors that do not carry from one count to the next, for a block of counts at
        # once (the same sums per element): the loop below then makes ~9 numpy calls a count.
        # Few pairs: a long block (the calls are the cost); many: short (the arithmetic is,
        # and a pair that stops mid-block wastes the rest of its block)
        block = int(np.clip(_COUNT_BLOCK_PAIRS // len(active), 1, _COUNT_BLOCK))
        counts = np.arange(n, min(n + block, max_count + 1))[:, None]
        ratios = (active_shape + counts - 1) / counts  # pmf(n) / pmf(n-1) / (1-p)
        if b_prime is not None:
            step_numerators, step_denominators = active_b_prime + counts - 1, active_a_b_prime + counts - 1
        row = 0  # of the block's factors
        for _ in range(len(counts)):
            survival = np.maximum(survival - pmf, 0.0)  # P(K >= n)
            value = (survival[:, 0] if node_weight is None else (survival * node_weight).sum(axis=1)) * survival_step
            pieces_pair.append(active)
            pieces_value.append(value)
            keep = value >= cutoff
            if b_prime is not None:
                survival_step = survival_step * step_numerators[row] / step_denominators[row]
            pmf = pmf * ratios[row][:, None] * miss
            n += 1
            row += 1
            if not keep.all():  # filter only when a pair drops out
                active, survival, pmf, miss, survival_step = (
                    active[keep], survival[keep], pmf[keep], miss[keep], survival_step[keep])
                active_shape = active_shape[keep]
                if node_weight is not None:
                    node_weight = node_weight[keep]
                if b_prime is not None:
                    active_b_prime, active_a_b_prime = active_b_prime[keep], active_a_b_prime[keep]
                if not len(active) or row == len(ratios):
                    break
                # the rest of the block's factors, for the pairs still counting
                ratios = ratios[row:, keep]
                if b_prime is not None:
                    step_numerators, step_denominators = step_numerators[row:, keep], step_denominators[row:, keep]
                row = 0
    pair = np.concatenate(pieces_pair) if pieces_pair else np.zeros(0, dtype=np.int64)
    values = np.concatenate(pieces_value) if pieces_value else np.zeros(0)
    order = np.argsort(pair, kind="stable")  # steps were appended in increasing n
    pair, values = pair[order], np.clip(values[order], 0.0, 1.0)
    # the tail decreases in n; a running minimum per pair removes rounding wiggles
    values = 1 - (np.maximum.accumulate(pair * 2.0 + (1 - values)) - pair * 2.0)
    length = np.bincount(pair, minlength=len(x))
    start = (np.cumsum(length) - length).astype(np.int64)  # where each pair's stretch begins (none: empty)
    return CountTail(tail=values, start=start, length=length, cutoff=cutoff)
