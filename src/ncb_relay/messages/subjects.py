"""Who and what a request or diffusion is about: persons, organisations and online traces.

Each kind of subject has its own list, so a receiving system never guesses
what an item is, and each list is bounded.  Online identifiers are checked for
shape (a domain name, a canonical IP address, a URL) but never resolved.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from .fields import MAX_ITEMS, BodyPart, CountryCode, Label, Text, Time

__all__ = [
    "CryptoWallet",
    "IpAddress",
    "Organisation",
    "PaymentAccount",
    "Person",
    "Subjects",
    "Website",
]

SubjectRole = Literal["suspect", "operator", "victim", "witness", "other"]
PaymentKind = Literal[
    "bank-account",
    "payment-card",
    "payment-service",
    "advertising-account",
    "donation-account",
    "other",
]
# A year, a year and month, or a full date: what is known of a date of birth.
PartialDate = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$")
]
# A host name in ASCII (IDNA A-labels), lower case, with at least two labels.
_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DomainName = Annotated[
    str, StringConstraints(max_length=253, pattern=rf"^{_DNS_LABEL}(\.{_DNS_LABEL})+$")
]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[\x21-\x7e]+$")]
AssetCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,10}$")]
Port = Annotated[int, Field(ge=0, le=65_535)]


class Person(BodyPart):
    name: Label
    role: SubjectRole
    aliases: tuple[Label, ...] = Field(default=(), max_length=16)
    date_of_birth: PartialDate | None = None
    nationalities: tuple[CountryCode, ...] = Field(default=(), max_length=8)
    description: Text | None = None


class Organisation(BodyPart):
    name: Label
    role: SubjectRole
    country: CountryCode | None = None
    registration: Label | None = None
    description: Text | None = None


class Website(BodyPart):
    domain: DomainName
    urls: tuple[Url, ...] = Field(default=(), max_length=32)
    description: Text | None = None


class IpAddress(BodyPart):
    """An IPv4 or IPv6 address in canonical text form (RFC 5952 for IPv6), and when it was seen."""

    address: Annotated[str, StringConstraints(max_length=45)]
    port: Port | None = None
    observed_at: Time | None = None
    description: Text | None = None

    @field_validator("address")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("not an IP address") from None
        if isinstance(parsed, ipaddress.IPv6Address) and (
            parsed.ipv4_mapped is not None or parsed.scope_id is not None
        ):
            raise ValueError("an IPv4-mapped or zoned IPv6 address is not allowed")
        if str(parsed) != value:
            raise ValueError("not the canonical text form of the address")
        return value


class PaymentAccount(BodyPart):
    kind: PaymentKind
    identifier: Label
    provider: Label | None = None
    holder: Label | None = None
    description: Text | None = None


class CryptoWallet(BodyPart):
    asset: AssetCode
    address: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
    network: Label | None = None
    description: Text | None = None


class Subjects(BodyPart):
    """Every subject of a message, by kind; each list holds at most 64 items."""

    persons: tuple[Person, ...] = Field(default=(), max_length=MAX_ITEMS)
    organisations: tuple[Organisation, ...] = Field(default=(), max_length=MAX_ITEMS)
    websites: tuple[Website, ...] = Field(default=(), max_length=MAX_ITEMS)
    ip_addresses: tuple[IpAddress, ...] = Field(default=(), max_length=MAX_ITEMS)
    payment_accounts: tuple[PaymentAccount, ...] = Field(default=(), max_length=MAX_ITEMS)
    crypto_wallets: tuple[CryptoWallet, ...] = Field(default=(), max_length=MAX_ITEMS)

    def count(self) -> int:
        """How many subjects of every kind."""
        return sum(
            len(items)
            for items in (
                self.persons,
                self.organisations,
                self.websites,
                self.ip_addresses,
                self.payment_accounts,
                self.crypto_wallets,
            )
        )
