"""The model registry: one home for what retain knows about it.

The registered names and aliases (scheduled jobs and tools outside retain use them), the
tracking store a command uses, reading versions, their tags and holdout metrics, loading a
version as a pyfunc, and moving the ``champion``/``challenger`` aliases. Training, scoring,
the HTTP service, the report and ``retain models`` all call this module.

Tracking goes to ``Settings.resolved_tracking_uri``: a tracking server, or by default a sqlite
store in the retain home (``mlflow.db`` plus artifacts in ``mlartifacts/``).

Several people and schedules may train and promote at once (docs/teams.md). Moving the
champion alias is therefore a check-and-set done under a registry-side lock: the lock is a
registered model ``NAME.promotion-lock`` (creating a registered model is atomic in the
store's database, on a local file and behind a tracking server alike), held with a lease so
that a crashed holder does not block promotions for ever.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from retain.errors import RetainError
from retain.settings import Settings
from retain.vocabulary import GATE_PASSED_TAG, GateOutcome

# Registered model names and aliases: scheduled jobs and tools outside retain use them.
VALUE_MODEL_NAME = "retain-clv"
CHURN_MODEL_NAME = "retain-churn-type"
MODEL_NAMES = {"clv": VALUE_MODEL_NAME, "churn": CHURN_MODEL_NAME}  # the CLI's kinds
CHAMPION = "champion"
CHALLENGER = "challenger"
FORMER_CHAMPION = "former champion"  # the role tag of a version the champion alias left
LOCK_SUFFIX = ".promotion-lock"
LOCK_TAG = "retain.lock"
# The holdout metrics shown for a version (GET /models, the report, retain models), per model.
KEY_METRICS = {
    VALUE_MODEL_NAME: ("spend_gini", "baseline_spend_gini", "top10_revenue_share", "total_purchases_pct_error",
                       "purchases_mae", "baseline_purchases_mae", "purchases_rmse", "spend_mae", "purchases_spearman"),
    CHURN_MODEL_NAME: ("macro_f1", "baseline_majority_macro_f1", "baseline_logistic_rfm_macro_f1", "accuracy",
                       "log_loss", "brier", "churn_roc_auc", "churn_pr_auc", "churn_top_decile_lift"),
}


def model_uri(name: str, version: str) -> str:
    """MLflow's address of one registered version."""
    return f"models:/{name}/{version}"


def version_label(name: str, version: str) -> str:
    """How scores and responses name the version that made them: ``retain-clv/v3``."""
    return f"{name}/v{version}"


def parse_version_label(label) -> tuple[str, str] | None:
    """``version_label``'s (name, version); None for anything else (a run id, no model)."""
    if not isinstance(label, str) or "/v" not in label:
        return None
    name, version = label.rsplit("/v", 1)
    return (name, version) if version.isdigit() else None


# --- the store -----------------------------------------------------------------------


def use_tracking_store(settings) -> str:
    """Point MLflow at the settings' tracking store and model registry; returns its URI.
    Here, below training and serving, because both read the registry through it."""
    uri = settings.resolved_tracking_uri
    if settings.uses_local_store:
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


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


