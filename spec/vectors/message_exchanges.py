"""The exchanges of messages.json: reply binding and forwards, and the shared helpers.

A shared piece of ``cases_messages.py`` (spec/vectors/generate.py imports
modules not named ``cases_*`` by plain name).  Envelopes are sealed by the
library with randomness derived from fixed labels; every expected result is
checked against the library as the case is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from principals import CAST, DIRECTORY, NOW, Principal, derive
from skymanga_bodies import (
    H0,
    acknowledgement,
    diffusion,
    error_report,
    permission,
    request,
    response,
    status,
    withdrawal,
)
from vectorfile import JSON

from ncb_relay import primitives
from ncb_relay.envelope import SealedEnvelope, VerifiedEnvelope, open_envelope, seal
from ncb_relay.errors import NcbRelayError
from ncb_relay.freshness import ReplayGuard
from ncb_relay.messages import (
    AssistanceRequest,
    Body,
    CarriedDisclosure,
    Conversation,
    DisseminationPermission,
    Forward,
    encode_body,
    read_message,
    seal_forward,
    verify_forward,
)

SEOUL, RABAT, GS, PARIS, TOKYO = (
    CAST[p]
    for p in ("KR.ncb-seoul", "MA.ncb-rabat", "XP.interpol-gs", "FR.ncb-paris", "JP.ncb-tokyo")
)
CAST_USED = (SEOUL, RABAT, GS, PARIS, TOKYO)
COORDINATOR = GS.id
PERSON_TV_MESSAGES = b"NCBR1 tv msgs"
HOUR = 3600


class Stream:
    """Deterministic bytes for sealing: BLAKE2b-256(LE64(i), key=derive(label)) blocks."""

    def __init__(self, label: str) -> None:
        self._key = derive(label, PERSON_TV_MESSAGES)
        self._counter = 0
        self._buffer = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = self._counter.to_bytes(8, "little")
            self._buffer += primitives.blake2b(block, key=self._key, person=PERSON_TV_MESSAGES)
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


_SEQ: dict[str, int] = {}


def reset_sequences() -> None:
    """Start every sender's sequence numbers again (each build is independent)."""
    _SEQ.clear()


def sealed(
    body: Body | bytes,
    sender: Principal,
    to: list[Principal],
    *,
    created: int = NOW,
    reply_to: bytes | None = None,
    label: str,
) -> SealedEnvelope:
    """Seal without the library's sender-side checks, so hostile cases can be made."""
    _SEQ[sender.id] = _SEQ.get(sender.id, 0) + 1
    data = body if isinstance(body, bytes) else encode_body(body)
    return seal(
        data,
        sender=sender.identity,
        recipients=[p.identity.public for p in to],
        now=created,
        seq=_SEQ[sender.id],
        rng=Stream(label),
        reply_to=reply_to,
    )


def opened(data: bytes, by: Principal, now: int, guard: ReplayGuard) -> VerifiedEnvelope:
    return open_envelope(data, recipient=by.identity, directory=DIRECTORY, now=now, replay=guard)


def outcome(action: Callable[[], Any]) -> tuple[Any, str | None]:
    """The result of ``action``, or the wire code of the error it raised."""
    try:
        return action(), None
    except NcbRelayError as exc:
        return None, exc.code


def refusal(action: Callable[[], object]) -> tuple[str, str | None, str | None] | None:
    """``(code, field, reason)`` of the error ``action`` raises, or ``None`` if it succeeds."""
    try:
        action()
    except NcbRelayError as exc:
        return exc.code, getattr(exc, "field", None), getattr(exc, "reason", None)
    return None


# ---------------------------------------------------------------------------------
# ReplyBinding
# ---------------------------------------------------------------------------------


def tagged(tags: str) -> tuple[list[str], list[str]]:
    """``"Flag1,Flag2 | REQ-1,REQ-2"`` as (flags, requirements)."""
    flags, reqs = (part.strip().split(",") for part in tags.split("|"))
    return flags, reqs


