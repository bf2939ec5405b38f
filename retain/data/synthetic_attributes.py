"""An attribute-heavy subscription base with known churn reasons, shaped like a telecom
export: monthly bills, a customers table rich in attributes (numbers, categories, a number
written as text with blank cells, a date as text, missing values), complaints, and five churn
categories.

Why a customer leaves depends partly on the attributes (contract, internet type, charges,
age, offer) and partly on what only the history shows: a price rise on the bills before
a ``price`` churn, complaints before a ``service`` churn, falling usage before a
``competitor`` churn. A classifier on the attributes alone sees the first part; the churn
model also reads the history. ``benchmarks/bench_churn.py --attribute-base`` compares them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.errors import RetainError

CHURN_CATEGORIES = ("competitor", "price", "service", "attitude", "other")


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=1, keepdims=True)


def generate_attribute_base(customers: int = 20_000, seed: int = 0, end: str = "2026-01-01",
                            history_signal: float = 0.6) -> dict[str, pd.DataFrame]:
    """``transactions`` (one bill a month), ``customers``, ``interactions`` (complaints) and
    ``churn_events``. ``history_signal``: the share of churners whose reason leaves a trace
    in the history (a price rise, complaints, shrinking bills), before the churn date."""
    if customers < 1:
        raise RetainError(f"an attribute base needs at least 1 customer, not {customers}")
    rng = np.random.default_rng(seed)
    n = customers
    start = pd.Timestamp("2022-01-01")
    end = pd.Timestamp(end)
    span = (end - start).days
    signup_day = rng.integers(0, span - 120, n)

    age = rng.integers(18, 85, n).astype(float)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.55, 0.25, 0.20])
    internet = rng.choice(["fiber optic", "dsl", "cable", "none"], n, p=[0.45, 0.30, 0.10, 0.15])
    payment = rng.choice(["credit card", "bank withdrawal", "mailed check"], n, p=[0.4, 0.4, 0.2])
    offer = rng.choice(["offer a", "offer b", "offer c", "offer d", "offer e", None], n,
                       p=[0.08, 0.1, 0.1, 0.12, 0.1, 0.5])
    dependents = rng.choice(["yes", "no"], n, p=[0.3, 0.7])
    region = rng.choice(["north", "south", "east", "west", "central"], n)
    base_charge = {"fiber optic": 80.0, "dsl": 55.0, "cable": 60.0, "none": 25.0}
    monthly = np.array([base_charge[k] for k in internet]) + rng.normal(0, 12, n).clip(-20, 30)
    monthly = np.round(monthly.clip(18, 120), 2)
    data_gb = np.where(internet == "none", 0.0, rng.gamma(2.0, 12.0, n).round(1))
    data_gb = np.where(rng.random(n) < 0.15, np.nan, data_gb)  # not recorded for some
    satisfaction = rng.integers(1, 6, n).astype(float)
    satisfaction = np.where(rng.random(n) < 0.2, np.nan, satisfaction)

    # monthly leaving hazard from the attributes
    hazard = 0.012 * np.select([contract == "month-to-month", contract == "one year"], [3.0, 0.8], 0.3)
    hazard *= np.where(internet == "fiber optic", 1.5, 1.0) * (1 + (monthly - 60) / 120)
    hazard *= np.where(np.isnan(satisfaction), 1.0, 1.6 - 0.2 * np.nan_to_num(satisfaction))
    hazard *= np.where(offer == "offer e", 1.5, 1.0) * np.where(age > 65, 1.3, 1.0)
    months = rng.geometric(np.clip(hazard, 0.002, 0.5))
    churn_day = signup_day + months * 30 + rng.integers(5, 25, n)

    # the reason: attributes tilt it (a plain classifier can learn these) ...
    scores = np.zeros((n, len(CHURN_CATEGORIES)))
    scores[:, 0] += 1.2 * (internet == "fiber optic") + 0.8 * (contract == "month-to-month") + 0.5 * pd.isna(offer)
    scores[:, 1] += 0.025 * (monthly - 60) + 0.6 * (payment == "mailed check")
    scores[:, 2] += 0.5 * (internet == "fiber optic") + 0.4 * np.nan_to_num(3 - satisfaction)
    scores[:, 3] += 0.03 * (age - 50) + 0.6 * (dependents == "no")
    scores[:, 4] += 0.2
    p = _softmax(scores)
    kind_code = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, len(CHURN_CATEGORIES) - 1)
    kind = np.array(CHURN_CATEGORIES, dtype=object)[kind_code]
    # ... and the history shows it for some: only a model reading bills and complaints sees this
    traced = rng.random(n) < history_signal

    bills = []
    rise_at = churn_day - rng.integers(60, 120, n)  # price rise 2-4 months before leaving
    fade_from = churn_day - rng.integers(90, 150, n)  # bills shrink as usage moves elsewhere
    for i in range(n):
        days = signup_day[i] + 30 * np.arange(months[i] + 1)
        days = days[(days < churn_day[i] - 5) & (days < span)]
        amount = np.full(len(days), monthly[i]) * rng.normal(1, 0.03, len(days))
        if traced[i] and kind[i] == "price":
            amount = np.where(days >= rise_at[i], amount * rng.uniform(1.15, 1.35), amount)
        if traced[i] and kind[i] == "competitor":
            amount = np.where(days >= fade_from[i], amount * rng.uniform(0.55, 0.8), amount)
        bills.append((np.full(len(days), i), days, np.round(amount, 2)))
    who = np.concatenate([b[0] for b in bills])
    day = np.concatenate([b[1] for b in bills])
    amount = np.concatenate([b[2] for b in bills])
    ids = np.array([f"T{i:06d}" for i in range(n)], dtype=object)
    transactions = pd.DataFrame({"customer_id": ids[who], "timestamp": start + pd.to_timedelta(day, unit="D"),
                                 "amount": amount})

    # complaints: background for everyone, a burst before a traced service churn
    background = rng.poisson(0.5 * (np.minimum(churn_day, span) - signup_day) / 365)
    c_who = np.repeat(np.arange(n), background)
    c_day = signup_day[c_who] + rng.random(len(c_who)) * (np.minimum(churn_day, span) - signup_day)[c_who]
    c_resolved = rng.random(len(c_who)) < 0.85
    burst = np.flatnonzero(traced & (kind == "service"))
    reps = rng.integers(1, 4, len(burst))
    b_who = np.repeat(burst, reps)
    b_day = churn_day[b_who] - rng.uniform(10, 80, len(b_who))
    interactions = pd.DataFrame({
        "customer_id": ids[np.concatenate([c_who, b_who])],
        "timestamp": start + pd.to_timedelta(np.concatenate([c_day, b_day]), unit="D"),
        "kind": "complaint",
        "resolved": np.concatenate([c_resolved, rng.random(len(b_who)) < 0.3]),
    })
    interactions = interactions[(interactions["timestamp"] < end)
                                & (interactions["timestamp"] >= start + pd.to_timedelta(
                                    signup_day[pd.Index(ids).get_indexer(interactions["customer_id"])], unit="D"))]

    left = churn_day < span
    churn_events = pd.DataFrame({"customer_id": ids[left], "churn_date": start + pd.to_timedelta(churn_day[left], unit="D"),
                                 "churn_type": kind[left].astype(str)})
    # total charges as of an export a year before the end (a later total would tell who left when)
    exported = span - 365
    billed_months = np.clip((np.minimum(exported, churn_day) - signup_day) // 30, 0, None)
    total = np.round(billed_months * monthly, 2).astype(str)
    total = np.where(billed_months < 1, " ", total)  # as in telecom exports: blank until the first full bill
    customers_table = pd.DataFrame({
        "customer_id": ids, "age": age, "contract": contract, "internet_type": internet,
        "payment_method": payment, "offer": offer, "dependents": dependents, "region": region,
        "monthly_charges": monthly, "total_charges": total, "avg_monthly_gb": data_gb,
        "satisfaction_score": satisfaction,
        "contract_start": (start + pd.to_timedelta(signup_day, unit="D")).strftime("%Y-%m-%d"),
    })
    return {"transactions": transactions, "customers": customers_table, "interactions": interactions.reset_index(drop=True),
            "churn_events": churn_events}
