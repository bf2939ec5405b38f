"""MLflow tracking store, model registry and the champion/challenger gate.

Tracking goes to ``Settings.resolved_tracking_uri``: a tracking server, or by default a sqlite
store in the retain home (``mlflow.db`` plus artifacts in ``mlartifacts/``).

Several people and schedules may train and promote at once (docs/teams.md). Moving the
champion alias is therefore a check-and-set done under a registry-side lock: the lock is a
registered model ``NAME.promotion-lock`` (creating a registered model is atomic in the
store's database, on a local file and behind a tracking server alike), held with a lease so
that a crashed holder does not block promotions for ever.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.errors import RetainError
from retain.models.pyfunc import use_tracking_store
from retain.settings import Settings
from retain.models.pyfunc import CHALLENGER, CHAMPION, CHURN_MODEL_NAME, VALUE_MODEL_NAME  # noqa: F401  (re-exported)

LOCK_SUFFIX = ".promotion-lock"
LOCK_TAG = "retain.lock"


def configure_tracking(settings: Settings, experiment: str | None = None) -> str:
    """Point MLflow at the store (and experiment, if named); returns the tracking URI."""
    uri = use_tracking_store(settings)
    if experiment is None:
        return uri
    store = Registry(settings)
    store.call(lambda: _create_experiment(experiment, settings.artifact_location), what="creating the experiment")
    store.call(lambda: mlflow.set_experiment(experiment), what="opening the experiment")
    return uri


def _create_experiment(name: str, artifact_location: str | None) -> None:
    if mlflow.get_experiment_by_name(name) is not None:
        return
    try:
        mlflow.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as exc:  # another process created it a moment ago
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def display_uri(uri: str) -> str:
    """The store's address without a password, for printing."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_store_locked(exc: BaseException | None) -> bool:
    """A sqlite store another writer holds (anywhere in the exception's chain)."""
    seen = 0
    while exc is not None and seen < 10:
        if "database is locked" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def strict_json(value) -> str:
    """JSON that every parser accepts: NaN and infinities become null, numpy numbers plain."""
    import json
    import math

    def clean(item):
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        if hasattr(item, "item") and not isinstance(item, (str, bytes)):
            item = item.item()  # numpy scalar
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item

    return json.dumps(clean(value), indent=2, allow_nan=False)


def fingerprint(frames: dict[str, pd.DataFrame | None], time_columns: dict[str, str]) -> dict[str, str]:
    """Row counts, date range and a content hash of the input tables, for the run record."""
    result = {}
    digest = hashlib.sha256()
    for name, frame in frames.items():
        if frame is None:
            continue
        result[f"data_{name}_rows"] = str(len(frame))
        column = time_columns.get(name)
        if column and len(frame):
            result[f"data_{name}_from"] = str(frame[column].min())
            result[f"data_{name}_to"] = str(frame[column].max())
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    result["data_hash"] = digest.hexdigest()[:16]
    return result


@dataclass(frozen=True)
class Gate:
    """A candidate beats a reference when it is strictly better on ``primary`` and not
    worse on each of ``secondary``. Metric names ending in a listed lower-is-better
    suffix are minimised."""

    primary: str
    secondary: tuple[str, ...] = ()
    lower_is_better: tuple[str, ...] = ("_mae", "_rmse", "_loss", "_brier", "_abs_pct_error")

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
            ok = self._better(metric, candidate[metric], reference[metric], strict=False)
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


def decide(gate: Gate, candidate: dict[str, float], baselines: dict[str, dict[str, float]],
           champion: dict[str, float] | None) -> Decision:
    """Champion only if the candidate beats every baseline and the current champion, all
    measured on the same held-out data."""
    decision = Decision(True)
    for name, metrics in baselines.items():
        ok, why = gate.beats(candidate, metrics)
        decision.promote &= ok
        decision.reasons.append(f"{'beats' if ok else 'does not beat'} {name} baseline ({why})")
    if champion is None:
        decision.reasons.append("no current champion")
    else:
        ok, why = gate.beats(candidate, champion)
        decision.promote &= ok
        decision.reasons.append(f"{'beats' if ok else 'does not beat'} the current champion ({why})")
    return decision


def gate_passed(tags: dict[str, str]) -> bool | None:
    """Whether a version passed its gate when it was trained (None: not recorded)."""
    if "gate_passed" in tags:
        return tags["gate_passed"] == "true"
    if tags.get("role") == CHALLENGER and "does not beat" in tags.get("gate", ""):
        return False  # versions registered before the gate_passed tag
    return None


