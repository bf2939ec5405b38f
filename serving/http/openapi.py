"""The OpenAPI document the service publishes (``/docs.json``, and the UI at ``/``): BentoML's,
completed with what the service adds in front of its routes (``guard``) and answers itself.

BentoML documents a route's body, its 200 answer and 400/404/500 with an error schema whose
``detail`` is text (the 400 it sends carries a list). Added here: the Bearer scheme on every
API route; 401 (no or wrong key), 408 (a body too slow to arrive), 413 (a body over the size
limit), 415 (a body that is not JSON), 422 (/score: no customer could be scored, with each
one's reason) and 503 (models not loaded yet); one error schema that matches every error
body; the fields that may be null marked so; a valid /score and /lookup body as examples.
schemathesis checks every answer against this document (tests/system/test_http.py).
"""

from __future__ import annotations

import copy

API_ROUTES = ("/score", "/lookup", "/models", "/admin/reload")
SCHEME = "bearerAuth"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, in words"},
        "detail": {"description": "400: each validation error (location, message, type)"},
        "customers": {"type": "array", "description": "422: every customer and why it could not be scored",
                      "items": {"type": "object", "properties": {"customer_id": {"type": "string"},
                                                                 "not_scored_reason": {"type": "string"}}}},
    },
}
_ANSWERS = {
    400: "the body is not valid: malformed JSON, a missing or empty customers list, too many customers, "
         "an as_of that is not a day between 1900-01-01 and 2199-12-31, a customer without a usable id, "
         "an id sent twice, a body nested too deep",
    401: "no key, or a wrong one (Authorization: Bearer KEY)",
    404: "no such route",
    408: "the body did not arrive within the time limit (RETAIN_BODY_SECONDS)",
    413: "the body is larger than the limit (RETAIN_MAX_REQUEST_BYTES)",
    415: "the body is not JSON (Content-Type: application/json)",
    422: "no customer of the request could be scored; each one's reason is listed",
    500: "an error in the server; the server log says why",
    503: "the models are not loaded yet (GET /readyz says why)",
}
_ROUTE_ANSWERS = {
    "/score": (400, 401, 404, 408, 413, 415, 422, 500, 503),
    "/lookup": (400, 401, 404, 408, 413, 415, 500),
    "/models": (400, 401, 404, 408, 413, 415, 500, 503),
    "/admin/reload": (400, 401, 404, 408, 413, 415, 500, 503),
}
# (schema, property) that may be null although BentoML's flattened schema says otherwise
_NULLABLE = {
    "/score": ("as_of", "clv_model_version", "churn_model_version"),
    "/admin/reload": ("previous",),
}


def complete(spec: dict, examples: dict[str, dict]) -> dict:
    """BentoML's document with the answers, the key scheme and the examples added."""
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http", "scheme": "bearer", "description": "one of the keys the server was started with"}
    components.setdefault("schemas", {})["Error"] = _ERROR
    for route in API_ROUTES:
        operation = spec.get("paths", {}).get(route, {}).get("post")
        if operation is None:
            continue
        operation["security"] = [{SCHEME: []}]
        responses = operation["responses"] = {str(k): v for k, v in operation.get("responses", {}).items()}
        for status in _ROUTE_ANSWERS[route]:
            responses[str(status)] = {"description": _ANSWERS[status], "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for field in _NULLABLE.get(route, ()):
            for schema in (_body_schema(operation.get("requestBody")), _body_schema(responses.get("200"))):
                if schema and field in schema.get("properties", {}):
                    schema["properties"][field]["nullable"] = True
        if route in examples and operation.get("requestBody"):
            operation["requestBody"]["content"]["application/json"]["example"] = examples[route]
    return spec


def _body_schema(part) -> dict | None:
    if not isinstance(part, dict):
        return None
    return part.get("content", {}).get("application/json", {}).get("schema")
