"""One typed settings object, built once at each entry point (CLI, service start-up, Spark
driver) from flags and the environment, and passed down. Library code never reads
``os.environ``: everything it needs to know about where things live comes from here.

Environment variables read by ``Settings.from_environment``:
``RETAIN_HOME`` (default ``./.retain``), ``MLFLOW_TRACKING_URI`` (default: a sqlite store in
the retain home), ``RETAIN_API_KEYS`` (comma-separated keys of the HTTP service).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from retain.errors import RetainError


@dataclass(frozen=True)
class Settings:
    """Where retain keeps its state and which tracking server it talks to.

    ``tracking_uri`` None means the default local store: ``sqlite:///HOME/mlflow.db`` with
    artifacts in ``HOME/mlartifacts``.
    """

    home: Path = Path(".retain")
    tracking_uri: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never printed
    verbose: bool = False
    # HTTP service limits
    max_request_customers: int = 10_000
    max_request_bytes: int = 64 * 1024 * 1024

    def __post_init__(self):
        object.__setattr__(self, "home", Path(self.home).resolve())

    @classmethod
    def from_environment(cls, environ: dict | None = None, **overrides) -> "Settings":
        """Settings from the environment; non-None ``overrides`` (from flags) win."""
        environ = os.environ if environ is None else environ
        values = {
            "home": Path(environ.get("RETAIN_HOME") or ".retain"),
            "tracking_uri": environ.get("MLFLOW_TRACKING_URI") or None,
            "api_keys": parse_api_keys(environ.get("RETAIN_API_KEYS", "")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or self.default_tracking_uri

    @property
    def uses_local_store(self) -> bool:
        return self.resolved_tracking_uri == self.default_tracking_uri

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep artifacts: inside the home for the local store; the
        server decides for a tracking server."""
        return (self.home / "mlartifacts").as_uri() if self.uses_local_store else None

    @property
    def score_store_path(self) -> Path:
        return self.home / "scores.duckdb"


def parse_api_keys(text: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in text.replace("\n", ",").split(",") if key.strip())


def read_api_keys_file(path: str | Path) -> tuple[str, ...]:
    try:
        return parse_api_keys(Path(path).read_text())
    except OSError as exc:
        raise RetainError(f"cannot read the API keys file {path}: {exc.strerror}") from None
