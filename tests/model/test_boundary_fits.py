"""A fit at a parameter boundary is the limiting model, not a failure (issue 26): on a base
where nobody drops out, BG/NBD, MBG/NBD and Pareto/NBD are the NBD model, said in words and
usable; a family that truly fails is still left out with its reason."""

import numpy as np
import pandas as pd
import pytest

from retain.data import load_dataset
from retain.features import calibration_holdout
from retain.models.value import FitError, ProbabilisticValueModel
from retain.models.value.purchase import NO_DROPOUT, PurchaseModel
from retain.settings import Settings
from retain.training.value import train_value_model


def nbd_histories(n=3000, seed=0, r=0.6, alpha=8.0):
    """(frequency, recency, T) in whole weeks of a pure NBD base: Poisson purchases at a
    gamma-distributed rate, nobody drops out."""
    rng = np.random.default_rng(seed)
    T = rng.integers(20, 80, n).astype(float)
    counts = rng.poisson(rng.gamma(r, 1 / alpha, n) * T)
    recency = np.array([np.ceil(rng.uniform(0, t, c).max()) if c else 0.0 for t, c in zip(T, counts)])
    return counts.astype(float), recency, T


def nbd_transactions(n=2500, seed=1) -> pd.DataFrame:
    """Two years of daily purchases of a pure NBD base, customers arriving over the first year."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01")
    first = rng.integers(0, 365, n)
    rate = rng.gamma(0.6, 1 / 40.0, n)  # purchases per day
    rows = []
    for customer, (day, lam) in enumerate(zip(first, rate)):
        days = np.unique(np.r_[day, day + rng.uniform(0, 731 - day, rng.poisson(lam * (731 - day))).astype(int)])
        rows.append(pd.DataFrame({"customer_id": f"c{customer}", "timestamp": start + days.astype("timedelta64[D]"),
                                  "amount": np.round(rng.gamma(2.0, 15.0, len(days)), 2)}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("family", ["bgnbd", "mbgnbd", "pareto"])
def test_no_dropout_is_the_nbd_model_and_usable(family):
    frequency, recency, T = nbd_histories()
    model = PurchaseModel(family).fit(frequency, recency, T)  # today: FitError "extreme parameters"
    assert model.limit_ == NO_DROPOUT and "no detectable dropout: this is the NBD model" in model.description
    assert set(model.params_) == {"r", "alpha"} and 0.4 < model.params_["r"] < 0.8
    np.testing.assert_allclose(model.p_alive(frequency, recency, T), 1.0)
    expected = model.expected_purchases(10.0, frequency, recency, T)
    np.testing.assert_allclose(expected, (model.params_["r"] + frequency) / (model.params_["alpha"] + T) * 10.0)
    assert np.all(np.isfinite(list(model.standard_errors().values())))
    # the whole value model scores, with calibrated intervals, on the same kind of base
    table = pd.DataFrame({"customer_id": [str(i) for i in range(len(T))], "frequency": frequency,
                          "recency": recency, "T": T, "monetary": np.where(frequency > 0, 30.0 + 5 * (T % 7), 0.0)})
    table["spend_180d"] = table["monetary"] * table["frequency"]
    value = ProbabilisticValueModel(family, time_unit_days=7).fit(table)
    forecast = value.forecast(table, 20 * 7)
    assert np.all(np.isfinite(forecast.purchases)) and np.all(np.isfinite(forecast.spend))
    assert np.all(forecast.outcomes.count_cdf(np.full(len(T), 50.0)) > 0.99)


def test_a_fit_that_truly_fails_still_says_why():
    """Everyone drops out with one probability: BG/NBD runs to a, b -> infinity at a fixed
    a/(a+b), not to no drop-out; the NBD fits far worse, so it is no limit: the failure is
    reported."""
    rng = np.random.default_rng(0)
    frequency = rng.poisson(2, 300).astype(float)
    age = rng.integers(100, 700, 300).astype(float)
    recency = np.where(frequency > 0, age * rng.random(300), 0.0)
    with pytest.raises(FitError, match="BG/NBD fit (ran to extreme parameters|did not converge)"):
        PurchaseModel("bgnbd").fit(frequency, recency, age)


def test_the_learned_model_trains_on_a_base_with_no_dropout(tmp_path):
    """Today the learned model is dropped: its inner BG/NBD input hits the no-drop-out limit."""
    folder = tmp_path / "data"
    folder.mkdir()
    nbd_transactions().to_parquet(folder / "transactions.parquet")
    dataset = load_dataset(folder, data_cutoff="2026-01-01")
    result = train_value_model(dataset, "2025-07-01", family="learned", settings=Settings(home=tmp_path / "home"))
    assert result.chosen_model == "learned" and "error" not in result.comparison["learned"]
    assert "no detectable dropout: this is the NBD model" in result.comparison["learned"]["note"]
    assert abs(result.metrics["total_purchases_pct_error"]) < 15
