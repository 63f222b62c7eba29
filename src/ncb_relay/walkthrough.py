"""A walk through the SkyManga case using only the protocol core.

Korea's culture ministry asked INTERPOL to act against SkyManga, a webtoon
piracy site run from Morocco; NCB Seoul asked NCB Rabat for assistance with the
General Secretariat in copy, and Rabat answered.  This module plays the first
exchange with real keys and real envelopes, and checks every property it shows
on the way.  It does no I/O of its own: ``now``, ``rng`` and ``say`` (where
progress lines go) are parameters.  It is a self-check of the core's refusals
(an outsider, a tampered copy, a replay, a misbound reply), run by the tests;
``ncb-relay demo`` plays the whole case through a relay
(:mod:`ncb_relay.demo.play`).
"""

from __future__ import annotations

from collections.abc import Callable

from .directory import StaticDirectory
from .envelope import SealedEnvelope, VerifiedEnvelope, open_envelope, verify_routing
from .errors import (
    BindingMismatch,
    DecryptionFailed,
    DisseminationForbidden,
    NcbRelayError,
    Replay,
)
from .freshness import ReplayGuard
from .identity import PrivateIdentity, fingerprint_text
from .messages import (
    AssistanceRequest,
    AssistanceResponse,
    Authority,
    Handling,
    Offence,
    Subjects,
    Urgency,
    Website,
    read_message,
    seal_forward,
    seal_message,
)
from .primitives import RandomSource

__all__ = ["WalkthroughFailed", "run_core_walkthrough"]

SEOUL = "KR.ncb-seoul"
RABAT = "MA.ncb-rabat"
COORDINATOR = "XP.interpol-gs"
PARIS = "FR.ncb-paris"

H0 = Handling(code="H0", source_reliability="A", information_accuracy=1)
H2 = Handling(
    code="H2",
    source_reliability="B",
    information_accuracy=2,
    conditions=("Not to be passed on without the consent of NCB Seoul.",),
)

REQUEST = AssistanceRequest(
    handling=H2,
    case_reference="KR-MCST-SKYMANGA-01",
    originating_authority=Authority(
        name="Ministry of Culture, Sports and Tourism, Copyright Protection Division",
        country="KR",
    ),
    offences=(Offence(category="copyright-piracy"),),
    summary=(
        "SkyManga distributes Korean webtoons without licence in Korean, Spanish and "
        "Japanese and profits from advertising and donations; the operator is believed "
        "to be in Morocco."
    ),
    subjects=Subjects(
        websites=(
            Website(
                domain="skymanga.example",
                description="Webtoons in Korean, Spanish and Japanese without licence.",
            ),
        ),
    ),
    requested_actions=("identify", "locate", "preserve-evidence", "take-down"),
    legal_basis="Copyright Act of the Republic of Korea",
    urgency=Urgency.standard(),
    languages=("en", "ko"),
)

RESPONSE = AssistanceResponse(
    handling=H0,
    outcome="completed",
    findings="The operator, a Moroccan national, was identified and detained; the site is down.",
    actions_taken=("identify", "locate", "take-down", "arrest"),
)


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
    request: SealedEnvelope = seal_message(
        REQUEST,
        sender=seoul,
        recipients=[rabat.public, coordinator.public],
        now=now,
        seq=1,
        rng=rng,
    )
    say(
        f"  case {REQUEST.case_reference}, handling {REQUEST.handling.code}: "
        f"{len(request.data)} byte envelope"
    )

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
    if opened[RABAT].body != opened[COORDINATOR].body:
        raise WalkthroughFailed("recipients read different bodies")
    received = read_message(opened[RABAT], coordinator=COORDINATOR).body
    if received != REQUEST:
        raise WalkthroughFailed("the typed request did not survive the round trip")
    ok("NCB Rabat and the coordinator both opened it and read the same typed request")

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

    _expect_refusal(
        lambda: seal_forward(
            opened[COORDINATOR],
            sender=coordinator,
            recipients=[paris.public],
            now=now + 60,
            seq=1,
            rng=rng,
            coordinator=COORDINATOR,
        ),
        DisseminationForbidden,
        "passing on an H2 request without the originator's permission",
    )
    ok("the coordinator cannot pass the H2 request on to NCB Paris without Seoul's consent")

    say("\nNCB Rabat answers, bound to the exact request:")
    answer = seal_message(
        RESPONSE,
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
    findings = read_message(reply, coordinator=COORDINATOR).body
    if not isinstance(findings, AssistanceResponse):
        raise WalkthroughFailed("the answer is not an assistance response")
    say(f"  outcome {findings.outcome}: {findings.findings}")
    ok("NCB Seoul opened the response and checked it answers its request")

    other = seal_message(
        REQUEST, sender=seoul, recipients=[rabat.public], now=now + 60, seq=2, rng=rng
    )
    _expect_refusal(
        lambda: reply.require_reply_to(other),
        BindingMismatch,
        "a response spliced onto another request",
    )
    ok("the same response does not pass as the answer to a different request")
    return checks
