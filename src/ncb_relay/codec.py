"""The canonical msgpack profile (spec/protocol.md, section "Canonical encoding").

Theory of operation.  A value in the profile is nil, a boolean, an integer in
[-2**63, 2**64 - 1], a byte string (msgpack bin), a UTF-8 text string (msgpack
str), an array, or a map whose keys are text strings, unique and sorted by their
UTF-8 bytes.  Floats and every extension type (the timestamp extension
included) are outside the profile.  Each value has exactly one encoding: the
shortest format for every integer, length and count, non-negative integers in
the unsigned formats, and map entries in key order.

Decoding first checks the input length against the limits, then lets the
msgpack C decoder parse with explicit per-item limits (so a length prefix can
never make it allocate more than the input holds), then walks the result to
check types, depth and key order, and finally re-encodes the value and compares
the bytes with the input.  Any difference means the input used a non-shortest
or otherwise non-canonical form, and it is refused.  Callers hash and verify
the bytes they received, never a re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import msgpack

from .errors import LimitExceeded, MalformedInput, UsageError

__all__ = ["DEFAULT_LIMITS", "CodecLimits", "Value", "decode", "encode"]

Value: TypeAlias = "bool | int | bytes | str | list[Value] | dict[str, Value] | None"

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class CodecLimits:
    """Upper bounds that hold before memory is spent on untrusted input."""

    max_bytes: int = 8 * 1024 * 1024
    max_str_bytes: int = 64 * 1024
    max_bin_bytes: int = 8 * 1024 * 1024
    max_array_items: int = 4096
    max_map_items: int = 256
    max_depth: int = 16


DEFAULT_LIMITS = CodecLimits()


class _RefusedError(Exception):
    """Raised inside the msgpack ext hook; turned into MalformedInput below."""


def _refuse_ext(code: int, data: bytes) -> object:
    raise _RefusedError(f"extension type {code} is not allowed")


_SCALARS = frozenset({type(None), bool, bytes, str})


def _check(value: object, depth: int, limits: CodecLimits, error: type[Exception]) -> None:
    """Check types and key order; ``depth`` counts the containers around ``value``."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:  # type: ignore[operator]
            raise error("integer out of range")
        return
    if kind is list or kind is dict:
        if depth >= limits.max_depth:
            raise LimitExceeded(f"containers nested deeper than {limits.max_depth}")
        if kind is list:
            for item in value:  # type: ignore[attr-defined]
                _check(item, depth + 1, limits, error)
            return
        previous: bytes | None = None
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise error("map keys must be text strings")
            encoded = key.encode("utf-8")
            if previous is not None and encoded <= previous:
                raise error("map keys must be unique and sorted by their UTF-8 bytes")
            previous = encoded
            _check(item, depth + 1, limits, error)
        return
    raise error(f"type {kind.__name__} is not in the canonical profile")


def decode(data: bytes, *, limits: CodecLimits = DEFAULT_LIMITS) -> Value:
    """Decode one canonical value that spans all of ``data``, or raise.

    Raises :class:`LimitExceeded` when a limit is hit and
    :class:`MalformedInput` for anything that is not the single canonical
    encoding of a profile value.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError("decode expects bytes")
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"input of {len(data)} bytes exceeds {limits.max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            timestamp=0,
            ext_hook=_refuse_ext,
            max_str_len=limits.max_str_bytes,
            max_bin_len=limits.max_bin_bytes,
            max_array_len=limits.max_array_items,
            max_map_len=limits.max_map_items,
        )
    except msgpack.StackError as exc:  # a ValueError, so it comes first
        raise LimitExceeded("nesting too deep") from exc
    except _RefusedError as exc:
        raise MalformedInput(str(exc)) from exc
    except ValueError as exc:
        # msgpack raises ValueError subclasses for its limits, truncated input,
        # trailing bytes, reserved bytes and invalid UTF-8 alike.
        if "exceeds max" in str(exc):
            raise LimitExceeded("a length or count exceeds its limit") from exc
        raise MalformedInput("not a single well-formed msgpack value") from exc
    except Exception as exc:  # any other decoder failure is still the input's fault
        raise MalformedInput("not a single well-formed msgpack value") from exc
    _check(value, 0, limits, MalformedInput)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise MalformedInput("not the canonical (shortest, sorted) encoding")
    return value  # type: ignore[no-any-return]


def _sorted(value: Value, depth: int, limits: CodecLimits) -> Value:
    if isinstance(value, (list, dict)) and depth >= limits.max_depth:
        # checked here too, so that a deep or cyclic value never exhausts the stack
        raise LimitExceeded(f"containers nested deeper than {limits.max_depth}")
    if isinstance(value, list):
        return [_sorted(item, depth + 1, limits) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise UsageError("map keys must be text strings")
        return {
            key: _sorted(value[key], depth + 1, limits)
            for key in sorted(value, key=lambda k: k.encode("utf-8"))
        }
    return value


def encode(value: Value, *, limits: CodecLimits = DEFAULT_LIMITS) -> bytes:
    """The canonical encoding of ``value``; map keys are sorted here.

    Raises :class:`UsageError` for a value outside the profile (the caller's
    fault) and :class:`LimitExceeded` if the result breaks ``limits``.
    """
    try:
        canonical = _sorted(value, 0, limits)
        _check(canonical, 0, limits, UsageError)
        data: bytes = msgpack.packb(canonical, use_bin_type=True)
    except UnicodeEncodeError as exc:  # a str with a lone surrogate is not UTF-8
        raise UsageError("text strings must be valid Unicode (no lone surrogates)") from exc
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"encoding of {len(data)} bytes exceeds {limits.max_bytes}")
    return data
