"""What a relay answers, read strictly: acceptances, batches, problems (spec/relay-api.md).

Every parser here takes bytes already bounded by the client and raises the
library's errors: a malformed answer is :class:`~ncb_relay.errors.MalformedInput`,
a refusal is the class of its problem's ``code``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .. import errors
from ..errors import MalformedInput, NcbRelayError, ProtocolError, RelayRefused, UsageError

__all__ = ["Acceptance", "Batch", "Delivery", "RetryPolicy"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_CODE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_CODES: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (getattr(errors, name) for name in errors.__all__)
    if issubclass(cls, ProtocolError) and cls not in (ProtocolError, errors.FreshnessError)
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a request is tried again."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0  # a relay asking to wait longer ends the retries

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 100:
            raise UsageError("attempts is between 1 and 100")
        if not 0 <= self.base_delay <= self.max_delay or self.max_retry_after < 0:
            raise UsageError("delays are non-negative, base_delay at most max_delay")


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The relay's acceptance of a submitted envelope (API-7)."""

    sender: str
    message_id: bytes
    message_hash: bytes
    accepted_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message of a mailbox batch (API-8): the envelope's exact bytes, not yet verified."""

    position: int
    sender: str
    message_id: bytes
    message_hash: bytes
    accepted_at: int
    expires: int
    attempt: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """A mailbox batch and the cursor to pass as the next ``after``."""

    cursor: int
    messages: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class _Oversized(Exception):
    pass


def _wall_clock() -> int:
    return int(time.time())


def _uint(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedInput(f"the relay's {what} is not a non-negative integer")
    return value


def _hex32(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedInput(f"the relay's {what} is not 64 lower-case hex digits")
    return bytes.fromhex(value)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise MalformedInput(f"the relay's {what} is not a principal id")
    return value


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedInput(f"the relay's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedInput(f"the relay's {what} is not a JSON object")
    return value


def _b64decode(text: object, max_bytes: int) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedInput("the relay's envelope is not unpadded base64url")
    if len(text) > math.ceil(max_bytes * 4 / 3):
        raise MalformedInput("the relay's envelope exceeds the envelope limit")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput("the relay's envelope is not unpadded base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise MalformedInput("the relay's envelope is not canonical base64url")
    return data


def _problem_code(answer: _Answer) -> str | None:
    """The ``code`` of a problem body (API-18), if the answer is one."""
    media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/problem+json":
        return None
    try:
        code = _json_object(answer.body, "problem").get("code")
    except MalformedInput:
        return None
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


def _refusal(answer: _Answer, what: str) -> NcbRelayError:
    """The library error for a definite refusal."""
    code = _problem_code(answer)
    cls = _CODES.get(code) if code else None
    if cls is None:
        return RelayRefused(
            f"the relay refused the {what}: {answer.status} {code or '(no problem body)'}",
            status=answer.status,
            remote_code=code,
        )
    error = cls(f"the relay refused the {what}: {answer.status} {code}")
    error.add_note(f"HTTP status {answer.status}")
    return error


def _retry_after(answer: _Answer) -> float:
    value = answer.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() and len(value) <= 6 else 0.0


def _message_id_hex(message_id: bytes) -> str:
    if not isinstance(message_id, bytes) or len(message_id) != 32:
        raise UsageError("a message id is 32 bytes")
    return message_id.hex()
