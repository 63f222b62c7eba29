"""accumulated.json: 1000 envelopes sealed from a deterministic byte stream, one digest.

The exact definition (stream, the order of the draws, the digest) is in
spec/vectors.md, "accumulated.json"; tests/test_vectors.py implements it again
independently.
"""

from __future__ import annotations

import hashlib
from typing import Any

from principals import NOW, POOL, principals_json
from vectorfile import GENERATOR, PROTOCOL

from ncb_relay.envelope import seal
from ncb_relay.header import MAX_TTL, SUITE_NAME

STREAM_KEY = b"NCBR/1 accumulated test vector"
CHECKPOINTS = (1, 10, 100, 1000)
MAX_BODY = 1024
CREATED_SPREAD = 2**20


class ByteStream:
    """The stream block 0 || block 1 || ..., block i = BLAKE2b-512(LE64(i), key=key)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += hashlib.blake2b(
                self._counter.to_bytes(8, "little"), key=self._key, digest_size=64
            ).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "little")


def envelopes(count: int) -> list[bytes]:
    """The first ``count`` envelopes of the accumulated test (spec/vectors.md)."""
    stream = ByteStream(STREAM_KEY)
    out: list[bytes] = []
    for _ in range(count):
        sender = POOL[stream.uint(1) % len(POOL)]
        n = 1 + stream.uint(1) % 10
        candidates = [p for p in POOL if p is not sender]
        chosen = [candidates.pop(stream.uint(1) % len(candidates)) for _ in range(n)]
        body = stream.read(stream.uint(2) % (MAX_BODY + 1))
        shift = stream.uint(1) % 64
        seq = (stream.uint(8) >> 1) >> shift
        created = NOW - stream.uint(4) % CREATED_SPREAD
        ttl = 1 + stream.uint(4) % MAX_TTL
        reply_to = stream.read(32) if stream.uint(1) & 1 else None
        sealed = seal(
            body,
            sender=sender.identity,
            recipients=[p.identity.public for p in chosen],
            now=created,
            seq=seq,
            ttl=ttl,
            reply_to=reply_to,
            rng=stream.read,
        )
        out.append(sealed.data)
    return out


def build() -> dict[str, Any]:
    sealed = envelopes(max(CHECKPOINTS))
    digest = hashlib.blake2b(digest_size=32)
    checkpoints = []
    for i, data in enumerate(sealed, start=1):
        digest.update(len(data).to_bytes(4, "little") + data)
        if i in CHECKPOINTS:
            checkpoints.append({"count": i, "digest": digest.hexdigest()})
    doc = {
        "protocol": PROTOCOL,
        "algorithm": SUITE_NAME,
        "generatedBy": GENERATOR,
        "header": [
            "Accumulated randomized test: envelopes sealed from a deterministic byte stream, "
            "every envelope hashed into one digest. See spec/vectors.md for the exact definition.",
        ],
        "streamKey": STREAM_KEY.decode("ascii"),
        "maxBody": MAX_BODY,
        "createdBase": NOW,
        "createdSpread": CREATED_SPREAD,
        "maxTtl": MAX_TTL,
        "principals": principals_json(POOL),
        "firstEnvelope": sealed[0].hex(),
        "checkpoints": checkpoints,
    }
    return {"accumulated.json": doc}
