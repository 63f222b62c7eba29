"""One principal's entry in the directory: its keys, their windows, its status.

Theory of operation.  An entry keeps its past: every signing key the
principal ever published stays listed with its validity window
``[not_before, not_after)`` and, if it was revoked, the time from which it is
untrusted, and so does every encryption key until no message sealed to it can
still be accepted (then a later version may drop it, DIR-7).  The status of
the principal (active, suspended, revoked) is a history of changes, each with
the time it took effect.  So one directory version answers "which signing key
was valid at time t?" for any past t, which is what a court needs to verify a
message years later (DIR-9).

The coordinator's root keys vouch for the entry as a whole, but the principal
vouches for its own keys: each signing key after the first is endorsed by the
signing key before it (a rotation, ROT-2), and each encryption key is endorsed
by one of the principal's signing keys published no later than the encryption
key starts (ROT-4).  The coordinator therefore cannot slip in an encryption
key of its own to read a bureau's direct traffic, nor a signing key to speak
for it, without leaving a missing or bad endorsement that every verifier
refuses.  The one exception is a re-enrolment
after every earlier signing key was revoked (lost or stolen), which is visible
as a signing key without endorsement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from . import primitives
from ._fields import Fields, as_list, check_text, check_time, strictly_increasing
from .codec import Value
from .endorsements import encryption_endorsement_message, signing_endorsement_message
from .errors import BadSignature, InvalidPeerKey, MalformedInput, UsageError
from .header import MAX_TTL
from .identity import EncryptionPublicKey, SigningPublicKey, check_principal_id

__all__ = [
    "KEY_RETENTION",
    "MAX_KEYS",
    "EncryptionKeyRecord",
    "PrincipalEntry",
    "Role",
    "SigningKeyRecord",
    "State",
    "StatusChange",
]

Role = Literal["bureau", "coordinator", "relay"]
State = Literal["active", "suspended", "revoked"]
ROLES: tuple[str, ...] = get_args(Role)
STATES: tuple[str, ...] = get_args(State)
MAX_KEYS = 1024
KEY_RETENTION = MAX_TTL + 900
"""Seconds after an encryption key's window closes until no message sealed to it can be
accepted: the longest validity of a message (ENV-5) plus the largest clock skew (FRESH-3).
Its private key is deleted then (ROT-8) and the directory may drop it (DIR-7)."""


def _check_window(not_before: int, not_after: int | None, revoked: int | None) -> None:
    check_time(not_before, "not_before", UsageError)
    if not_after is not None and check_time(not_after, "not_after", UsageError) <= not_before:
        raise UsageError("a key's not_after must be later than its not_before")
    if revoked is not None and check_time(revoked, "revoked", UsageError) < not_before:
        raise UsageError("a key cannot be revoked before its not_before")


def _window_contains(not_before: int, not_after: int | None, at: int) -> bool:
    return not_before <= at and (not_after is None or at < not_after)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The principal's status from ``since`` until the next change."""

    state: State
    since: int

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise UsageError(f"a status is one of {', '.join(STATES)}")
        check_time(self.since, "since", UsageError)


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """A signing key with its window; ``not_after`` is None until the key is rotated out."""

    key: SigningPublicKey
    not_before: int
    not_after: int | None = None
    endorsement: bytes | None = None
    revoked: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, SigningPublicKey):
            raise UsageError("a signing key record holds a SigningPublicKey")
        _check_window(self.not_before, self.not_after, self.revoked)
        if self.endorsement is not None and (
            not isinstance(self.endorsement, bytes) or len(self.endorsement) != 64
        ):
            raise UsageError("an endorsement is a 64-byte signature")

    @property
    def key_id(self) -> bytes:
        return self.key.key_id

    def in_window(self, at: int) -> bool:
        return _window_contains(self.not_before, self.not_after, at)

    def may_endorse(self, at: int) -> bool:
        """Whether this key may endorse a key that starts at ``at`` (DIR-15): it is in its
        window at ``at`` and not revoked then (``at < revoked``)."""
        return self.in_window(at) and (self.revoked is None or at < self.revoked)


