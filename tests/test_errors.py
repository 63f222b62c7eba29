"""The error tree, its codes, and what error messages may say (ERR-1, ERR-2, OPEN-11)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import nacl.bindings as sodium
import pytest

import ncb_relay
from fixtures import NOW
from ncb_relay import EnvelopeLimits, ReplayGuard, errors, open_envelope, seal, verify_routing
from ncb_relay.errors import (
    BadSignature,
    BelowThreshold,
    BindingMismatch,
    BrokenChain,
    DecryptionFailed,
    DirectoryExpired,
    DisseminationForbidden,
    Fork,
    FreshnessError,
    FutureDated,
    InvalidBody,
    InvalidPeerKey,
    InvalidProof,
    InvalidTransition,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreLocked,
    KeystoreUnsupported,
    LimitExceeded,
    LogFork,
    MalformedInput,
    NcbRelayError,
    NoAnswer,
    ProtocolError,
    RelayRefused,
    RelayUnavailable,
    Replay,
    Rollback,
    StaleMessage,
    StorageError,
    SubmissionUnknown,
    UnknownKey,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)
from ncb_relay.exception_groups import leaf_errors
from test_envelope import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DECRYPTION_CASES,
    DIRECTORY,
    HEADER_CASES,
    IDS,
    SENDER_KEY_F,
    Forge,
    RecordingRng,
    b2,
    seed_of,
    set_entry,
    set_field,
)

# ERR-1, as the catalogue lists them; "usage" is local only
WIRE_CODES: dict[type[NcbRelayError], str] = {
    MalformedInput: "malformed",
    LimitExceeded: "limit-exceeded",
    UnsupportedVersion: "unsupported-version",
    UnsupportedSuite: "unsupported-suite",
    InvalidPeerKey: "invalid-peer-key",
    UnknownKey: "unknown-key",
    BindingMismatch: "binding-mismatch",
    BadSignature: "bad-signature",
    DecryptionFailed: "decryption-failed",
    Replay: "replay",
    StaleMessage: "stale",
    FutureDated: "future-dated",
}

# local keystore faults (spec/keystore.md): never on the wire
KEYSTORE_CODES: dict[type[NcbRelayError], str] = {
    KeystoreError: "keystore",
    KeystoreCorrupt: "keystore-corrupt",
    KeystoreUnsupported: "keystore-unsupported",
    KeystoreLocked: "keystore-locked",
    KeystoreExists: "keystore-exists",
}

# refusals of a signed directory or trust anchor (spec/directory.md); not envelope codes
DIRECTORY_CODES: dict[type[NcbRelayError], str] = {
    BelowThreshold: "below-threshold",
    Rollback: "rollback",
    Fork: "fork",
    BrokenChain: "broken-chain",
    DirectoryExpired: "directory-expired",
}

# refusals of a message body or of what it asks for (spec/messages.md)
MESSAGE_CODES: dict[type[NcbRelayError], str] = {
    InvalidBody: "invalid-body",
    InvalidTransition: "invalid-transition",
    DisseminationForbidden: "dissemination-forbidden",
}

# refusals of a log proof or checkpoint (spec/log.md)
LOG_CODES: dict[type[NcbRelayError], str] = {InvalidProof: "invalid-proof", LogFork: "log-fork"}

# the relay's own store (ncb_relay.relay.storage): a local fault, never on the wire
STORAGE_CODES: dict[type[NcbRelayError], str] = {StorageError: "storage"}

# a bureau's exchange with a relay (ncb_relay.client): local conditions, and a refusal
# whose code the library does not know
CLIENT_CODES: dict[type[NcbRelayError], str] = {
    RelayUnavailable: "relay-unavailable",
    SubmissionUnknown: "submission-unknown",
    RelayRefused: "relay-refused",
    NoAnswer: "no-answer",
}

PARENTS: dict[type[NcbRelayError], type[NcbRelayError]] = {
    **dict.fromkeys(MESSAGE_CODES, ProtocolError),
    **dict.fromkeys(LOG_CODES, ProtocolError),
    **{cls: ProtocolError for cls in DIRECTORY_CODES if cls is not DirectoryExpired},
    DirectoryExpired: FreshnessError,
    UsageError: NcbRelayError,
    StorageError: NcbRelayError,
    RelayUnavailable: NcbRelayError,
    SubmissionUnknown: NcbRelayError,
    NoAnswer: NcbRelayError,
    RelayRefused: ProtocolError,
    KeystoreError: NcbRelayError,
    **{cls: KeystoreError for cls in KEYSTORE_CODES if cls is not KeystoreError},
    ProtocolError: NcbRelayError,
    FreshnessError: ProtocolError,
    StaleMessage: FreshnessError,
    FutureDated: FreshnessError,
    **{cls: ProtocolError for cls in WIRE_CODES if cls not in (StaleMessage, FutureDated)},
}

ALL_CLASSES = [getattr(errors, name) for name in errors.__all__]


def _instance(cls: type[NcbRelayError]) -> NcbRelayError:
    return cls("some-reason")


# --- ERR-1: the tree and the codes -------------------------------------------------------


@pytest.mark.req("ERR-1")
def test_every_error_class_is_exported_and_in_the_tree() -> None:
    assert {cls.__name__ for cls in ALL_CLASSES} == set(errors.__all__)
    assert set(ALL_CLASSES) == {NcbRelayError, *PARENTS}
    for cls in ALL_CLASSES:
        assert issubclass(cls, NcbRelayError)
        assert getattr(ncb_relay, cls.__name__) is cls
    for cls, parent in PARENTS.items():
        assert cls.__bases__[0] is parent, cls


@pytest.mark.req("ERR-1")
def test_local_faults_and_remote_faults_are_apart() -> None:
    assert issubclass(UsageError, ValueError)
    assert not issubclass(UsageError, ProtocolError)
    for cls in WIRE_CODES:
        assert issubclass(cls, ProtocolError)
        assert not issubclass(cls, UsageError)


@pytest.mark.req("ERR-1")
def test_wire_codes_are_the_catalogue_codes() -> None:
    for cls, code in WIRE_CODES.items():
        assert cls.code == code
        instance = _instance(cls)
        assert instance.code == code
        assert instance.wire_code == code
    assert UsageError.code == "usage"
    for cls, code in DIRECTORY_CODES.items():
        assert cls.code == code == cls("x").wire_code
    for cls, code in (MESSAGE_CODES | LOG_CODES).items():
        assert cls.code == code == cls("x").wire_code
    for cls, code in (KEYSTORE_CODES | STORAGE_CODES).items():
        assert cls.code == code
        assert not issubclass(cls, (ProtocolError, UsageError))
    for cls, code in CLIENT_CODES.items():
        assert cls.code == code == cls("x").wire_code
    assert not issubclass(SubmissionUnknown, (ProtocolError, RelayUnavailable))  # never "failed"


@pytest.mark.req("ERR-1")
def test_every_class_has_its_own_code() -> None:
    codes = [cls.code for cls in ALL_CLASSES]
    assert (
        len(set(codes))
        == len(codes)
        == (
            16
            + len(KEYSTORE_CODES)
            + len(STORAGE_CODES)
            + len(DIRECTORY_CODES)
            + len(MESSAGE_CODES)
            + len(LOG_CODES)
            + len(CLIENT_CODES)
        )
    )
    assert all(code == code.lower() and " " not in code for code in codes)
    assert set(WIRE_CODES.values()) | {"usage"} <= set(codes)


@pytest.mark.req("ERR-1", "OPEN-11")
@pytest.mark.parametrize(
    "reason",
    ["not-a-recipient", "no-such-key", "key-commitment", "aead", "inner-signature", "x"],
)
def test_decryption_failed_has_one_wire_code(reason: str) -> None:
    error = DecryptionFailed(reason)
    assert error.wire_code == "decryption-failed"
    assert error.reason == reason
    assert reason in str(error)  # the local log says which step
    assert reason not in error.wire_code


@pytest.mark.req("ERR-1")
def test_errors_keep_their_message() -> None:
    for cls in ALL_CLASSES:
        if cls is DecryptionFailed:
            continue
        error = cls("what happened")
        assert error.message == "what happened"
        assert str(error) == "what happened"
        with pytest.raises(NcbRelayError):
            raise error
    assert inspect.signature(DecryptionFailed).parameters.keys() == {"reason"}


# --- ERR-2: a sweep over failing opens --------------------------------------------------------

BODY = b"RECOGNISABLE-PLAINTEXT-0123456789-" * 3


class Sweep:
    """One message from Alice to Bob and Carol, and every secret involved in it."""

    def __init__(self) -> None:
        rng = RecordingRng(b"sweep")
        self.sealed = seal(
            BODY,
            sender=IDS[ALICE],
            recipients=[IDS[BOB].public, IDS[CAROL].public],
            now=NOW,
            seq=1,
            rng=rng,
        )
        self.data = self.sealed.data
        content_key, ephemeral_secret = rng.outputs
        header, payload, _ = msgpack.unpackb(self.data)
        payload_key = b2(b"", b"NCBR1 payloadkey", key=content_key)
        plaintext = bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                payload, b2(header, b"NCBR1 header"), bytes(24), payload_key
            )
        )
        assert plaintext[64:] == BODY
        shared = [
            bytes(sodium.crypto_scalarmult(ephemeral_secret, IDS[p].public.encryption_key.raw))
            for p in (BOB, CAROL, DAVE)
        ]
        _, alice_secret = sodium.crypto_sign_seed_keypair(seed_of(IDS[ALICE]))
        self.secrets = [
            BODY,
            plaintext,  # the inner signature is plaintext too
            content_key,
            payload_key,
            ephemeral_secret,
            *shared,
            bytes(alice_secret),
            *(seed_of(IDS[p]) for p in (ALICE, BOB, CAROL, DAVE)),
            *(IDS[p].encryption_keys[0].secret for p in (ALICE, BOB, CAROL, DAVE)),
        ]
        self.content_key, self.ephemeral_secret = content_key, ephemeral_secret

    def forge(self, **changes: Any) -> bytes:
        return Forge(
            IDS[ALICE],
            [IDS[BOB].public, IDS[CAROL].public],
            body=BODY,
            content_key=self.content_key,
            ephemeral_secret=self.ephemeral_secret,
            **changes,
        ).build()

    def fragments(self) -> list[str]:
        """Every 8-byte window of every secret, as hex and as a bytes literal; the body as text."""
        out = {"RECOGNISABLE", "PLAINTEXT"}
        for secret in self.secrets:
            for i in range(len(secret) - 7):
                window = secret[i : i + 8]
                out.update([window.hex(), window.hex().upper(), repr(window)[2:-1]])
        return sorted(out)


def _attempts(sweep: Sweep) -> Iterator[tuple[str, Callable[[], object]]]:
    data = sweep.data

    def opener(payload: bytes, who: str = BOB, now: int = NOW, **kw: Any) -> Callable[[], object]:
        def attempt() -> object:
            return open_envelope(
                payload,
                recipient=IDS[who],
                directory=DIRECTORY,
                now=now,
                replay=kw.get("replay", ReplayGuard()),
                limits=kw.get("limits", EnvelopeLimits()),
            )

        return attempt

    for i in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
            yield f"byte-{i}-xor-{mask:02x}", opener(tampered)
    for cut in range(0, len(data), 5):
        yield f"truncated-{cut}", opener(data[:cut])
    yield "extended", opener(data + b"\x00")
    yield "oversized", opener(data + bytes(8 * 1024 * 1024))
    yield (
        "over-custom-limit",
        opener(data + bytes(1024), limits=EnvelopeLimits(max_envelope_bytes=1024)),
    )
    for who in (DAVE, ALICE):
        yield f"not-a-recipient-{who}", opener(data, who)
    yield "future-dated", opener(data, now=NOW - 301)
    yield "stale", opener(data, now=NOW + 7 * 24 * 3600 + 300)
    guard = ReplayGuard()
    opener(data, replay=guard)()
    yield "replay", opener(data, replay=guard)
    full = ReplayGuard(max_entries=1)
    other = seal(
        b"other",
        sender=IDS[ALICE],
        recipients=[IDS[BOB].public],
        now=NOW,
        seq=2,
        rng=RecordingRng(b"other"),
    )
    opener(other.data, replay=full)()
    yield "guard-full", opener(data, replay=full)
    for name, edit, _ in HEADER_CASES:
        yield f"header-{name}", opener(sweep.forge(edit_header=edit))
    for i, (reason, changes) in enumerate(DECRYPTION_CASES):
        if "to" not in changes:
            yield f"decrypt-{reason}-{i}", opener(sweep.forge(**changes))
    for name, edit in (
        ("sender-key-unknown", set_field(SENDER_KEY_F, bytes(16))),
        ("sender-key-of-dave", set_field(SENDER_KEY_F, IDS[DAVE].public.signing_key.key_id)),
        ("recipient-key-unknown", set_entry(0, 1, bytes(16))),
        ("recipient-key-of-carol", set_entry(0, 1, IDS[CAROL].public.encryption_key.key_id)),
    ):
        yield name, opener(sweep.forge(edit_header=edit))
    yield (
        "routing-only",
        lambda: verify_routing(data[:-1] + bytes([data[-1] ^ 1]), directory=DIRECTORY, now=NOW),
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__])


def _failure(attempt: Callable[[], object]) -> NcbRelayError | None:
    """Run ``attempt``; return the library error it raised (anything else propagates)."""
    try:
        attempt()
    except NcbRelayError as error:
        return error
    return None


@pytest.mark.req("ERR-1", "ERR-2", "OPEN-11")
def test_failing_opens_never_reveal_plaintext_or_keys() -> None:
    sweep = Sweep()
    fragments = sweep.fragments()
    codes: dict[str, int] = {}
    attempts = 0
    for name, attempt in _attempts(sweep):
        attempts += 1
        error = _failure(attempt)
        assert error is not None, f"{name}: a tampered envelope was accepted"
        assert isinstance(error, ProtocolError), (name, error)  # never a local fault
        codes[error.wire_code] = codes.get(error.wire_code, 0) + 1
        for link in _chain(error):
            for text in (str(link), repr(link), repr(link.args)):
                leaked = [f for f in fragments if f in text]
                assert not leaked, (name, text, leaked)
    assert attempts > 3 * len(sweep.data)
    # the sweep reached every error a remote peer can be told about
    assert set(codes) == set(WIRE_CODES.values())


@pytest.mark.req("ERR-2")
def test_the_secret_fragments_would_be_found() -> None:
    """Control for the sweep: a message that did contain a secret would be caught."""
    sweep = Sweep()
    fragments = sweep.fragments()
    for secret in sweep.secrets:
        for text in (repr(secret), secret.hex(), repr(secret[5:40])):
            assert any(fragment in text for fragment in fragments)


def test_leaf_errors_flatten_nested_groups_in_order() -> None:
    first, second, third = UsageError("a"), ValueError("b"), KeyboardInterrupt()
    group = BaseExceptionGroup("outer", [ExceptionGroup("inner", [first, second]), third])
    assert leaf_errors(group) == [first, second, third]
    assert leaf_errors(first) == [first]
