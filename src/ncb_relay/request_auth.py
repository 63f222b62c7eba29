"""Signed HTTP requests to a relay, with no I/O (spec/relay-api.md, "Request authentication").

Theory of operation.  A bureau signs every request it makes to a relay with its
directory-listed Ed25519 key.  The signature covers, under its own label, the
canonical encoding of the method, the request target exactly as sent, a hash
of the exact body bytes, a timestamp, a fresh 16-byte nonce, the relay's
principal id, and the bureau's principal id and key id.  Only the values the
relay cannot learn from the request itself travel in the ``Authorization``
field: ``NCBR1 <base64url(encode([principal, key_id, relay, timestamp, nonce,
signature]))>``.  The relay rebuilds the signed bytes from what it actually
received and from its own relay id, never from anything the client claims, so
a request re-aimed at another path, method, body or relay does not verify.

The :class:`RequestVerifier` runs the checks cheapest first: the field's size
before any decoding, its syntax and encoding, the relay id, the time window and
the nonce, then the directory look-up and the signature.  A
:class:`NonceCache` remembers each accepted ``(principal, nonce)`` until the
time window alone refuses it; it refuses rather than forgets when full, never
lets its clock run backwards, and after a restart refuses what it cannot prove
it has not seen.  The nonce is recorded in the same call that checks the
signature, so of two copies of one request only the first is accepted.  Only a
request that passed every step becomes an :class:`AuthenticatedRequest`, which
has no public constructor.
"""

from __future__ import annotations

import base64
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import codec, primitives
from ._construct import NoPublicConstructor
from .directory import KeyDirectory
from .errors import (
    BadSignature,
    BindingMismatch,
    FutureDated,
    LimitExceeded,
    MalformedInput,
    NcbRelayError,
    Replay,
    StaleMessage,
    UnsupportedVersion,
    UsageError,
)
from .header import MAX_TIME
from .identity import KEY_ID_BYTES, Signer, SigningPublicKey, check_principal_id
from .primitives import RandomSource

__all__ = [
    "AUTHORIZATION_SCHEME",
    "DEFAULT_REQUEST_SKEW",
    "MAX_AUTHORIZATION_BYTES",
    "AuthenticatedRequest",
    "NonceCache",
    "RequestCredentials",
    "RequestVerifier",
    "authorization_field",
    "parse_authorization",
    "request_body_hash",
    "request_signature_input",
    "sign_request",
]

REQUEST_SIGNATURE_LABEL = b"NCBR/1 request signature\x00"
PERSON_REQUEST_BODY = b"NCBR1 req body"
AUTHORIZATION_SCHEME = "NCBR1"
NONCE_BYTES = 16
MAX_AUTHORIZATION_BYTES = 512
MAX_METHOD_BYTES = 16
MAX_TARGET_BYTES = 2048
DEFAULT_REQUEST_SKEW = 60
MAX_REQUEST_SKEW = 300
DEFAULT_MAX_NONCES = 1_000_000
# The credentials array is at most 244 bytes (two 64-byte ids, a 9-byte uint, three bins).
TOKEN_LIMITS = codec.CodecLimits(
    max_bytes=256,
    max_str_bytes=64,
    max_bin_bytes=64,
    max_array_items=6,
    max_map_items=0,
    max_depth=1,
)

_METHOD = re.compile(rf"[A-Z]{{1,{MAX_METHOD_BYTES}}}")
_TARGET = re.compile(r"/[\x21-\x22\x24-\x7e]*")  # printable ASCII without '#'
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_OTHER_VERSION = re.compile(r"NCBR[0-9]+", re.IGNORECASE)


def _is_method(value: object) -> bool:
    return isinstance(value, str) and _METHOD.fullmatch(value) is not None


def _is_target(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_TARGET_BYTES
        and _TARGET.fullmatch(value) is not None
        and not value.endswith("?")
    )


def _check_time(value: object, name: str, error: type[NcbRelayError]) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise error(f"{name} must be an integer from 0 to 2**40")
    return value


def _check_bin(value: object, size: int, name: str, error: type[NcbRelayError]) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise error(f"{name} must be {size} bytes")
    return value


def request_body_hash(body: bytes) -> bytes:
    """BLAKE2b-256 of the exact body bytes, personalised ``NCBR1 req body`` (AUTH-2)."""
    if not isinstance(body, bytes):
        raise UsageError("the body must be bytes")
    return primitives.blake2b(body, person=PERSON_REQUEST_BODY)