def binding_case(
    comment: str, tags: str, request_env: SealedEnvelope, replies: list[tuple[SealedEnvelope, str]]
) -> JSON:
    """GS, a recipient of the request, follows it and receives ``replies`` in order."""
    flags, reqs = tagged(tags)
    guard = ReplayGuard()
    at_gs = read_message(opened(request_env.data, GS, NOW, guard), coordinator=COORDINATOR)
    assert isinstance(at_gs.body, AssistanceRequest)
    conversation = Conversation(at_gs.envelope, at_gs.body)
    out = []
    for reply, expected in replies:
        now = reply.header.created

        def receive(reply: SealedEnvelope = reply, now: int = now) -> str:
            message = read_message(opened(reply.data, GS, now, guard), coordinator=COORDINATOR)
            conversation.receive(message)
            return conversation.state.value

        state, error = outcome(receive)
        if (state or error) != expected:
            raise AssertionError(f"{comment}: the library gave {state or error}, not {expected}")
        entry: JSON = {"envelope": reply.data.hex(), "now": now}
        entry.update(
            {"result": "valid", "state": state}
            if error is None
            else {"result": "invalid", "error": error}
        )
        out.append(entry)
    return {
        "comment": comment,
        "flags": flags,
        "requirements": reqs,
        "observer": GS.id,
        "request": request_env.data.hex(),
        "now": NOW,
        "replies": out,
    }


def binding_cases() -> list[JSON]:
    a = sealed(request(handling=H0), SEOUL, [RABAT, GS], label="binding request A")
    b = sealed(
        request(handling=H0, case_reference="KR-MCST-2027-0043"),
        SEOUL,
        [RABAT, GS],
        created=NOW + 10,
        label="binding request B",
    )
    back = [SEOUL, GS]

    def reply(
        body: Body,
        sender: Principal,
        to: list[Principal],
        hours: int,
        *,
        label: str,
        answers: SealedEnvelope = a,
    ) -> SealedEnvelope:
        return sealed(
            body, sender, to, created=NOW + hours * HOUR, reply_to=answers.message_hash, label=label
        )

    ack = reply(acknowledgement(), RABAT, back, 1, label="ack A")
    prog = reply(status(), RABAT, back, 2, label="status A")
    ans = reply(response(), RABAT, back, 3, label="response A")
    decline = reply(
        acknowledgement(
            decision="declined", reason="Outside our competence.", expected_answer_by=None
        ),
        RABAT,
        back,
        4,
        label="decline A",
    )
    to_b = reply(response(), RABAT, back, 3, answers=b, label="response B")
    from_paris = reply(response(), PARIS, back, 3, label="response A from Paris")
    not_to_seoul = reply(response(), RABAT, [GS], 3, label="response A not to Seoul")
    withdraw = reply(withdrawal(), SEOUL, [RABAT, GS], 2, label="withdrawal A")
    withdraw_by_rabat = reply(withdrawal(), RABAT, back, 2, label="withdrawal A by Rabat")
    report = reply(error_report(), RABAT, back, 2, label="error report A")
    report_late = reply(error_report(), RABAT, back, 4, label="error report A, late")
    report_from_paris = reply(error_report(), PARIS, back, 2, label="error report A from Paris")
    diffusion_reply = reply(diffusion([PARIS.id]), RABAT, back, 2, label="diffusion naming A")
    return [
        binding_case(
            "acknowledgement, status update, response, in order",
            "Valid | CONV-1,CONV-2",
            a,
            [(ack, "acknowledged"), (prog, "in-progress"), (ans, "answered")],
        ),
        binding_case(
            "a response bound to another request of the same requester",
            "WrongRequest | CONV-2",
            a,
            [(to_b, "binding-mismatch")],
        ),
        binding_case(
            "a response from a bureau the request did not reach",
            "NotARecipient | CONV-2",
            a,
            [(from_paris, "binding-mismatch")],
        ),
        binding_case(
            "a response that does not list the requester",
            "NotAddressedToRequester | CONV-2",
            a,
            [(not_to_seoul, "binding-mismatch")],
        ),
        binding_case(
            "the response arrives before the acknowledgement sent first",
            "OutOfOrder | CONV-1",
            a,
            [(ans, "answered"), (ack, "answered"), (prog, "answered")],
        ),
        binding_case(
            "a decline after the answer contradicts it",
            "InvalidTransition | CONV-1",
            a,
            [(ans, "answered"), (decline, "invalid-transition")],
        ),
        binding_case(
            "the requester withdraws; a response that crossed it is kept",
            "Withdrawal,OutOfOrder | CONV-1,CONV-3",
            a,
            [(withdraw, "withdrawn"), (ans, "withdrawn")],
        ),
        binding_case(
            "a withdrawal by the responder",
            "Withdrawal | CONV-3",
            a,
            [(withdraw_by_rabat, "binding-mismatch")],
        ),
        binding_case(
            "a recipient's error reports about the request are kept and move nothing",
            "ErrorReport | CONV-7,CONV-1",
            a,
            [
                (ack, "acknowledged"),
                (report, "acknowledged"),
                (ans, "answered"),
                (report_late, "answered"),
            ],
        ),
        binding_case(
            "an error report from a bureau the request did not reach",
            "ErrorReport,NotARecipient | CONV-7,CONV-2",
            a,
            [(report_from_paris, "binding-mismatch"), (ack, "acknowledged")],
        ),
        binding_case(
            "a diffusion whose reply_to names the request is not part of its conversation",
            "NotAConversationBody | CONV-8",
            a,
            [(diffusion_reply, "binding-mismatch"), (ack, "acknowledged")],
        ),
    ]


