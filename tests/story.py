"""The invariants of one customer's story (docs/customer-story.md), checked over the output of
any scoring path: the batch job (local and Spark), the HTTP service, the pyfuncs.

``check_story(scores)`` measures each invariant whose columns the scores hold on the scored
customers and returns one ``Invariant`` per check with the share of customers that break
it; ``story_failures`` keeps those broken for more than ``TOLERANCE`` of them (the issue's
bar: every invariant holds for at least 99% of scored customers). The churn invariants are
skipped where the scores hold no churn prediction (no churn model), the value ones where
they hold no value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retain.models.actions import LOW_RISK_ACTION, MOVE_DIRECTION
from retain.models.value import ValueConfig

TOLERANCE = 0.01
# The value invariants, and the ones that read the churn model's columns.
VALUE_INVARIANTS = ("alive_vs_lifecycle", "opposite_moves", "interval_holds_clv")
# Read the churn columns but hold by the scoring core's construction (the precedence of moves).
MOVE_INVARIANTS = ("termination_vs_action",)
# The churn model's: will_churn is one threshold on p_churn.
CHURN_INVARIANTS = ("one_churn_threshold", "termination_vs_will_churn", "alive_vs_churn")
# "P(alive) below 0.3 with p_churn below 0.1" (issue 23): the model thinks the customer is
# probably gone already, the churn model that they will stay.
LOW_P_CHURN = 0.1


@dataclass(frozen=True)
class Invariant:
    name: str
    broken: int
    scored: int
    examples: tuple[str, ...]

    @property
    def share(self) -> float:
        return self.broken / self.scored if self.scored else 0.0

    def __str__(self) -> str:
        return f"{self.name}: {self.share:.1%} of {self.scored:,} scored customers (e.g. {', '.join(self.examples)})"


def scored_rows(scores: pd.DataFrame) -> pd.DataFrame:
    reason = scores["not_scored_reason"] if "not_scored_reason" in scores.columns else pd.Series("", index=scores.index)
    return scores[reason.fillna("").astype(str) == ""]


def _has(scored: pd.DataFrame, *columns: str) -> bool:
    return all(c in scored.columns and scored[c].notna().any() for c in columns)


def churn_threshold(scored: pd.DataFrame) -> float:
    """The one p_churn threshold ``will_churn`` should be: inferred as the lowest p_churn
    among the flagged customers (inf when nobody is flagged)."""
    flagged = scored["will_churn"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return float(scored["p_churn"].to_numpy(dtype=float)[flagged].min()) if flagged.any() else float("inf")


def broken_masks(scores: pd.DataFrame, termination_p_alive: float | None = None,
                 churn_threshold_value: float | None = None) -> dict[str, np.ndarray]:
    """Per invariant the scores can answer, which scored customers break it."""
    scored = scored_rows(scores)
    cut = ValueConfig().termination_p_alive if termination_p_alive is None else termination_p_alive
    masks = {}
    if _has(scored, "p_alive", "lifecycle_stage"):
        p_alive = scored["p_alive"].to_numpy(dtype=float)
        ended = scored["lifecycle_stage"].astype(object).to_numpy() == "termination"
        masks["alive_vs_lifecycle"] = ended != (p_alive < cut)
    if _has(scored, "tier_move", "value_move"):
        tier = scored["tier_move"].map(MOVE_DIRECTION)
        value = scored["value_move"].map(MOVE_DIRECTION)
        masks["opposite_moves"] = (tier.isna() | value.isna() | (tier != value)).to_numpy()
    if _has(scored, "clv", "clv_low", "clv_high"):
        clv, low, high = (scored[c].to_numpy(dtype=float) for c in ("clv", "clv_low", "clv_high"))
        slack = 1e-9 * np.maximum(np.abs(clv), 1.0)
        masks["interval_holds_clv"] = ~((low <= clv + slack) & (clv <= high + slack))
    if _has(scored, "p_churn", "will_churn"):
        flagged = scored["will_churn"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        p_churn = scored["p_churn"].to_numpy(dtype=float)
        threshold = churn_threshold(scored) if churn_threshold_value is None else churn_threshold_value
        masks["one_churn_threshold"] = flagged != (p_churn >= threshold)
        if _has(scored, "lifecycle_stage", "p_alive"):
            ended = scored["lifecycle_stage"].astype(object).to_numpy() == "termination"
            masks["termination_vs_will_churn"] = ended & ~flagged
            if _has(scored, "recommended_action"):
                # the low-risk action names the threshold: "no churn action: low churn risk (...); keep normal contact"
                low_risk = scored["recommended_action"].astype(str).str.startswith(LOW_RISK_ACTION.split(":")[0])
                masks["termination_vs_action"] = ended & low_risk.to_numpy()
            masks["alive_vs_churn"] = (scored["p_alive"].to_numpy(dtype=float) < cut) & (p_churn < LOW_P_CHURN)
    return masks


def check_story(scores: pd.DataFrame, termination_p_alive: float | None = None,
                churn_threshold_value: float | None = None) -> list[Invariant]:
    """Each invariant the scores can answer, with how many scored customers break it."""
    scored = scored_rows(scores)
    ids = scored["customer_id"].astype(str).to_numpy() if "customer_id" in scored.columns else np.arange(len(scored))
    return [Invariant(name, int(mask.sum()), len(scored), tuple(map(str, ids[mask][:3])))
            for name, mask in broken_masks(scores, termination_p_alive, churn_threshold_value).items()]


def story_failures(scores: pd.DataFrame, names=None, **kwargs) -> list[Invariant]:
    """The invariants (of ``names``, default all) broken for more than ``TOLERANCE`` of the
    scored customers."""
    return [i for i in check_story(scores, **kwargs) if (names is None or i.name in names) and i.share > TOLERANCE]


def assert_story(scores: pd.DataFrame, names, **kwargs) -> list[Invariant]:
    """Every invariant of ``names`` is answered by the scores and holds for 99% of scored
    customers; returns the checks."""
    checks = {i.name: i for i in check_story(scores, **kwargs)}
    missing = [n for n in names if n not in checks]
    assert not missing, f"the scores cannot answer {missing}: columns missing or empty"
    failures = [str(checks[n]) for n in names if checks[n].share > TOLERANCE]
    assert not failures, "the customer story contradicts itself:\n" + "\n".join(failures)
    return [checks[n] for n in names]
