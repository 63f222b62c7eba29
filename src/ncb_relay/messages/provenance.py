"""Bodies that carry another signed message: forwards and the originator's permission.

A :class:`Forward` carries the original envelope with its content key (a
disclosure, DISC-1), so its recipient verifies the original author as well as
the forwarder.  A :class:`DisseminationPermission` is the originator's signed
consent to pass an H2 message on to named bureaus; it travels inside the
forward, itself as a disclosure, and names the original by its message hash.
The checks are in :mod:`ncb_relay.messages.forwarding`.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from ..envelope import Disclosure
from .body import Body
from .fields import (
    MAX_CONDITIONS,
    MAX_ENVELOPE_BYTES,
    MAX_RECIPIENT_IDS,
    BodyPart,
    Digest,
    PrincipalId,
    Text,
    Time,
    check_unique,
)

__all__ = ["CarriedDisclosure", "DisseminationPermission", "Forward"]


class CarriedDisclosure(BodyPart):
    """A disclosure inside a body: the exact envelope bytes and the message's content key."""

    envelope: bytes = Field(min_length=1, max_length=MAX_ENVELOPE_BYTES)
    content_key: Digest = Field(repr=False)

    @classmethod
    def of(cls, disclosure: Disclosure) -> CarriedDisclosure:
        return cls(envelope=disclosure.envelope, content_key=disclosure.content_key)

    def to_disclosure(self) -> Disclosure:
        return Disclosure(self.envelope, self.content_key)


class Forward(Body):
    """A received message passed on, with its provenance; ``note`` is the forwarder's own text."""

    schema_id = "ncbr.forward"

    original: CarriedDisclosure
    permission: CarriedDisclosure | None = None
    note: Text | None = None


class DisseminationPermission(Body):
    """The originator's consent to disseminate one message (``original``) to ``granted_to``."""

    schema_id = "ncbr.dissemination-permission"

    original: Digest
    granted_to: tuple[PrincipalId, ...] = Field(min_length=1, max_length=MAX_RECIPIENT_IDS)
    valid_until: Time | None = None
    conditions: tuple[Text, ...] = Field(default=(), max_length=MAX_CONDITIONS)

    _unique = field_validator("granted_to")(check_unique)
