"""What a command shows: its own results on stdout, its progress on stderr, and third-party
noise only with ``--verbose``.

stdout carries exactly what the CLI prints itself (one JSON document with ``--json``):
anything a library prints there goes to stderr instead, and the known noisy printers
(lifetimes prints the optimiser's result before raising ``ConvergenceError``) are shown
only with ``--verbose``. Known noise is hidden unless verbose: log lines up to WARNING (MLflow's database INFO lines,
its CloudPickle and "Found extra inputs" warnings), MLflow's messages
printed to stderr ("Successfully registered model ..."), and warnings raised outside
retain (RuntimeWarnings from the optimisers). Everything is put back when the command ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import sys
import warnings

OWN_MODULES = ("retain", "__main__")
# modules whose direct prints to stdout/stderr are noise to a retain user
NOISY_PRINTERS = ("mlflow", "lifetimes", "alembic")


def _writer() -> str:
    """'own', 'noisy' or 'foreign': the nearest calling module that is retain's or a known
    noisy printer decides (pandas writing a table to stdout for retain counts as retain)."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(OWN_MODULES):
            return "own"
        if module.startswith(NOISY_PRINTERS):
            return "noisy"
        frame = frame.f_back
    return "foreign"


class _Gate(io.TextIOBase):
    """A text stream that routes each write by the module that printed it."""

    def __init__(self, own, foreign, noisy):
        self._own, self._foreign, self._noisy = own, foreign, noisy

    def write(self, text: str) -> int:
        target = {"own": self._own, "noisy": self._noisy, "foreign": self._foreign}[_writer()]
        if target is not None:
            target.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in (self._own, self._foreign, self._noisy):
            if stream is not None:
                stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._own, "isatty", lambda: False)())

    @property
    def encoding(self):
        return getattr(self._own, "encoding", "utf-8")


@contextlib.contextmanager
def command_output(verbose: bool = False):
    """Run a command with retain's output rules (see the module docstring). Yields the real
    stderr, for tracebacks that must not be filtered."""
    stdout, stderr = sys.stdout, sys.stderr
    noise = stderr if verbose else None
    disabled = logging.root.manager.disable
    with warnings.catch_warnings():
        if not verbose:
            warnings.filterwarnings("ignore")
            warnings.filterwarnings("default", module=r"retain(\.|$)")
            # retain logs nothing itself; MLflow resets its loggers' levels when imported, so
            # the global switch is the one that holds
            logging.disable(logging.WARNING)
        sys.stdout = _Gate(stdout, stderr, noise)  # a library's print never reaches stdout
        sys.stderr = _Gate(stderr, stderr, noise)
        try:
            yield stderr
        finally:
            sys.stdout, sys.stderr = stdout, stderr
            logging.disable(disabled)


def strict_json(value) -> str:
    """JSON that every parser accepts: NaN and infinities become null, numpy numbers plain."""
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
