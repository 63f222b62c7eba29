"""Our envelope: a world of bureaus, and seal and open as the library offers them.

The sender is the General Secretariat; the recipients are ``n`` bureaus with
made-up two-letter codes (195 is every INTERPOL member).  Keys are derived
from fixed seeds so every run measures the same principals; sealing draws its
content key and ephemeral secret from :func:`os.urandom`, as in production.
The opener is the last recipient in the header.  Each open uses a fresh
:class:`~ncb_relay.ReplayGuard` (a real recipient has one, and would refuse the
second open of the same envelope as a replay).
"""

from __future__ import annotations

import hashlib
import os
import string
from collections.abc import Callable
from dataclasses import dataclass

from ncb_relay import (
    PrivateIdentity,
    PublicIdentity,
    ReplayGuard,
    SigningKeyPair,
    StaticDirectory,
    open_envelope,
    seal,
)

__all__ = ["NOW", "SENDER", "EnvelopeWorld", "principals"]

NOW = 1_800_000_000
SENDER = "XP.interpol-gs"


def principals(count: int) -> list[str]:
    """``count`` distinct bureau ids (AA.ncb-bench, AB.ncb-bench, ...), sorted."""
    letters = string.ascii_uppercase
    if count > len(letters) ** 2 - 1:
        raise ValueError("too many principals")
    return [f"{letters[i // 26]}{letters[i % 26]}.ncb-bench" for i in range(count)]


def _seeded(seed: str) -> Callable[[int], bytes]:
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            block = counter.to_bytes(8, "little")
            out += hashlib.blake2b(block, key=seed.encode()).digest()
            counter += 1
        return out[:n]

    return rng


@dataclass(frozen=True)
class EnvelopeWorld:
    """A sender, ``n`` recipients and the directory that lists them all."""

    sender: PrivateIdentity
    recipients: tuple[PrivateIdentity, ...]
    directory: StaticDirectory

    @classmethod
    def build(cls, count: int) -> EnvelopeWorld:
        sender = PrivateIdentity.generate(SENDER, _seeded(SENDER))
        recipients = tuple(PrivateIdentity.generate(p, _seeded(p)) for p in principals(count))
        directory = StaticDirectory([sender.public, *(r.public for r in recipients)])
        return cls(sender, recipients, directory)

    @property
    def signing_seed(self) -> bytes:
        signer = self.sender.signer
        if not isinstance(signer, SigningKeyPair):
            raise TypeError("the sender's key is not held in memory")
        return signer.seed

    @property
    def publics(self) -> list[PublicIdentity]:
        return [r.public for r in self.recipients]

    @property
    def opener(self) -> PrivateIdentity:
        return self.recipients[-1]

    def sealer(self, body: bytes) -> Callable[[], bytes]:
        """A callable that seals ``body`` to every recipient and returns the envelope."""
        sender, publics = self.sender, self.publics

        def run() -> bytes:
            return seal(
                body, sender=sender, recipients=publics, now=NOW, seq=1, rng=os.urandom
            ).data

        return run

    def opener_of(self, data: bytes) -> Callable[[], bytes]:
        """A callable that opens ``data`` as the last recipient and returns the body."""
        recipient, directory = self.opener, self.directory

        def run() -> bytes:
            opened = open_envelope(
                data, recipient=recipient, directory=directory, now=NOW, replay=ReplayGuard()
            )
            return opened.body

        return run
