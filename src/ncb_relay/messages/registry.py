"""Encoding bodies, and decoding them by schema id into their models (spec/messages.md).

Theory of operation.  :func:`encode_body` writes the canonical map
``{"content": ..., "schema": ..., "version": ...}``.  :meth:`BodyRegistry.decode`
reverses it in three steps, each of which refuses with
:class:`~ncb_relay.errors.InvalidBody` naming the field at fault: the canonical
decoder (under body limits); the outer map (exactly the three keys, each of its
type); then, for a known ``(schema, version)``, strict validation of the
content, with msgpack arrays read as tuples.  No pydantic exception escapes.
An unknown pair is not an error: it is returned as an
:class:`~ncb_relay.messages.body.OpaqueBody` with the exact bytes.

A registry holds the built-in bodies (schema ids under ``ncbr.``) and the
bodies agencies register.  Registering never changes a registry: it returns a
new one, so a decoder in use cannot change under its callers.  A registered
schema id can never shadow a built-in one: the ``ncbr.`` namespace is
reserved, and every pair is registered once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from pydantic import ValidationError

from .. import codec
from ..codec import CodecLimits, Value
from ..errors import InvalidBody, LimitExceeded, MalformedInput, UsageError
from .assistance import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    StatusUpdate,
    Withdrawal,
)
from .body import (
    BUILTIN_NAMESPACE,
    MAX_SCHEMA_VERSION,
    Body,
    OpaqueBody,
    check_schema_id,
)
from .delivery_receipt import DeliveryReceipt
from .diffusion import Diffusion, Notice
from .error_report import ErrorReport
from .fields import MAX_ENVELOPE_BYTES, describe_validation_error, field_path
from .provenance import DisseminationPermission, Forward

__all__ = [
    "BODY_LIMITS",
    "BUILTIN_BODIES",
    "DEFAULT_REGISTRY",
    "BodyRegistry",
    "decode_body",
    "encode_body",
]

BUILTIN_BODIES: tuple[type[Body], ...] = (
    AssistanceRequest,
    Acknowledgement,
    StatusUpdate,
    AssistanceResponse,
    Withdrawal,
    Diffusion,
    Notice,
    ErrorReport,
    Forward,
    DisseminationPermission,
    DeliveryReceipt,
)

# A body fills at most an envelope; its texts are far shorter than the codec's str bound.
BODY_LIMITS = CodecLimits(
    max_bytes=MAX_ENVELOPE_BYTES,
    max_str_bytes=128 * 1024,
    max_bin_bytes=MAX_ENVELOPE_BYTES,
    max_array_items=256,
    max_map_items=64,
    max_depth=8,
)
_OUTER_KEYS = ("content", "schema", "version")


def _to_value(value: object) -> Value:
    """A model dump as a profile value: tuples become arrays."""
    if isinstance(value, (tuple, list)):
        return [_to_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_value(item) for key, item in value.items()}
    return value  # type: ignore[return-value]  # str, int, bytes, bool or None from a dump


def _to_tuples(value: Value) -> object:
    """A decoded profile value with arrays as tuples, the form the frozen models hold."""
    if isinstance(value, list):
        return tuple(_to_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _to_tuples(item) for key, item in value.items()}
    return value


def encode_body(body: Body) -> bytes:
    """The canonical bytes of ``body``, ready to be sealed; every field is written."""
    if not isinstance(body, Body):
        raise UsageError("encode_body expects a Body")
    content = _to_value(body.model_dump(mode="python"))
    outer: Value = {"content": content, "schema": body.schema_id, "version": body.schema_version}
    return codec.encode(outer, limits=BODY_LIMITS)


class BodyRegistry:
    """The body types a receiver knows, by ``(schema id, version)``; immutable."""

    __slots__ = ("_models",)

    def __init__(self, extensions: Iterable[type[Body]] = ()) -> None:
        models: dict[tuple[str, int], type[Body]] = {}
        for model in BUILTIN_BODIES:
            models[(model.schema_id, model.schema_version)] = model
        for model in extensions:
            _check_extension(model)
            key = (model.schema_id, model.schema_version)
            if key in models:
                raise UsageError(f"{model.schema_id} version {model.schema_version} is taken")
            models[key] = model
        self._models: Mapping[tuple[str, int], type[Body]] = MappingProxyType(models)

    def register(self, *models: type[Body]) -> BodyRegistry:
        """A new registry that also knows ``models``; this one is unchanged."""
        builtins = set(BUILTIN_BODIES)
        return BodyRegistry([m for m in self._models.values() if m not in builtins] + list(models))

    @property
    def models(self) -> Mapping[tuple[str, int], type[Body]]:
        return self._models

    def lookup(self, schema_id: str, version: int) -> type[Body] | None:
        return self._models.get((schema_id, version))

    def decode(self, data: bytes) -> Body | OpaqueBody:
        """The body encoded in ``data``: a known model, or an :class:`OpaqueBody`; else raise."""
        if not isinstance(data, bytes):
            raise UsageError("decode_body expects bytes")
        try:
            value = codec.decode(data, limits=BODY_LIMITS)
        except (MalformedInput, LimitExceeded) as exc:
            raise InvalidBody(f"body: {exc.message}", field=None, reason=exc.code) from exc
        schema_id, version, content = _outer(value)
        model = self._models.get((schema_id, version))
        if model is None:
            return OpaqueBody(schema_id, version, data)
        try:
            return model.model_validate(_to_tuples(content))
        except ValidationError as exc:
            field, reason, message = describe_validation_error(exc, ("content",))
            raise InvalidBody(f"{schema_id}: {message}", field=field, reason=reason) from exc


def _outer(value: Value) -> tuple[str, int, dict[str, Value]]:
    if not isinstance(value, dict):
        raise InvalidBody("body: not a map", field=None, reason="wrong-type")
    for key in value:
        if key not in _OUTER_KEYS:
            field = field_path((key,))
            raise InvalidBody(f"{field}: is not a key of a body", field=field, reason="unexpected")
    for key in _OUTER_KEYS:
        if key not in value:
            raise InvalidBody(f"{key}: is required", field=key, reason="missing")
    schema_id, version, content = value["schema"], value["version"], value["content"]
    if not isinstance(schema_id, str):
        raise InvalidBody("schema: has the wrong type", field="schema", reason="wrong-type")
    try:
        check_schema_id(schema_id)
    except ValueError:
        raise InvalidBody("schema: not a schema id", field="schema", reason="bad-format") from None
    if type(version) is not int:
        raise InvalidBody("version: has the wrong type", field="version", reason="wrong-type")
    if not 1 <= version <= MAX_SCHEMA_VERSION:
        raise InvalidBody("version: is out of range", field="version", reason="out-of-range")
    if not isinstance(content, dict):
        raise InvalidBody("content: not a map", field="content", reason="wrong-type")
    return schema_id, version, content


def _check_extension(model: object) -> None:
    if not isinstance(model, type) or not issubclass(model, Body):
        raise UsageError("an extension body is a subclass of Body")
    schema_id = getattr(model, "schema_id", None)
    try:
        check_schema_id(schema_id)
    except ValueError:
        raise UsageError(f"{model.__name__} has no valid schema_id") from None
    if schema_id.startswith(BUILTIN_NAMESPACE):  # type: ignore[union-attr]
        raise UsageError(f"the {BUILTIN_NAMESPACE} namespace is reserved for built-in bodies")
    version = model.schema_version
    if type(version) is not int or not 1 <= version <= MAX_SCHEMA_VERSION:
        raise UsageError(f"{model.__name__} has no valid schema_version")
    config = model.model_config
    if not (config.get("frozen") and config.get("strict") and config.get("extra") == "forbid"):
        raise UsageError(f"{model.__name__} must stay frozen, strict and closed")


DEFAULT_REGISTRY = BodyRegistry()


def decode_body(data: bytes, *, registry: BodyRegistry = DEFAULT_REGISTRY) -> Body | OpaqueBody:
    """Decode a body with ``registry`` (the built-in bodies by default)."""
    return registry.decode(data)
