"""A synthetic customer base with known ground truth.

Purchases follow the BG/NBD story ([FHL2005a], section 2): each customer
buys at a Poisson rate lambda ~ Gamma(r, alpha) while alive and, after each repeat
purchase, drops out with probability p ~ Beta(a, b). Order values follow Gamma-Gamma
([FHL2005b]): z ~ Gamma(p, nu), nu ~ Gamma(q, v). Customers are acquired
over a window, so ages T differ.

A customer who drops out is recorded as churned some days after the last purchase, with
a churn type. Each type leaves a noisy trace before the churn date (docs/synthetic-data.md):
the traces only *reorder* a customer's purchase gaps and order values, or add discounts,
categories and interactions, so (x, t_x, T) and the multiset of order values, which are all
the BG/NBD and Gamma-Gamma likelihoods see, stay exactly as the generating model drew them.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retain.errors import RetainError

from retain.data.contract import SATISFACTION_LEVELS

CATEGORIES = ("books", "music", "electronics", "home", "garden", "toys", "fashion", "beauty")
ATTRIBUTES = {
    "region": ("north", "south", "east", "west"),
    "channel": ("web", "app", "store"),
    "signup_source": ("organic", "promo", "referral", "partner"),
    "plan": ("basic", "plus", "premium"),
}
# Weak links between attributes and churn type: a multiplier on the type's prior share.
ATTRIBUTE_TILTS = {
    ("signup_source", "promo"): {"price": 1.6},
    ("channel", "store"): {"service": 1.3},
    ("plan", "premium"): {"competition": 1.4, "price": 0.7},
    ("region", "south"): {"natural": 1.5},
    ("plan", "basic"): {"need": 1.3},
}
TRACE_KINDS = ("price", "service", "competition", "need")


@dataclass
class GeneratorConfig:
    customers: int = 10_000
    seed: int = 0
    start: str = "2023-01-01"
    acquisition_days: int = 730  # customers join uniformly over this many days
    end: str = "2026-01-01"  # data runs up to (not including) this date
    # BG/NBD, per day: lambda ~ Gamma(shape=r, rate=alpha), p ~ Beta(a, b)
    r: float = 0.9
    alpha: float = 40.0
    a: float = 0.8
    b: float = 5.0
    # Gamma-Gamma: z ~ Gamma(shape=p, rate=nu), nu ~ Gamma(shape=q, rate=v)
    p: float = 6.0
    q: float = 3.5
    v: float = 25.0
    churn_type_shares: dict = field(
        default_factory=lambda: {
            "natural": 0.15,
            "price": 0.25,
            "service": 0.2,
            "competition": 0.25,
            "need": 0.15,
        }
    )
    churn_lag_days: float = 30.0  # mean days from last purchase to the recorded churn
    trace_probability: float = 0.75  # a churner of type k shows trace k
    background_probability: float = 0.08  # anyone shows a look-alike of each trace
    return_rate: float = 0.04
    complaint_rate_per_year: float = 0.4
    survey_rate_per_year: float = 0.8


def expected_type_ceiling(config: GeneratorConfig) -> dict:
    """Best accuracy and macro-F1 any classifier can reach on the churn *type* of churners,
    even seeing every trace indicator without error: the Bayes decision over all 2^4
    trace patterns. Timing noise (who churns within the horizon) lowers the real ceiling.
    """
    types = list(config.churn_type_shares)
    prior = np.array([config.churn_type_shares[t] for t in types], dtype=float)
    prior /= prior.sum()
    hit, bg = config.trace_probability, config.background_probability
    confusion = np.zeros((len(types), len(types)))
    for pattern in itertools.product((0, 1), repeat=len(TRACE_KINDS)):
        likelihood = np.ones(len(types))
        for j, kind in enumerate(TRACE_KINDS):
            on = np.array([hit if t == kind else bg for t in types])
            likelihood *= on if pattern[j] else 1 - on
        joint = prior * likelihood
        confusion[:, int(np.argmax(joint))] += joint
    accuracy = float(np.trace(confusion))
    precision = np.diag(confusion) / np.maximum(confusion.sum(axis=0), 1e-12)
    recall = np.diag(confusion) / confusion.sum(axis=1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(float(f1.mean()), 4)}


def _group_starts(customer: np.ndarray) -> np.ndarray:
    """Index of the first row of each row's customer, for arrays sorted by customer."""
    new = np.r_[True, customer[1:] != customer[:-1]]
    return np.maximum.accumulate(np.where(new, np.arange(len(customer)), 0))


