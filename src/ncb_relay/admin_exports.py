"""The public files administrators hand each other: identities and root keys (an adapter).

A principal hands the coordinator an *identity* file: its principal id, its
signing public key and the encryption public keys with their windows and its
own endorsements (ROT-4), and, after a rotation of its signing key, the
previous key's endorsement of the new one (ROT-2).  A root key holder hands
the coordinator a *root key* file: a name and an Ed25519 public key.  Both
are JSON, so that people can read them and compare the fingerprints out of
band (ANCHOR-3, ROT-1) before the coordinator relies on them.  Neither holds
a secret.  Reading one is strict: unknown or missing fields, wrong lengths,
invalid keys and derived fields (key ids, fingerprints) that do not match the
keys are refused with :class:`~ncb_relay.errors.MalformedInput` or
:class:`~ncb_relay.errors.InvalidPeerKey`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._fields import check_time
from .anchor import RootKey
from .entries import EncryptionKeyRecord
from .errors import MalformedInput, UsageError
from .identity import EncryptionPublicKey, SigningPublicKey, check_principal_id, fingerprint_text

__all__ = ["IDENTITY_FORMAT", "ROOT_KEY_FORMAT", "IdentityExport", "RootKeyFile", "SigningRotation"]

IDENTITY_FORMAT = "ncb-relay public identity"
ROOT_KEY_FORMAT = "ncb-relay root key"
EXPORT_VERSION = 1


def _fields(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedInput(f"{what} must be a JSON object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise MalformedInput(f"{what}: missing fields {missing}, unknown fields {extra}")
    return value


def _hex(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MalformedInput(f"{what} must be {size} bytes in hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedInput(f"{what} must be {size} bytes in hex") from None


def _time(value: object, what: str) -> int:
    if type(value) is not int:
        raise MalformedInput(f"{what} must be a time in whole seconds")
    return check_time(value, what, MalformedInput)


def _header(value: dict[str, Any], expected: str) -> None:
    if value.get("format") != expected:
        raise MalformedInput(f"not an {expected!r} file")
    if value.get("version") != EXPORT_VERSION:
        raise MalformedInput(f"{expected} file version {value.get('version')!r} is not 1")


def _signing_key(value: object, what: str) -> SigningPublicKey:
    fields = _fields(value, {"key", "keyId", "fingerprint"}, what)
    key = SigningPublicKey(_hex(fields["key"], 32, f"{what}: key"))
    if fields["keyId"] != key.key_id.hex() or fields["fingerprint"] != fingerprint_text(
        key.fingerprint
    ):
        raise MalformedInput(f"{what}: keyId or fingerprint does not match the key")
    return key


def _signing_key_json(key: SigningPublicKey) -> dict[str, Any]:
    return {
        "key": key.raw.hex(),
        "keyId": key.key_id.hex(),
        "fingerprint": fingerprint_text(key.fingerprint),
    }


@dataclass(frozen=True, slots=True)
class SigningRotation:
    """A new signing key's link to the one before: the previous key's endorsement (ROT-2)."""

    previous: SigningPublicKey
    not_before: int
    endorsement: bytes


@dataclass(frozen=True, slots=True)
class IdentityExport:
    """What a principal hands the coordinator to be added or to rotate its keys."""

    principal: str
    signing_key: SigningPublicKey
    rotation: SigningRotation | None
    encryption_keys: tuple[EncryptionKeyRecord, ...]

    def __post_init__(self) -> None:
        check_principal_id(self.principal, error=UsageError)

    def to_json(self) -> dict[str, Any]:
        rotation = None
        if self.rotation is not None:
            rotation = {
                "previousKey": self.rotation.previous.raw.hex(),
                "notBefore": self.rotation.not_before,
                "endorsement": self.rotation.endorsement.hex(),
            }
        return {
            "format": IDENTITY_FORMAT,
            "version": EXPORT_VERSION,
            "principal": self.principal,
            "signingKey": _signing_key_json(self.signing_key),
            "rotation": rotation,
            "encryptionKeys": [
                {
                    "key": k.key.raw.hex(),
                    "keyId": k.key_id.hex(),
                    "notBefore": k.not_before,
                    "notAfter": k.not_after,
                    "endorsement": k.endorsement.hex(),
                }
                for k in self.encryption_keys
            ],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> IdentityExport:
        _header(value, IDENTITY_FORMAT)
        fields = _fields(
            value,
            {"format", "version", "principal", "signingKey", "rotation", "encryptionKeys"},
            "identity",
        )
        principal = check_principal_id(fields["principal"])
        signing = _signing_key(fields["signingKey"], "identity signingKey")
        rotation = None
        if fields["rotation"] is not None:
            rot = _fields(
                fields["rotation"], {"previousKey", "notBefore", "endorsement"}, "rotation"
            )
            rotation = SigningRotation(
                SigningPublicKey(_hex(rot["previousKey"], 32, "rotation previousKey")),
                _time(rot["notBefore"], "rotation notBefore"),
                _hex(rot["endorsement"], 64, "rotation endorsement"),
            )
        listed = fields["encryptionKeys"]
        if not isinstance(listed, list) or not listed:
            raise MalformedInput("identity encryptionKeys must be a non-empty array")
        records = []
        for index, item in enumerate(listed):
            what = f"identity encryptionKeys[{index}]"
            enc = _fields(item, {"key", "keyId", "notBefore", "notAfter", "endorsement"}, what)
            key = EncryptionPublicKey(_hex(enc["key"], 32, f"{what}: key"))
            if enc["keyId"] != key.key_id.hex():
                raise MalformedInput(f"{what}: keyId does not match the key")
            try:
                records.append(
                    EncryptionKeyRecord(
                        key,
                        _time(enc["notBefore"], f"{what}: notBefore"),
                        _time(enc["notAfter"], f"{what}: notAfter"),
                        _hex(enc["endorsement"], 64, f"{what}: endorsement"),
                    )
                )
            except UsageError as exc:
                raise MalformedInput(f"{what}: {exc.message}") from exc
        records.sort(key=lambda r: r.not_before)
        return cls(principal, signing, rotation, tuple(records))


@dataclass(frozen=True, slots=True)
class RootKeyFile:
    """A root key holder's public key and name, for the trust anchor."""

    root: RootKey

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ROOT_KEY_FORMAT,
            "version": EXPORT_VERSION,
            "name": self.root.name,
            **_signing_key_json(self.root.key),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RootKeyFile:
        _header(value, ROOT_KEY_FORMAT)
        fields = _fields(
            value, {"format", "version", "name", "key", "keyId", "fingerprint"}, "root key"
        )
        key = _signing_key({k: fields[k] for k in ("key", "keyId", "fingerprint")}, "root key file")
        try:
            return cls(RootKey(fields["name"], key))
        except UsageError as exc:
            raise MalformedInput(f"root key file: {exc.message}") from exc
