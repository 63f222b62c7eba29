"""Randomized cases checked both ways: ours seals and theirs opens, theirs seals and ours opens.

"Ours" is the reference library, in this process; "theirs" is the adapter.
Every case is drawn from ``--seed`` (printed as a property of each test, so a
failure can be replayed with ``--seed N``) and the case number.  The
accumulated test of spec/vectors.md (1000 seals hashed into one digest)
runs through the adapter too.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ncb_relay import (
    EncryptionKeyPair,
    PrivateIdentity,
    ReplayGuard,
    SigningKeyPair,
    StaticDirectory,
    open_envelope,
    seal,
    verify_routing,
)

from .adapter_process import AdapterProcess
from .vectors import JSON, Principals, load

CASES = 12
NOW = 1_800_000_000
WIRE_CODES = {
    "malformed",
    "limit-exceeded",
    "unsupported-version",
    "unsupported-suite",
    "invalid-peer-key",
    "unknown-key",
    "binding-mismatch",
    "bad-signature",
    "decryption-failed",
    "replay",
    "stale",
    "future-dated",
}
SEALING = ("SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5", "SEAL-6", "ENV-1", "ENV-2", "ENV-9")
OPENING = ("OPEN-6", "OPEN-8", "OPEN-9", "OPEN-10", "OPEN-11", "ERR-1")


def private(identity: PrivateIdentity) -> JSON:
    return {
        "id": identity.principal,
        "signingSeed": identity.signer.seed.hex(),  # type: ignore[attr-defined]
        "encryptionSecret": identity.encryption_keys[-1].secret.hex(),
    }


def public(identity: PrivateIdentity) -> JSON:
    return {
        "id": identity.principal,
        "signingPublicKey": identity.public.signing_key.raw.hex(),
        "encryptionPublicKey": identity.public.encryption_key.raw.hex(),
    }


@dataclass
class Case:
    """One randomized message: who sends what to whom, and a bystander."""

    rng: random.Random
    sender: PrivateIdentity
    recipients: list[PrivateIdentity]
    bystander: PrivateIdentity
    body: bytes
    seq: int
    ttl: int
    reply_to: bytes | None

    @classmethod
    def draw(cls, seed: int, number: int) -> Case:
        rng = random.Random(f"{seed}/{number}")
        names = sorted(rng.sample("abcdefghijklmnopqrstuvwxyz", 8))
        people = [
            PrivateIdentity(
                f"KR.conformance-{name}",
                SigningKeyPair(rng.randbytes(32)),
                [EncryptionKeyPair(rng.randbytes(32))],
            )
            for name in names
        ]
        rng.shuffle(people)
        sender, bystander, *others = people
        return cls(
            rng=rng,
            sender=sender,
            recipients=others[: rng.randint(1, len(others))],
            bystander=bystander,
            body=rng.randbytes(rng.choice([0, 1, 79, 80, rng.randint(0, 5000)])),
            seq=rng.choice([0, 1, 2**63 - 1, rng.getrandbits(rng.randint(1, 63))]),
            ttl=rng.randint(1, 30 * 86400),
            reply_to=rng.randbytes(32) if rng.random() < 0.5 else None,
        )

    @property
    def everyone(self) -> list[PrivateIdentity]:
        return [self.sender, self.bystander, *self.recipients]

    def directory(self) -> list[JSON]:
        return [public(p) for p in self.everyone]

    def receiver(self) -> JSON:
        return {"directory": self.directory(), "now": NOW, "maxSkew": 300}


@pytest.fixture
def record_seed(seed: int, request: pytest.FixtureRequest) -> int:
    request.node.user_properties.append(("seed", seed))  # in the JUnit XML: --seed replays it
    return seed


@pytest.mark.req(*SEALING, *OPENING)
@pytest.mark.parametrize("number", range(CASES))
def test_ours_seals_theirs_opens(adapter: AdapterProcess, record_seed: int, number: int) -> None:
    case = Case.draw(record_seed, number)
    sealed = seal(
        case.body,
        sender=case.sender,
        recipients=[p.public for p in case.recipients],
        now=NOW,
        seq=case.seq,
        ttl=case.ttl,
        reply_to=case.reply_to,
        rng=case.rng.randbytes,
    )
    where = f"seed {record_seed}, case {number}"
    routed = adapter.call({"op": "route", "envelope": sealed.data.hex(), **case.receiver()})
    assert routed.get("messageHash") == sealed.message_hash.hex(), f"{where}: route: {routed}"
    for recipient in case.recipients:
        opened = adapter.call(
            {
                "op": "open",
                "recipient": private(recipient),
                "envelope": sealed.data.hex(),
                **case.receiver(),
            }
        )
        assert opened.get("body") == case.body.hex(), f"{where}: {recipient.principal}: {opened}"
        assert opened["sender"] == case.sender.principal
        assert opened["seq"] == case.seq
        assert opened["replyTo"] == (None if case.reply_to is None else case.reply_to.hex())
    outsider = adapter.call(
        {
            "op": "open",
            "recipient": private(case.bystander),
            "envelope": sealed.data.hex(),
            **case.receiver(),
        }
    )
    assert outsider.get("error") == "decryption-failed", f"{where}: a non-recipient: {outsider}"
    damaged = bytearray(sealed.data)
    damaged[case.rng.randrange(len(damaged))] ^= 1 << case.rng.randrange(8)
    refused = adapter.call(
        {
            "op": "open",
            "recipient": private(case.recipients[0]),
            "envelope": damaged.hex(),
            **case.receiver(),
        }
    )
    assert "body" not in refused, f"{where}: a copy with one bit flipped was accepted"
    assert refused.get("error") in WIRE_CODES, f"{where}: not an ERR-1 code: {refused}"


@pytest.mark.req(*SEALING, *OPENING)
@pytest.mark.parametrize("number", range(CASES))
def test_theirs_seals_ours_opens(adapter: AdapterProcess, record_seed: int, number: int) -> None:
    case = Case.draw(record_seed, number)
    request = {
        "op": "seal",
        "sender": private(case.sender),
        "recipients": [public(p) for p in case.recipients],
        "body": case.body.hex(),
        "seq": case.seq,
        "now": NOW,
        "ttl": case.ttl,
        "replyTo": None if case.reply_to is None else case.reply_to.hex(),
    }  # no "random": the adapter draws its own (SEAL-1)
    first, second = adapter.call(request), adapter.call(request)
    where = f"seed {record_seed}, case {number}"
    assert "error" not in first, f"{where}: sealing failed: {first}"
    assert first["messageId"] != second["messageId"], f"{where}: SEAL-1: the same K twice"
    data = bytes.fromhex(first["envelope"])
    directory = StaticDirectory(p.public for p in case.everyone)
    routed = verify_routing(data, directory=directory, now=NOW)
    assert routed.message_hash.hex() == first["messageHash"], f"{where}: another message hash"
    for recipient in case.recipients:
        opened = open_envelope(
            data, recipient=recipient, directory=directory, now=NOW, replay=ReplayGuard()
        )
        assert opened.body == case.body, f"{where}: {recipient.principal} got another body"
        assert (opened.seq, opened.reply_to) == (case.seq, case.reply_to)
        assert opened.expires == NOW + case.ttl


ACCUMULATED = load("accumulated.json")


def stream(key: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.blake2b(counter.to_bytes(8, "little"), key=key, digest_size=64).digest()
        counter += 1


@pytest.mark.req("SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5", "SEAL-6", "ENV-2", "CODEC-2")
def test_accumulated(adapter: AdapterProcess) -> None:
    """spec/vectors.md, accumulated.json: 1000 seals by the adapter, hashed into one digest."""
    doc = ACCUMULATED
    principals = Principals(doc)
    pool = [p["id"] for p in doc["principals"]]
    source = stream(doc["streamKey"].encode("ascii"))

    def read(n: int) -> bytes:
        return bytes(next(source) for _ in range(n))

    def uint(n: int) -> int:
        return int.from_bytes(read(n), "little")

    checkpoints = {c["count"]: c["digest"] for c in doc["checkpoints"]}
    digest = hashlib.blake2b(digest_size=32)
    for i in range(1, max(checkpoints) + 1):
        sender = pool[uint(1) % len(pool)]
        n = 1 + uint(1) % 10
        candidates = [p for p in pool if p != sender]
        chosen = [candidates.pop(uint(1) % len(candidates)) for _ in range(n)]
        body = read(uint(2) % (doc["maxBody"] + 1))
        shift = uint(1) % 64
        seq = (uint(8) >> 1) >> shift
        created = doc["createdBase"] - uint(4) % doc["createdSpread"]
        ttl = 1 + uint(4) % doc["maxTtl"]
        reply_to = read(32) if uint(1) & 1 else None
        sealed = adapter.call(
            {
                "op": "seal",
                "sender": principals.private(sender),
                "recipients": [principals.public(r) for r in chosen],
                "body": body.hex(),
                "seq": seq,
                "now": created,
                "ttl": ttl,
                "replyTo": None if reply_to is None else reply_to.hex(),
                "random": read(64).hex(),
            }
        )
        assert "envelope" in sealed, f"envelope {i}: sealing failed: {sealed}"
        data = bytes.fromhex(sealed["envelope"])
        if i == 1:
            assert sealed["envelope"] == doc["firstEnvelope"], "the first envelope differs"
        digest.update(len(data).to_bytes(4, "little") + data)
        if i in checkpoints:
            assert digest.hexdigest() == checkpoints[i], f"digest after {i} envelopes"
