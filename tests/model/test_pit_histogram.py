"""The PIT histogram of holdout purchases: flat when the intervals are calibrated, logged
with every value training run and shown in the report beside the plain share inside (issue 26)."""

import numpy as np
import pytest

from retain.models.value.coverage import pit_histogram
from retain.models.value.learned import CountSpendOutcomes


def _negative_binomial(rng, mean, k):
    return rng.poisson(rng.gamma(k, mean / k))


def test_pit_histogram_is_flat_when_calibrated_and_u_shaped_when_too_narrow():
    rng = np.random.default_rng(0)
    mean = rng.gamma(0.8, 1.5, 40_000)
    actual = _negative_binomial(rng, mean, 0.6).astype(float)
    calibrated = pit_histogram(CountSpendOutcomes(mean, mean, 0.6, 1.0), actual)
    assert calibrated.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(calibrated, 0.1, atol=0.012)
    narrow = pit_histogram(CountSpendOutcomes(mean, mean, 50.0, 1.0), actual)  # nearly Poisson: too narrow
    assert narrow[0] + narrow[-1] > 0.3 and narrow[4] + narrow[5] < 0.2


def test_training_logs_the_pit_histogram_and_the_report_shows_it(trained, tmp_path):
    from retain.report.html import Charts, value_evidence_section
    from retain.report.numbers import ModelEvidence, read_run_artifacts

    evaluation, plots = read_run_artifacts(trained.settings, trained.value.run_id, tmp_path)
    shares = evaluation["purchases_pit_histogram"]
    assert len(shares) == 10 and sum(shares) == pytest.approx(1.0)
    assert "pit_histogram.png" in plots
    charts = Charts()
    page = value_evidence_section(ModelEvidence("retain-clv", "1", trained.value.run_id, True, {}, evaluation, plots),
                                  charts)
    assert "PIT histogram of holdout purchases" in charts.titles
    coverage = trained.value.metrics["purchases_interval_coverage"]
    assert f"randomized PIT coverage {coverage:.1%}" in page and "not read as miscalibration" in page
