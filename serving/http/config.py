"""What the HTTP service needs to know at start-up, read once from the environment.

``retain serve`` turns its flags into these variables for the ``bentoml serve`` process it
starts; the service module reads them once, at import, into ``retain.settings.Settings``
plus the few serving-only options below. Nothing reads the environment after that.

``RETAIN_HOME``, ``MLFLOW_TRACKING_URI``, ``RETAIN_API_KEYS``: as in ``Settings``.
``RETAIN_API_KEYS_FILE``: more keys, one per line. ``RETAIN_NO_AUTH=1``: serve without keys
(local experiments only). ``RETAIN_MAX_REQUEST_CUSTOMERS``, ``RETAIN_MAX_REQUEST_BYTES``:
request limits. ``RETAIN_RELOAD_SECONDS``: how often the champion alias is polled (0: never).
``RETAIN_WORKERS``: server worker processes. ``RETAIN_HEADER_SECONDS`` (default 10),
``RETAIN_BODY_SECONDS`` (default 60): how long a client may take to send its request's
headers, then its body, before the connection is closed (0: no limit). ``RETAIN_TRACE_REQUESTS=1``: keep BentoML's
OpenTelemetry middleware on the API routes (``tracing_config``). A built Bento serves the
models imported into it instead of the registry's: its entry module hands them to
``service.use_bento_models`` (serving/http/bento.py), not through the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from retain.errors import RetainError
from retain.settings import Settings, read_api_keys_file

NO_AUTH = "RETAIN_NO_AUTH"
API_KEYS = "RETAIN_API_KEYS"
API_KEYS_FILE = "RETAIN_API_KEYS_FILE"
MAX_CUSTOMERS = "RETAIN_MAX_REQUEST_CUSTOMERS"
MAX_BYTES = "RETAIN_MAX_REQUEST_BYTES"
RELOAD_SECONDS = "RETAIN_RELOAD_SECONDS"
WORKERS = "RETAIN_WORKERS"
TRACE_REQUESTS = "RETAIN_TRACE_REQUESTS"
HEADER_SECONDS = "RETAIN_HEADER_SECONDS"
BODY_SECONDS = "RETAIN_BODY_SECONDS"
# the service's own routes (BentoML's /livez, /readyz, /metrics are its own business)
API_ROUTES = ("/score", "/lookup", "/models", "/admin/reload")


@dataclass(frozen=True)
class ServiceOptions:
    settings: Settings
    no_auth: bool = False
    reload_seconds: float = 30.0
    workers: int = 1
    trace_requests: bool = False
    header_seconds: float = 10.0
    body_seconds: float = 60.0

    @property
    def api_keys(self) -> tuple[str, ...]:
        return self.settings.api_keys


def tracing_config(options: "ServiceOptions") -> dict:
    """BentoML's tracing settings for the service: the API routes left out of its
    OpenTelemetry middleware unless ``trace_requests``. BentoML records no trace unless an
    exporter and a sample rate are configured, yet its middleware costs CPU on every
    one-customer /score request here (docs/http-api.md); whoever configures tracing starts
    ``retain serve --trace-requests``."""
    return {} if options.trace_requests else {"excluded_urls": list(API_ROUTES)}


def _flag(environ, name) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _number(environ, name, kind, default):
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise RetainError(f"{name}={text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise RetainError(f"{name} must be a number, not negative, not {text}")
    return value


def options_from_environment(environ=None) -> ServiceOptions:
    """The service's settings; refuses to go on without an API key unless RETAIN_NO_AUTH=1."""
    environ = os.environ if environ is None else environ
    overrides = {
        "max_request_customers": _number(environ, MAX_CUSTOMERS, int, None),
        "max_request_bytes": _number(environ, MAX_BYTES, int, None),
    }
    settings = Settings.from_environment(environ, **overrides)
    if environ.get(API_KEYS_FILE):
        settings = settings.with_(api_keys=settings.api_keys + read_api_keys_file(environ[API_KEYS_FILE]))
    no_auth = _flag(environ, NO_AUTH)
    if not settings.api_keys and not no_auth:
        raise RetainError(
            f"no API key configured: set {API_KEYS} (comma-separated) or give --api-keys-file FILE; "
            "for a local experiment without keys, start with --no-auth"
        )
    return ServiceOptions(
        settings=settings,
        no_auth=no_auth,
        reload_seconds=_number(environ, RELOAD_SECONDS, float, 30.0),
        workers=max(1, _number(environ, WORKERS, int, 1)),
        trace_requests=_flag(environ, TRACE_REQUESTS),
        header_seconds=_number(environ, HEADER_SECONDS, float, 10.0),
        body_seconds=_number(environ, BODY_SECONDS, float, 60.0),
    )
