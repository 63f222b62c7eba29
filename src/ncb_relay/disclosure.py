"""Disclosure: proving to a third party what a sender sent.

Theory of operation.  A recipient that opened a message holds its content key
``K``.  The envelope together with ``K`` (a :class:`~ncb_relay.envelope.Disclosure`)
lets anyone who has the directory check that the sender signed exactly this
body for exactly the recipients listed: the outer signature and the directory
keys as of the message's creation (OPEN-4 .. OPEN-6), the key commitment
``message_id = commitment(K)``, the AEAD and the inner signature
(OPEN-8 .. OPEN-10).  No recipient's private key is involved, and no other
message is exposed, because ``K`` is used for this one message only.

This is how non-repudiation works in practice (a court verifies a request
years later) and how a forwarded message keeps its provenance (the forwarder
passes the original envelope and its ``K`` inside its own signed message).
Freshness and replay are deliberately not checked: a disclosed message may be
old, and it is not being delivered, only proven.
"""

from __future__ import annotations

from .directory import KeyDirectory
from .envelope import Disclosure, SignedMessage, authenticate, open_payload
from .errors import UsageError
from .header import DEFAULT_LIMITS, EnvelopeLimits, parse_envelope

__all__ = ["DisclosedMessage", "verify_disclosure"]


class DisclosedMessage(SignedMessage):
    """A message proven to come from its sender; only :func:`verify_disclosure` makes one.

    Unlike a :class:`~ncb_relay.envelope.VerifiedEnvelope` it says nothing
    about freshness or replay, and it was not necessarily addressed to the
    party that verified it.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"DisclosedMessage(id={self.message_id.hex()}, sender={self.sender!r})"


def verify_disclosure(
    disclosure: Disclosure,
    *,
    directory: KeyDirectory,
    limits: EnvelopeLimits = DEFAULT_LIMITS,
) -> DisclosedMessage:
    """Verify a disclosed message (DISC-2); raise a ProtocolError subclass if any check fails."""
    if not isinstance(disclosure, Disclosure):
        raise UsageError("verify_disclosure expects a Disclosure")
    parsed = parse_envelope(disclosure.envelope, limits)
    routed = authenticate(disclosure.envelope, parsed, directory)
    body = open_payload(routed, disclosure.content_key)
    return DisclosedMessage._create(routed, body)
