"""What the service sets up below its routes, in the server process: a time limit on a
request's headers, and one log line (not a traceback) for a request refused as bad.

- Headers: uvicorn (inside ``bentoml serve``) has no time limit on a request's headers
  (only on an idle connection after a response), so a client that opens connections and
  trickles header bytes holds them for ever, keys or not. ``limit_header_time`` closes a
  connection whose request's headers are not complete within the limit. It wraps four
  methods of uvicorn's httptools protocol (the one used when httptools is installed, as
  the ``serving`` extra does); tests/system/test_http.py checks that it holds.
- Bad requests: BentoML logs every request its body model refuses (400) at error level with
  the traceback, whose text holds the customers' values. ``quiet_refusals`` turns those
  records into one warning line: the route and the number of errors, no values.
"""

from __future__ import annotations

import logging

log = logging.getLogger("retain.serving")

_HEADER_TIMER = "_retain_header_timer"


def limit_header_time(seconds: float) -> bool:
    """Close connections whose request headers take longer than ``seconds``; whether the
    limit could be put in place (False: uvicorn's protocol is not the one expected)."""
    if seconds <= 0:
        return False
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's h11 protocol, left as it is
        log.warning("httptools is not installed: request headers have no time limit")
        return False
    names = ("connection_made", "on_message_begin", "on_headers_complete", "connection_lost")
    if getattr(HttpToolsProtocol, "_retain_header_seconds", None) is not None:
        HttpToolsProtocol._retain_header_seconds = seconds
        return True
    if not all(hasattr(HttpToolsProtocol, name) for name in names):
        log.warning("uvicorn's protocol has changed: request headers have no time limit")
        return False
    made, begin, complete, lost = (getattr(HttpToolsProtocol, name) for name in names)

    def arm(protocol) -> None:
        disarm(protocol)
        transport = protocol.transport

        def too_slow() -> None:
            if not transport.is_closing():
                log.warning("closed a connection from %s: its request headers took more than %g s",
                            (protocol.client or ("?",))[0], HttpToolsProtocol._retain_header_seconds)
                transport.close()

        setattr(protocol, _HEADER_TIMER, protocol.loop.call_later(HttpToolsProtocol._retain_header_seconds, too_slow))

    def disarm(protocol) -> None:
        timer = getattr(protocol, _HEADER_TIMER, None)
        if timer is not None:
            timer.cancel()
            setattr(protocol, _HEADER_TIMER, None)

    def connection_made(self, transport):
        made(self, transport)
        arm(self)

    def on_message_begin(self):
        begin(self)
        arm(self)

    def on_headers_complete(self):
        disarm(self)
        complete(self)

    def connection_lost(self, exc):
        disarm(self)
        lost(self, exc)

    for name, method in zip(names, (connection_made, on_message_begin, on_headers_complete, connection_lost)):
        setattr(HttpToolsProtocol, name, method)
    HttpToolsProtocol._retain_header_seconds = seconds
    return True


class _OneLineRefusals(logging.Filter):
    """A refused request's record: one warning line, without the traceback and its values."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info and record.exc_info is not True else None
        if exc is None:
            return True
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            what = f"{exc.error_count()} error(s) in the body"
        elif 400 <= getattr(getattr(exc, "error_code", None), "value", 0) < 500:
            what = type(exc).__name__
        else:
            return True  # a server error keeps its traceback
        record.msg, record.args = "%s refused: %s", (record.getMessage().removeprefix("Exception on "), what)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


def quiet_refusals() -> None:
    """Refused requests logged by BentoML as one warning line each (see the module's docstring)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _OneLineRefusals) for f in logger.filters):
        logger.addFilter(_OneLineRefusals())
