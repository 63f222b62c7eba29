"""Every failure the relay answers, as ``application/problem+json`` (API-18 to API-20).

A :class:`Problem` is raised inside a handler and turned into a response by the
route wrapper in :mod:`.app`.  Library errors are translated by the phase
they happened in: the same code means a different status when it concerns the
request's signature (401), the envelope (400 or 422) or the relay itself
(503).  A problem body carries a fixed title per code and nothing taken from
the exception: no message, no stack trace, no internal detail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.responses import Response

from ..errors import (
    DirectoryExpired,
    LimitExceeded,
    NcbRelayError,
    Replay,
    StorageError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "TITLES",
    "Problem",
    "auth_problem",
    "envelope_problem",
    "problem_response",
    "relay_problem",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:ncbr1:error:"

TITLES: Mapping[str, str] = {
    "malformed": "Malformed request or envelope",
    "limit-exceeded": "A size, count or rate limit was exceeded",
    "unsupported-version": "Protocol version not supported",
    "unsupported-suite": "Cipher suite not supported",
    "invalid-peer-key": "Invalid key",
    "unknown-key": "Unknown principal or key",
    "binding-mismatch": "Names and keys do not agree",
    "bad-signature": "Signature does not verify",
    "below-threshold": "Too few valid signatures",
    "replay": "Already seen",
    "stale": "Too old",
    "future-dated": "Dated in the future",
    "directory-expired": "The relay's directory has expired",
    "storage": "The relay's store is unavailable",
    "not-ready": "The relay is not ready",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "internal": "Internal error",
}

# Codes of an envelope that does not parse (400); every other envelope code is 422.
_UNPARSABLE = frozenset(
    {"malformed", "limit-exceeded", "unsupported-version", "unsupported-suite", "invalid-peer-key"}
)


@dataclass(frozen=True)
class Problem(Exception):
    """A refusal on its way to the client: an HTTP status, a wire code and extra headers."""

    status: int
    code: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in TITLES:
            raise ValueError(f"no title for problem code {self.code!r}")


def problem_response(problem: Problem) -> Response:
    body = {
        "type": PROBLEM_TYPE_PREFIX + problem.code,
        "title": TITLES[problem.code],
        "status": problem.status,
        "code": problem.code,
    }
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=problem.status,
        headers=dict(problem.headers),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def relay_problem(exc: NcbRelayError) -> Problem | None:
    """The relay's own conditions, whatever the phase: store and directory (503)."""
    if isinstance(exc, StorageError):
        return Problem(503, "storage", {"Retry-After": "1"})
    if isinstance(exc, DirectoryExpired):
        return Problem(503, "directory-expired", {"Retry-After": "60"})
    return None


def auth_problem(exc: NcbRelayError, *, recording: bool = False) -> Problem:
    """A refused request signature (AUTH-15): 401 with ``WWW-Authenticate: NCBR1``.

    ``recording`` says the failure came after every check passed, when the
    nonce was being recorded: a full memory of pairs is the relay's own
    condition (503).
    """
    own = relay_problem(exc)
    if own is not None:
        return own
    if recording and isinstance(exc, LimitExceeded):
        return Problem(503, "limit-exceeded", {"Retry-After": "1"})
    code = exc.wire_code if exc.wire_code in TITLES else "malformed"
    return Problem(401, code, {"WWW-Authenticate": "NCBR1"})


def envelope_problem(exc: NcbRelayError) -> Problem:
    """A refused envelope: 400 if it does not parse, 409 for a conflict, else 422."""
    own = relay_problem(exc)
    if own is not None:
        return own
    if isinstance(exc, Replay):
        return Problem(409, "replay")
    code = exc.wire_code if exc.wire_code in TITLES else "malformed"
    return Problem(400 if code in _UNPARSABLE else 422, code)