def request_signature_input(
    *,
    method: str,
    target: str,
    body_hash: bytes,
    timestamp: int,
    nonce: bytes,
    relay: str,
    principal: str,
    key_id: bytes,
) -> bytes:
    """The exact bytes a request signature covers (AUTH-3): the label, then one canonical array."""
    fields: list[codec.Value] = [method, target, body_hash, timestamp, nonce, relay]
    fields += [principal, key_id]
    return REQUEST_SIGNATURE_LABEL + codec.encode(fields)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(token: str) -> bytes:
    """Strict base64url without padding: one encoding per byte string (AUTH-7)."""
    if not _TOKEN.fullmatch(token) or len(token) % 4 == 1:
        raise MalformedInput("the credentials are not base64url without padding")
    # the pattern and length checks leave nothing for the decoder to refuse
    data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    if _b64encode(data) != token:
        raise MalformedInput("the credentials are not the canonical base64url encoding")
    return data


def _credential_fields(
    value: object, error: type[NcbRelayError]
) -> tuple[str, bytes, str, int, bytes, bytes]:
    """Check the six fields of AUTH-5 in order; raise ``error`` at the first bad one."""
    if not isinstance(value, list) or len(value) != 6:
        raise error("the credentials are an array of 6 fields")
    principal, key_id, relay, timestamp, nonce, signature = value
    return (
        check_principal_id(principal, error=error),
        _check_bin(key_id, KEY_ID_BYTES, "the key id", error),
        check_principal_id(relay, error=error),
        _check_time(timestamp, "the timestamp", error),
        _check_bin(nonce, NONCE_BYTES, "the nonce", error),
        _check_bin(signature, primitives.SIGNATURE_BYTES, "the signature", error),
    )


@dataclass(frozen=True, slots=True)
class RequestCredentials:
    """What the ``Authorization`` field carries (AUTH-5); building one checks every field."""

    principal: str
    key_id: bytes
    relay: str
    timestamp: int
    nonce: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _credential_fields(list(self.fields()), UsageError)

    def fields(self) -> tuple[str, bytes, str, int, bytes, bytes]:
        return (self.principal, self.key_id, self.relay, self.timestamp, self.nonce, self.signature)

    @property
    def token(self) -> bytes:
        """The canonical encoding of the six fields (before base64url)."""
        return codec.encode(list(self.fields()))

    @property
    def authorization(self) -> str:
        """The value of the ``Authorization`` field."""
        return f"{AUTHORIZATION_SCHEME} {_b64encode(self.token)}"