def _reorder_within(customer, value, region, key):
    """Permute ``value`` inside each customer's ``region`` rows so that ``key`` ascends.
    Rows outside the region keep their place; regions must be each customer's last rows."""
    position = np.arange(len(customer), dtype=float)
    sort_key = np.where(region, key, position)
    order = np.lexsort((sort_key, region, customer))
    return value[order]


def _simulate_purchases(rng, lam, dropout, horizon):
    """BG/NBD purchase times (days since acquisition), repeat purchases only.

    Vectorised over customers: each round, every still-active customer draws the wait to
    the next purchase; a purchase inside the horizon is kept, then the customer drops out
    with probability p. Returns (customer index, time) sorted by customer then time, and
    each customer's death time (NaN while alive at the horizon).
    """
    active = np.arange(len(lam))
    clock = np.zeros(len(lam))
    died_at = np.full(len(lam), np.nan)
    who, when = [], []
    while active.size:
        clock[active] += rng.exponential(1.0 / lam[active])
        inside = clock[active] < horizon[active]
        active = active[inside]
        who.append(active)
        when.append(clock[active])
        dies = rng.random(active.size) < dropout[active]
        died_at[active[dies]] = clock[active[dies]]
        active = active[~dies]
    who_all = np.concatenate(who)
    when_all = np.concatenate(when)
    order = np.lexsort((when_all, who_all))
    return who_all[order], when_all[order], died_at


