"""``retain report``: one self-contained HTML file, checked as a person would check it:
opened in headless Chromium, screenshot taken, charts present, no console errors."""

import base64
import io
import re
import shutil
import subprocess

import pandas as pd
import pytest
from PIL import Image

from retain.cli import main

AS_OF = "2025-12-01"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMAGE = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"')


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    """One `retain score` run into a score store of its own, then `retain report` with defaults."""
    root = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("RETAIN_HOME", str(root / "home"))
    uri = ["--tracking-uri", trained.settings.resolved_tracking_uri]
    try:
        assert main(["score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(root / "scores.parquet"),
                     *uri]) == 0
        assert main(["report", "--out", str(root / "report.html"), *uri]) == 0  # --scores from the store's runs
    finally:
        mp.undo()
    return root


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run_chromium(tmp_path, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_is_one_self_contained_file_for_both_audiences(scored):
    page = (scored / "report.html").read_text()
    scores = pd.read_parquet(scored / "scores.parquet")
    # nothing fetched from elsewhere: no scripts, no remote or local file references
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    images = IMAGE.findall(page)
    titles = [alt for alt, _ in images]
    for expected in ("Customers by RFM segment", "Customers by lifecycle stage", "Value matrix", "CLV distribution",
                     "At-risk customers by churn type", "Cumulative repeat purchases, actual vs predicted",
                     "P(alive) matrix", "Frequency/recency matrix", "Calibration curves", "Confusion matrix",
                     "Feature importances", "Drift (PSI per column)"):
        assert expected in titles, expected
    for alt, data in images:
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        assert picture.format == "PNG" and picture.width > 200 and picture.height > 100, alt
    # the at-risk tables list active customers predicted to churn, and only those
    listed = set(re.findall(r"<td>(C\d+)</td>", page))
    active = scores[(scores["not_scored_reason"] == "") & scores["will_churn"].eq(True)]
    assert listed and listed <= set(active["customer_id"])
    top = active.assign(risk=active["p_churn"] * active["clv"]).sort_values("risk").iloc[-1]
    assert top["customer_id"] in listed and top["recommended_action"] in page
    # holdout evaluation against the baselines, and the drift of this very run
    assert "naive baseline" in page and "majority baseline" in page and "logistic rfm baseline" in page
    assert "population stability index" in page and "scores_2025_12_01" in page
    assert f"{len(scores):,} customers" in page
    # the story the scores tell, in words: how sure the CLV is, what "high" means, each list's precision
    assert "How sure the CLV is" in page and "at least 80% of the time" in page
    assert "median" not in re.sub(r"median (CLV|low end|high end)|median: ", "", page)  # "high" is no median cut
    assert "top three tiers" in page
    assert page.count("Expected precision of this list") == len(set(active["churn_type"]))


def test_report_opens_in_headless_chromium_with_charts_and_no_console_errors(scored, tmp_path):
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` to run the report's browser test")
    url = (scored / "report.html").as_uri()
    dom = _run_chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = IMAGE.findall(dom.stdout)
    assert len(rendered) >= 12 and all(len(data) > 1000 for _, data in rendered)
    assert _console_errors(dom.stderr) == []
    shot = tmp_path / "report.png"
    result = _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    picture = Image.open(shot).convert("L")
    assert picture.size == (1280, 2400)
    assert len(picture.getcolors(256)) > 50  # drawn charts and text, not a blank page (grey levels used)
    shutil.copy(shot, scored / "report.png")  # kept beside the report for people to look at


def test_console_error_check_sees_a_broken_page(tmp_path):
    """The browser test's console check does catch an error (so its silence means something)."""
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` to run the report's browser test")
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>noSuchFunction()</script></body></html>")
    result = _run_chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    assert any("noSuchFunction" in line for line in _console_errors(result.stderr))


def test_report_errors_name_the_problem(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "empty-home"))
    uri = ["--tracking-uri", trained.settings.resolved_tracking_uri]
    assert main(["report", "--out", str(tmp_path / "r.html"), *uri]) == 2
    assert "no score run is recorded in the score store" in capsys.readouterr().err
    assert main(["report", "--scores", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "r.html"), *uri]) == 2
    assert "nope.parquet does not exist" in capsys.readouterr().err
    pd.DataFrame({"customer_id": ["a"], "clv": [1.0]}).to_parquet(tmp_path / "other.parquet")
    assert main(["report", "--scores", str(tmp_path / "other.parquet"), "--out", str(tmp_path / "r.html"), *uri]) == 2
    err = capsys.readouterr().err
    assert "lacks the score columns" in err and "not_scored_reason" in err
    assert not (tmp_path / "r.html").exists()


