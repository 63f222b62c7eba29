"""The one error tree of ncb_relay.

Every failure that leaves the public API is an instance of :class:`NcbRelayError`.
Errors from msgpack, PyNaCl, pydantic or the standard library are translated at
the boundary with ``raise X(...) from exc`` and never escape on their own.

::

    NcbRelayError                       (abstract base, code "internal")
    ├── UsageError                      local misuse of the API: bad arguments    "usage"
    ├── KeystoreError                   a local keystore file cannot be used       "keystore"
    │   ├── KeystoreCorrupt             not a keystore file, truncated, too large  "keystore-corrupt"
    │   ├── KeystoreUnsupported         unknown version, KDF cost out of bounds    "keystore-unsupported"
    │   ├── KeystoreLocked              wrong passphrase or altered file (alike)   "keystore-locked"
    │   └── KeystoreExists              refused to overwrite an existing file      "keystore-exists"
    ├── StorageError                    the relay's own store cannot do its work   "storage"
    ├── RelayUnavailable                no usable answer from a relay (client)     "relay-unavailable"
    ├── SubmissionUnknown               a submission's outcome is unknown (client) "submission-unknown"
    ├── NoAnswer                        a request unanswered in the time waited    "no-answer"
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
        ├── BelowThreshold              too few root signatures (spec/directory)   "below-threshold"
        ├── Rollback                    a directory or anchor older than one seen  "rollback"
        ├── Fork                        same serial as one seen, different bytes   "fork"
        ├── BrokenChain                 does not extend the version held before    "broken-chain"
        ├── InvalidProof                a Merkle proof that does not verify        "invalid-proof"
        ├── LogFork                     a log signed two conflicting checkpoints   "log-fork"
        ├── InvalidBody                 a message body does not match its schema   "invalid-body"
        ├── InvalidTransition           a message not allowed in a request's state "invalid-transition"
        ├── DisseminationForbidden      handling code forbids passing it on (H2)   "dissemination-forbidden"
        ├── RelayRefused                a relay's refusal with a code not in here  "relay-refused"
        └── FreshnessError              outside the validity window
            ├── StaleMessage            expired                                    "stale"
            ├── FutureDated             created too far in the future              "future-dated"
            └── DirectoryExpired        a directory past its expiry and grace      "directory-expired"

Each class carries a stable ``code`` that appears on the wire (for example in a
relay's ``application/problem+json`` body).  Local faults (``UsageError``) are
kept apart from faults of a remote peer (``ProtocolError``).  Keystore errors
(spec/keystore.md) concern a principal's own files and never go on the wire;
``KeystoreLocked`` deliberately does not say whether the passphrase or the file
was at fault.
``StorageError`` (ncb_relay.relay.storage) is a local fault of a relay's own
store: an I/O error, a full disk, a corrupt database or one written by a newer
version, a closed store. A relay answers it as unavailable and never shows its
message to a peer; a message id reused with other bytes is ``Replay``.
The directory errors (spec/directory.md) refuse a signed directory or trust
anchor; envelope key look-ups in a directory only ever raise ``UnknownKey`` or
``BindingMismatch`` (ERR-1).
The client errors (ncb_relay.client) concern one bureau's exchange with a
relay.  A relay's refusal (``application/problem+json``) is raised as the class
of its ``code``; a code this tree does not know (``not-found``, ``internal``...)
as ``RelayRefused``, with ``status`` and ``remote_code``.  ``RelayUnavailable``:
the relay could not be reached, timed out, answered busy (``503``, ``429``) past
the retry budget, or answered something that is not its API's answer.
``SubmissionUnknown`` is apart from every failure on purpose: an envelope may
or may not have been accepted; resubmitting the identical bytes is safe (the
relay's dedupe answers with the original acceptance).
The message-layer errors (spec/messages.md) refuse a decrypted body:
``InvalidBody`` names the field at fault in ``field`` and the kind of fault in
``reason``, never the value.

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
    "BelowThreshold",
    "BindingMismatch",
    "BrokenChain",
    "DecryptionFailed",
    "DirectoryExpired",
    "DisseminationForbidden",
    "Fork",
    "FreshnessError",
    "FutureDated",
    "InvalidBody",
    "InvalidPeerKey",
    "InvalidProof",
    "InvalidTransition",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreExists",
    "KeystoreLocked",
    "KeystoreUnsupported",
    "LimitExceeded",
    "LogFork",
    "MalformedInput",
    "NcbRelayError",
    "NoAnswer",
    "ProtocolError",
    "RelayRefused",
    "RelayUnavailable",
    "Replay",
    "Rollback",
    "StaleMessage",
    "StorageError",
    "SubmissionUnknown",
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


class KeystoreError(NcbRelayError):
    """A local keystore file cannot be read or written (KS-*); never shown to a peer."""

    code = "keystore"


class KeystoreCorrupt(KeystoreError):
    """The file is not a well-formed keystore: wrong magic, truncated, too large, bad contents."""

    code = "keystore-corrupt"


class KeystoreUnsupported(KeystoreError):
    """A format version this library does not read, or KDF costs outside the accepted bounds."""

    code = "keystore-unsupported"


class KeystoreLocked(KeystoreError):
    """The keys cannot be unlocked: a wrong passphrase and an altered file look the same."""

    code = "keystore-locked"


class KeystoreExists(KeystoreError):
    """The target file exists and overwriting it was not asked for."""

    code = "keystore-exists"


class StorageError(NcbRelayError):
    """A relay's store failed or refused to open (a local fault); never shown to a peer."""

    code = "storage"


