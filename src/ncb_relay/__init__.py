"""ncb_relay: signed, end-to-end encrypted messaging between national bureaus.

The protocol core (this package's top level) is sans-IO: it never touches a
socket, a file or a clock; time (``now``, whole seconds since the Unix epoch)
and randomness (``rng``) are parameters.
"""

from __future__ import annotations

from .codec import CodecLimits, decode, encode
from .directory import KeyDirectory, StaticDirectory
from .disclosure import DisclosedMessage, verify_disclosure
from .envelope import (
    DEFAULT_TTL,
    Disclosure,
    RoutedEnvelope,
    SealedEnvelope,
    VerifiedEnvelope,
    open_envelope,
    seal,
    verify_routing,
)
from .errors import (
    BadSignature,
    BindingMismatch,
    DecryptionFailed,
    FreshnessError,
    FutureDated,
    InvalidPeerKey,
    LimitExceeded,
    MalformedInput,
    NcbRelayError,
    ProtocolError,
    Replay,
    StaleMessage,
    UnknownKey,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)
from .freshness import FreshnessPolicy, ReplayGuard
from .header import MAX_TTL, SUITE, SUITE_NAME, VERSION, EnvelopeLimits, Header, RecipientEntry
from .identity import (
    EncryptionKeyPair,
    EncryptionPublicKey,
    PrivateIdentity,
    PublicIdentity,
    Signer,
    SigningKeyPair,
    SigningPublicKey,
    check_principal_id,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "SUITE",
    "SUITE_NAME",
    "VERSION",
    "BadSignature",
    "BindingMismatch",
    "CodecLimits",
    "DecryptionFailed",
    "DisclosedMessage",
    "Disclosure",
    "EncryptionKeyPair",
    "EncryptionPublicKey",
    "EnvelopeLimits",
    "FreshnessError",
    "FreshnessPolicy",
    "FutureDated",
    "Header",
    "InvalidPeerKey",
    "KeyDirectory",
    "LimitExceeded",
    "MalformedInput",
    "NcbRelayError",
    "PrivateIdentity",
    "ProtocolError",
    "PublicIdentity",
    "RecipientEntry",
    "Replay",
    "ReplayGuard",
    "RoutedEnvelope",
    "SealedEnvelope",
    "Signer",
    "SigningKeyPair",
    "SigningPublicKey",
    "StaleMessage",
    "StaticDirectory",
    "UnknownKey",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "UsageError",
    "VerifiedEnvelope",
    "__version__",
    "check_principal_id",
    "decode",
    "encode",
    "open_envelope",
    "seal",
    "verify_disclosure",
    "verify_routing",
]