def test_scores_without_a_churn_model_say_so_instead_of_no_risk(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RETAIN_HOME", str(tmp_path / "home"))
    uri = ["--tracking-uri", trained.settings.resolved_tracking_uri]
    scores = tmp_path / "value-only.parquet"
    assert main(["score", "--data", str(trained.data), "--as-of", AS_OF, "--out", str(scores), "--models", "clv=1",
                 "--no-store", *uri]) == 0
    assert main(["report", "--scores", str(scores), "--out", str(tmp_path / "report.html"), *uri]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "made without a churn model" in page and "No active customer is predicted to churn" not in page
    tiles = dict((label, value) for value, label in re.findall(
        r'<div class="kpi"><div class="value">([^<]*)</div><div class="label">([^<]*)</div>', page))
    assert tiles["active customers likely to churn"] == "no churn model"  # not "0": nobody predicted anything
    assert tiles["CLV of those likely to churn"] == "no churn model"
    assert "the churn model expects to leave" not in page  # no churn model to expect anything
    assert "the scores were made without retain-churn-type: this is its current champion" in page
    assert not re.findall(r"<td>(C\d+)</td>", page)  # no at-risk table


def test_report_numbers_without_html():
    """What the marketing section shows, from a scores frame alone: categories in display
    order (best quadrant first), the value matrix and the at-risk ranking."""
    from retain.models.value.tiers import QUADRANT_ORDER, QUADRANTS
    from retain.report import numbers

    scores = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "not_scored_reason": ["", "", "", "", "churned on 2025-03-01 (price)"],
        "clv": [10.0, 30.0, 5.0, 100.0, 0.0],
        "value_tier": ["iron", "lead", "iron", "platinum", None],
        "value_quadrant": [QUADRANTS[(True, True)], QUADRANTS[(False, False)], QUADRANTS[(True, True)],
                           QUADRANTS[(False, True)], None],
        "will_churn": [True, False, True, None, None],
        "p_churn": [0.5, 0.1, 0.9, 0.2, None],
        "churn_type": ["price", None, "service", None, None],
        "churn_model_version": ["retain-churn-type/v1"] * 5,
    })
    scored = numbers.scored_customers(scores)
    at_risk = numbers.likely_to_churn(scored)
    assert numbers.headline(scores, scored, at_risk) == numbers.Headline(5, 4, 145.0, 2, 15.0)
    # counts by reason come from the run; a file alone has its total
    assert numbers.not_scored_groups(scores, {"churned": 1}).to_dict() == {"churned": 1}
    assert numbers.not_scored_groups(scores, None) is None
    assert numbers.DISPLAY_ORDER["value_quadrant"] == tuple(reversed(QUADRANT_ORDER))
    counts, values = numbers.counts_and_value(scored, "value_tier")
    assert list(counts.index) == ["platinum", "iron", "lead"] and counts["iron"] == 2 and values["iron"] == 15.0
    by_quadrant = numbers.clv_by_quadrant(scored)
    grid_counts, grid_values = numbers.value_matrix(by_quadrant)
    assert grid_counts.loc["high", "high"] == 2 and grid_values.loc["low", "high"] == 100.0
    assert grid_counts.to_numpy().sum() == 4
    rows = numbers.quadrant_rows(by_quadrant)
    assert [r["quadrant"] for r in rows] == list(reversed(QUADRANT_ORDER))
    assert rows[0]["customers"] == 2 and rows[0]["clv"] == 15.0
    assert [r for r in rows if r["quadrant"] == QUADRANTS[(True, False)]][0]["mean_clv"] is None
    by_type, rows_of = numbers.at_risk_by_type(at_risk)
    assert list(by_type.index) == ["price", "service"]  # value at risk 0.5 x 10 = 5.0 before 0.9 x 5 = 4.5
    assert rows_of["service"]["value at risk"].tolist() == [4.5]
    assert numbers.has_churn_model(scores)


def test_customer_age_shifts_without_an_alert_as_the_cli_and_store_say():
    """T (customer age) past the threshold is reported, never an alert: as `retain score`'s
    summary and the score store decide (serving/jobs/chunks.py, features.drift.AGE_COLUMNS)."""
    from retain.report import html, numbers

    report = {"as_of": "2025-12-01", "threshold_psi": 0.25, "columns": [
        {"column": "T", "psi": 0.9, "unseen_share": None, "level": "major"},
        {"column": "clv", "psi": 0.05, "unseen_share": None, "level": "stable"}]}
    found = numbers.drift_of(report)
    assert found.alert == [] and found.shifted_without_alert == ["T"]
    section = html.drift_section(report, pd.DataFrame(), html.Charts())
    assert "Alert" not in section and "No major shift" in section and "raises no alert" in section
    report["columns"][1]["psi"] = 0.4
    assert "<strong>Alert: clv.</strong>" in html.drift_section(report, pd.DataFrame(), html.Charts())


def test_interval_words_and_list_precision_from_the_numbers():
    from retain.report import numbers

    scored = pd.DataFrame({"clv": [10.0, 100.0, 5.0], "clv_low": [0.0, 20.0, 0.0], "clv_high": [30.0, 300.0, 9.0],
                           "value_tier": ["iron", "platinum", "lead"],
                           "value_quadrant": ["high now / high later", "low now / high later", "low now / low later"]})
    words = numbers.interval_words(scored)
    assert words["starts_at_zero"] == pytest.approx(2 / 3)
    assert words["by_tier"]["value tier"].tolist() == ["platinum", "iron", "lead"]
    assert numbers.interval_words(scored.drop(columns=["clv_low"])) is None
    cuts = numbers.high_value_cuts(scored)
    assert cuts["high_later"] == pytest.approx(2 / 3) and cuts["clv_of_high_later"] == pytest.approx(110 / 115)
    evaluation = {"metrics": {"per_class": {"retained": {"precision": 0.9, "recall": 0.9, "support": 90},
                                            "price": {"precision": 0.4, "recall": 0.3, "support": 10}}}}
    assert numbers.list_precision(evaluation) == {"price": {"precision": 0.4, "recall": 0.3, "support": 10}}
    assert numbers.list_precision(None) == {}
