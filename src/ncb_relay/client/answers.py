"""What a relay answers, read strictly: acceptances, batches, log proofs, problems.

Every parser here takes bytes already bounded by the client and raises the
library's errors: a malformed answer is :class:`~ncb_relay.errors.MalformedInput`,
a field past its bound :class:`~ncb_relay.errors.LimitExceeded`, a refusal the
class of its problem's ``code`` (spec/relay-api.md).  Nothing here verifies a
signature or a proof: the log's evidence is only read into its types, and the
caller verifies it (:mod:`ncb_relay.receipt`, :class:`ncb_relay.checkpoint.LogView`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import errors
from ..errors import (
    LimitExceeded,
    MalformedInput,
    NcbRelayError,
    ProtocolError,
    RelayRefused,
    UsageError,
)

__all__ = ["Acceptance", "Batch", "ConsistencyProof", "Delivery", "LogEntry", "RetryPolicy"]

MAX_NOTE_BYTES = 16 * 1024  # a signed checkpoint with its cosignatures (LOG-8)
MAX_RECEIPT_BYTES = 512  # a signed acceptance receipt
MAX_PROOF_HASHES = 64  # an inclusion or consistency proof in a tree below 2**63 leaves
MAX_LOG_INDEX = 2**63 - 1
LOG_ENTRY_KINDS = frozenset({"envelope", "directory"})

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
class ConsistencyProof:
    """A consistency proof as the relay gave it: from the tree of ``old_size`` to ``new_size``."""

    old_size: int
    new_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The relay's acceptance of a submitted envelope (API-7) and its evidence, unverified.

    ``receipt`` is the relay's signed receipt (at most 512 bytes), ``checkpoint``
    the exact bytes of the signed note it was proven against, ``inclusion`` the
    proof of the envelope's entry at ``log_index`` in that checkpoint's tree, and
    ``consistency`` the proof between the size the client said it held
    (``known``) and the checkpoint's, when the relay gave one.  A relay that
    signs no receipts gives none of them (``receipt`` is ``None``; ``log_index``
    may still be given).  The client checks only their shapes and bounds:
    verifying them is the caller's job.
    """

    sender: str
    message_id: bytes
    message_hash: bytes
    accepted_at: int
    log_index: int | None = None
    receipt: bytes | None = field(default=None, repr=False)
    checkpoint: bytes | None = field(default=None, repr=False)
    inclusion: tuple[bytes, ...] = field(default=(), repr=False)
    consistency: ConsistencyProof | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of the relay's log: its index, its kind and its 32-byte hash (unverified)."""

    index: int
    kind: str  # "envelope" (an envelope's message hash) or "directory" (a directory version's)
    entry: bytes


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


def _b64decode(text: object, max_bytes: int, what: str = "envelope") -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedInput(f"the relay's {what} is not unpadded base64url")
    if len(text) > math.ceil(max_bytes * 4 / 3):
        raise MalformedInput(f"the relay's {what} exceeds its limit")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput(f"the relay's {what} is not unpadded base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise MalformedInput(f"the relay's {what} is not canonical base64url")
    return data


def _log_size(value: object, what: str) -> int:
    """A tree size or log index: a non-negative integer below 2**63."""
    number = _uint(value, what)
    if number > MAX_LOG_INDEX:
        raise MalformedInput(f"the relay's {what} is above 2**63 - 1")
    return number


def _note(value: object, what: str = "checkpoint") -> bytes:
    """A signed note sent as a JSON string: its UTF-8 bytes, at most 16 KiB."""
    if not isinstance(value, str) or not value:
        raise MalformedInput(f"the relay's {what} is not a signed note")
    if len(value) > MAX_NOTE_BYTES:  # each character is at least one byte
        raise LimitExceeded(f"the relay's {what} exceeds {MAX_NOTE_BYTES} bytes")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        raise MalformedInput(f"the relay's {what} is not UTF-8 text") from None
    if len(data) > MAX_NOTE_BYTES:
        raise LimitExceeded(f"the relay's {what} exceeds {MAX_NOTE_BYTES} bytes")
    return data


def _proof(value: object, what: str) -> tuple[bytes, ...]:
    """A proof: a list of at most 64 hashes in lower-case hex."""
    if not isinstance(value, list):
        raise MalformedInput(f"the relay's {what} is not a list of hashes")
    if len(value) > MAX_PROOF_HASHES:
        raise LimitExceeded(f"the relay's {what} has more than {MAX_PROOF_HASHES} hashes")
    return tuple(_hex32(item, what) for item in value)


def _consistency(value: object) -> ConsistencyProof:
    """``{"from": a, "to": b, "proof": [...]}`` with ``a <= b``."""
    if not isinstance(value, dict):
        raise MalformedInput("the relay's consistency proof is not a JSON object")
    old = _log_size(value.get("from"), "consistency proof's old size")
    new = _log_size(value.get("to"), "consistency proof's new size")
    if old > new:
        raise MalformedInput("the relay's consistency proof goes from a larger to a smaller tree")
    return ConsistencyProof(old, new, _proof(value.get("proof"), "consistency proof"))


def _log_entry(value: object) -> LogEntry:
    if not isinstance(value, dict):
        raise MalformedInput("the relay's log entry is not a JSON object")
    kind = value.get("kind")
    if kind not in LOG_ENTRY_KINDS:
        raise MalformedInput("the relay's log entry has no known kind")
    assert isinstance(kind, str)
    return LogEntry(
        _log_size(value.get("index"), "log index"), kind, _hex32(value.get("hash"), "log entry")
    )


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
