"""Every action text retain recommends, in one place: the move for each value tier and
value-matrix quadrant, and the retention move for each churn type (docs/domain.md)."""

# The move that would raise a customer to the next tier (docs/domain.md, customer pyramid).
PYRAMID_MOVES = {
    "platinum": "keep: full service, priority care; protect the relationship",
    "gold": "raise to platinum: full service and a wider product line",
    "iron": "raise to gold: loyalty rewards and lower non-monetary cost",
    "lead": "avoid cost: self-service channels, no special treatment",
}

QUADRANT_MOVES = {
    "high now / high later": "invest: the most valuable now and later",
    "high now / low later": "maintain: the cash-flow core, large now but less later",
    "low now / high later": "develop: little now, real potential",
    "low now / low later": "reduce cost or let go: low now and later",
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


