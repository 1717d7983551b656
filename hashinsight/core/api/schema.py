"""OpenAPI additions drf-spectacular cannot infer: the one error shape every operation may answer."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every 4xx and 5xx answer has this shape.",
    "properties": {
        "error_code": {"type": "string", "description": "Stable, machine-readable; e.g. validation_error."},
        "message": {"type": "string"},
        "request_id": {"type": "string", "nullable": True, "description": "Also in the X-Request-ID header."},
        "details": {"type": "object", "additionalProperties": True, "description": "Per-field errors and more."},
    },
    "required": ["error_code", "message", "request_id", "details"],
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def add_error_responses(result, generator, request, public):
    """A ``default`` response with the error shape on every operation, so clients (and the schema
    fuzz test) know what a 400, 401, 403, 404, 409, 413 or 503 looks like."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {
        "description": "An error (any status not listed above), in the standard shape.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in METHODS:
                operation.setdefault("responses", {}).setdefault("default", error)
    return result
