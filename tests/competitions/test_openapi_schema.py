"""The OpenAPI schema types every body: each operation's success answer has a schema that
names its fields (no bare `object`, no missing schema), errors share the `Error` component,
nullable fields say so, and drf-spectacular generates it without a warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    run = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--validate", "--file", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Warning" not in run.stderr, run.stderr[-3000:]
    return yaml.safe_load(out.read_text())


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _untyped(node: dict) -> bool:
    """A schema that tells a client nothing: none, `{}`, or an object without fields."""
    if not node:
        return True
    if node.get("type") == "object" or node.get("type") is None:
        return not ({"properties", "additionalProperties", "oneOf", "anyOf", "allOf"} & set(node))
    return False


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_has_the_operations_it_is_checked_for(schema):
    names = [name for name, _ in _operations(schema)]
    # A walk over nothing would pass vacuously.
    assert "POST /api/v1/competitions/{slug}/submissions/" in names
    assert len(names) > 30


def test_every_success_answer_has_a_typed_schema(schema):
    untyped = []
    for name, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = response.get("content") or {}
            if not content:
                untyped.append(f"{name} {status}: no content")
            for media, body in content.items():
                if media.endswith("json") and _untyped(_resolve(schema, body.get("schema", {}))):
                    untyped.append(f"{name} {status} {media}")
    assert untyped == []


def test_no_component_has_a_field_typed_as_a_bare_object(schema):
    bare = []
    for component, node in schema["components"]["schemas"].items():
        for field, prop in node.get("properties", {}).items():
            prop = _resolve(schema, prop) if "$ref" in prop else prop
            if prop.get("type") == "object" and _untyped(prop):
                bare.append(f"{component}.{field}")
    assert bare == []


def test_every_request_body_has_a_schema(schema):
    missing = [
        name
        for name, operation in _operations(schema)
        for media, body in operation.get("requestBody", {}).get("content", {}).items()
        if not body.get("schema")
    ]
    assert missing == []


def test_every_operation_documents_the_one_error_format(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) >= {"detail", "code"}
    for name, operation in _operations(schema):
        for status in ("400", "403", "404"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (name, status)


def test_fields_that_can_be_null_are_marked_nullable(schema):
    components = schema["components"]["schemas"]
    assert components["CompetitionOutput"]["properties"]["end_at"]["nullable"] is True
    assert components["CompetitionOutput"]["properties"]["start_at"]["nullable"] is True
    submission = components["SubmissionOutput"]["properties"]
    for field in ("started_at", "finished_at", "duration_s", "task_version", "failure"):
        assert submission[field]["nullable"] is True, field
    assert "nullable" not in submission["created_at"]
