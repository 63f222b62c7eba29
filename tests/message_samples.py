"""A tiny in-memory post office for the message-layer tests, and the sample bodies.

The sample bodies (the SkyManga case) live in ``spec/vectors/skymanga_bodies.py``,
shared with messages.json.  :class:`Post` seals with :func:`seal_message` and
delivers with :func:`open_envelope` then :func:`read_message`, each principal
with its own replay guard and sequence numbers, so tests exercise the real
envelope path.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"
if str(VECTORS) not in sys.path:  # the shared sample bodies live beside the vectors
    sys.path.insert(0, str(VECTORS))

from skymanga_bodies import (  # noqa: E402
    GS,
    H0,
    H1,
    H2,
    HOUR,
    PARIS,
    RABAT,
    SEOUL,
    SKYMANGA,
    TOKYO,
    acknowledgement,
    diffusion,
    error_report,
    every_body,
    notice,
    permission,
    request,
    response,
    status,
    withdrawal,
)

from fixtures import NOW, seeded_rng, world  # noqa: E402
from ncb_relay import (  # noqa: E402
    InvalidBody,
    PublicIdentity,
    ReplayGuard,
    SealedEnvelope,
    VerifiedEnvelope,
    codec,
    open_envelope,
)
from ncb_relay.messages import (  # noqa: E402
    Body,
    BodyRegistry,
    Message,
    decode_body,
    encode_body,
    read_message,
    seal_message,
)

__all__ = [
    "BRASILIA",
    "BUREAUS",
    "DELETE",
    "GS",
    "H0",
    "H1",
    "H2",
    "HOUR",
    "MADRID",
    "PARIS",
    "RABAT",
    "SEOUL",
    "SKYMANGA",
    "TOKYO",
    "Post",
    "acknowledgement",
    "at",
    "diffusion",
    "edited",
    "error_report",
    "every_body",
    "field_of",
    "notice",
    "permission",
    "refused",
    "request",
    "response",
    "status",
    "withdrawal",
]

MADRID, BRASILIA = "ES.ncb-madrid", "BR.ncb-brasilia"
BUREAUS = (SEOUL, RABAT, GS, PARIS, TOKYO, MADRID, BRASILIA)
DELETE = object()  # as a new value in edited(): remove the key


def at(dotted: str) -> tuple[str | int, ...]:
    """``"content.offences.0.category"`` as a path of keys and indices."""
    return tuple(int(part) if part.isdigit() else part for part in dotted.split("."))


def field_of(dotted: str) -> str:
    """The field path an InvalidBody names (MSG-4): ``content.offences[0].category``."""
    return "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(at(dotted))
    )


def edited(body: Body, dotted: str, value: object) -> bytes:
    """The encoding of ``body`` with the value at ``dotted`` replaced, or removed (DELETE)."""
    tree: Any = codec.decode(encode_body(body))
    path = at(dotted)
    target = tree
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return codec.encode(tree)


def refused(data: bytes) -> InvalidBody:
    """The InvalidBody that decoding ``data`` raises (the test fails if it decodes)."""
    with pytest.raises(InvalidBody) as caught:
        decode_body(data)
    return caught.value


class Post:
    """Principals with keys, replay guards and sequence numbers; no network."""

    def __init__(self, *principals: str, registry: BodyRegistry | None = None) -> None:
        self.ids, self.directory = world(*(principals or BUREAUS))
        self.guards = {p: ReplayGuard() for p in self.ids}
        self.seqs: Counter[str] = Counter()
        self.rng = seeded_rng(b"message tests")
        self.registry = registry if registry is not None else BodyRegistry()

    def public(self, *principals: str) -> list[PublicIdentity]:
        return [self.ids[p].public for p in principals]

    def next_seq(self, sender: str) -> int:
        self.seqs[sender] += 1
        return self.seqs[sender]

    def send(
        self,
        body: Body,
        sender: str,
        to: Iterable[str],
        *,
        now: int = NOW,
        reply_to: bytes | None = None,
    ) -> SealedEnvelope:
        return seal_message(
            body,
            sender=self.ids[sender],
            recipients=self.public(*to),
            now=now,
            seq=self.next_seq(sender),
            rng=self.rng,
            reply_to=reply_to,
        )

    def open(self, data: SealedEnvelope | bytes, by: str, *, now: int = NOW) -> VerifiedEnvelope:
        raw = data.data if isinstance(data, SealedEnvelope) else data
        return open_envelope(
            raw, recipient=self.ids[by], directory=self.directory, now=now, replay=self.guards[by]
        )

    def deliver(self, data: SealedEnvelope | bytes, by: str, *, now: int = NOW) -> Message:
        return read_message(self.open(data, by, now=now), coordinator=GS, registry=self.registry)