# user:password@ after a scheme, in any text (a URI alone, or inside an error message)
_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):[^\s/?#@]*@")


def display_uri(uri: str) -> str:
    """The store's address without a password, for printing: ``http://alice:***@host``.
    Any text may be given: the password of every URI in it is masked."""
    return _CREDENTIALS.sub(r"\g<head>:***@", uri)


def is_store_locked(exc: BaseException | None) -> bool:
    """A sqlite store another writer holds (anywhere in the exception's chain)."""
    seen = 0
    while exc is not None and seen < 10:
        if "database is locked" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class GateDecision(Protocol):
    """What the training gate decided (``retain.training.gate.Decision``): whether the version
    becomes champion, and why in words."""

    promote: bool

    @property
    def reason(self) -> str: ...


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

    def _record(self, name: str, version: str, decision: "GateDecision", alias: str) -> None:
        for key, value in (("role", alias), ("gate", decision.reason[:5000]),
                           (GATE_PASSED_TAG, GateOutcome.of(decision.promote).tag)):
            self.call(lambda: self.client.set_model_version_tag(name, version, key, value))

    def _one_role(self, name: str, version: str, alias: str) -> None:
        """A version is champion or challenger, not both."""
        other = CHALLENGER if alias == CHAMPION else CHAMPION
        if str(self.registered(name).aliases.get(other)) == str(version):
            self.call(lambda: self.client.delete_registered_model_alias(name, other))

    def settle_alias(self, name: str, version: str, decision: "GateDecision", compared: str | None,
                     redecide: Callable[[str | None], "GateDecision"]) -> "GateDecision":
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
                    self.call(lambda: self.client.set_model_version_tag(name, current, "role", FORMER_CHAMPION))
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
        if alias == CHAMPION and GateOutcome.from_tags(target.tags) is GateOutcome.FAILED:
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
                self.call(lambda: self.client.set_model_version_tag(name, str(previous), "role", FORMER_CHAMPION))
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


def registered_models(settings: Settings) -> tuple[str, list[dict]]:
    """What ``retain models`` and the report show of the registry: the store's URI as shown to people and
    every registered model (promotion locks left out), by name, each as ``{"name", "versions"}``;
    a version is ``Registry.versions``' dict (oldest first) plus ``metrics``, all of its training
    run's metrics (None when the run cannot be read). Points MLflow at the store."""
    uri = configure_tracking(settings)
    registry = Registry(settings)
    try:
        registered = registry.call(lambda: registry.client.search_registered_models())
    except MlflowException as exc:
        raise RetainError(f"cannot list the registered models in {display_uri(uri)}: {exc.message}") from None
    models = []
    for model in sorted(registered, key=lambda m: m.name):
        if model.name.endswith(LOCK_SUFFIX):
            continue  # a promotion in progress holds this lock; it is not a model
        # Registry.versions reads aliases from the registered model: over REST, searched versions carry none
        versions = registry.versions(model.name)
        for version in versions:
            version["metrics"] = None
            if version["run_id"]:
                try:
                    version["metrics"] = dict(registry.call(lambda: registry.client.get_run(version["run_id"]).data.metrics))
                except MlflowException:
                    pass
        models.append({"name": model.name, "versions": versions})
    return display_uri(uri), models


# --- loading versions -------------------------------------------------------------------


@dataclass
class LoadedModels:
    """The models a selection named, unwrapped from their pyfuncs, by kind (clv, churn)."""

    models: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # kind -> NAME/vVERSION
    notes: list[str] = field(default_factory=list)  # why a model is absent, in words


def parse_selection(text: str) -> dict[str, str | None]:
    """``champion`` -> both champions (either may be missing); ``clv=N,churn=M`` (either
    part alone allowed) -> those versions, and only those models."""
    text = (text or CHAMPION).strip()
    if text == CHAMPION:
        return {"clv": CHAMPION, "churn": CHAMPION}
    chosen: dict[str, str | None] = {"clv": None, "churn": None}
    for part in text.split(","):
        kind, _, version = part.strip().partition("=")
        if kind not in MODEL_NAMES or not version.strip():
            raise RetainError(f"--models {text!r}: use 'champion' or clv=N,churn=M (either part alone is fine)")
        chosen[kind] = version.strip()
    return chosen



def load_models(settings: Settings, selection: str = CHAMPION) -> LoadedModels:
    """Load the models named by ``selection`` from the tracking store in ``settings``."""
    use_tracking_store(settings)
    client = MlflowClient()
    loaded = LoadedModels()
    for kind, which in parse_selection(selection).items():
        if which is None:
            continue
        name = MODEL_NAMES[kind]
        if which == CHAMPION:
            try:
                version = str(client.get_model_version_by_alias(name, CHAMPION).version)
            except MlflowException:
                loaded.notes.append(f"{name} has no champion in {display_uri(settings.resolved_tracking_uri)}: "
                                    "its columns are empty")
                continue
        else:
            version = which
            try:
                client.get_model_version(name, version)
            except MlflowException:
                try:
                    known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
                except MlflowException:
                    known = []
                raise RetainError(f"{name} has no version {version} in {display_uri(settings.resolved_tracking_uri)}; "
                                  f"known versions: {known or 'none'}") from None
        loaded.models[kind] = load(model_uri(name, version)).unwrap_python_model()
        loaded.versions[kind] = version_label(name, version)
    if not loaded.models:
        raise RetainError(
            f"no model to score with in {display_uri(settings.resolved_tracking_uri)}: train one first "
            "(retain train clv / retain train churn) or promote a version (retain promote clv --version N --force); "
            "retain score can also name versions: retain score --models clv=N,churn=M"
        )
    return loaded


def resolve_version(uri: str) -> tuple[str, str] | None:
    """(NAME, VERSION) for ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; None otherwise."""
    if not uri.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    reference = uri[len("models:/"):]
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return name, str(MlflowClient().get_model_version_by_alias(name, alias).version)
    if "/" in reference:
        name, version = reference.split("/", 1)
        return name, version
    return None


def load(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """Load a pyfunc. An alias is resolved to its version first, so the model loaded is the
    version named in its output even if the alias moves meanwhile: the version column then
    reads ``NAME/vVERSION`` (given to the model as MLflow ``model_config``). A model saved by
    a retain whose modules have since moved is a clear error that says to retrain it."""
    resolved = resolve_version(uri)
    try:
        if resolved is None:
            return mlflow.pyfunc.load_model(uri)
        name, version = resolved
        return mlflow.pyfunc.load_model(model_uri(name, version),
                                        model_config={"version_label": version_label(name, version)})
    except (ImportError, AttributeError) as exc:
        # the model object is pickled by module path: an older retain's layout does not load
        raise RetainError(
            f"{uri} was saved by an earlier version of retain that this one cannot read ({type(exc).__name__}: "
            f"{exc}); retrain it with this version (retain train clv / retain train churn), or name a newer "
            "version with --models"
        ) from None


def champion_versions(settings: Settings) -> dict[str, str | None]:
    """The versions the champion aliases point at now (None: no champion)."""
    use_tracking_store(settings)
    client = MlflowClient()
    versions = {}
    for name in (VALUE_MODEL_NAME, CHURN_MODEL_NAME):
        try:
            versions[name] = str(client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException:
            versions[name] = None
    return versions


def _iso(milliseconds) -> str | None:
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc).isoformat(timespec="seconds") if milliseconds else None


def model_info(client, name: str, version: str) -> dict:
    """Name, version, aliases, training date and key holdout metrics of one registered version."""
    found = client.get_model_version(name, version)
    metrics = {}
    if found.run_id:
        run = client.get_run(found.run_id)
        metrics = {k: v for k, v in sorted(run.data.metrics.items()) if k in KEY_METRICS.get(name, ())}
    return {"name": name, "version": str(found.version), "aliases": sorted(found.aliases or []),
            "trained_at": _iso(found.creation_timestamp), "run_id": found.run_id, "holdout_metrics": metrics}
