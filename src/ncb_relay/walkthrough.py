"""A walk through the SkyManga case using only the protocol core.

Korea's culture ministry asked INTERPOL to act against SkyManga, a webtoon
piracy site run from Morocco; NCB Seoul asked NCB Rabat for assistance with the
General Secretariat in copy, and Rabat answered.  This module plays the first
exchange with real keys and real envelopes, and checks every property it shows
on the way.  It does no I/O of its own: ``now``, ``rng`` and ``say`` (where
progress lines go) are parameters.  The command ``ncb-relay demo`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable

from . import codec
from .codec import Value
from .directory import StaticDirectory
from .envelope import SealedEnvelope, VerifiedEnvelope, open_envelope, seal, verify_routing
from .errors import BindingMismatch, DecryptionFailed, NcbRelayError, Replay
from .freshness import ReplayGuard
from .identity import PrivateIdentity, fingerprint_text
from .primitives import RandomSource

__all__ = ["WalkthroughFailed", "run_core_walkthrough"]

SEOUL = "KR.ncb-seoul"
RABAT = "MA.ncb-rabat"
COORDINATOR = "XP.interpol-gs"
PARIS = "FR.ncb-paris"

REQUEST: dict[str, Value] = {
    "kind": "assistance-request",
    "case": "KR-MCST-SKYMANGA-01",
    "on-behalf-of": "Ministry of Culture, Sports and Tourism, Republic of Korea",
    "offence": "copyright piracy",
    "summary": (
        "SkyManga distributes Korean webtoons without licence in Korean, Spanish and "
        "Japanese and profits from advertising and donations; the operator is believed "
        "to be in Morocco."
    ),
    "actions": ["identify", "locate", "preserve-evidence", "take-down"],
    "handling": "H2",
}

RESPONSE: dict[str, Value] = {
    "kind": "assistance-response",
    "case": "KR-MCST-SKYMANGA-01",
    "outcome": "operator identified and detained; site taken down",
    "handling": "H1",
}


class WalkthroughFailed(NcbRelayError):
    """A check in the walkthrough did not hold (this is a bug, never expected)."""

    code = "walkthrough-failed"


def _expect_refusal(
    action: Callable[[], object], error: type[NcbRelayError], what: str
) -> NcbRelayError:
    try:
        action()
    except error as exc:
        return exc
    raise WalkthroughFailed(f"{what} was not refused with {error.__name__}")


def run_core_walkthrough(*, now: int, rng: RandomSource, say: Callable[[str], object]) -> int:
    """Play the exchange; return the number of checks that held, raise if one did not."""
    checks = 0

    def ok(line: str) -> None:
        nonlocal checks
        checks += 1
        say(f"  ok  {line}")

    say("Principals and their signing-key fingerprints:")
    people = {p: PrivateIdentity.generate(p, rng) for p in (SEOUL, RABAT, COORDINATOR, PARIS)}
    for principal, person in people.items():
        say(f"  {principal:<16} {fingerprint_text(person.signer.public_key.fingerprint)[:39]}")
    directory = StaticDirectory(person.public for person in people.values())
    seoul, rabat, coordinator, paris = (people[p] for p in (SEOUL, RABAT, COORDINATOR, PARIS))

    say("\nNCB Seoul seals a request for assistance to NCB Rabat, copy to the coordinator:")
    body = codec.encode(REQUEST)
    request: SealedEnvelope = seal(
        body, sender=seoul, recipients=[rabat.public, coordinator.public], now=now, seq=1, rng=rng
    )
    say(f"  {len(body)} byte body -> {len(request.data)} byte envelope")

    routed = verify_routing(request.data, directory=directory, now=now + 1)
    say(
        f"  relay sees: from {routed.sender} to {', '.join(routed.recipients)}, "
        f"id {routed.message_id.hex()[:16]}..., {len(routed.payload)} bytes of ciphertext"
    )
    ok("the relay verified the sender's outer signature without reading the body")

    guards = {p: ReplayGuard() for p in people}
    opened: dict[str, VerifiedEnvelope] = {}
    for reader in (rabat, coordinator):
        opened[reader.principal] = open_envelope(
            request.data,
            recipient=reader,
            directory=directory,
            now=now + 5,
            replay=guards[reader.principal],
        )
    if not opened[RABAT].body == opened[COORDINATOR].body == body:
        raise WalkthroughFailed("recipients read different bodies")
    ok("NCB Rabat and the coordinator both opened it and read the same request")

    _expect_refusal(
        lambda: open_envelope(
            request.data, recipient=paris, directory=directory, now=now + 5, replay=guards[PARIS]
        ),
        DecryptionFailed,
        "a bureau outside the recipient list reading the request",
    )
    ok("NCB Paris, not a recipient, cannot read it")

    tampered = bytearray(request.data)
    tampered[len(tampered) // 2] ^= 0x01
    _expect_refusal(
        lambda: open_envelope(
            bytes(tampered), recipient=rabat, directory=directory, now=now + 5, replay=guards[RABAT]
        ),
        NcbRelayError,
        "a copy with one bit changed",
    )
    ok("a copy with one bit flipped in transit is refused")

    _expect_refusal(
        lambda: open_envelope(
            request.data, recipient=rabat, directory=directory, now=now + 9, replay=guards[RABAT]
        ),
        Replay,
        "a second delivery of the same request",
    )
    ok("a replayed copy is refused")

    say("\nNCB Rabat answers, bound to the exact request:")
    answer = seal(
        codec.encode(RESPONSE),
        sender=rabat,
        recipients=[seoul.public, coordinator.public],
        now=now + 3600,
        seq=1,
        rng=rng,
        reply_to=request.message_hash,
    )
    reply = open_envelope(
        answer.data, recipient=seoul, directory=directory, now=now + 3601, replay=guards[SEOUL]
    )
    reply.require_reply_to(request)
    ok("NCB Seoul opened the response and checked it answers its request")

    other = seal(
        codec.encode(REQUEST), sender=seoul, recipients=[rabat.public], now=now + 60, seq=2, rng=rng
    )
    _expect_refusal(
        lambda: reply.require_reply_to(other),
        BindingMismatch,
        "a response spliced onto another request",
    )
    ok("the same response does not pass as the answer to a different request")
    return checks
