"""The two small vocabularies that travel as codes and reach people as words: why a customer
was not scored, and how a model version fared at its gate.

Each is defined here once. Code compares codes; the words are built from a code (and its
details) at the edge, and are never parsed back into a code.
"""

from __future__ import annotations

from enum import Enum


class NotScored(Enum):
    """Why a customer of the input has no scores. The value is the code: the key of the
    counts that ``retain score`` prints and stores, and the ``reason`` label of the HTTP
    service's customer metric. ``words`` builds a row's ``not_scored_reason``."""

    CHURNED = "churned"
    ONLY_RETURNS = "only returns"
    NO_PURCHASE_YET = "no purchase before"
    NO_TRANSACTIONS = "no transactions"
    SET_ASIDE = "set aside by validation"
    INVALID_INPUT = "invalid input"

    def words(self, *, as_of=None, churn_date=None, churn_type=None, first_purchase=None, problems: str = "") -> str:
        """The row's ``not_scored_reason``; dates are printed as days."""
        if self is NotScored.CHURNED:
            return f"churned on {_day(churn_date)} ({churn_type})"
        if self is NotScored.ONLY_RETURNS:
            return f"only returns before {_day(as_of)}"
        if self is NotScored.NO_PURCHASE_YET:
            return f"no purchase before {_day(as_of)} (first purchase {_day(first_purchase)})"
        if self is NotScored.SET_ASIDE:
            return "every row of this customer was set aside by validation (see the rejects folder)"
        if self is NotScored.INVALID_INPUT:
            return f"invalid input: {problems}"
        return "no transactions"

    @property
    def input_unusable(self) -> bool:
        """The input gave nothing to score (as opposed to a customer who left): a request
        whose customers all have such a reason fails as a whole (HTTP 422)."""
        return self is not NotScored.CHURNED and self is not NotScored.SET_ASIDE

    @property
    def before_the_data(self) -> bool:
        """Said of every customer when the scoring date precedes their purchases."""
        return self in (NotScored.NO_PURCHASE_YET, NotScored.NO_TRANSACTIONS, NotScored.ONLY_RETURNS)


def _day(value) -> str:
    if value is None:
        return ""
    import pandas as pd

    return str(pd.Timestamp(value).date())


class GateOutcome(Enum):
    """Whether a version beat every baseline and the champion when it was trained. The value
    is the words ``retain models`` and the report show; ``tag`` is what the registry keeps
    (the version tag ``gate_passed``)."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RECORDED = "outcome not recorded"

    @property
    def tag(self) -> str | None:
        return {GateOutcome.PASSED: "true", GateOutcome.FAILED: "false"}.get(self)

    @classmethod
    def of(cls, passed: bool) -> "GateOutcome":
        return cls.PASSED if passed else cls.FAILED

    @classmethod
    def of_passed(cls, passed: bool | None) -> "GateOutcome":
        """From ``retain models --json``'s ``gate_passed`` (None: not recorded)."""
        return cls.NOT_RECORDED if passed is None else cls.of(passed)

    @property
    def passed(self) -> bool | None:
        """``gate_passed`` as ``retain models --json`` shows it."""
        return {GateOutcome.PASSED: True, GateOutcome.FAILED: False}.get(self)

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> "GateOutcome":
        value = tags.get(GATE_PASSED_TAG)
        return {"true": cls.PASSED, "false": cls.FAILED}.get(value, cls.NOT_RECORDED)


GATE_PASSED_TAG = "gate_passed"


def comparison(beats: bool, against: str, details: str) -> str:
    """One line of a gate's reason: 'beats the naive baseline (purchases_mae 1.2 vs 1.5)'."""
    return f"{'beats' if beats else 'does not beat'} {against} ({details})"