def _draw_churn_types(shares: dict, attributes: dict, dead: np.ndarray, rng) -> np.ndarray:
    """Each leaving customer's churn type, drawn from ``shares`` tilted by their attributes
    (``ATTRIBUTE_TILTS``); None for those who stay."""
    types = list(shares)
    n = len(dead)
    weight = np.tile(np.array([shares[x] for x in types], float), (n, 1))
    for (attr, value), tilts in ATTRIBUTE_TILTS.items():
        hit = attributes[attr] == value
        for type_name, factor in tilts.items():
            if type_name in types:
                weight[hit, types.index(type_name)] *= factor
    weight /= weight.sum(axis=1, keepdims=True)
    draw = (weight.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return np.where(dead, np.array(types, dtype=object)[np.minimum(draw, len(types) - 1)], None)


def _time_frame(config) -> tuple[np.random.Generator, np.datetime64, np.datetime64, float]:
    """A generator's seeded random source and time frame (start, end, days between), after
    checking its size and that customers are acquired before the data ends."""
    if config.customers < 1:
        raise RetainError(f"a generated base needs at least 1 customer, not {config.customers} (--customers)")
    start, end = np.datetime64(config.start, "s"), np.datetime64(config.end, "s")
    span_days = (end - start) / np.timedelta64(1, "D")
    if config.acquisition_days >= span_days:
        raise ValueError("acquisition_days must end before the data end date")
    return np.random.default_rng(config.seed), start, end, span_days


def generate(config: GeneratorConfig, progress=None) -> dict[str, pd.DataFrame | dict]:
    """All four tables plus the truth, in memory. ``progress(msg)`` hears each stage."""
    say = progress or (lambda msg: None)
    rng, start, end, span_days = _time_frame(config)
    n = config.customers

    say("customers and their latent parameters")
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    acquired = rng.uniform(0, config.acquisition_days, n)
    horizon = span_days - acquired
    lam = rng.gamma(config.r, 1.0 / config.alpha, n)
    dropout = rng.beta(config.a, config.b, n)
    nu = rng.gamma(config.q, 1.0 / config.v, n)
    attributes = {name: rng.choice(values, n) for name, values in ATTRIBUTES.items()}

    say("purchase process")
    who, t_repeat, died_at = _simulate_purchases(rng, lam, dropout, horizon)
    # every customer's first purchase is at acquisition (t = 0)
    cust = np.concatenate([np.arange(n), who])
    t = np.concatenate([np.zeros(n), t_repeat])
    order = np.lexsort((t, cust))
    cust, t = cust[order], t[order]
    amount = rng.gamma(config.p, 1.0 / nu[cust])
    starts = _group_starts(cust)
    k = np.arange(len(cust)) - starts  # purchase number within customer, 0 = first
    count = np.bincount(cust, minlength=n)
    from_end = count[cust] - 1 - k  # 0 = last purchase

    say("churn types")
    dead = ~np.isnan(died_at)
    churn_type = _draw_churn_types(config.churn_type_shares, attributes, dead, rng)
    churn_day = died_at + rng.gamma(2.0, config.churn_lag_days / 2.0, n)
    # trace flags: the type's own trace with trace_probability, look-alikes in background
    trace = {}
    for kind in TRACE_KINDS:
        own = dead & (churn_type == kind)
        p_show = np.where(own, config.trace_probability, config.background_probability)
        trace[kind] = rng.random(n) < p_show
    # where a trace sits: before churn for churners, at a random point for everyone else
    last_t = np.zeros(n)
    np.maximum.at(last_t, cust, t)
    # service traces sit near the last purchase of churners, anywhere for look-alikes
    anchor = np.where(dead, died_at, rng.uniform(0, 1, n) * horizon)

    say("traces: competition fades, price rises, need narrows")
    gap = np.diff(t, prepend=0.0)
    gap[k == 0] = 0.0
    # purchase traces sit on each customer's last purchases (a churner's are before churn);
    # _reorder_within needs them to be the customer's last rows
    fade = trace["competition"][cust] & (from_end < 6) & (k > 0)
    noise = rng.lognormal(0, 0.25, len(t))
    gap = _reorder_within(cust, gap, fade, gap * noise)
    # times again from the reordered gaps: each customer's first purchase is at t = 0
    running = np.cumsum(gap)
    t = running - running[starts]
    amount_fade = trace["competition"][cust] & (from_end < 6)
    amount = _reorder_within(cust, amount, amount_fade, -amount * noise)
    # a price rise: the last orders cost more (ascending), and carry no discount
    amount_rise = trace["price"][cust] & (from_end < 6)
    amount = _reorder_within(cust, amount, amount_rise, amount * noise)
    price_window = trace["price"][cust] & (t > last_t[cust] - 90)

    price_sensitive = trace["price"] | (rng.random(n) < config.background_probability)
    discount_p = np.where(price_sensitive, 0.55, 0.1)[cust]
    discounted = (rng.random(len(t)) < discount_p) & ~price_window
    discount = np.where(discounted, np.round(amount * rng.uniform(0.1, 0.3, len(t)), 2), 0.0)

    n_pref = rng.integers(2, 5, n)
    prefs = np.array([rng.permutation(len(CATEGORIES)) for _ in range(min(n, 4096))])
    pref_rows = prefs[rng.integers(0, len(prefs), n)]
    pick = (rng.random(len(t)) * n_pref[cust]).astype(int)
    category_code = pref_rows[cust, pick]
    narrow = trace["need"][cust] & (from_end < np.maximum(2, (0.4 * count[cust]).astype(int)))
    category_code = np.where(narrow, pref_rows[cust, 0], category_code)
    # the purchases each trace marks (truth only: when a trace begins and ends)
    trace_rows = {"price": trace["price"][cust] & ((from_end < 6) | price_window),
                  "competition": amount_fade, "need": narrow}

    say("assembling transactions")
    day = np.timedelta64(1, "D") / np.timedelta64(1, "s")
    when = start + ((acquired[cust] + t) * day).astype("timedelta64[s]")
    amount = np.round(amount, 2)
    channel = attributes["channel"][cust]
    is_return = rng.random(len(t)) < config.return_rate
    ret_when = when[is_return] + (rng.uniform(1, 20, is_return.sum()) * day).astype("timedelta64[s]")
    keep = ret_when < end
    order_ids = np.arange(1, len(t) + 1)
    tx = pd.DataFrame(
        {
            "customer_id": pd.Categorical.from_codes(
                np.concatenate([cust, cust[is_return][keep]]), categories=ids
            ),
            "timestamp": np.concatenate([when, ret_when[keep]]).astype("datetime64[ms]"),
            "amount": np.concatenate(
                [amount, -np.round(amount[is_return][keep] * rng.uniform(0.3, 1.0, keep.sum()), 2)]
            ),
            "order_id": np.concatenate([order_ids, order_ids[is_return][keep]]),
            "discount": np.concatenate([discount, np.zeros(keep.sum())]),
            "category": pd.Categorical.from_codes(
                np.concatenate([category_code, category_code[is_return][keep]]),
                categories=list(CATEGORIES),
            ),
            "channel": pd.Categorical(np.concatenate([channel, channel[is_return][keep]])),
        }
    )
    # a return rounded to -0.00 would read as a $0 purchase (amount >= 0): keep it negative
    tx.loc[(tx["amount"] == 0) & (tx.index >= len(t)), "amount"] = -0.01
    tx = tx.sort_values(["timestamp"], kind="stable").reset_index(drop=True)

    say("interactions")
    interactions, service_trace = _interactions(rng, config, n, acquired, horizon, dead, churn_type, anchor, trace,
                                                start, end)
    interactions["customer_id"] = pd.Categorical.from_codes(interactions.pop("cust"), categories=ids)
    trace_span = {kind: _first_and_last(cust, when, rows, n) for kind, rows in trace_rows.items()}
    trace_span["service"] = _first_and_last(service_trace["cust"].to_numpy(), service_trace["timestamp"].to_numpy(),
                                            np.ones(len(service_trace), bool), n)

    recorded = dead & (acquired + churn_day < span_days)
    churn_events = pd.DataFrame(
        {
            "customer_id": ids[recorded],
            "churn_date": (start + ((acquired + churn_day)[recorded] * day).astype("timedelta64[s]")).astype(
                "datetime64[ms]"
            ),
            "churn_type": churn_type[recorded].astype(str),
        }
    )
    signup_lead = rng.integers(0, 15, n)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": (start + (acquired * day).astype("timedelta64[s]")).astype("datetime64[D]")
            - signup_lead.astype("timedelta64[D]"),
            **attributes,
        }
    )
    customers["signup_date"] = customers["signup_date"].astype("datetime64[ms]")

    truth_customers = pd.DataFrame(
        {
            "customer_id": ids,
            "lambda_per_day": lam,
            "dropout_p": dropout,
            "nu": nu,
            "alive_at_end": ~dead,
            "death_date": pd.to_datetime(
                np.where(dead, start + ((acquired + np.nan_to_num(died_at)) * day).astype("timedelta64[s]"), np.datetime64("NaT"))
            ),
            "churn_type": churn_type,
            **{f"trace_{kind}": trace[kind] for kind in TRACE_KINDS},
            # the first and last purchase or interaction of each trace in the data (NaT when the
            # customer shows no such trace): what a model can have seen of it by a given date
            **{f"trace_{kind}_{edge}": trace_span[kind][i] for kind in TRACE_KINDS
               for i, edge in enumerate(("start", "end"))},
        }
    )
    truth = {
        "config": asdict(config),
        "bgnbd_per_day": {"r": config.r, "alpha": config.alpha, "a": config.a, "b": config.b},
        "gamma_gamma": {"p": config.p, "q": config.q, "v": config.v},
        "counts": {
            "customers": n,
            "transactions": len(tx),
            "purchases": int(len(t)),
            "returns": int(keep.sum()),
            "interactions": len(interactions),
            "dropped_out": int(dead.sum()),
            "churn_events": int(recorded.sum()),
        },
        "churn_type_counts": pd.Series(churn_type[recorded]).value_counts().to_dict(),
        "type_ceiling_among_churners": expected_type_ceiling(config),
    }
    return {
        "transactions": tx,
        "customers": customers,
        "interactions": interactions,
        "churn_events": churn_events,
        "truth_customers": truth_customers,
        "truth": truth,
    }