# ---------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------


def forward_case(
    comment: str, tags: str, forward: SealedEnvelope, to: Principal, expected: str
) -> JSON:
    flags, reqs = tagged(tags)
    now = forward.header.created

    def verify() -> Any:
        message = read_message(
            opened(forward.data, to, now, ReplayGuard()), coordinator=COORDINATOR
        )
        return verify_forward(message, directory=DIRECTORY, coordinator=COORDINATOR)

    got, error = outcome(verify)
    case: JSON = {
        "comment": comment,
        "flags": flags,
        "requirements": reqs,
        "recipient": to.id,
        "now": now,
        "envelope": forward.data.hex(),
    }
    if expected == "valid":
        if error is not None:
            raise AssertionError(f"{comment}: the library refused it with {error}")
        case.update(
            result="valid",
            author=got.author,
            forwarder=got.forwarder,
            originalSchema=got.original_body.schema_id,
            originalHandling=got.original_body.handling.code,
            permission=got.permission is not None,
        )
    else:
        if error != expected:
            raise AssertionError(f"{comment}: the library gave {error}, not {expected}")
        case.update(result="invalid", error=error)
    return case


def forward_cases() -> list[JSON]:
    gs_guard = ReplayGuard()

    def at_gs(env: SealedEnvelope) -> VerifiedEnvelope:
        return opened(env.data, GS, env.header.created, gs_guard)

    def by_hand(
        sender: Principal,
        original: VerifiedEnvelope,
        to: list[Principal],
        label: str,
        *,
        grant: VerifiedEnvelope | None = None,
        created: int = NOW + HOUR,
    ) -> SealedEnvelope:
        body = Forward(
            handling=H0,
            original=CarriedDisclosure.of(original.disclose()),
            permission=CarriedDisclosure.of(grant.disclose()) if grant else None,
        )
        return sealed(body, sender, to, created=created, label=label)

    req = sealed(request(), SEOUL, [GS], label="forward request")  # H2
    other = sealed(
        request(case_reference="KR-MCST-2027-0044"),
        SEOUL,
        [GS],
        created=NOW + 1,
        label="forward other request",
    )
    grant = sealed(
        permission(req.message_hash, RABAT.id),
        SEOUL,
        [GS],
        created=NOW + 2,
        label="forward permission",
    )
    short_grant = sealed(
        DisseminationPermission(
            handling=H0,
            original=req.message_hash,
            granted_to=(RABAT.id,),
            valid_until=NOW + 30 * 60,
        ),
        SEOUL,
        [GS],
        created=NOW + 3,
        label="forward short permission",
    )
    other_grant = sealed(
        permission(other.message_hash, RABAT.id),
        SEOUL,
        [GS],
        created=NOW + 4,
        label="forward other permission",
    )
    tokyo_grant = sealed(
        permission(req.message_hash, RABAT.id, PARIS.id),
        TOKYO,
        [GS],
        created=NOW + 5,
        label="forward Tokyo permission",
    )
    req_gs, grant_gs = at_gs(req), at_gs(grant)
    short_gs, other_grant_gs, tokyo_gs = at_gs(short_grant), at_gs(other_grant), at_gs(tokyo_grant)

    honest = seal_forward(
        req_gs,
        sender=GS.identity,
        recipients=[RABAT.identity.public, SEOUL.identity.public],
        now=NOW + HOUR,
        seq=900,
        rng=Stream("forward honest"),
        coordinator=COORDINATOR,
        permission=grant_gs,
    ).sealed
    linked = sealed(
        diffusion([PARIS.id, TOKYO.id]), RABAT, [GS], created=NOW + 6, label="forward diffusion"
    )
    circulated = seal_forward(
        at_gs(linked),
        sender=GS.identity,
        recipients=[PARIS.identity.public, TOKYO.identity.public],
        now=NOW + HOUR,
        seq=901,
        rng=Stream("forward diffusion"),
        coordinator=COORDINATOR,
    ).sealed
    at_paris = opened(circulated.data, PARIS, NOW + HOUR, ReplayGuard())
    carried = read_message(at_paris, coordinator=COORDINATOR).body
    assert isinstance(carried, Forward)
    diffusion_at_paris = carried.original
    wrong_key = Forward(
        handling=H0,
        original=CarriedDisclosure(envelope=diffusion_at_paris.envelope, content_key=bytes(32)),
    )
    return [
        forward_case(
            "the coordinator forwards Seoul's H2 request to Rabat under Seoul's permission, "
            "Seoul in copy",
            "Provenance | FWD-1,FWD-4,HAND-3",
            honest,
            RABAT,
            "valid",
        ),
        forward_case(
            "the coordinator forwards Rabat's H0 diffusion to Paris and Tokyo",
            "Provenance | FWD-1,HAND-3",
            circulated,
            TOKYO,
            "valid",
        ),
        forward_case(
            "an H2 request forwarded without permission",
            "H2WithoutPermission | FWD-4",
            by_hand(GS, req_gs, [RABAT], "forward no permission"),
            RABAT,
            "dissemination-forbidden",
        ),
        forward_case(
            "an H2 request forwarded to Paris under a permission naming only Rabat",
            "PermissionNotCovering | FWD-4",
            by_hand(GS, req_gs, [PARIS], "forward to Paris", grant=grant_gs),
            PARIS,
            "dissemination-forbidden",
        ),
        forward_case(
            "a permission signed by Tokyo, not by the originator",
            "PermissionNotFromOriginator | FWD-4",
            by_hand(GS, req_gs, [RABAT], "forward Tokyo permission", grant=tokyo_gs),
            RABAT,
            "dissemination-forbidden",
        ),
        forward_case(
            "Seoul's permission for another of its requests",
            "PermissionForAnotherMessage | FWD-4",
            by_hand(GS, req_gs, [RABAT], "forward other permission", grant=other_grant_gs),
            RABAT,
            "dissemination-forbidden",
        ),
        forward_case(
            "a permission valid for 30 minutes, used an hour later",
            "PermissionExpired | FWD-4",
            by_hand(GS, req_gs, [RABAT], "forward expired permission", grant=short_gs),
            RABAT,
            "dissemination-forbidden",
        ),
        forward_case(
            "Paris forwards Rabat's diffusion, which was addressed to the coordinator only",
            "ForwarderNotRecipient | FWD-2",
            sealed(
                Forward(handling=H0, original=diffusion_at_paris),
                PARIS,
                [TOKYO],
                created=NOW + 2 * HOUR,
                label="forward by non-recipient",
            ),
            TOKYO,
            "binding-mismatch",
        ),
        forward_case(
            "Paris forwards the coordinator's forward",
            "ForwardOfForward | FWD-3",
            by_hand(PARIS, at_paris, [TOKYO], "forward of forward", created=NOW + 2 * HOUR),
            TOKYO,
            "dissemination-forbidden",
        ),
        forward_case(
            "the carried content key is all zero",
            "WrongContentKey | FWD-1",
            sealed(wrong_key, GS, [TOKYO], created=NOW + 2 * HOUR, label="forward wrong key"),
            TOKYO,
            "decryption-failed",
        ),
    ]
