"""The champion/challenger gate: a new version becomes champion only when it beats every
naive baseline and the current champion on the same held-out data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from retain.vocabulary import comparison


@dataclass(frozen=True)
class Gate:
    """A candidate beats a reference when it is strictly better on ``primary`` and not
    worse on each of ``secondary``. Metric names ending in a listed lower-is-better
    suffix are minimised."""

    primary: str
    secondary: tuple[str, ...] = ()
    lower_is_better: tuple[str, ...] = ("_mae", "_rmse", "_loss", "_brier", "_abs_pct_error")
    # the secondary metrics must be strictly better too (the lapse model beats its baselines
    # on ROC-AUC and Brier score)
    strict_secondary: bool = False
    # metrics the candidate must have as a number: one undefined on the held-out customers
    # (ROC-AUC when all of them churned, or none did) leaves nothing to compare
    required: tuple[str, ...] = ()

    def _better(self, metric: str, candidate: float, reference: float, strict: bool) -> bool:
        lower = metric.endswith(self.lower_is_better)
        if strict:
            return candidate < reference if lower else candidate > reference
        return candidate <= reference if lower else candidate >= reference

    def beats(self, candidate: dict[str, float], reference: dict[str, float]) -> tuple[bool, str]:
        """(verdict, the reason in words)."""
        reasons = []
        verdict = self._better(self.primary, candidate[self.primary], reference[self.primary], strict=True)
        reasons.append(f"{self.primary} {candidate[self.primary]:.4g} vs {reference[self.primary]:.4g}")
        for metric in self.secondary:
            ok = self._better(metric, candidate[metric], reference[metric], strict=self.strict_secondary)
            verdict = verdict and ok
            reasons.append(f"{metric} {candidate[metric]:.4g} vs {reference[metric]:.4g}")
        return verdict, "; ".join(reasons)


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return " | ".join(self.reasons)


def decide(gate: "Gate | ValueGate", candidate: dict[str, float], baselines: dict[str, dict[str, float]],
           champion: dict[str, float] | None) -> Decision:
    """Champion only if the candidate beats every baseline and the current champion, all
    measured on the same held-out data."""
    decision = Decision(True)
    for metric in gate.required:
        value = candidate.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            decision.promote = False
            decision.reasons.append(f"not promoted: {metric} is undefined on the held-out customers (all of them "
                                    "churned, or none did), so nothing shows that the model tells them apart")
    for name, metrics in baselines.items():
        ok, why = gate.beats(candidate, metrics)
        decision.promote &= ok
        decision.reasons.append(comparison(ok, f"{name} baseline", why))
    if champion is None:
        decision.reasons.append("no current champion")
    else:
        ok, why = gate.beats(candidate, champion)
        decision.promote &= ok
        decision.reasons.append(comparison(ok, "the current champion", why))
    return decision


@dataclass(frozen=True)
class ValueGate:
    """The value models' rule, discrimination and calibration together (docs/value-models.md):
    a candidate beats a reference when it ranks customers strictly better (higher normalized
    Gini of holdout spend, ``ranking``) without forecasting worse in aggregate: its absolute
    aggregate error (``aggregate``, in percent) is no larger than the reference's, or within
    ``tolerance`` percent of the actual total. So a model that ranks best but over-forecasts
    the total by 50% does not win, and one off by 5% is not held back by a reference off by 2%
    (windows differ by several percent; the total is not known better than that)."""

    ranking: str = "spend_gini"
    aggregate: str = "total_purchases_abs_pct_error"
    tolerance: float = 15.0
    required: tuple[str, ...] = ()  # as ``Gate.required``: every value metric is defined

    def calibrated(self, candidate: dict[str, float], reference: dict[str, float] | None = None) -> bool:
        """The aggregate clause alone: within the tolerance, or no worse than ``reference``."""
        bound = self.tolerance if reference is None else max(self.tolerance, reference[self.aggregate])
        return candidate[self.aggregate] <= bound

    def beats(self, candidate: dict[str, float], reference: dict[str, float]) -> tuple[bool, str]:
        """(verdict, the reason in words)."""
        ranks_better = candidate[self.ranking] > reference[self.ranking]
        calibrated = self.calibrated(candidate, reference)
        reason = (f"{self.ranking} {candidate[self.ranking]:.4g} vs {reference[self.ranking]:.4g}; "
                  f"{self.aggregate} {candidate[self.aggregate]:.4g} vs {reference[self.aggregate]:.4g} "
                  f"({'within' if calibrated else 'outside'} the {self.tolerance:g}% tolerance or the reference's)")
        return ranks_better and calibrated, reason
