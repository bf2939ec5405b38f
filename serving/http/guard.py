"""ASGI middleware in front of every endpoint: request size, API keys, readiness.

- A body larger than the configured size gets 413 before anything parses it (the
  Content-Length is checked first; a body without one is counted while it is read).
- A body must arrive whole within ``body_seconds`` (408 otherwise, the connection closed):
  a client that trickles its body does not hold a connection for ever. (Headers have their
  own time limit: ``limit_header_time``.)
- A POST body must be JSON: another media type (a form, multipart) gets 415.
- Every path but health, readiness, metrics and the OpenAPI UI and spec needs
  ``Authorization: Bearer KEY``; a wrong or missing key gets 401 with no detail. Keys are
  compared in constant time (each key's digest with ``hmac.compare_digest``, all keys tried).
- ``/readyz`` answers 503 with which model is missing and why until both are loaded.
- ``GET /docs.json``, the OpenAPI document, is BentoML's completed (serving/http/openapi.py).
- ``GET`` routes BentoML cannot declare (its API methods are POST) are answered here,
  behind the key check: ``GET /models``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math

import anyio

PUBLIC_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics", "/", "/docs.json"})
PUBLIC_PREFIXES = ("/static_content/",)
JSON_TYPES = ("application/json", "")

log = logging.getLogger("retain.serving")


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


async def _answer(send, status: int, body: dict | None, headers=()) -> None:
    content = json.dumps(body).encode() if body is not None else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": content})


class Guard:
    def __init__(self, app, *, api_keys=(), no_auth: bool = False, max_bytes: int = 64 << 20, readiness=None,
                 get_routes=None, body_seconds: float = 60.0, documents=None):
        self.app = app
        self.key_digests = [_digest(k) for k in api_keys]
        self.no_auth = no_auth
        self.max_bytes = max_bytes
        self.readiness = readiness  # () -> (ready, details)
        self.get_routes = get_routes or {}  # path -> () -> (status, body)
        self.body_seconds = body_seconds
        self.documents = documents or {}  # public GET path -> () -> body (the OpenAPI document)

    def _authorised(self, headers: dict) -> bool:
        if self.no_auth:
            return True
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        given = _digest(key.strip()) if scheme.lower() == "bearer" else _digest(b"\0no key")
        matched = False
        for digest in self.key_digests:  # every key is tried: the time does not say which matched
            matched |= hmac.compare_digest(given, digest)
        return matched

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = dict(scope["headers"])
        if path == "/readyz" and self.readiness is not None:
            ready, details = self.readiness()
            return await _answer(send, 200 if ready else 503, {"ready": ready, **details})
        if scope["method"] == "GET" and path in self.documents:
            return await _answer(send, 200, self.documents[path]())
        if path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES) and not self._authorised(headers):
            return await _answer(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", b"Bearer")])
        if scope["method"] == "GET" and path in self.get_routes:
            status, body = self.get_routes[path]()
            return await _answer(send, status, body)
        if scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                return await _answer(send, 400, {"error": "Content-Length is not a number"})
            if too_big:
                return await _answer(send, 413, self._too_big())
        media_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES and length != b"0":
            return await _answer(send, 415, {"error": f"the body must be JSON (Content-Type: application/json), "
                                                      f"not {media_type[:100]}"})
        # the body read here, up to the limit and within the time allowed, then handed on
        chunks, size = [], 0
        try:
            with anyio.fail_after(self.body_seconds if self.body_seconds > 0 else math.inf):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    size += len(message.get("body", b""))
                    if size > self.max_bytes:
                        return await _answer(send, 413, self._too_big(), [(b"connection", b"close")])
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            log.warning("%s %s: the body did not arrive within %g s (%d bytes read)", scope["method"], path,
                        self.body_seconds, size)
            return await _answer(send, 408, {"error": f"the request body did not arrive within "
                                                      f"{self.body_seconds:g} s"}, [(b"connection", b"close")])
        body, sent = b"".join(chunks), False
        del chunks

        async def replay():
            nonlocal sent, body
            if not sent:
                sent = True
                message, body = {"type": "http.request", "body": body, "more_body": False}, b""
                return message
            return await receive()

        return await self.app(scope, replay, send)

    def _too_big(self) -> dict:
        return {"error": f"the request body is larger than the limit of {self.max_bytes:,} bytes "
                         "(RETAIN_MAX_REQUEST_BYTES); send fewer customers per request"}