class Registry:
    """The model registry of one store. Every call is retried, with backoff, while a local
    sqlite file is locked by another writer, for at most ``retry_seconds``."""

    def __init__(self, settings: Settings, *, retry_seconds: float = 120.0, lease_seconds: float = 300.0):
        self.settings = settings
        self.uri = settings.resolved_tracking_uri
        self.retry_seconds = retry_seconds
        self.lease_seconds = lease_seconds
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # --- calls that survive a busy sqlite file ---------------------------------------

    def call(self, operation: Callable, *, what: str = "using the MLflow store"):
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.25
        while True:
            try:
                return operation()
            except Exception as exc:
                if not is_store_locked(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise RetainError(
                        f"{what}: the MLflow store {display_uri(self.uri)} stayed locked by another writer for "
                        f"{self.retry_seconds:g} s. A local sqlite file suits one person training at a time; for a "
                        "team or overlapping schedules, run an MLflow tracking server and pass --tracking-uri "
                        "http://HOST:PORT (docs/teams.md)"
                    ) from None
            time.sleep(delay * (1 + random.random() / 2))  # jitter: writers that collided do not collide again
            delay = min(delay * 2, 8.0)

    # --- reading --------------------------------------------------------------------

    def registered(self, name: str):
        """The registered model, or None."""
        try:
            return self.call(lambda: self.client.get_registered_model(name))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def champion_version(self, name: str) -> str | None:
        # aliases are read from the registered model: over REST, searched versions carry none
        model = self.registered(name)
        version = model.aliases.get(CHAMPION) if model is not None else None
        return str(version) if version is not None else None

    def versions(self, name: str) -> list[dict]:
        """Every version, oldest first, with its aliases, tags and run."""
        model = self.registered(name)
        if model is None:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        found = self.call(lambda: self.client.search_model_versions(f"name='{name}'"))
        return [{"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])), "tags": dict(v.tags),
                 "run_id": v.run_id, "created": v.creation_timestamp}
                for v in sorted(found, key=lambda v: int(v.version))]

    # --- writing --------------------------------------------------------------------

    def register(self, model_uri: str, name: str, run_id: str) -> str:
        version = str(self.call(lambda: mlflow.register_model(model_uri, name), what=f"registering {name}").version)
        self.call(lambda: self.client.set_model_version_tag(name, version, "run_id", run_id))
        return version

    def _record(self, name: str, version: str, decision: Decision, alias: str) -> None:
        for key, value in (("role", alias), ("gate", decision.reason[:5000]),
                           ("gate_passed", "true" if decision.promote else "false")):
            self.call(lambda: self.client.set_model_version_tag(name, version, key, value))

    def _one_role(self, name: str, version: str, alias: str) -> None:
        """A version is champion or challenger, not both."""
        other = CHALLENGER if alias == CHAMPION else CHAMPION
        if str(self.registered(name).aliases.get(other)) == str(version):
            self.call(lambda: self.client.delete_registered_model_alias(name, other))

    def settle_alias(self, name: str, version: str, decision: Decision, compared: str | None,
                     redecide: Callable[[str | None], Decision]) -> Decision:
        """Make ``version`` champion or challenger as a check-and-set: under the promotion
        lock, re-read the champion; if it is not the one ``decision`` was made against
        (another training finished meanwhile), decide again against the new one
        (``redecide``); move the alias; read it back. Returns the decision that stood."""
        version, compared = str(version), None if compared is None else str(compared)
        with self.promotion_lock(name, f"{name} version {version}"):
            for _ in range(5):
                current = self.champion_version(name)
                if current != compared:
                    decision, compared = redecide(current), current
                alias = CHAMPION if decision.promote else CHALLENGER
                self._record(name, version, decision, alias)
                self.call(lambda: self.client.set_registered_model_alias(name, alias, version))
                self._one_role(name, version, alias)
                if decision.promote and current not in (None, version):  # its role tag must not say champion
                    self.call(lambda: self.client.set_model_version_tag(name, current, "role", "former champion"))
                # read back: a writer that ignores the lock (an older retain, a hand edit in the UI)
                # may have moved the champion; then compare again
                if self.champion_version(name) == (version if decision.promote else compared):
                    return decision
        raise RetainError(f"the {name} champion kept moving while version {version} was being promoted; "
                          f"it is registered with the {alias} alias: check with `retain models`")

    def promote(self, name: str, version: str, alias: str = CHAMPION, *, force: bool = False) -> dict:
        """Move ``alias`` to ``version`` by hand (under the promotion lock); returns the
        version's run metrics and the version the alias pointed to before. A version that
        failed its gate needs ``force``."""
        model = self.registered(name)
        if model is None:
            raise RetainError(f"{name} is not registered in the MLflow store {display_uri(self.uri)}: "
                              "train it first (retain train), or point --tracking-uri at the store that has it")
        try:
            target = self.call(lambda: self.client.get_model_version(name, version))
        except MlflowException:
            known = [v["version"] for v in self.versions(name)]
            raise RetainError(f"{name} has no version {version} in {display_uri(self.uri)}; "
                              f"known versions: {', '.join(known) or 'none'}") from None
        warnings = []
        if alias == CHAMPION and gate_passed(target.tags) is False:
            why = target.tags.get("gate", "its gate")
            if not force:
                raise RetainError(f"{name} version {version} failed its gate when trained ({why}); "
                                  "pass --force to make it champion anyway")
            warnings.append(f"version {version} failed its gate when trained ({why}); promoted because of --force")
        with self.promotion_lock(name, f"{name} version {version} by hand"):
            previous = self.registered(name).aliases.get(alias)
            self.call(lambda: self.client.set_registered_model_alias(name, alias, version))
            self.call(lambda: self.client.set_model_version_tag(name, version, "role", alias))
            self._one_role(name, version, alias)
            if alias == CHAMPION and previous is not None and str(previous) != str(version):
                self.call(lambda: self.client.set_model_version_tag(name, str(previous), "role", "former champion"))
            if force:
                self.call(lambda: self.client.set_model_version_tag(name, version, "promoted_with_force", "true"))
            if str(self.registered(name).aliases.get(alias)) != str(version):
                raise RetainError(f"{name}@{alias} moved again while being set to version {version}; try again")
        run = self.call(lambda: self.client.get_run(target.run_id)) if target.run_id else None
        return {"model": name, "version": str(version), "alias": alias,
                "previous": str(previous) if previous is not None else None,
                "metrics": run.data.metrics if run else {}, "tracking_uri": display_uri(self.uri),
                "warnings": warnings}

    # --- the promotion lock -----------------------------------------------------------

    @contextmanager
    def promotion_lock(self, name: str, purpose: str):
        """Hold ``NAME.promotion-lock`` while the block runs. Waits for another holder; takes
        the lock over when the holder's lease has run out (it crashed)."""
        lock = name + LOCK_SUFFIX
        token = f"{purpose}, {socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        while not self._try_lock(lock, token):
            if time.monotonic() - started > self.lease_seconds + 60:
                raise RetainError(f"waited {time.monotonic() - started:.0f} s for the promotion lock of {name} "
                                  f"({lock} in {display_uri(self.uri)}); if no retain command is promoting, "
                                  "delete that registered model and try again")
            time.sleep(0.2 + random.random() * 0.3)
        try:
            yield
        finally:
            self._unlock(lock, token)

    def _try_lock(self, lock: str, token: str) -> bool:
        expires = time.time() + self.lease_seconds
        try:
            self.call(lambda: self.client.create_registered_model(
                lock, tags={LOCK_TAG: "true", "holder": token, "expires": f"{expires:.3f}"},
                description="retain's promotion lock: exists only while a champion alias is being moved"))
            return True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        held = self.registered(lock)
        if held is None:
            return False  # released a moment ago: try again
        if held.tags.get("holder") == token:
            return True  # our own create went through before a retry
        if float(held.tags.get("expires", "0")) < time.time():
            self._unlock(lock, held.tags.get("holder"))  # the holder died with the lock
        return False

    def _unlock(self, lock: str, token: str | None) -> None:
        held = self.registered(lock)
        if held is None or held.tags.get("holder") != token:
            return
        try:
            self.call(lambda: self.client.delete_registered_model(lock))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise


def promote(name: str, version: str, alias: str = CHAMPION, *, settings: Settings, force: bool = False) -> dict:
    """``retain promote``: see ``Registry.promote``."""
    return Registry(settings).promote(name, version, alias, force=force)
