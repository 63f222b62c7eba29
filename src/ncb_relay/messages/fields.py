"""The field types that message bodies are built from (spec/messages.md, "Field types").

Every text, byte string and list in a body has an upper bound, stated here
once, so a hostile sender cannot make a receiver hold more than the schema
allows.  Text limits count Unicode code points (what ``len`` counts); the
canonical decoder has already bounded the bytes.  Times are whole seconds
since the Unix epoch, like the envelope's ``created`` and ``expires``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..errors import UsageError
from ..header import MAX_TIME

__all__ = [
    "MAX_CONDITIONS",
    "MAX_ENVELOPE_BYTES",
    "MAX_ITEMS",
    "MAX_LABEL_CHARS",
    "MAX_LONG_TEXT_CHARS",
    "MAX_RECIPIENT_IDS",
    "MAX_TEXT_CHARS",
    "BodyPart",
    "CountryCode",
    "Digest",
    "Label",
    "LanguageTag",
    "LongText",
    "PrincipalId",
    "Text",
    "Time",
    "check_unique",
    "describe_validation_error",
    "field_path",
]

MAX_LABEL_CHARS = 200
MAX_TEXT_CHARS = 4_000
MAX_LONG_TEXT_CHARS = 32_000
MAX_ITEMS = 64
MAX_CONDITIONS = 8
MAX_RECIPIENT_IDS = 256
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024

# One line, no control characters: names, references, identifiers.
Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
# Prose: tab, line feed and carriage return allowed, other control characters not.
_PROSE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS, pattern=_PROSE)]
LongText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LONG_TEXT_CHARS, pattern=_PROSE)
]
Time = Annotated[int, Field(ge=0, le=MAX_TIME)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
LanguageTag = Annotated[
    str, StringConstraints(max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
]
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
PrincipalId = Annotated[
    str, StringConstraints(max_length=64, pattern=rf"^[A-Z]{{2}}\.{_LABEL}(\.{_LABEL})*$")
]
Digest = Annotated[bytes, Field(min_length=32, max_length=32)]


# pydantic error types, grouped into the stable reasons of spec/messages.md (MSG-4)
_REASONS = {
    "missing": "missing",
    "extra_forbidden": "unexpected",
    "string_too_long": "too-long",
    "bytes_too_long": "too-long",
    "too_long": "too-long",
    "string_too_short": "too-short",
    "bytes_too_short": "too-short",
    "too_short": "too-short",
    "literal_error": "not-allowed",
    "enum": "not-allowed",
    "string_pattern_mismatch": "bad-format",
    "greater_than": "out-of-range",
    "greater_than_equal": "out-of-range",
    "less_than": "out-of-range",
    "less_than_equal": "out-of-range",
    "value_error": "invalid",
}
_TEXT = {
    "missing": "is required",
    "unexpected": "is not a field of this schema",
    "too-long": "is longer than {max_length}",
    "too-short": "is shorter than {min_length}",
    "not-allowed": "is not one of {expected}",
    "bad-format": "does not have the required format",
    "out-of-range": "is out of range",
    "wrong-type": "has the wrong type",
}
MAX_KEY_IN_MESSAGE = 64
_PLAIN_KEY = re.compile(r"[a-z_][a-z0-9_]{0,63}")


def field_path(loc: tuple[int | str, ...]) -> str:
    """A location as text: ``content.offences[0].other``; a sender's key is escaped and cut."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # a key may come from the sender: show it escaped and cut, never raw
            shown = part if _PLAIN_KEY.fullmatch(part) else repr(part[:MAX_KEY_IN_MESSAGE])
            path += f".{shown}" if path else shown
    return path


def describe_validation_error(
    exc: ValidationError, prefix: tuple[str, ...] = ()
) -> tuple[str, str, str]:
    """The first error of ``exc`` as ``(field path, reason, message)``; never shows a value.

    Only the location, the error kind and the schema's own bounds appear, so no
    part of a plaintext reaches a log (ERR-2).
    """
    error = exc.errors(include_url=False, include_input=False)[0]
    field = field_path(prefix + tuple(error["loc"]))
    kind = error["type"]
    reason = _REASONS.get(kind, "wrong-type" if kind.endswith("_type") else "invalid")
    if reason == "invalid":
        detail = str(error.get("ctx", {}).get("error", "is invalid"))
    else:
        ctx = {key: value for key, value in error.get("ctx", {}).items() if key != "error"}
        ctx.setdefault("max_length", "allowed")
        ctx.setdefault("min_length", "allowed")
        ctx.setdefault("expected", "the allowed values")
        detail = _TEXT[reason].format(**ctx)
    count = exc.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return field, reason, f"{field or 'body'}: {detail}{more}"


class BodyPart(BaseModel):
    """A frozen, strict, closed record: the base of every body and of every part of one.

    Building one with bad values raises :class:`~ncb_relay.errors.UsageError`
    naming the field; pydantic's own exception never escapes.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            _, _, message = describe_validation_error(exc)
            raise UsageError(f"{type(self).__name__}.{message}") from exc

    # Tell pydantic this is its own constructor (as its RootModel does), so that decoding
    # (model_validate) keeps its core path and never comes through the translation above.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: object) -> None:
        raise UsageError(f"{type(self).__name__} is immutable")


T = TypeVar("T")


def check_unique(items: tuple[T, ...]) -> tuple[T, ...]:
    """For list fields that are sets: refuse a repeated item (a field validator)."""
    if len(set(items)) != len(items):
        raise ValueError("items must not repeat")
    return items
