"""The model pair the HTTP service serves, loaded whole and swapped in one step.

A request reads ``holder.served`` once and uses that object to the end, so every response
comes wholly from one pair and names its versions. A reload (the champion alias moved, or
``POST /admin/reload``) loads the new pair completely, then replaces the reference: requests
already running finish on the old pair, the next ones get the new pair, none a mix.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from retain.errors import RetainError
from retain.models.registry import CHAMPION, display_uri, model_info, parse_version_label, use_tracking_store
from retain.serving.models import load_model_pair
from retain.serving.scoring import ModelPair
from retain.settings import Settings

log = logging.getLogger("retain.serving")

@dataclass(frozen=True)
class ServedPair:
    pair: ModelPair
    models: list[dict] = field(default_factory=list)  # what GET /models shows
    source: str = ""
    loaded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def versions(self) -> dict[str, str | None]:
        return {"clv_model_version": self.pair.clv_version, "churn_model_version": self.pair.churn_version}


def _reachable(settings: Settings) -> None:
    """Raise, saying so, when the tracking store does not answer (the registry's own
    messages would read as "no champion" then)."""
    from mlflow import MlflowClient

    use_tracking_store(settings)
    try:
        MlflowClient().search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001 - whatever the client raises, the store did not answer
        detail = display_uri(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise RetainError(f"the tracking store {display_uri(settings.resolved_tracking_uri)} is unreachable "
                          f"({detail[:300]}); the server retries, /readyz says when the models are loaded") from None


def load_champions(settings: Settings) -> ServedPair:
    """Both champions from the tracking store; a clear error naming the one that is missing,
    or saying that the store is unreachable."""
    from mlflow import MlflowClient

    _reachable(settings)
    loaded = load_model_pair(settings, CHAMPION)
    if loaded.notes or loaded.pair.value is None or loaded.pair.churn is None:
        raise RetainError("; ".join(loaded.notes) or "a champion is missing")
    client = MlflowClient()
    infos = [model_info(client, *parse_version_label(label))
             for label in (loaded.pair.clv_version, loaded.pair.churn_version)]
    return ServedPair(loaded.pair, infos, source=display_uri(settings.resolved_tracking_uri))


def _freeze_what_stays() -> None:
    """Keep what stays loaded (the libraries, the served pair: ~700,000 objects) out of the
    garbage collector's full passes. Otherwise every ~1,000 requests one full pass scans them
    all and stalls the request that triggers it (docs/http-api.md). Unfreezing
    first lets the pass release a replaced pair's reference cycles (those of the pair replaced
    just now are released at the next reload, as requests may still be using it)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def load_bento_pair(entries: dict) -> ServedPair:
    """The pair imported into a Bento by ``retain build`` (``entries``: kind -> tag, version
    label, info): no tracking server needed."""
    import bentoml.mlflow

    wrappers, labels, infos = {}, {}, []
    for kind in ("clv", "churn"):
        entry = entries[kind]
        wrappers[kind] = bentoml.mlflow.load_model(entry["tag"]).unwrap_python_model()
        labels[kind] = entry["version_label"]
        infos.append(entry["info"])
    pair = ModelPair.of(wrappers["clv"], wrappers["churn"], value_version=labels["clv"],
                        churn_version=labels["churn"])
    return ServedPair(pair, infos, source="bento")


@dataclass
class ServingState:
    """What one server process serves: the ``ModelHolder`` (set when the service starts) and,
    in a built Bento, the models imported into it. Readiness and ``GET /models`` read it."""

    holder: "ModelHolder | None" = None
    bento_models: dict = field(default_factory=dict)  # kind -> {"tag", "version_label", "info"}

    def readiness(self) -> tuple[bool, dict]:
        holder = self.holder
        if holder is None:
            return False, {"problem": "starting"}
        served = holder.served
        if served is None:
            return False, {"problem": holder.problem}
        return True, served.versions

    def models_body(self) -> tuple[int, dict]:
        holder = self.holder
        served = holder.served if holder is not None else None
        if served is None:
            return 503, {"error": f"the models are not loaded yet: {holder.problem if holder else 'starting'}"}
        return 200, {"models": served.models, "source": served.source, "loaded_at": served.loaded_at}


class ModelHolder:
    """Loads the pair in the background (the server answers /readyz 503 meanwhile, saying
    why), polls the champion aliases, and swaps in a new pair once it is fully loaded."""

    def __init__(self, load, current_versions=None, poll_seconds: float = 0.0):
        self._load = load  # () -> ServedPair
        self._current_versions = current_versions  # () -> {name: version}, or None: no polling
        self.poll_seconds = poll_seconds
        self.served: ServedPair | None = None
        self.problem = "loading the champion models"
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def ready(self) -> bool:
        return self.served is not None

    def reload(self) -> tuple[ServedPair | None, ServedPair]:
        """Load now and swap; (previous, current). Raises when loading fails (the old pair stays)."""
        with self._lock:
            previous = self.served
            try:
                served = self._load()
            except Exception as exc:  # noqa: BLE001 - any failure leaves the served pair as it is
                # the message may quote the store's address: its password masked (/readyz is public)
                message = display_uri(str(exc) if isinstance(exc, RetainError) else f"{type(exc).__name__}: {exc}")
                if self.served is None:
                    self.problem = message
                log.error("could not load the models: %s", message)
                raise RetainError(f"could not load the models: {message}") from None
            self.served = served  # the one step requests see
            self.problem = ""
            log.info("serving %s and %s", served.pair.clv_version, served.pair.churn_version)
            _freeze_what_stays()
            return previous, served

    def _loaded_versions(self) -> dict[str, str | None]:
        served = self.served
        if served is None:
            return {}
        return {info["name"]: info["version"] for info in served.models}

    def _run(self) -> None:
        try:
            self.reload()
        except RetainError:
            pass
        while self._current_versions is not None and self.poll_seconds > 0 and not self._stop.wait(self.poll_seconds):
            try:
                if self.served is None or self._current_versions() != self._loaded_versions():
                    self.reload()
            except Exception as exc:  # noqa: BLE001 - polling goes on; the log says why
                log.warning("champion poll failed: %s", display_uri(str(exc)))

    def start(self) -> "ModelHolder":
        threading.Thread(target=self._run, name="retain-models", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