def _first_and_last(cust, when, marked, n) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``n`` customers' earliest and latest ``when`` among its ``marked`` rows, NaT if none."""
    span = pd.Series(when[marked]).astype("datetime64[ms]").groupby(cust[marked]).agg(["min", "max"]).reindex(range(n))
    return span["min"].to_numpy(), span["max"].to_numpy()


def _interactions(rng, config, n, acquired, horizon, dead, churn_type, anchor, trace, start, end):
    """Background surveys and complaints for everyone, plus the service trace. Returns the
    interactions and, for the truth, the service trace's rows among them (cust, timestamp)."""
    years = horizon / 365.25
    parts = []

    def add(cust, when_days, kind, resolved, hours, satisfaction, is_trace=False):
        parts.append(
            pd.DataFrame(
                {
                    "is_trace": is_trace,
                    "cust": cust,
                    "days": acquired[cust] + when_days,
                    "kind": kind,
                    "resolved": resolved,
                    "resolution_hours": hours,
                    "satisfaction": satisfaction,
                }
            )
        )

    levels = np.array(SATISFACTION_LEVELS, dtype=float)
    # background complaints: mostly resolved, quickly
    n_c = rng.poisson(config.complaint_rate_per_year * years)
    cust = np.repeat(np.arange(n), n_c)
    resolved = rng.random(len(cust)) < 0.85
    add(cust, rng.uniform(0, 1, len(cust)) * horizon[cust], "complaint", resolved,
        np.where(resolved, rng.lognormal(np.log(8), 0.6, len(cust)), np.nan), np.nan)
    # surveys: mostly satisfied
    n_s = rng.poisson(config.survey_rate_per_year * years)
    cust = np.repeat(np.arange(n), n_s)
    add(cust, rng.uniform(0, 1, len(cust)) * horizon[cust], "survey", pd.NA, np.nan,
        rng.choice(levels, len(cust), p=[0.2, 0.3, 0.25, 0.12, 0.07, 0.04, 0.02]))
    # service trace: 1-3 complaints from 30 days before to 20 days after the anchor, often unresolved or slow
    who = np.flatnonzero(trace["service"])
    reps = rng.integers(1, 4, len(who))
    cust = np.repeat(who, reps)
    resolved = rng.random(len(cust)) < 0.3
    when_days = anchor[cust] + rng.uniform(-30, 20, len(cust))
    add(cust, when_days, "complaint", resolved,
        np.where(resolved, rng.lognormal(np.log(60), 0.5, len(cust)), np.nan), np.nan, is_trace=True)
    add(who, anchor[who] + rng.uniform(0, 5, len(who)), "survey",
        pd.NA, np.nan, rng.choice(levels[-3:], len(who)), is_trace=True)

    frame = pd.concat(parts, ignore_index=True)
    joined = acquired[frame["cust"].to_numpy()]
    # traces that would fall before acquisition or after the data end are left out
    frame = frame[(frame["days"] >= joined) & (frame["days"] < joined + horizon[frame["cust"].to_numpy()])]
    day = np.timedelta64(1, "D") / np.timedelta64(1, "s")
    frame["timestamp"] = (start + (frame.pop("days").to_numpy() * day).astype("timedelta64[s]")).astype(
        "datetime64[ms]"
    )
    frame["resolved"] = frame["resolved"].astype("boolean")
    frame["kind"] = pd.Categorical(frame["kind"])
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    service_trace = frame.loc[frame["is_trace"], ["cust", "timestamp"]]
    return frame[["cust", "timestamp", "kind", "resolved", "resolution_hours", "satisfaction"]], service_trace


