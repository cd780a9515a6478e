"""OpenAPI schema additions (drf-spectacular postprocessing hooks):

- the one error format every /api/ error uses (competitions/api/errors.py), declared once as
  the `Error` component and referenced by every operation's 4xx answers, so a generated
  client parses errors as it parses results;
- one request media type per operation: multipart where a file is sent, else JSON (the
  views still parse the others). Clients generated from a body offered in three media types
  did not import (openapi-python-client writes `Unset` without importing it)."""

from __future__ import annotations

from typing import Any

ERROR_STATUSES = {
    "400": "The request is malformed or breaks a rule (`code` says which)",
    "401": "No or a wrong token",
    "403": "Not allowed (`forbidden`, `not_joined`, `phase_closed`, ...)",
    "404": "No such thing, or not visible to you",
    "429": "Rate limit or quota: wait `Retry-After` seconds",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every /api/ error: a sentence and a stable code, with extra fields where "
    "they help (`resets_at`, `retry_after_s`, `problems`, or a field name's messages on a "
    "validation error).",
    "properties": {
        "detail": {"type": "string", "description": "A sentence for people"},
        "code": {"type": "string", "description": "A stable code for scripts"},
    },
    "required": ["code"],
    "additionalProperties": {},
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: the Error component and every operation's 4xx answers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status,
                    {"content": {"application/json": {"schema": ref}}, "description": description},
                )
    return result


def one_request_media_type(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: keep multipart/form-data where a field is a file, else JSON."""
    schemas = result.get("components", {}).get("schemas", {})
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            content = operation.get("requestBody", {}).get("content", {})
            if len(content) < 2:
                continue
            multipart = content.get("multipart/form-data", {}).get("schema", {})
            ref = multipart.get("$ref", "")
            fields = schemas.get(ref.rsplit("/", 1)[-1], multipart).get("properties", {})
            sends_file = any(f.get("format") == "binary" for f in fields.values())
            keep = "multipart/form-data" if sends_file else "application/json"
            if keep in content:
                operation["requestBody"]["content"] = {keep: content[keep]}
    return result
