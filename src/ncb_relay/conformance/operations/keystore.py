"""The keystore operations: lock, unlock and prune a keyring file (spec/keystore.md)."""

from __future__ import annotations

from ... import (
    EncryptionKeyPair,
    HeldEncryptionKey,
    KdfBounds,
    KdfParameters,
    Keyring,
    SigningKeyPair,
    lock_keyring,
    unlock_keyring,
)
from ...keyring import parse_keystore_header
from .base import OperationsBase
from .values import JSON, hex_or_none, recorded


class KeystoreOperations(OperationsBase):
    """lock-keystore, unlock-keystore and prune-keystore."""

    @staticmethod
    def kdf_bounds(request: JSON) -> KdfBounds:
        b = request["bounds"]
        return KdfBounds(b["minOps"], b["minMemKib"], b["maxOps"], b["maxMemKib"])

    @staticmethod
    def _key_ids(keyring: Keyring) -> list[str]:
        return [k.key_id.hex() for k in keyring.encryption_keys]

    def lock_keystore(self, request: JSON) -> JSON:
        k = request["keyring"]
        keys = [
            HeldEncryptionKey(
                EncryptionKeyPair(bytes.fromhex(e["secret"])), e["notBefore"], e["notAfter"]
            )
            for e in k["encryptionKeys"]
        ]
        keyring = Keyring(k["principal"], SigningKeyPair(bytes.fromhex(k["signingSeed"])), keys)
        data = lock_keyring(
            keyring,
            request["passphrase"],
            rng=recorded(hex_or_none(request.get("random"))),
            kdf=KdfParameters(request["kdf"]["ops"], request["kdf"]["memKib"]),
            bounds=self.kdf_bounds(request),
        )
        return {"file": data.hex()}

    def unlock_keystore(self, request: JSON) -> JSON:
        keyring = unlock_keyring(
            bytes.fromhex(request["file"]), request["passphrase"], bounds=self.kdf_bounds(request)
        )
        return {
            "principal": keyring.principal,
            "signingPublicKey": keyring.signing.public_key.raw.hex(),
            "keyIds": self._key_ids(keyring),
        }

    def prune_keystore(self, request: JSON) -> JSON:
        data, bounds = bytes.fromhex(request["file"]), self.kdf_bounds(request)
        keyring = unlock_keyring(data, request["passphrase"], bounds=bounds)
        now, retention = request["now"], request["retention"]
        removed = keyring.expired_keys(now, retention)
        kept = keyring.without_expired(now, retention)
        new = lock_keyring(
            kept,
            request["passphrase"],
            rng=recorded(hex_or_none(request.get("random"))),
            kdf=parse_keystore_header(data, bounds=bounds).kdf,
            bounds=bounds,
        )
        return {
            "removedKeyIds": [k.key_id.hex() for k in removed],
            "keptKeyIds": self._key_ids(kept),
            "file": new.hex(),
        }
