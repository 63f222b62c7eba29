"""The OpenAPI 3.1 document of the relay, generated from the route table (API-19)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .problems import PROBLEM_MEDIA_TYPE
from .routes import Endpoint

__all__ = ["SCHEMAS", "openapi_document"]

_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _ref_inline(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
        },
    },
    "Acceptance": {
        "type": "object",
        "required": ["sender", "messageId", "messageHash", "acceptedAt"],
        "properties": {
            "sender": {"type": "string"},
            "messageId": _HEX64,
            "messageHash": _HEX64,
            "acceptedAt": {"type": "integer"},
            "logIndex": {"type": "integer", "minimum": 0},
            "receipt": {"type": "string", "contentEncoding": "base64url"},
            "checkpoint": {"type": "string", "description": "signed note (spec/log.md)"},
            "inclusion": {"type": "array", "items": _HEX64, "maxItems": 63},
            "consistency": _ref_inline("ConsistencyProof"),
        },
    },
    "ConsistencyProof": {
        "type": "object",
        "required": ["from", "to", "proof"],
        "properties": {
            "from": {"type": "integer", "minimum": 0},
            "to": {"type": "integer", "minimum": 0},
            "proof": {"type": "array", "items": _HEX64, "maxItems": 64},
        },
    },
    "InclusionProof": {
        "type": "object",
        "required": ["index", "size", "proof"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "size": {"type": "integer", "minimum": 1},
            "proof": {"type": "array", "items": _HEX64, "maxItems": 63},
        },
    },
    "Checkpoints": {
        "type": "object",
        "required": ["checkpoints"],
        "properties": {"checkpoints": {"type": "array", "items": {"type": "string"}}},
    },
    "Entries": {
        "type": "object",
        "required": ["entries"],
        "properties": {
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "kind", "hash"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "kind": {"enum": ["envelope", "directory"]},
                        "hash": _HEX64,
                    },
                },
            }
        },
    },
    "Delivery": {
        "type": "object",
        "required": [
            "position",
            "sender",
            "messageId",
            "messageHash",
            "acceptedAt",
            "expires",
            "attempt",
            "envelope",
        ],
        "properties": {
            "position": {"type": "integer", "minimum": 1},
            "sender": {"type": "string"},
            "messageId": _HEX64,
            "messageHash": _HEX64,
            "acceptedAt": {"type": "integer"},
            "expires": {"type": "integer"},
            "attempt": {"type": "integer", "minimum": 1},
            "envelope": {"type": "string", "contentEncoding": "base64url"},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["cursor", "messages"],
        "properties": {
            "cursor": {"type": "integer", "minimum": 0},
            "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
        },
    },
    "Acknowledgement": {
        "type": "object",
        "required": ["messageIds"],
        "additionalProperties": False,
        "properties": {"messageIds": {"type": "array", "items": _HEX64}},
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in sorted(endpoint.responses.items()):
        response: dict[str, Any] = {"description": description}
        if status >= 400:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _ref("Problem")}}
        elif endpoint.response_media is not None and status != 204:
            schema = (
                _ref(endpoint.response_schema)
                if endpoint.response_schema
                else {"type": "string", "format": "binary"}
                if endpoint.response_media != "application/json"
                else {"type": "object"}
            )
            response["content"] = {endpoint.response_media: {"schema": schema}}
        responses[str(status)] = response
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "responses": responses,
        "security": [] if endpoint.public else [{"NCBR1": []}],
    }
    if endpoint.query:
        operation["parameters"] = [
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "description": q.description,
                "schema": {
                    "type": "integer",
                    "minimum": q.minimum,
                    **({} if q.maximum is None else {"maximum": q.maximum}),
                },
            }
            for q in endpoint.query
        ]
    if endpoint.request_media is not None:
        schema = (
            _ref(endpoint.request_schema)
            if endpoint.request_schema
            else {"type": "string", "format": "binary"}
        )
        operation["requestBody"] = {
            "required": True,
            "content": {endpoint.request_media: {"schema": schema}},
        }
    return operation


def openapi_document(endpoints: Iterable[Endpoint], *, relay_id: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NCBR/1 relay API",
            "version": "1",
            "description": f"Relay {relay_id}; normative text: spec/relay-api.md",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "NCBR1": {
                    "type": "http",
                    "scheme": "NCBR1",
                    "description": "Signed request (spec/relay-api.md, AUTH-1 to AUTH-16)",
                }
            },
        },
    }
