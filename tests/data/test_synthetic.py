"""The generated base: reproducible, recovers its parameters, carries the churn-type traces."""

import json

import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from retain.cli import main
from retain.data.synthetic import GeneratorConfig, expected_type_ceiling, generate
from retain.features import build_features, rfm_summary


@pytest.fixture(scope="module")
def larger():
    return generate(GeneratorConfig(customers=30_000, seed=11))


def test_same_seed_same_data_other_seed_other_data():
    a = generate(GeneratorConfig(customers=500, seed=3))
    b = generate(GeneratorConfig(customers=500, seed=3))
    c = generate(GeneratorConfig(customers=500, seed=4))
    pd.testing.assert_frame_equal(a["transactions"], b["transactions"])
    assert not a["transactions"]["amount"].equals(c["transactions"]["amount"])


def test_fitting_recovers_the_generating_parameters(larger):
    """Tolerance: 10% relative on every BG/NBD and Gamma-Gamma parameter at 30k customers
    (the fits' standard errors there are 2-5%; same-day purchases merge, a small bias)."""
    truth = larger["truth"]
    end = pd.Timestamp(truth["config"]["end"])
    summary = rfm_summary(larger["transactions"], end)
    bg = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    for name, value in truth["bgnbd_per_day"].items():
        assert bg.params_[name] == pytest.approx(value, rel=0.10), name
    repeat = summary[summary["frequency"] > 0]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary"])
    for name, value in truth["gamma_gamma"].items():
        assert gg.params_[name] == pytest.approx(value, rel=0.10), name


def test_churn_events_follow_dropout(larger):
    truth = larger["truth_customers"].set_index("customer_id")
    events = larger["churn_events"].set_index("customer_id")
    assert not truth.loc[events.index, "alive_at_end"].any()
    assert (events["churn_date"] > truth.loc[events.index, "death_date"]).all()
    assert set(events["churn_type"]) == {"natural", "price", "service", "competition", "need"}


def churner_features(base, kind_days=120):
    """Features 60 days before each churner's churn, by type, against never-churners."""
    events = base["churn_events"]
    as_of = pd.Timestamp("2025-07-01")
    window = events[(events["churn_date"] >= as_of) & (events["churn_date"] < as_of + pd.Timedelta(days=kind_days))]
    table, _ = build_features(base["transactions"], as_of, customers=base["customers"], interactions=base["interactions"])
    label = window.set_index("customer_id")["churn_type"]
    table["label"] = table["customer_id"].map(label).fillna("retained")
    return table


def test_each_churn_type_leaves_its_trace(larger):
    table = churner_features(larger)
    by = table.groupby("label")
    assert by["unresolved_complaints_90d"].mean().idxmax() == "service"
    assert by["discounted_orders_share"].mean().idxmax() == "price"
    assert by["order_value_change_90d"].mean()["price"] > by["order_value_change_90d"].mean()["retained"]
    narrowing = (table["categories_last_4_orders"] / table["categories_before_last_4_orders"])
    assert narrowing.groupby(table["label"]).mean().idxmin() == "need"
    assert by["last_gap_vs_rhythm"].mean()["competition"] > by["last_gap_vs_rhythm"].mean()["natural"]


def test_traces_are_noisy_so_the_ceiling_is_below_one():
    ceiling = expected_type_ceiling(GeneratorConfig())
    assert 0.5 < ceiling["accuracy"] < 0.95
    sharper = expected_type_ceiling(GeneratorConfig(trace_probability=0.95, background_probability=0.01))
    assert sharper["accuracy"] > ceiling["accuracy"]


def test_attributes_tilt_churn_types(larger):
    truth = larger["truth_customers"].merge(larger["customers"], on="customer_id")
    churned = truth[truth["churn_type"].notna()]
    share = churned.groupby("signup_source")["churn_type"].apply(lambda s: (s == "price").mean())
    assert share["promo"] > 1.2 * share.drop("promo").mean()


def test_cli_generate_writes_all_tables(tmp_path):
    assert main(["generate", "--customers", "300", "--seed", "5", "--out", str(tmp_path)]) == 0
    for name in ("transactions", "customers", "interactions", "churn_events"):
        assert len(pd.read_parquet(tmp_path / f"{name}.parquet")) > 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["counts"]["customers"] == 300
    assert truth["bgnbd_per_day"]["r"] == GeneratorConfig().r


def test_truth_dates_each_trace_on_the_rows_that_carry_it():
    """trace_<kind>_start/_end (what a model can have seen of a trace by a date) fall on the
    customer's own purchases or service complaints, and only for customers showing the trace."""
    base = generate(GeneratorConfig(customers=2_000, seed=7))
    truth = base["truth_customers"].set_index("customer_id")
    purchases = base["transactions"][base["transactions"]["amount"] >= 0].copy()
    purchases["customer_id"] = purchases["customer_id"].astype(str)
    purchases = purchases.sort_values(["customer_id", "timestamp"], kind="stable")
    purchases["from_end"] = purchases.groupby("customer_id").cumcount(ascending=False)
    last = purchases.groupby("customer_id")["timestamp"].max()
    sixth_from_last = purchases[purchases["from_end"] < 6].groupby("customer_id")["timestamp"].min()
    for kind in ("price", "competition", "need"):
        shown = truth[f"trace_{kind}"]
        assert shown.any()
        assert truth[f"trace_{kind}_start"].notna().equals(shown), kind
        start, end = truth.loc[shown, f"trace_{kind}_start"], truth.loc[shown, f"trace_{kind}_end"]
        assert (end == last[end.index]).all(), kind  # purchase traces run to the last purchase
        assert (start <= end).all(), kind
    competition = truth.loc[truth["trace_competition"], "trace_competition_start"]
    assert (competition == sixth_from_last[competition.index]).all()  # the last six purchases fade
    price = truth.loc[truth["trace_price"], "trace_price_start"]
    assert (price <= sixth_from_last[price.index]).all()
    # a need trace narrows to one category: from its start on, one category only
    need = truth.loc[truth["trace_need"], "trace_need_start"]
    narrowed = purchases[purchases["customer_id"].isin(need.index)]
    narrowed = narrowed[narrowed["timestamp"] >= narrowed["customer_id"].map(need)]
    assert (narrowed.groupby("customer_id")["category"].nunique() == 1).all()
    # the service trace: complaints and a survey near a churner's last purchase
    service = truth[truth["trace_service_start"].notna()]
    assert service["trace_service"].all() and len(service) > 0.9 * truth["trace_service"].sum()
    interactions = base["interactions"].assign(customer_id=base["interactions"]["customer_id"].astype(str))
    dated = set(zip(interactions["customer_id"], interactions["timestamp"]))
    assert all((c, t) in dated for c, t in service["trace_service_start"].items())
    assert all((c, t) in dated for c, t in service["trace_service_end"].items())
    churners = service[~service["alive_at_end"]]
    assert (churners["trace_service_start"] >= churners["death_date"] - pd.Timedelta(days=30)).all()
    assert (churners["trace_service_end"] <= churners["death_date"] + pd.Timedelta(days=20)).all()
