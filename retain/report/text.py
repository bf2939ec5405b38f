"""``retain models`` as text a person reads."""

from __future__ import annotations

from retain.vocabulary import GateOutcome


def format_overview(overview: dict) -> str:
    """`retain models` as text a person reads."""
    lines = [f"store: {overview['tracking_uri']}"]
    if not overview["models"]:
        lines.append("no registered models: train one with `retain train clv` / `retain train churn`")
    for model in overview["models"]:
        aliases = ", ".join(f"{alias} -> v{version}" for alias, version in model["aliases"].items()) or "no aliases"
        lines.append(f"\n{model['name']} ({aliases})")
        for version in model["versions"]:
            marks = [f"@{a}" for a in version["aliases"]]
            if version["used_by_last_score_run"]:
                marks.append("used by the last score run")
            lines.append(f"  v{version['version']:<4} {' '.join(marks) or '-'}  created {version['created']}  "
                         f"run {(version['run_id'] or '-')[:8]}")
            if version["metrics"]:
                lines.append("        " + ", ".join(f"{k} {v:.4g}" for k, v in version["metrics"].items()))
            if version["gate"]:
                outcome = GateOutcome.of_passed(version["gate_passed"]).value
                lines.append(f"        gate {outcome}: {version['gate']}")
    run = overview["last_score_run"]
    if run is None:
        lines.append(f"\nlast score run: none recorded in {overview['score_store']}")
    else:
        lines.append(f"\nlast score run: as of {str(run['as_of'])[:10]}, loaded {run['loaded_at']}, "
                     f"{run['clv_model_version'] or 'no value model'} + {run['churn_model_version'] or 'no churn model'}, "
                     f"{run['scored']:,} of {run['customers']:,} customers scored -> {run['output']}")
    return "\n".join(lines)
