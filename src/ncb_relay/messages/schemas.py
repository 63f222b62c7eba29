"""JSON Schema documents for message bodies, generated from the models.

Each document describes one body as it is encoded: the map of ``schema``,
``version`` and ``content`` (spec/messages.md, MSG-1).  The schemas are
published in ``spec/schemas/`` (written by ``spec/schemas/export.py``, kept in
sync by a test) for implementers in other languages.  Byte-string fields,
which msgpack carries as bin, are marked ``"format": "binary"``; integers are
msgpack integers and text is msgpack str.  The models remain the reference:
a schema cannot express every rule (for example that an explicit deadline
must be later than the envelope's ``created``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .body import Body
from .registry import BUILTIN_BODIES

__all__ = ["JSON_SCHEMA_DIALECT", "body_json_schema", "json_schemas", "schema_file_name"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file_name(model: type[Body]) -> str:
    return f"{model.schema_id}.v{model.schema_version}.json"


def body_json_schema(model: type[Body]) -> dict[str, Any]:
    """The JSON Schema of one body type's encoding."""
    content = model.model_json_schema(ref_template="#/$defs/{model}")
    definitions: dict[str, Any] = content.pop("$defs", {})
    definitions[model.__name__] = content
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:ncb-relay:schema:{model.schema_id}:v{model.schema_version}",
        "title": f"{model.schema_id} version {model.schema_version}",
        "description": (
            f"A {model.__name__} body: the canonical msgpack map of spec/messages.md (MSG-1). "
            "Fields with format binary are msgpack bin."
        ),
        "type": "object",
        "properties": {
            "schema": {"const": model.schema_id},
            "version": {"const": model.schema_version},
            "content": {"$ref": f"#/$defs/{model.__name__}"},
        },
        "required": ["content", "schema", "version"],
        "additionalProperties": False,
        "$defs": dict(sorted(definitions.items())),
    }


def json_schemas(models: Iterable[type[Body]] = BUILTIN_BODIES) -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every model in ``models`` (the built-in bodies by default)."""
    return {schema_file_name(model): body_json_schema(model) for model in models}