def write_dataset(tables: dict, out: str | Path) -> Path:
    """Write the four tables as Parquet, truth.json, and the per-customer truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("transactions", "customers", "interactions", "churn_events"):
        # one row group: the categorical ids' dictionary (every customer) is stored and read
        # once, not once per million rows
        frame = tables[name]
        frame.to_parquet(out / f"{name}.parquet", index=False, row_group_size=max(len(frame), 1))
    tables["truth_customers"].to_parquet(out / "truth_customers.parquet", index=False)
    (out / "truth.json").write_text(json.dumps(tables["truth"], indent=2, default=str))
    return out


# --- a subscription base -------------------------------------------------------------------

# Logit effects of attributes on the mean monthly churn probability (retain.models.value.subscription).
SUBSCRIPTION_EFFECTS = {
    ("plan", "plus"): -0.4,
    ("plan", "premium"): -0.8,
    ("signup_source", "promo"): 0.7,
    ("channel", "app"): -0.3,
}
PLAN_BILLS = {"basic": 20.0, "plus": 35.0, "premium": 60.0}


@dataclass
class SubscriptionConfig:
    """A contractual base: every customer pays a bill each ``period_days`` (plus or minus
    ``jitter_days``, as calendar months do) until they cancel. At each renewal a customer
    cancels with probability theta ~ Beta(mu kappa, (1 - mu) kappa), mu = expit(logit(
    ``mean_churn``) + the attribute effects in SUBSCRIPTION_EFFECTS): the shifted-beta-geometric
    story with covariates ([FH2007], [FCN2004]). The bill is the plan's price."""

    customers: int = 10_000
    seed: int = 0
    start: str = "2023-01-01"
    acquisition_days: int = 730
    end: str = "2026-01-01"
    period_days: float = 30.0
    jitter_days: int = 1
    mean_churn: float = 0.06
    kappa: float = 2.0
    churn_type_shares: dict = field(default_factory=lambda: dict(GeneratorConfig().churn_type_shares))
    trace_probability: float = 0.75
    background_probability: float = 0.08
    complaint_rate_per_year: float = 0.4
    survey_rate_per_year: float = 0.8


def subscription_churn_mean(config: SubscriptionConfig, attributes: dict[str, np.ndarray]) -> np.ndarray:
    """Each customer's mean churn probability per renewal (the truth the sBG should recover)."""
    from scipy.special import expit, logit

    eta = np.full(len(next(iter(attributes.values()))), logit(config.mean_churn))
    for (name, value), effect in SUBSCRIPTION_EFFECTS.items():
        eta = eta + effect * (attributes[name] == value)
    return expit(eta)


