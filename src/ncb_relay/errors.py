"""The one error tree of ncb_relay.

Every failure that leaves the public API is an instance of :class:`NcbRelayError`.
Errors from msgpack, PyNaCl, pydantic or the standard library are translated at
the boundary with ``raise X(...) from exc`` and never escape on their own.

::

    NcbRelayError                       (abstract base, code "internal")
    ├── UsageError                      local misuse of the API: bad arguments    "usage"
    └── ProtocolError                   untrusted input was rejected
        ├── MalformedInput              not the canonical encoding / wrong shape   "malformed"
        ├── LimitExceeded               a size or count limit was hit              "limit-exceeded"
        ├── UnsupportedVersion          protocol version not spoken here           "unsupported-version"
        ├── UnsupportedSuite            cipher suite not spoken here               "unsupported-suite"
        ├── InvalidPeerKey              malformed, low-order or misused key        "invalid-peer-key"
        ├── UnknownKey                  principal or key id not in the directory   "unknown-key"
        ├── BindingMismatch             signed names and keys do not agree         "binding-mismatch"
        ├── BadSignature                the outer (routing) signature is invalid   "bad-signature"
        ├── DecryptionFailed            any failure once decryption has begun      "decryption-failed"
        ├── Replay                      message id or sequence already seen        "replay"
        └── FreshnessError              outside the validity window
            ├── StaleMessage            expired                                    "stale"
            └── FutureDated             created too far in the future              "future-dated"

Each class carries a stable ``code`` that appears on the wire (for example in a
relay's ``application/problem+json`` body).  Local faults (``UsageError``) are
kept apart from faults of a remote peer (``ProtocolError``).

Everything that can go wrong after a recipient starts to decrypt (no entry for
it, a wrong key commitment, an AEAD failure, a bad inner signature) raises
:class:`DecryptionFailed` with one uniform wire code, so a peer learns nothing
about which step failed; the local ``reason`` attribute says which, for the
local log.  Messages never contain key material or plaintext.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadSignature",
    "BindingMismatch",
    "DecryptionFailed",
    "FreshnessError",
    "FutureDated",
    "InvalidPeerKey",
    "LimitExceeded",
    "MalformedInput",
    "NcbRelayError",
    "ProtocolError",
    "Replay",
    "StaleMessage",
    "UnknownKey",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "UsageError",
]


class NcbRelayError(Exception):
    """Base class of every error ncb_relay raises."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def wire_code(self) -> str:
        """The code to show a remote peer (see :class:`DecryptionFailed`)."""
        return self.code


class UsageError(NcbRelayError, ValueError):
    """The caller passed arguments the API cannot accept (a local fault)."""

    code = "usage"


class ProtocolError(NcbRelayError):
    """Input from an untrusted party was rejected (a remote fault)."""

    code = "protocol"


class MalformedInput(ProtocolError):
    code = "malformed"


class LimitExceeded(ProtocolError):
    code = "limit-exceeded"


class UnsupportedVersion(ProtocolError):
    code = "unsupported-version"


class UnsupportedSuite(ProtocolError):
    code = "unsupported-suite"


class InvalidPeerKey(ProtocolError):
    code = "invalid-peer-key"


class UnknownKey(ProtocolError):
    code = "unknown-key"


class BindingMismatch(ProtocolError):
    code = "binding-mismatch"


class BadSignature(ProtocolError):
    code = "bad-signature"


class DecryptionFailed(ProtocolError):
    """Opening failed after decryption began; ``reason`` is for the local log only."""

    code = "decryption-failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"decryption failed ({reason})")
        self.reason = reason


class Replay(ProtocolError):
    code = "replay"


class FreshnessError(ProtocolError):
    code = "freshness"


class StaleMessage(FreshnessError):
    code = "stale"


class FutureDated(FreshnessError):
    code = "future-dated"
