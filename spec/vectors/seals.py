"""The honest envelopes of envelope.json (EnvelopeSeal): the bases of every other case.

M1 and M2 (from KR.ncb-seoul to MA.ncb-rabat and XP.interpol-gs) are the base
messages of most attacks; the reply answers M1.
"""

from __future__ import annotations

from dataclasses import dataclass

from construction import Draft, Forged
from principals import NOW, POOL, A, B, C, Principal, S
from recorder import Recorder

from ncb_relay import primitives
from ncb_relay.envelope import PERSON_PAYLOAD, header_hash, message_hash
from ncb_relay.header import MAX_TTL

BODY_1 = b"Request for information, case 2027/0142: vehicle KR-12-3456, last seen Busan port."
BODY_2 = b"Follow-up, case 2027/0142: please add the registered owner's travel history."
REPLY_BODY = b"Case 2027/0142: vehicle shipped to Tanger Med on 2027-01-09; details follow."

SEAL_REQS = ["ENV-1", "ENV-2", "ENV-9", "SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5"]
SEAL_REQS += ["SEAL-6", "CODEC-6", "CODEC-8", "KEY-2", "OPEN-8", "OPEN-9", "OPEN-10"]


@dataclass(frozen=True)
class Base:
    """The honest messages the other cases start from, as drafts and as sealed parts."""

    d1: Draft
    m1: Forged
    d2: Draft
    m2: Forged
    d_one: Draft
    m_one: Forged
    ten: tuple[Principal, ...]
    d_ten: Draft
    m_ten: Forged
    d_reply: Draft
    m_reply: Forged
    sealed: tuple[tuple[str, Draft, Forged], ...]  # every EnvelopeSeal case: comment, ...

    @property
    def k1(self) -> bytes:
        return self.d1.content_key


def m_hash(f: Forged) -> bytes:
    """The message hash of ``f`` (ENV-9)."""
    return message_hash(header_hash(f.header), primitives.blake2b(f.payload, person=PERSON_PAYLOAD))


def record_seals(rec: Recorder) -> Base:
    """Record the EnvelopeSeal cases; return the messages for the cases built on them."""
    sealed: list[tuple[str, Draft, Forged]] = []

    def case(d: Draft, comment: str, flags: list[str], reqs: list[str]) -> Forged:
        f = rec.seal_case(d, comment, flags, reqs)
        sealed.append((comment, d, f))
        return f

    d1 = Draft("base-1", S, (A, B), BODY_1, seq=10)
    m1 = case(d1, "two recipients (the base message M1 of the attacks)", ["Honest"], SEAL_REQS)
    d2 = Draft("base-2", S, (A, B), BODY_2, seq=11, created=NOW - 30)
    m2 = case(d2, "two recipients, another message M2 from the same sender", ["Honest"], SEAL_REQS)
    d_one = Draft("one-recipient", S, (A,), b"Hello from Seoul.", seq=1)
    m_one = case(d_one, "one recipient", ["Honest"], SEAL_REQS)
    ten = tuple(p for p in POOL if p not in (S, C))[:10]
    assert len(ten) == 10
    big_body = b"".join(
        f"Line {i:03d} of the notice: subject, aliases, identifiers.\n".encode() for i in range(10)
    )
    d_ten = Draft("ten-recipients", S, ten, big_body, seq=2, ttl=3 * 86_400)
    m_ten = case(d_ten, "ten recipients", ["Honest"], [*SEAL_REQS, "ENV-6"])
    d_reply = Draft("reply", A, (S,), REPLY_BODY, seq=1, reply_to=m_hash(m1))
    m_reply = case(
        d_reply,
        "a reply from MA.ncb-rabat to M1, reply_to = M1's message hash",
        ["Honest"],
        [*SEAL_REQS, "BIND-2"],
    )
    case(
        Draft("empty-body", S, (A, B), b"", seq=3),
        "empty body: the payload is exactly 80 bytes",
        ["Honest", "Boundary"],
        [*SEAL_REQS, "ENV-7"],
    )
    case(
        Draft("max-ttl", S, (B,), b"\x00\x01\x02\xff binary body", seq=4, ttl=MAX_TTL),
        "validity window of exactly 30 days",
        ["Honest", "Boundary"],
        [*SEAL_REQS, "ENV-5"],
    )
    return Base(d1, m1, d2, m2, d_one, m_one, ten, d_ten, m_ten, d_reply, m_reply, tuple(sealed))
