"""The Gamma-Gamma spend model on retain's own likelihood, and spend with no spread (issue 26)."""


import numpy as np
import pandas as pd
import pytest
from lifetimes import GammaGammaFitter

from retain.data import load_dataset
from retain.data.cdnow import cdnow_transactions
from retain.data.synthetic import write_dataset
from retain.features import FeatureConfig, calibration_holdout
from retain.models.value.spend import SpendModel
from retain.settings import Settings
from retain.training.value import train_value_model


@pytest.fixture(scope="module")
def cdnow_sample():
    table, _ = calibration_holdout(cdnow_transactions("sample"), "1997-10-01", "1998-07-01",
                                   config=FeatureConfig(time_unit_days=7))
    return table


@pytest.mark.parametrize("penalizer", [0.0, 0.001])
def test_estimates_equal_lifetimes_gamma_gamma(cdnow_sample, penalizer):
    repeat = (cdnow_sample["frequency"] > 0) & (cdnow_sample["monetary"] > 0)
    theirs = GammaGammaFitter(penalizer_coef=penalizer).fit(
        cdnow_sample.loc[repeat, "frequency"], cdnow_sample.loc[repeat, "monetary"], q_constraint=True)
    ours = SpendModel(penalizer=penalizer).fit(cdnow_sample["frequency"], cdnow_sample["monetary"])
    for name in ("p", "q", "v"):
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-3), name
    if penalizer == 0:  # the published CDNOW values, on the 946 repeat buyers
        assert ours.n_customers_ == 946
        for name, value in {"p": 6.2488, "q": 3.7446, "v": 15.4477}.items():
            assert ours.params_[name] == pytest.approx(value, rel=1e-3), name
        assert ours.constant_spend_ is None and np.isfinite(ours.log_likelihood_)


@pytest.mark.parametrize("noise", [0.0, 1e-6])
def test_constant_spend_gives_the_observed_mean(noise):
    """A log of dates only (every purchase worth 1.0), or spend that barely varies: no
    spread to model, so every customer's expected order value is the observed mean."""
    rng = np.random.default_rng(2)
    frequency = rng.integers(0, 8, 3000).astype(float)
    monetary = np.where(frequency > 0, 1.0 + noise * rng.standard_normal(3000), 0.0)
    spend = SpendModel().fit(frequency, monetary)
    assert spend.constant_spend_ == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(spend.expected_order_value(frequency, monetary), spend.constant_spend_)
    # the limiting parameters give the same mean through the Gamma-Gamma formula
    np.testing.assert_allclose(spend.expected_order_value(frequency, monetary, params=spend.params_), 1.0, rtol=1e-4)
    assert "no spread" in spend.description


def test_a_dates_only_log_trains_with_no_extra_flags(generated, tmp_path):
    """Today `retain train clv` stops: 'the Gamma-Gamma spend fit did not converge'."""
    tables = dict(generated)
    purchases = generated["transactions"]
    tables["transactions"] = purchases[purchases["amount"] > 0].assign(amount=1.0)  # no returns in a dates-only log
    write_dataset(tables, tmp_path / "data")
    dataset = load_dataset(tmp_path / "data", data_cutoff="2026-01-01")
    result = train_value_model(dataset, "2025-01-01", family="bgnbd", settings=Settings(home=tmp_path / "home"))
    assert result.params["p"] > 1e5  # the no-spread limit
    assert np.isfinite(result.metrics["spend_mae"]) and result.metrics["spend_gini"] > 0


def test_fit_on_a_million_customers_recovers_the_parameters():
    """Collapsed (frequency, mean spend) pairs at 1M customers; the time is measured by
    benchmarks/bench_value.py (docs/benchmarks.md), not asserted here."""
    rng = np.random.default_rng(0)
    n = 1_000_000
    frequency = rng.poisson(rng.gamma(0.5, 4, n)).astype(float)
    nu = rng.gamma(3.7, 1 / 15.4, n)
    monetary = np.where(frequency > 0, rng.gamma(6.2 * np.maximum(frequency, 1), 1.0) / (nu * np.maximum(frequency, 1)),
                        0.0)
    monetary = np.round(monetary, 2)  # cents, as real spend is
    spend = SpendModel().fit(frequency, monetary)
    assert spend.params_["p"] == pytest.approx(6.2, rel=0.05) and spend.params_["q"] == pytest.approx(3.7, rel=0.1)