def authorization_field(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The one ``Authorization`` value among raw (name, value) pairs; None if there is none.

    A request carrying the field more than once is refused with
    :class:`MalformedInput` (AUTH-1): which copy a proxy or framework would use
    is not defined.
    """
    found: bytes | None = None
    for name, value in headers:
        if name.lower() == b"authorization":
            if found is not None:
                raise MalformedInput("the request carries more than one Authorization field")
            found = value
    return found


def parse_authorization(value: str | bytes | None) -> RequestCredentials:
    """Decode an ``Authorization`` value (AUTH-1, AUTH-6 to AUTH-8), checking its size first.

    A str is taken to be the field's bytes decoded as Latin-1, as ASGI
    frameworks do.  Raises :class:`MalformedInput`, :class:`LimitExceeded` or
    :class:`UnsupportedVersion`.
    """
    if value is None:
        raise MalformedInput("the request carries no Authorization field")
    if not isinstance(value, (str, bytes)):
        raise UsageError("an Authorization value is str or bytes")
    if len(value) > MAX_AUTHORIZATION_BYTES:
        raise LimitExceeded(
            f"an Authorization field of {len(value)} bytes exceeds {MAX_AUTHORIZATION_BYTES}"
        )
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not text.isascii():
        raise MalformedInput("the Authorization field is not ASCII")
    scheme, space, token = text.partition(" ")
    if scheme.upper() != AUTHORIZATION_SCHEME:
        if _OTHER_VERSION.fullmatch(scheme):
            raise UnsupportedVersion(f"authorization scheme {scheme!r} is not spoken here")
        raise MalformedInput("the Authorization field does not use the NCBR1 scheme")
    if not space:
        raise MalformedInput("the NCBR1 scheme is followed by one space and the credentials")
    decoded = codec.decode(_b64decode(token), limits=TOKEN_LIMITS)
    return RequestCredentials(*_credential_fields(decoded, MalformedInput))


def sign_request(
    *,
    principal: str,
    signer: Signer,
    relay: str,
    method: str,
    target: str,
    body: bytes,
    now: int,
    rng: RandomSource,
) -> RequestCredentials:
    """Sign one request to ``relay`` (AUTH-3, AUTH-4); send ``result.authorization``.

    ``target`` is the request target exactly as it goes on the request line:
    the path and, if there is one, ``?`` and a non-empty query.  Sign every
    request anew, retries included: the relay accepts each signature once.
    """
    check_principal_id(principal, error=UsageError)
    check_principal_id(relay, error=UsageError)
    if not _is_method(method):
        raise UsageError(f"a method is 1 to {MAX_METHOD_BYTES} upper-case ASCII letters")
    if not _is_target(target):
        raise UsageError(
            "a target is '/' then printable ASCII without '#' and no trailing '?', "
            f"at most {MAX_TARGET_BYTES} bytes"
        )
    _check_time(now, "now", UsageError)
    nonce = _check_bin(rng(NONCE_BYTES), NONCE_BYTES, "the random nonce", UsageError)
    key_id = signer.public_key.key_id
    signed = request_signature_input(
        method=method,
        target=target,
        body_hash=request_body_hash(body),
        timestamp=now,
        nonce=nonce,
        relay=relay,
        principal=principal,
        key_id=key_id,
    )
    return RequestCredentials(principal, key_id, relay, now, nonce, signer.sign(signed))


class NonceCache:
    """The ``(principal, nonce)`` of every request accepted inside the time window (AUTH-10..12).

    ``since`` is the time this cache started empty while the relay may have
    accepted requests before (a restart without saved state): requests dated
    earlier than ``since + max_skew`` are refused as possible replays, and
    :attr:`ready_at` says when that stops.  Pass ``None`` only if no request
    was ever accepted by this relay before the cache was created.

    ``max_entries`` bounds the whole memory; ``max_per_principal`` (None: no
    cap of its own) bounds the live pairs of any one principal, so that one
    principal cannot fill the memory and get every other refused (AUTH-17).
    """

    def __init__(
        self,
        *,
        since: int | None,
        max_skew: int = DEFAULT_REQUEST_SKEW,
        max_entries: int = DEFAULT_MAX_NONCES,
        max_per_principal: int | None = None,
    ) -> None:
        if type(max_skew) is not int or not 0 <= max_skew <= MAX_REQUEST_SKEW:
            raise UsageError(f"max_skew must be between 0 and {MAX_REQUEST_SKEW} seconds")
        if type(max_entries) is not int or max_entries < 1:
            raise UsageError("max_entries must be a positive integer")
        if max_per_principal is not None and (
            type(max_per_principal) is not int or max_per_principal < 1
        ):
            raise UsageError("max_per_principal must be a positive integer or None")
        self.since = None if since is None else _check_time(since, "since", UsageError)
        self.max_skew = max_skew
        self.max_entries = max_entries
        self.max_per_principal = max_per_principal
        self._per_principal: dict[str, int] = {}
        self._latest = 0 if since is None else since  # the clock never runs backwards here
        self._forget_at: dict[tuple[str, bytes], int] = {}
        self._expiry: list[tuple[int, str, bytes]] = []

    def __len__(self) -> int:
        return len(self._forget_at)

    def live(self, principal: str) -> int:
        """How many pairs of ``principal`` the cache still remembers."""
        return self._per_principal.get(principal, 0)

    def principal_full(self, principal: str) -> bool:
        """Whether ``principal`` holds as many live pairs as ``max_per_principal`` allows."""
        cap = self.max_per_principal
        return cap is not None and self.live(principal) >= cap

    @property
    def ready_at(self) -> int | None:
        """The first time from which a correctly dated request can pass (None: from the start)."""
        return None if self.since is None else self.since + self.max_skew

    def check(self, principal: str, nonce: bytes, timestamp: int, now: int) -> None:
        """Raise unless a request so dated, with this nonce, may be accepted at ``now``."""
        _check_time(now, "now", UsageError)
        if timestamp > now + self.max_skew:
            raise FutureDated(f"request dated {timestamp - now} s in the future")
        latest = max(now, self._latest)
        if timestamp < latest - self.max_skew:
            raise StaleMessage(f"request dated {latest - timestamp} s in the past")
        if self.since is not None and timestamp < self.since + self.max_skew:
            raise Replay("request dated before this relay's nonce memory began")
        if (principal, nonce) in self._forget_at:
            raise Replay(f"nonce {nonce.hex()} of {principal} was already used")

    def record(self, principal: str, nonce: bytes, timestamp: int, now: int) -> None:
        """Check, then remember an accepted request until the window alone refuses it."""
        self.check(principal, nonce, timestamp, now)
        self._latest = max(self._latest, now)
        self.prune()
        if self.principal_full(principal):  # before the whole memory: it is this one's excess
            raise LimitExceeded(f"{principal} holds {self.max_per_principal} live nonces")
        if len(self._forget_at) >= self.max_entries:
            raise LimitExceeded("the nonce cache is full of live entries")
        forget_at = timestamp + self.max_skew + 1
        self._forget_at[(principal, nonce)] = forget_at
        self._per_principal[principal] = self.live(principal) + 1
        heapq.heappush(self._expiry, (forget_at, principal, nonce))

    def prune(self) -> None:
        """Forget every entry that the time window refuses at the latest time seen."""
        while self._expiry and self._expiry[0][0] <= self._latest:
            _, principal, nonce = heapq.heappop(self._expiry)
            del self._forget_at[(principal, nonce)]
            left = self._per_principal[principal] - 1
            if left:
                self._per_principal[principal] = left
            else:
                del self._per_principal[principal]


class AuthenticatedRequest(metaclass=NoPublicConstructor):
    """A request whose signature passed every check; only :class:`RequestVerifier` makes one.

    ``principal`` is the bureau the relay acts for (AUTH-16).
    """

    __slots__ = ("body_hash", "key_id", "method", "nonce", "principal", "target", "timestamp")

    def __init__(
        self, credentials: RequestCredentials, method: str, target: str, body_hash: bytes
    ) -> None:
        self.principal = credentials.principal
        self.key_id = credentials.key_id
        self.timestamp = credentials.timestamp
        self.nonce = credentials.nonce
        self.method = method
        self.target = target
        self.body_hash = body_hash

    def __repr__(self) -> str:
        return f"AuthenticatedRequest({self.principal!r}, {self.method} {self.target})"


class RequestVerifier:
    """The relay's side of request authentication: one per relay, holding its nonce cache.

    ``directory`` is the relay's current directory version (its live view,
    DIR-11); assign a new one when the relay accepts a new version.
    """

    def __init__(self, *, relay: str, directory: KeyDirectory, nonces: NonceCache) -> None:
        self.relay = check_principal_id(relay, error=UsageError)
        if not isinstance(nonces, NonceCache):
            raise UsageError("nonces must be a NonceCache")
        self.directory = directory
        self.nonces = nonces

    def check_credentials(
        self, *, authorization: str | bytes | None, now: int
    ) -> RequestCredentials:
        """Steps 1 to 8 of AUTH-15, which need no body; nothing is recorded.

        Call it before reading a request's body to refuse bad requests
        cheaply; :meth:`verify` repeats these steps, since time passes while a
        body arrives.
        """
        return self._signer_key(authorization, now)[0]

    def _signer_key(
        self, authorization: str | bytes | None, now: int
    ) -> tuple[RequestCredentials, SigningPublicKey]:
        _check_time(now, "now", UsageError)
        credentials = parse_authorization(authorization)
        if credentials.relay != self.relay:
            raise BindingMismatch(f"request signed for relay {credentials.relay}, not {self.relay}")
        principal, key_id, _, timestamp, nonce, _ = credentials.fields()
        self.nonces.check(principal, nonce, timestamp, now)
        return credentials, self.directory.signing_key(principal, key_id, timestamp)

    def verify(
        self,
        *,
        method: str,
        target: str,
        body: bytes,
        authorization: str | bytes | None,
        now: int,
    ) -> AuthenticatedRequest:
        """Run the checks of AUTH-15 in order; raise at the first failure, else record the nonce."""
        if not isinstance(method, str) or not isinstance(target, str):
            raise UsageError("method and target are str")
        if not isinstance(body, bytes):
            raise UsageError("the body must be bytes")
        credentials, key = self._signer_key(authorization, now)
        principal, key_id, _, timestamp, nonce, signature = credentials.fields()
        if not (_is_method(method) and _is_target(target)):
            raise BadSignature("no signature can cover this method and target")
        body_hash = request_body_hash(body)
        signed = request_signature_input(
            method=method,
            target=target,
            body_hash=body_hash,
            timestamp=timestamp,
            nonce=nonce,
            relay=self.relay,
            principal=principal,
            key_id=key_id,
        )
        key.verify(signed, signature)
        self.nonces.record(principal, nonce, timestamp, now)
        return AuthenticatedRequest._create(credentials, method, target, body_hash)
