"""The body of a message: a schema id, a schema version and a typed content.

Theory of operation.  A body travels inside the envelope as the canonical
msgpack encoding of a map with three keys, ``schema`` (a text id such as
``"ncbr.assistance-request"``), ``version`` (an unsigned integer) and
``content`` (a map holding the body's fields).  A receiver looks the pair
``(schema, version)`` up in its :class:`~ncb_relay.messages.registry.BodyRegistry`:
a known pair is validated strictly into its model (a subclass of :class:`Body`);
an unknown one becomes an :class:`OpaqueBody` that keeps the exact bytes, so a
message of a schema the receiver does not speak is delivered, never dropped
and never taken for something it knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..errors import UsageError
from .fields import BodyPart
from .handling import Handling

__all__ = [
    "BUILTIN_NAMESPACE",
    "MAX_SCHEMA_VERSION",
    "SCHEMA_ID_PATTERN",
    "Body",
    "OpaqueBody",
    "check_schema_id",
]

BUILTIN_NAMESPACE = "ncbr."
MAX_SCHEMA_ID_CHARS = 128
MAX_SCHEMA_VERSION = 65_535
SCHEMA_ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+")


def check_schema_id(value: object) -> str:
    """A schema id: dot-separated lower-case labels (at least two), at most 128 characters."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_SCHEMA_ID_CHARS
        or not SCHEMA_ID_PATTERN.fullmatch(value)
    ):
        raise ValueError("a schema id is two or more dot-separated lower-case labels")
    return value


class Body(BodyPart):
    """Base class of every typed body, built-in or registered by an agency.

    Subclasses set ``schema_id`` and ``schema_version``; every body carries the
    originator's :class:`~ncb_relay.messages.handling.Handling`.
    """

    schema_id: ClassVar[str]
    schema_version: ClassVar[int] = 1

    handling: Handling


@dataclass(frozen=True, slots=True)
class OpaqueBody:
    """A body whose ``(schema, version)`` the receiver does not know: kept as the exact bytes.

    It is not a :class:`Body`, so no code that expects a known type can take it
    for one.  ``data`` is the whole body as received (the signed plaintext).
    """

    schema_id: str
    schema_version: int
    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes) or type(self.schema_version) is not int:
            raise UsageError("an opaque body holds its schema version and bytes")

    def __repr__(self) -> str:
        return (
            f"OpaqueBody(schema_id={self.schema_id!r}, schema_version={self.schema_version}, "
            f"{len(self.data)} bytes)"
        )
