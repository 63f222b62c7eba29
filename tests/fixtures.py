"""Deterministic principals and helpers shared by the tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ncb_relay import PrivateIdentity, StaticDirectory

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z, fixed so tests never read the clock

PRINCIPALS = ("KR.ncb-seoul", "MA.ncb-rabat", "XP.interpol-gs", "FR.ncb-paris", "JP.ncb-tokyo")


def seeded_rng(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic byte source (BLAKE2b in counter mode); for tests only."""
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.blake2b(counter.to_bytes(8, "little"), key=seed).digest()
            counter += 1
        return out[:n]

    return rng


def identity(principal: str) -> PrivateIdentity:
    return PrivateIdentity.generate(principal, seeded_rng(principal.encode()))


def world(*principals: str) -> tuple[dict[str, PrivateIdentity], StaticDirectory]:
    ids = {p: identity(p) for p in (principals or PRINCIPALS)}
    return ids, StaticDirectory(i.public for i in ids.values())
