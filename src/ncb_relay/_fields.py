"""Reading the fields of a decoded canonical map, refusing every other shape.

The directory and trust-anchor documents are canonical msgpack maps with a
fixed set of keys.  :class:`Fields` reads them one typed field at a time and
raises :class:`~ncb_relay.errors.MalformedInput`, naming the field, for a
missing key, a wrong type or an unknown key, so a decoder never guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .codec import Value
from .errors import MalformedInput
from .header import MAX_TIME

__all__ = [
    "MAX_TEXT_BYTES",
    "Fields",
    "as_list",
    "check_text",
    "check_time",
    "strictly_increasing",
]

MAX_TEXT_BYTES = 128


def check_time(value: int, what: str, error: type[Exception]) -> int:
    """A time in whole seconds since the epoch, in ``[0, 2**40]``."""
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise error(f"{what} must be a time in [0, 2**40]")
    return value


def check_text(value: object, what: str, error: type[Exception]) -> str:
    """A name for people to read: 1 to 128 bytes of UTF-8, printable, no edge spaces."""
    if (
        not isinstance(value, str)
        or not value
        or not value.isprintable()
        or value != value.strip()
        or len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES
    ):
        raise error(f"{what} must be 1 to {MAX_TEXT_BYTES} bytes of printable text")
    return value


def strictly_increasing(values: Sequence[Any]) -> bool:
    """Whether each item is greater than the one before (so also: no item twice)."""
    return all(values[i - 1] < values[i] for i in range(1, len(values)))


def as_list(value: Value, what: str) -> list[Value]:
    if not isinstance(value, list):
        raise MalformedInput(f"{what} must be an array")
    return value


class Fields:
    """The entries of one decoded map; every read names ``what`` in its error."""

    __slots__ = ("_map", "_read", "what")

    def __init__(self, value: Value, what: str) -> None:
        if not isinstance(value, dict):
            raise MalformedInput(f"{what} must be a map")
        self._map = value
        self._read: set[str] = set()
        self.what = what

    def _get(self, name: str) -> Value:
        if name not in self._map:
            raise MalformedInput(f"{self.what} lacks the field {name!r}")
        self._read.add(name)
        return self._map[name]

    def uint(self, name: str) -> int:
        value = self._get(name)
        if type(value) is not int or value < 0:
            raise MalformedInput(f"{self.what}: {name} must be an unsigned integer")
        return value

    def time(self, name: str) -> int:
        return check_time(self.uint(name), f"{self.what}: {name}", MalformedInput)

    def optional_time(self, name: str) -> int | None:
        if self._get(name) is None:
            return None
        return self.time(name)

    def bin(self, name: str, size: int) -> bytes:
        value = self._get(name)
        if not isinstance(value, bytes) or len(value) != size:
            raise MalformedInput(f"{self.what}: {name} must be a byte string of {size} bytes")
        return value

    def optional_bin(self, name: str, size: int) -> bytes | None:
        if self._get(name) is None:
            return None
        return self.bin(name, size)

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise MalformedInput(f"{self.what}: {name} must be a text string")
        return value

    def array(self, name: str) -> list[Value]:
        return as_list(self._get(name), f"{self.what}: {name}")

    def done(self) -> None:
        """Raise if the map holds a key that was never read."""
        extra = sorted(set(self._map) - self._read)
        if extra:
            raise MalformedInput(f"{self.what} has unknown fields {extra}")
