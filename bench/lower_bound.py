"""The lower bound: exactly the cryptography our envelope performs, called directly.

Read from ``src/ncb_relay/envelope.py``.  Sealing to ``n`` recipients does:

- two 32-byte draws from the OS (content key, ephemeral secret);
- one X25519 base-point multiplication (the ephemeral public key);
- per recipient, one X25519 and one keyed BLAKE2b (the wrap pad), XORed into the key;
- BLAKE2b of the header, of the body, and three short ones (commitment,
  payload key, message hash) plus one over the ciphertext;
- two Ed25519 signatures (inner, outer) over a 32-byte label and two digests;
- one XChaCha20-Poly1305 over the inner signature and the body.

Opening as one recipient does: BLAKE2b of the header and of the ciphertext,
one Ed25519 verification (outer), the message hash, one X25519 and one keyed
BLAKE2b (the unwrap), the commitment and payload key, one XChaCha20-Poly1305
decryption, BLAKE2b of the body and one more Ed25519 verification (inner).

Here these run straight through PyNaCl's bindings and :mod:`hashlib` with no
encoding, parsing, validation, directory or replay bookkeeping: the header is
a buffer as long as the real encoded header, and the "wire size" is the sum of
the parts (header, ciphertext, signature).  The gap between this and the
envelope is everything the library adds around the cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings as sodium

__all__ = ["LowerBound", "Sealed"]

OUTER = b"NCBR/1 envelope outer signature\x00"
INNER = b"NCBR/1 envelope inner signature\x00"
NONCE = bytes(24)


def _h(data: bytes, person: bytes, key: bytes = b"") -> bytes:
    return hashlib.blake2b(data, digest_size=32, key=key, person=person).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the lower-bound seal produces; ``size`` is the sum of its parts."""

    header: bytes
    payload: bytes
    signature: bytes
    ephemeral: bytes
    message_id: bytes
    wrapped: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return len(self.header) + len(self.payload) + len(self.signature)


class LowerBound:
    """The sender's signing key and every recipient's X25519 key pair, as raw bytes."""

    def __init__(
        self,
        signing_seed: bytes,
        recipient_secrets: list[bytes],
        header_length: int,
    ) -> None:
        self.verify_key, self.signing_key = sodium.crypto_sign_seed_keypair(signing_seed)
        self.secrets = recipient_secrets
        self.publics = [sodium.crypto_scalarmult_base(s) for s in recipient_secrets]
        self.header = os.urandom(header_length)

    def seal(self, body: bytes) -> Sealed:
        content_key, ephemeral_secret = os.urandom(32), os.urandom(32)
        message_id = _h(b"", b"NCBR1 commitment", content_key)
        ephemeral = sodium.crypto_scalarmult_base(ephemeral_secret)
        wrapped = []
        for public in self.publics:
            shared = sodium.crypto_scalarmult(ephemeral_secret, public)
            pad = _h(ephemeral + public + message_id, b"NCBR1 key wrap", shared)
            wrapped.append(_xor(content_key, pad))
        h_digest = _h(self.header, b"NCBR1 header")
        b_digest = _h(body, b"NCBR1 body")
        inner = sodium.crypto_sign(INNER + h_digest + b_digest, self.signing_key)[:64]
        payload = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            inner + body, h_digest, NONCE, _h(b"", b"NCBR1 payloadkey", content_key)
        )
        p_digest = _h(payload, b"NCBR1 payload")
        outer = sodium.crypto_sign(OUTER + h_digest + p_digest, self.signing_key)[:64]
        _h(h_digest + p_digest, b"NCBR1 message")
        return Sealed(self.header, payload, outer, ephemeral, message_id, tuple(wrapped))

    def open(self, sealed: Sealed) -> bytes:
        """Open as the last recipient; raises if anything fails to verify."""
        secret, public = self.secrets[-1], self.publics[-1]
        h_digest = _h(sealed.header, b"NCBR1 header")
        p_digest = _h(sealed.payload, b"NCBR1 payload")
        sodium.crypto_sign_open(sealed.signature + OUTER + h_digest + p_digest, self.verify_key)
        _h(h_digest + p_digest, b"NCBR1 message")
        shared = sodium.crypto_scalarmult(secret, sealed.ephemeral)
        pad = _h(sealed.ephemeral + public + sealed.message_id, b"NCBR1 key wrap", shared)
        content_key = _xor(sealed.wrapped[-1], pad)
        if not hmac.compare_digest(_h(b"", b"NCBR1 commitment", content_key), sealed.message_id):
            raise ValueError("commitment")
        plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed.payload, h_digest, NONCE, _h(b"", b"NCBR1 payloadkey", content_key)
        )
        inner, body = plaintext[:64], plaintext[64:]
        b_digest = _h(body, b"NCBR1 body")
        sodium.crypto_sign_open(inner + INNER + h_digest + b_digest, self.verify_key)
        return bytes(body)

    def sealer(self, body: bytes) -> Callable[[], Sealed]:
        return lambda: self.seal(body)

    def opener_of(self, sealed: Sealed) -> Callable[[], bytes]:
        return lambda: self.open(sealed)