@dataclass(frozen=True, slots=True)
class EncryptionKeyRecord:
    """An encryption key with its fixed window and the principal's endorsement of it."""

    key: EncryptionPublicKey
    not_before: int
    not_after: int
    endorsement: bytes
    revoked: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, EncryptionPublicKey):
            raise UsageError("an encryption key record holds an EncryptionPublicKey")
        if self.not_after is None:
            raise UsageError("an encryption key has a not_after")
        _check_window(self.not_before, self.not_after, self.revoked)
        if not isinstance(self.endorsement, bytes) or len(self.endorsement) != 64:
            raise UsageError("an endorsement is a 64-byte signature")

    @property
    def key_id(self) -> bytes:
        return self.key.key_id

    def in_window(self, at: int) -> bool:
        return _window_contains(self.not_before, self.not_after, at)


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    """Everything the directory says about one principal (DIR-3); checks itself when built.

    Raises :class:`UsageError` for a wrong shape, :class:`BadSignature` for a
    missing or bad endorsement and :class:`InvalidPeerKey` for a key-usage
    violation (KEY-3).
    """

    principal: str
    name: str
    role: Role
    status: tuple[StatusChange, ...]
    signing_keys: tuple[SigningKeyRecord, ...]
    encryption_keys: tuple[EncryptionKeyRecord, ...]

    def __post_init__(self) -> None:
        check_principal_id(self.principal, error=UsageError)
        check_text(self.name, "a display name", UsageError)
        if self.role not in ROLES:
            raise UsageError(f"a role is one of {', '.join(ROLES)}")
        for name, items, kind in (
            ("status", self.status, StatusChange),
            ("signing_keys", self.signing_keys, SigningKeyRecord),
            ("encryption_keys", self.encryption_keys, EncryptionKeyRecord),
        ):
            if not isinstance(items, tuple) or not all(isinstance(i, kind) for i in items):
                raise UsageError(f"{name} is a tuple of {kind.__name__}")
            if len(items) > MAX_KEYS:
                raise UsageError(f"{name} holds at most {MAX_KEYS} items")
        self._check_status()
        if not self.signing_keys:
            raise UsageError(f"{self.principal} has no signing key")
        if not strictly_increasing([k.not_before for k in self.signing_keys]):
            raise UsageError("signing keys are listed by strictly increasing not_before")
        if not strictly_increasing([k.not_before for k in self.encryption_keys]):
            raise UsageError("encryption keys are listed by strictly increasing not_before")
        self._check_endorsements()
        for signing in self.signing_keys:
            converted = primitives.ed25519_public_key_to_x25519(signing.key.raw)
            for record in self.encryption_keys:
                if primitives.constant_time_equal(record.key.raw, converted):
                    raise InvalidPeerKey(
                        f"{self.principal}: an encryption key is a signing key converted (KEY-3)"
                    )

    def _check_status(self) -> None:
        states = [s.state for s in self.status]
        if not states or states[0] != "active":
            raise UsageError("a principal's status history starts with active")
        if not strictly_increasing([s.since for s in self.status]):
            raise UsageError("status changes are listed by strictly increasing time")
        if any(states[i - 1] == states[i] for i in range(1, len(states))):
            raise UsageError("a status change must change the status")
        if "revoked" in states[:-1]:
            raise UsageError("a revoked principal stays revoked")

    def _check_endorsements(self) -> None:
        if self.signing_keys[0].endorsement is not None:
            raise UsageError("the first signing key has nothing to be endorsed by")
        for index in range(1, len(self.signing_keys)):
            previous, record = self.signing_keys[index - 1], self.signing_keys[index]
            if record.endorsement is None:
                if all(k.revoked is not None for k in self.signing_keys[:index]):
                    continue  # re-enrolment after every earlier key was revoked (ROT-3)
                raise BadSignature(
                    f"{self.principal}: signing key {record.key_id.hex()} lacks the endorsement "
                    "of the key before it"
                )
            message = signing_endorsement_message(
                self.principal, previous.key, record.key, record.not_before
            )
            try:
                previous.key.verify(message, record.endorsement)
            except BadSignature as exc:
                raise BadSignature(
                    f"{self.principal}: bad endorsement of signing key {record.key_id.hex()}"
                ) from exc
        for enc in self.encryption_keys:
            self.encryption_key_endorser(enc)

    def encryption_key_endorser(self, record: EncryptionKeyRecord) -> SigningKeyRecord:
        """The signing key whose endorsement of ``record`` verifies (ROT-4), newest first.

        Candidates are the principal's signing keys published from the
        encryption key's ``not_before`` or earlier; raises :class:`BadSignature`
        if none of them endorsed it.
        """
        for signing in reversed(self.signing_keys):
            if signing.not_before > record.not_before:
                continue
            message = encryption_endorsement_message(
                self.principal, signing.key, record.key, record.not_before, record.not_after
            )
            try:
                signing.key.verify(message, record.endorsement)
            except BadSignature:
                continue
            return signing
        raise BadSignature(
            f"{self.principal}: bad endorsement of encryption key {record.key_id.hex()}"
        )

    def endorser(self, record: SigningKeyRecord | EncryptionKeyRecord) -> SigningKeyRecord | None:
        """The signing key whose endorsement of ``record`` verifies (ROT-2, ROT-4).

        For a signing key that is the key listed just before it, or None for
        the first key and a re-enrolled one (ROT-3), which carry none.
        ``record`` must be one of this entry's keys (:class:`UsageError`).
        """
        if isinstance(record, EncryptionKeyRecord):
            if record not in self.encryption_keys:
                raise UsageError(f"{self.principal} does not list that encryption key")
            return self.encryption_key_endorser(record)
        if record not in self.signing_keys:
            raise UsageError(f"{self.principal} does not list that signing key")
        if record.endorsement is None:
            return None
        return self.signing_keys[self.signing_keys.index(record) - 1]

    def check_new_key(self, record: SigningKeyRecord | EncryptionKeyRecord) -> None:
        """Raise :class:`BadSignature` unless ``record``, a key being published now, was
        endorsed by a key valid and unrevoked when ``record`` starts (DIR-15).

        Only keys a version adds are checked: a revocation dated back later
        does not withdraw the keys its key endorsed before it was published.
        """
        endorser = self.endorser(record)
        if endorser is None or endorser.may_endorse(record.not_before):
            return
        kind = "signing" if isinstance(record, SigningKeyRecord) else "encryption"
        why = (
            f"is revoked (from {endorser.revoked})"
            if endorser.in_window(record.not_before)
            else "is not valid"
        )
        raise BadSignature(
            f"{self.principal}: {kind} key {record.key_id.hex()} is endorsed by signing key "
            f"{endorser.key_id.hex()}, which {why} at {record.not_before}, when the new key "
            "starts (DIR-15)"
        )

    @property
    def country(self) -> str:
        """The country (or international body) code: the id's two-letter prefix (ID-1)."""
        return self.principal[:2]

    @property
    def current_state(self) -> State:
        return self.status[-1].state

    def state_at(self, at: int) -> State | None:
        """The status in force at ``at``; None before the principal was listed."""
        found: State | None = None
        for change in self.status:
            if change.since > at:
                break
            found = change.state
        return found

    def all_keys(self) -> Iterator[SigningKeyRecord | EncryptionKeyRecord]:
        yield from self.signing_keys
        yield from self.encryption_keys

    def to_value(self) -> Value:
        return {
            "country": self.country,
            "encryption_keys": [
                {
                    "endorsement": k.endorsement,
                    "key": k.key.raw,
                    "not_after": k.not_after,
                    "not_before": k.not_before,
                    "revoked": k.revoked,
                }
                for k in self.encryption_keys
            ],
            "id": self.principal,
            "name": self.name,
            "role": self.role,
            "signing_keys": [
                {
                    "endorsement": k.endorsement,
                    "key": k.key.raw,
                    "not_after": k.not_after,
                    "not_before": k.not_before,
                    "revoked": k.revoked,
                }
                for k in self.signing_keys
            ],
            "status": [[s.state, s.since] for s in self.status],
        }

    @classmethod
    def from_value(cls, value: Value) -> PrincipalEntry:
        """Parse one decoded entry; raise :class:`MalformedInput` for any other shape."""
        fields = Fields(value, "directory entry")
        principal = check_principal_id(fields.text("id"))
        what = f"entry {principal}"
        fields.what = what
        try:
            if fields.text("country") != principal[:2]:
                raise MalformedInput(f"{what}: country must be the id's prefix")
            status = []
            for item in fields.array("status"):
                change = as_list(item, f"{what}: a status change")
                if len(change) != 2 or not isinstance(change[0], str) or type(change[1]) is not int:
                    raise MalformedInput(f"{what}: a status change is [state: str, since: uint]")
                status.append(StatusChange(cast(State, change[0]), change[1]))
            signing = []
            for item in fields.array("signing_keys"):
                key = Fields(item, f"{what}: signing key")
                signing.append(
                    SigningKeyRecord(
                        SigningPublicKey(key.bin("key", 32)),
                        key.time("not_before"),
                        key.optional_time("not_after"),
                        key.optional_bin("endorsement", 64),
                        key.optional_time("revoked"),
                    )
                )
                key.done()
            encryption = []
            for item in fields.array("encryption_keys"):
                key = Fields(item, f"{what}: encryption key")
                encryption.append(
                    EncryptionKeyRecord(
                        EncryptionPublicKey(key.bin("key", 32)),
                        key.time("not_before"),
                        key.time("not_after"),
                        key.bin("endorsement", 64),
                        key.optional_time("revoked"),
                    )
                )
                key.done()
            entry = cls(
                principal,
                fields.text("name"),
                cast(Role, fields.text("role")),
                tuple(status),
                tuple(signing),
                tuple(encryption),
            )
        except UsageError as exc:
            raise MalformedInput(f"{what}: {exc.message}") from exc
        fields.done()
        return entry

    def to_json(self) -> dict[str, Any]:
        def window(k: SigningKeyRecord | EncryptionKeyRecord) -> dict[str, Any]:
            return {
                "key": k.key.raw.hex(),
                "keyId": k.key_id.hex(),
                "notBefore": k.not_before,
                "notAfter": k.not_after,
                "revoked": k.revoked,
                "endorsed": k.endorsement is not None,
            }

        return {
            "id": self.principal,
            "name": self.name,
            "country": self.country,
            "role": self.role,
            "status": [{"state": s.state, "since": s.since} for s in self.status],
            "signingKeys": [window(k) for k in self.signing_keys],
            "encryptionKeys": [window(k) for k in self.encryption_keys],
        }