class RelayUnavailable(NcbRelayError):
    """No usable answer from a relay: unreachable, timed out, busy past the retry budget.

    ``status`` and ``remote_code`` are those of the relay's last answer, if it gave one.
    """

    code = "relay-unavailable"

    def __init__(
        self, message: str, *, status: int | None = None, remote_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.remote_code = remote_code


class SubmissionUnknown(NcbRelayError):
    """A submission whose outcome is unknown: the relay may have accepted it.

    Never a failure: resubmit the identical bytes later (``message_id`` names them); the
    relay answers a copy it holds with the original acceptance.
    """

    code = "submission-unknown"

    def __init__(self, message: str, *, message_id: bytes | None = None) -> None:
        super().__init__(message)
        self.message_id = message_id


class NoAnswer(NcbRelayError):
    """A request was not answered, declined or withdrawn in the time the caller would wait.

    Not a failure of the request: it stays followed, in ``conversation``, and a
    late answer still moves it.
    """

    code = "no-answer"

    def __init__(self, message: str, *, conversation: object = None) -> None:
        super().__init__(message)
        self.conversation = conversation  # a messages.Conversation (errors imports nothing)


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


class BelowThreshold(ProtocolError):
    """Fewer distinct root keys than the trust anchor's threshold signed the document."""

    code = "below-threshold"


class Rollback(ProtocolError):
    """A directory or anchor whose serial is lower than one already accepted."""

    code = "rollback"


class Fork(ProtocolError):
    """A directory or anchor with the serial of one already accepted but different bytes."""

    code = "fork"


class BrokenChain(ProtocolError):
    """A version that does not extend the one held before it (hash, gap or rewritten past)."""

    code = "broken-chain"


class InvalidProof(ProtocolError):
    """A Merkle inclusion or consistency proof that does not verify (spec/log.md)."""

    code = "invalid-proof"


class LogFork(ProtocolError):
    """A log signed two checkpoints that cannot both be true (spec/log.md, LOG-14).

    ``held`` and ``offered`` are the exact bytes of the two signed checkpoints, both
    with valid log signatures: the one the client held and the one that contradicts
    it; ``reason`` says how, and ``proof`` is the consistency proof the log gave.
    Keep them as evidence.
    """

    code = "log-fork"

    def __init__(
        self,
        message: str,
        *,
        held: bytes = b"",
        offered: bytes = b"",
        reason: str = "",
        proof: tuple[bytes, ...] = (),
    ) -> None:
        super().__init__(message)
        self.held = held
        self.offered = offered
        self.reason = reason
        self.proof = proof


class InvalidBody(ProtocolError):
    """A body that does not match its schema: ``field`` is its path, ``reason`` the fault kind."""

    code = "invalid-body"

    def __init__(self, message: str, *, field: str | None = None, reason: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class InvalidTransition(ProtocolError):
    """A message that the request's state table does not allow (spec/messages.md, CONV)."""

    code = "invalid-transition"


class DisseminationForbidden(ProtocolError):
    """Passing a message on that its handling code forbids, without the originator's permission."""

    code = "dissemination-forbidden"


class RelayRefused(ProtocolError):
    """A relay refused a request with a code that no other class here carries."""

    code = "relay-refused"

    def __init__(
        self, message: str, *, status: int | None = None, remote_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.remote_code = remote_code


class FreshnessError(ProtocolError):
    code = "freshness"


class StaleMessage(FreshnessError):
    code = "stale"


class FutureDated(FreshnessError):
    code = "future-dated"


class DirectoryExpired(FreshnessError):
    """A directory used after its expiry time plus the verifier's grace period."""

    code = "directory-expired"
