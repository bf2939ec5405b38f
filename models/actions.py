"""Every action text retain recommends, in one place: the move for each value tier and
value-matrix quadrant, and the retention move for each churn type (docs/domain.md).

A tier move and a quadrant move never point opposite ways for one customer
(docs/customer-story.md): the matrix's "high later" is the pyramid's top three tiers, and
each move's direction is in ``MOVE_DIRECTION``: "grow" (spend to keep or raise the
customer's value) or "save" (serve at the lowest cost)."""

import numpy as np
import pandas as pd

# The move that would raise a customer to the next tier (docs/domain.md, customer pyramid).
PYRAMID_MOVES = {
    "platinum": "keep: full service, priority care; protect the relationship",
    "gold": "raise to platinum: full service and a wider product line",
    "iron": "raise to gold: loyalty rewards and lower non-monetary cost",
    "lead": "avoid cost: self-service channels, no special treatment",
}

QUADRANT_MOVES = {
    "high now / high later": "invest: large now and among the top by value later",
    "high now / low later": "harvest: large so far, little expected later; serve efficiently, no new investment",
    "low now / high later": "develop: little so far, among the top by value later",
    "low now / low later": "reduce cost or let go: low now and later",
}

# Which way each value move points: "grow" spends on the customer, "save" serves at low cost.
MOVE_DIRECTION = {
    PYRAMID_MOVES["platinum"]: "grow", PYRAMID_MOVES["gold"]: "grow", PYRAMID_MOVES["iron"]: "grow",
    PYRAMID_MOVES["lead"]: "save",
    QUADRANT_MOVES["high now / high later"]: "grow", QUADRANT_MOVES["low now / high later"]: "grow",
    QUADRANT_MOVES["high now / low later"]: "save", QUADRANT_MOVES["low now / low later"]: "save",
}


# What to do about each churn type (docs/domain.md); types not listed get the generic move.
CHURN_ACTIONS = {
    "price": "make a targeted offer: discount, price match or a cheaper plan",
    "service": "apologise and fix: resolve open complaints quickly, service-recovery call",
    "competition": "win on product: show upgrades and what competitors lack, loyalty benefits",
    "need": "re-engage with a new need: cross-sell from the categories they moved to",
    "natural": "no retention spend: the loss is not preventable; keep the goodbye friendly",
}
GENERIC_ACTION = "contact the customer to learn why they may leave"
LOW_RISK_ACTION = "no churn action: keep normal contact"


# For a customer the value model believes gone (lifecycle stage "termination": P(alive) below
# ValueConfig.termination_p_alive) and the churn model does not flag: the first move of the
# precedence in docs/customer-story.md, never "keep normal contact".
GONE_ACTION = "no retention spend: the customer looks gone; win back only if their value so far justifies it"


def action_given_stage(action, will_churn, stage):
    """``action`` with ``GONE_ACTION`` for the customers in "termination" whom the churn
    model does not flag (a flagged customer keeps the move for their churn type; an unknown
    flag counts as not flagged)."""
    flagged = will_churn if getattr(will_churn, "dtype", None) == bool else pd.array(
        will_churn, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    ended = (np.asarray(stage, dtype=object) == "termination") & ~flagged
    if not ended.any():
        return action
    return np.where(ended, GONE_ACTION, np.asarray(action, dtype=object)).astype(object)