def generate_subscription(config: SubscriptionConfig, progress=None) -> dict[str, pd.DataFrame | dict]:
    """The four tables plus the truth for a subscription base (``SubscriptionConfig``)."""
    say = progress or (lambda msg: None)
    rng, start, end, span_days = _time_frame(config)
    n = config.customers
    say("subscribers and their churn probabilities")
    ids = np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    acquired = np.floor(rng.uniform(0, config.acquisition_days, n))
    horizon = span_days - acquired
    attributes = {name: rng.choice(values, n) for name, values in ATTRIBUTES.items()}
    mean = subscription_churn_mean(config, attributes)
    theta = rng.beta(mean * config.kappa, (1 - mean) * config.kappa)
    # renewals made before cancelling: geometric (the first bill is at sign-up)
    renewals = rng.geometric(np.clip(theta, 1e-9, 1.0)) - 1

    say("bills")
    bills = renewals + 1
    last_possible = np.floor(horizon / config.period_days).astype(np.int64) + 1  # bills that fit before the end
    paid = np.minimum(bills, last_possible)
    cust = np.repeat(np.arange(n), paid)
    k = np.arange(len(cust)) - np.repeat(np.cumsum(paid) - paid, paid)
    jitter = rng.integers(-config.jitter_days, config.jitter_days + 1, len(cust)) * (k > 0)
    day = acquired[cust] + k * config.period_days + jitter
    inside = day < span_days
    cust, k, day = cust[inside], k[inside], day[inside]
    plan = attributes["plan"]
    amount = np.array([PLAN_BILLS[p] for p in plan])[cust]
    # cancelled: the renewal after the last bill falls inside the data
    cancel_day = acquired + bills * config.period_days
    dead = (renewals < last_possible - 1) & (cancel_day < span_days)

    say("churn types")
    churn_type = _draw_churn_types(config.churn_type_shares, attributes, dead, rng)
    trace = {kind: rng.random(n) < np.where(dead & (churn_type == kind), config.trace_probability,
                                            config.background_probability) for kind in TRACE_KINDS}
    died_at = np.where(dead, cancel_day - acquired, np.nan)
    anchor = np.where(dead, died_at, rng.uniform(0, 1, n) * horizon)

    second = np.timedelta64(1, "D") / np.timedelta64(1, "s")
    tx = pd.DataFrame({
        "customer_id": pd.Categorical.from_codes(cust, categories=ids),
        "timestamp": (start + (day * second).astype("timedelta64[s]")).astype("datetime64[ms]"),
        "amount": amount,
        "order_id": np.arange(1, len(cust) + 1),
    }).sort_values("timestamp", kind="stable").reset_index(drop=True)
    interactions, _ = _interactions(rng, config, n, acquired, horizon, dead, churn_type, anchor, trace, start, end)
    interactions["customer_id"] = pd.Categorical.from_codes(interactions.pop("cust"), categories=ids)
    churn_events = pd.DataFrame({
        "customer_id": ids[dead],
        "churn_date": (start + (cancel_day[dead] * second).astype("timedelta64[s]")).astype("datetime64[ms]"),
        "churn_type": churn_type[dead].astype(str),
    })
    customers = pd.DataFrame({"customer_id": ids,
                              "signup_date": (start + (acquired * second).astype("timedelta64[s]")).astype("datetime64[ms]"),
                              **attributes})
    truth_customers = pd.DataFrame({"customer_id": ids, "churn_probability": theta, "churn_mean": mean,
                                    "renewals_before_cancelling": renewals, "alive_at_end": ~dead,
                                    "churn_type": churn_type})
    truth = {
        "config": asdict(config),
        "business": "subscription",
        "sbg": {"mean_churn": config.mean_churn, "kappa": config.kappa,
                "effects": {f"attr_{name}={value}": effect for (name, value), effect in SUBSCRIPTION_EFFECTS.items()}},
        "counts": {"customers": n, "transactions": len(tx), "purchases": len(tx), "returns": 0,
                   "interactions": len(interactions), "dropped_out": int(dead.sum()), "churn_events": int(dead.sum())},
        "churn_type_counts": pd.Series(churn_type[dead]).value_counts().to_dict(),
    }
    return {"transactions": tx, "customers": customers, "interactions": interactions, "churn_events": churn_events,
            "truth_customers": truth_customers, "truth": truth}
