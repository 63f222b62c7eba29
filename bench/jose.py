"""The JOSE baseline with joserfc: a JWS nested in a JWE.

The sender signs the body as a compact JWS with EdDSA over Ed25519 (spelled
``"alg": "Ed25519"``, the fully-specified name of RFC 9864: the same signature
as ``EdDSA``, which joserfc now flags as deprecated), then encrypts the JWS
with ``ECDH-ES+A256KW`` to each recipient's X25519 key and ``A256GCM``.  One
recipient uses the compact serialization; several use the general JSON
serialization (one ``recipients`` entry each, named by ``kid``), encoded as
compact JSON.  The recipient keeps only its own entry, decrypts, then verifies
the JWS with the sender's public key.  No freshness, replay or directory
checks: this is the cryptography and encoding of a JOSE design only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from joserfc import jwe, jws
from joserfc.jwk import OKPKey

__all__ = ["JoseWorld"]

JWS_REGISTRY = jws.JWSRegistry(algorithms=["Ed25519"])
MAX_RECIPIENTS = 256  # as ncb_relay's default limit; joserfc allows 16 unless told


def _jwe_registry() -> jwe.JWERegistry:
    registry = jwe.JWERegistry(
        algorithms=["ECDH-ES+A256KW", "A256GCM"], max_recipients=MAX_RECIPIENTS
    )
    registry.max_ciphertext_length = 1024 * 1024  # joserfc's default stops at 64 KiB
    return registry


JWE_REGISTRY = _jwe_registry()


def _okp(raw_private: bytes, curve: str, kid: str | None = None) -> OKPKey:
    private: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
    if curve == "Ed25519":
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw_private)
    else:
        private = x25519.X25519PrivateKey.from_private_bytes(raw_private)
    return OKPKey.import_key(private, parameters=None if kid is None else {"kid": kid})


def _public(key: OKPKey) -> OKPKey:
    return OKPKey.import_key(key.as_dict(private=False))


class JoseWorld:
    """The sender's Ed25519 key and each recipient's X25519 key, as JWKs."""

    def __init__(self, signing_seed: bytes, recipients: list[tuple[str, bytes]]) -> None:
        self.signing_key = _okp(signing_seed, "Ed25519")
        self.verify_key = _public(self.signing_key)
        self.private_keys = [_okp(secret, "X25519", kid) for kid, secret in recipients]
        self.public_keys = [_public(key) for key in self.private_keys]

    def seal(self, body: bytes) -> bytes:
        token = jws.serialize_compact(
            {"alg": "Ed25519"}, body, self.signing_key, registry=JWS_REGISTRY
        )
        if len(self.public_keys) == 1:
            protected = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}
            return jwe.encrypt_compact(
                protected, token, self.public_keys[0], registry=JWE_REGISTRY
            ).encode()
        message = jwe.GeneralJSONEncryption({"enc": "A256GCM"}, token.encode())
        for key in self.public_keys:
            message.add_recipient({"alg": "ECDH-ES+A256KW"}, key)
        serialized = jwe.encrypt_json(message, None, registry=JWE_REGISTRY)
        return json.dumps(serialized, separators=(",", ":")).encode()

    def open(self, data: bytes) -> bytes:
        """Decrypt as the last recipient and verify the signature; return the body."""
        key = self.private_keys[-1]
        if len(self.private_keys) == 1:
            token = jwe.decrypt_compact(data, key, registry=JWE_REGISTRY).plaintext
        else:
            document: dict[str, Any] = json.loads(data)
            mine = [r for r in document["recipients"] if r["header"].get("kid") == key.kid]
            document["recipients"] = mine
            token = jwe.decrypt_json(document, key, registry=JWE_REGISTRY).plaintext  # type: ignore[arg-type]
        if token is None:
            raise ValueError("no plaintext")
        verified = jws.deserialize_compact(token, self.verify_key, registry=JWS_REGISTRY)
        return verified.payload

    def sealer(self, body: bytes) -> Callable[[], bytes]:
        return lambda: self.seal(body)

    def opener_of(self, data: bytes) -> Callable[[], bytes]:
        return lambda: self.open(data)
