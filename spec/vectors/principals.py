"""The fixed world of the vectors: the clock, the test principals and their directory.

Every key is derived from a fixed seed and published with it (spec/vectors.md,
"The test principals"); these are test keys, never to be used for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vectorfile import JSON

from ncb_relay import primitives
from ncb_relay.directory import StaticDirectory
from ncb_relay.identity import EncryptionKeyPair, PrivateIdentity, SigningKeyPair

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
MAX_SKEW = 300

DIRECTORY_IDS = (
    "KR.ncb-seoul",
    "MA.ncb-rabat",
    "XP.interpol-gs",
    "FR.ncb-paris",
    "JP.ncb-tokyo",
    "DE.ncb-wiesbaden",
    "BR.ncb-brasilia",
    "ZA.ncb-pretoria",
    "US.ncb-washington",
    "IN.ncb-new-delhi",
    "AU.ncb-canberra",
    "CA.ncb-ottawa",
)
OUTSIDER_ID = "QZ.not-in-directory"
PERSON_TV_SIGN = b"NCBR1 tv sign"
PERSON_TV_ENCRYPT = b"NCBR1 tv encrypt"
PERSON_TV_CONTENT_KEY = b"NCBR1 tv K"
PERSON_TV_EPHEMERAL = b"NCBR1 tv eph"
PERSON_TV_OTHER = b"NCBR1 tv other"


def derive(label: str, person: bytes) -> bytes:
    """A fixed 32-byte test value: BLAKE2b-256(label, person=person)."""
    return primitives.blake2b(label.encode("utf-8"), person=person)


@dataclass(frozen=True, eq=False)
class Principal:
    id: str
    in_directory: bool
    signing: SigningKeyPair
    encryption: EncryptionKeyPair

    @property
    def identity(self) -> PrivateIdentity:
        return PrivateIdentity(self.id, self.signing, [self.encryption])

    @property
    def signing_key_id(self) -> bytes:
        return self.signing.public_key.key_id

    @property
    def encryption_key_id(self) -> bytes:
        return self.encryption.public_key.key_id

    @property
    def encryption_public(self) -> bytes:
        return self.encryption.public_key.raw

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "inDirectory": self.in_directory,
            "signingSeed": self.signing.seed.hex(),
            "signingPublicKey": self.signing.public_key.raw.hex(),
            "signingFingerprint": self.signing.public_key.fingerprint.hex(),
            "signingKeyId": self.signing_key_id.hex(),
            "encryptionSecret": self.encryption.secret.hex(),
            "encryptionPublicKey": self.encryption_public.hex(),
            "encryptionFingerprint": self.encryption.public_key.fingerprint.hex(),
            "encryptionKeyId": self.encryption_key_id.hex(),
        }


def make_principal(pid: str, *, in_directory: bool = True) -> Principal:
    return Principal(
        pid,
        in_directory,
        SigningKeyPair(derive(pid, PERSON_TV_SIGN)),
        EncryptionKeyPair(derive(pid, PERSON_TV_ENCRYPT)),
    )


CAST: dict[str, Principal] = {pid: make_principal(pid) for pid in DIRECTORY_IDS}
CAST[OUTSIDER_ID] = make_principal(OUTSIDER_ID, in_directory=False)
POOL = tuple(CAST[pid] for pid in DIRECTORY_IDS)
S = CAST["KR.ncb-seoul"]  # the usual sender
A = CAST["MA.ncb-rabat"]  # a recipient
B = CAST["XP.interpol-gs"]  # another recipient
C = CAST["FR.ncb-paris"]  # a third party in the directory
OUTSIDER = CAST[OUTSIDER_ID]  # not in the directory
DIRECTORY = StaticDirectory(p.identity.public for p in POOL)


def principals_json(principals: Sequence[Principal]) -> list[JSON]:
    return [p.to_json() for p in principals]
