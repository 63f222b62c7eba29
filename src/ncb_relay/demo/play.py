"""The SkyManga case played by a coordinator and five bureaus through a real relay.

Theory of operation.  :func:`play` makes a throw-away deployment in a
temporary folder (:func:`~ncb_relay.demo.deployment.make_deployment`: root
keys, trust anchor, a signed directory listing the cast of
:mod:`ncb_relay.demo.scenario`), runs its relay on a free loopback port with a
SQLite store, and connects every principal as a
:class:`~ncb_relay.bureau.Bureau` with its journal in the same folder.  Every
message then goes over HTTP through the relay and is verified by the bureau
that receives it before the demo sees it.

Each bureau's only handler records what it received (a handler never waits
for another bureau: handlers run one at a time in the inbox loop); the
driver below plays the case step by step, waits for each message to arrive
where it should, checks what the receiving bureau verified, and reports the
step to ``say`` as a :class:`DemoStep`.  Anything that does not hold raises
:class:`DemoFailed`; the whole run is bounded by ``timeout``.

This is an adapter (it uses the clock, randomness, the file system and the
network); nothing here is for production.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from ..bureau import Bureau, Incoming, RowState
from ..errors import DisseminationForbidden, NcbRelayError
from ..exception_groups import leaf_errors
from ..identity import Signer
from ..log_cli import run_audit
from ..log_keys import relay_log_key, witness_key
from ..messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Body,
    Conversation,
    Diffusion,
    DisseminationPermission,
    RequestState,
    ReviewGate,
    ReviewStatus,
    StatusUpdate,
)
from ..verified_directory import VerifiedDirectory
from ..witness import Witness
from . import scenario
from .deployment import make_deployment, running_relay
from .scenario import COORDINATOR, LINKED_SITES_TO, PARIS, RABAT, SEOUL

__all__ = ["INTRO", "DemoFailed", "DemoStep", "Transcript", "play", "run_demo"]

GS = COORDINATOR
STEPS = 16
HASH_CHARS = 12
WIDTH = 100
SETUP_TIME = 30.0  # seconds, on top of the case's timeout: start and stop
INTRO = (
    "The SkyManga case: a webtoon piracy site run from Morocco, reported by Korea's culture "
    "ministry; NCB Seoul asks, the INTERPOL General Secretariat coordinates, NCB Rabat "
    "answers, and a diffusion about linked sites goes round. Played over HTTP through a "
    "relay on this machine."
)


class DemoFailed(NcbRelayError):
    """Something the demo checks did not hold, or it did not finish in time."""

    code = "demo-failed"


@dataclass(frozen=True, slots=True)
class DemoStep:
    """One step of the case: who did what, to whom, and how the receiver verified it."""

    number: int
    total: int
    actor: str
    action: str
    to: tuple[str, ...]
    what: str
    verified: str
    message: str | None = None  # the message hash, hex

    @property
    def progress(self) -> str:
        width = len(str(self.total))
        return f"[{self.number:>{width}}/{self.total}]"

    def lines(self, width: int = WIDTH) -> list[str]:
        """The step for a person to read: a headline, what it says, how it was verified."""
        pad = " " * (len(self.progress) + 1)
        arrow = f" -> {', '.join(self.to)}" if self.to else ""
        wrap = partial(textwrap.wrap, width=width, break_on_hyphens=False)
        return [
            *wrap(f"{self.progress} {self.actor}{arrow}: {self.action}", subsequent_indent=pad),
            *wrap(self.what, initial_indent=pad, subsequent_indent=pad),
            *wrap(f"verified: {self.verified}", initial_indent=pad, subsequent_indent=pad + "  "),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "of": self.total,
            "actor": self.actor,
            "action": self.action,
            "to": list(self.to),
            "what": self.what,
            "verified": self.verified,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Transcript:
    """The whole run: the relay, the cast, every step, and what came of it."""

    relay_id: str
    relay_url: str
    principals: tuple[str, ...]
    steps: tuple[DemoStep, ...]
    request_state: str
    diffusion_reached: tuple[str, ...]
    messages_sent: int
    messages_received: int
    refused: int
    seconds: float

    def summary(self) -> str:
        return (
            f"demo: the SkyManga case played through relay {self.relay_id}: "
            f"{len(self.steps)} steps, {self.messages_sent} messages sent and "
            f"{self.messages_received} received, all verified, none refused "
            f"({self.seconds:.1f} s)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "demo": "skymanga",
            "relay": {"id": self.relay_id, "url": self.relay_url},
            "principals": list(self.principals),
            "steps": [step.to_json() for step in self.steps],
            "summary": {
                "ok": True,
                "steps": len(self.steps),
                "request_state": self.request_state,
                "diffusion_reached": list(self.diffusion_reached),
                "messages_sent": self.messages_sent,
                "messages_received": self.messages_received,
                "refused": self.refused,
                "seconds": round(self.seconds, 3),
            },
        }


def _short(digest: bytes) -> str:
    return digest.hex()[:HASH_CHARS]


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(f"expected {what}")


@dataclass
class _Arrivals:
    """What each bureau's handler received, until the driver takes it."""

    seen: list[tuple[str, Incoming]] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def handler(self, principal: str) -> Callable[[Incoming], Any]:
        async def record(incoming: Incoming) -> None:
            self.seen.append((principal, incoming))
            self.changed.set()
            self.changed = anyio.Event()

        return record

    async def take(self, principal: str, kind: type[Body]) -> Incoming:
        """The first message of ``kind`` that ``principal`` received and nobody took yet."""
        while True:
            for i, (who, incoming) in enumerate(self.seen):
                if who == principal and isinstance(incoming.body, kind):
                    del self.seen[i]
                    return incoming
            await self.changed.wait()

    def pending(self, principal: str) -> list[Incoming]:
        return [incoming for who, incoming in self.seen if who == principal]


class _Play:
    """The driver: the bureaus, the review gate, and the steps reported so far."""

    def __init__(self, arrivals: _Arrivals, say: Callable[[DemoStep], object]) -> None:
        self.bureaus: dict[str, Bureau] = {}
        self.arrivals = arrivals
        self.say = say
        self.steps: list[DemoStep] = []
        self.gate = ReviewGate(under_review=[RABAT])
        self.current = "starting the relay"

    def step(
        self,
        actor: str,
        action: str,
        what: str,
        verified: str,
        *,
        to: Sequence[str] = (),
        message: bytes | None = None,
    ) -> None:
        done = DemoStep(
            len(self.steps) + 1,
            STEPS,
            actor,
            action,
            tuple(to),
            what,
            verified,
            None if message is None else message.hex(),
        )
        self.steps.append(done)
        self.say(done)

    def serial(self, principal: str) -> int:
        keys = self.bureaus[principal].keys
        _expect(isinstance(keys, VerifiedDirectory), f"{principal} to hold a verified directory")
        assert isinstance(keys, VerifiedDirectory)
        return keys.serial

    def checked(self, reader: str, incoming: Incoming) -> str:
        """How ``reader``'s bureau verified a message it received directly."""
        return (
            f"{reader} checked {incoming.sender}'s signature against directory serial "
            f"{self.serial(reader)}, the binding to {reader}, freshness and replay"
        )

    async def receive(self, principal: str, kind: type[Body], what: str) -> Incoming:
        self.current = what
        return await self.arrivals.take(principal, kind)


async def _ask(seoul: Bureau, timeout: float, answered: list[Conversation | NcbRelayError]) -> None:
    try:
        answered.append(await seoul.request(scenario.request(), to=[GS], timeout=timeout))
    except NcbRelayError as exc:
        answered.append(exc)


async def _case(
    play: _Play, relay_url: str, relay_id: str, timeout: float
) -> tuple[RequestState, tuple[str, ...]]:
    """Play the case; return the state of Seoul's request and the bureaus the diffusion reached."""
    bureaus = play.bureaus
    seoul, gs, rabat = bureaus[SEOUL], bureaus[GS], bureaus[RABAT]
    directory = gs.keys
    assert isinstance(directory, VerifiedDirectory)
    play.step(
        relay_id,
        "relay started",
        f"listening on {relay_url}, mailboxes in a new SQLite store in a temporary folder",
        f"its directory (serial {directory.serial}, {len(bureaus)} principals) was checked "
        "against the trust anchor before it started",
    )
    assert gs.anchors is not None
    anchor = gs.anchors.current.anchor
    serials = {principal: play.serial(principal) for principal in bureaus}
    _expect(len(set(serials.values())) == 1, "every principal to hold the same directory")
    play.step(
        f"{len(bureaus)} principals",
        "connected",
        ", ".join(bureaus),
        f"each fetched the directory from the relay and checked it against trust anchor "
        f"{anchor.serial}: serial {directory.serial}, signed by {len(directory.signer_ids)} of "
        f"{len(anchor.roots)} root keys (threshold {anchor.threshold})",
    )

    # Seoul asks the General Secretariat, on behalf of the ministry; request() waits for the answer.
    answered: list[Conversation | NcbRelayError] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_ask, seoul, timeout, answered)
        at_gs = await play.receive(GS, AssistanceRequest, "the request reaching the coordinator")
        body = at_gs.body
        assert isinstance(body, AssistanceRequest)
        _expect(body == scenario.request(), "the coordinator to read Seoul's request unchanged")
        _expect(at_gs.forwarded is None and at_gs.sender == SEOUL, "the request to be Seoul's")
        request_hash = at_gs.message.message_hash
        sent = [row for row in seoul.outbox() if row.schema == AssistanceRequest.schema_id]
        _expect(
            [row.message_hash for row in sent] == [request_hash],
            "the coordinator to hold the very request Seoul sent",
        )
        authority = body.originating_authority
        play.step(
            SEOUL,
            "request for assistance",
            f"case {body.case_reference}, handling {body.handling.code}, on behalf of the "
            f"{authority.name} ({authority.country}): {', '.join(body.requested_actions)} "
            f"at {body.subjects.websites[0].domain}",
            play.checked(GS, at_gs),
            to=[GS],
            message=request_hash,
        )

        await seoul.send(scenario.permission(request_hash), to=[GS])
        consent = await play.receive(GS, DisseminationPermission, "Seoul's permission")
        granted = consent.body
        assert isinstance(granted, DisseminationPermission)
        _expect(granted.original == request_hash, "the permission to name Seoul's request")
        play.step(
            SEOUL,
            "permission to pass the request on",
            f"the H2 request {_short(request_hash)} may go to {', '.join(granted.granted_to)}",
            f"{play.checked(GS, consent)}; it names request {_short(request_hash)}",
            to=[GS],
            message=consent.message.message_hash,
        )

        try:
            await gs.forward(at_gs, to=[RABAT, PARIS], permission=consent)
        except DisseminationForbidden as exc:
            refusal = exc
        else:
            raise DemoFailed("the coordinator passed Seoul's H2 request on to NCB Paris")
        play.step(
            GS,
            "forward to NCB Paris refused",
            f"passing Seoul's H2 request to {PARIS} as well as {RABAT}",
            f"refused before anything was sealed ({refusal.code}): Seoul's signed permission "
            f"names {', '.join(granted.granted_to)} only",
        )

        forward = await gs.forward(
            at_gs,
            to=[RABAT, SEOUL],
            permission=consent,
            note="Please assist NCB Seoul in case KR-MCST-SKYMANGA-01; reply to both of us.",
        )
        at_rabat = await play.receive(RABAT, AssistanceRequest, "the forward reaching Rabat")
        copy = await play.receive(SEOUL, AssistanceRequest, "Seoul's copy of the forward")
        for reader, seen in ((RABAT, at_rabat), (SEOUL, copy)):
            provenance = seen.forwarded
            _expect(provenance is not None, f"{reader} to receive a forward")
            assert provenance is not None
            _expect(
                (provenance.author, provenance.forwarder) == (SEOUL, GS),
                f"{reader} to see author {SEOUL}, forwarder {GS}",
            )
            _expect(provenance.original_hash == request_hash, f"{reader} to get the request")
            _expect(seen.body == scenario.request(), f"{reader} to read the request unchanged")
        assert at_rabat.forwarded is not None
        carried = at_rabat.forwarded.permission
        _expect(carried is not None and carried.sender == SEOUL, "Seoul's permission, carried")
        play.step(
            GS,
            "forward with provenance",
            f"Seoul's H2 request to NCB Rabat (Seoul in copy), with Seoul's permission; "
            f"forward {_short(forward.message_hash)}",
            f"{RABAT} checked the signature of forwarder {GS} and of original author {SEOUL} "
            f"(directory serial {play.serial(RABAT)}), and that Seoul's signed permission "
            f"covers {RABAT}; {SEOUL} got the same verified copy",
            to=[RABAT, SEOUL],
            message=forward.message_hash,
        )

        # Rabat acknowledges, reports twice and answers; each reply goes to the GS and Seoul.
        now = int(time.time())
        replies: list[tuple[Body, str, RequestState]] = [
            (scenario.acknowledgement(now), "acknowledgement", RequestState.ACKNOWLEDGED),
            *(
                (update, "status update", RequestState.IN_PROGRESS)
                for update in scenario.progress(now)
            ),
            (scenario.response(), "response with findings", RequestState.ANSWERED),
        ]
        for reply, action, state in replies:
            out = await rabat.reply(at_rabat, reply)
            at_seoul = await play.receive(SEOUL, type(reply), f"Rabat's {action} reaching Seoul")
            at_gs_copy = await play.receive(GS, type(reply), f"Rabat's {action} reaching the GS")
            for reader, seen in ((SEOUL, at_seoul), (GS, at_gs_copy)):
                _expect(seen.sender == RABAT, f"{reader} to get Rabat's {action}")
                _expect(seen.message.message_hash == out.message_hash, f"the {action} as sent")
                _expect(
                    seen.conversation is not None
                    and seen.conversation.request_hash == request_hash,
                    f"{reader} to bind the {action} to Seoul's request",
                )
                _expect(
                    seen.step is not None and seen.step.after is state,
                    f"Seoul's request to be {state} at {reader} after the {action}",
                )
            play.step(
                RABAT,
                action,
                _describe(reply),
                f"{play.checked(SEOUL, at_seoul)}; bound to request {_short(request_hash)} "
                f"through forward {_short(forward.message_hash)}; request now {state} "
                f"(also at {GS})",
                to=[GS, SEOUL],
                message=out.message_hash,
            )
    (outcome,) = answered
    if isinstance(outcome, NcbRelayError):
        raise DemoFailed(f"Seoul's request was not answered: {outcome.message}")
    _expect(outcome.state is RequestState.ANSWERED, "Seoul's request() to return it answered")
    _expect(
        gs.conversations.get(request_hash).state is RequestState.ANSWERED,
        "the coordinator to follow the request to its answer",
    )

    # Rabat's diffusion about the linked sites: held at the review gate, approved, forwarded.
    linked = scenario.linked_sites()
    sent_diffusion = await rabat.send(linked, to=[GS])
    at_gate = await play.receive(GS, Diffusion, "Rabat's diffusion reaching the coordinator")
    _expect(at_gate.message.recipients == (GS,), "the diffusion to be addressed to the GS alone")
    held = play.gate.submit(at_gate.message)
    _expect(held.status is ReviewStatus.HELD, "Rabat's diffusion to be held for review")
    unseen = [b for b in LINKED_SITES_TO if play.arrivals.pending(b)]
    _expect(not unseen, "no bureau to have anything before the review")
    play.step(
        RABAT,
        "diffusion held at the review gate",
        f"'{linked.title}': {', '.join(w.domain for w in linked.subjects.websites)}; "
        f"distribution {', '.join(linked.distribution.bureaus)}; {RABAT} is under review",
        f"{play.checked(GS, at_gate)}; sealed for {GS} alone, so no bureau can read it yet",
        to=[GS],
        message=sent_diffusion.message_hash,
    )

    approved = play.gate.approve(
        held.message_hash, now=int(time.time()), note="Checked by the General Secretariat."
    )
    targets = approved.targets([b for b in bureaus if b != GS])
    _expect(approved.status is ReviewStatus.APPROVED, "the diffusion to be approved")
    _expect(targets == tuple(sorted(LINKED_SITES_TO)), "the distribution to name the bureaus")
    play.step(
        GS,
        "diffusion approved",
        f"the reviewer approved {_short(held.message_hash)} for {', '.join(targets)}",
        f"review gate {ReviewStatus.HELD} -> {approved.status} at {GS}; the diffusion stays "
        "sealed for the coordinator alone until it forwards it",
        message=held.message_hash,
    )

    circulated = await gs.forward(at_gate, to=targets, note="Approved after review.")
    play.gate.mark_forwarded(held.message_hash)
    reached = []
    for bureau in targets:
        seen = await play.receive(bureau, Diffusion, f"the diffusion reaching {bureau}")
        provenance = seen.forwarded
        _expect(
            provenance is not None and (provenance.author, provenance.forwarder) == (RABAT, GS),
            f"{bureau} to see author {RABAT}, forwarder {GS}",
        )
        _expect(seen.body == linked, f"{bureau} to read the diffusion unchanged")
        reached.append(bureau)
    _expect(not play.gate.held and not play.gate.ready_to_forward, "the gate to be empty")
    play.step(
        GS,
        "diffusion forwarded",
        f"forward {_short(circulated.message_hash)} of Rabat's diffusion to {len(reached)} bureaus",
        f"each of {', '.join(reached)} checked the signature of forwarder {GS} and of "
        f"original author {RABAT} against directory serial {directory.serial}",
        to=reached,
        message=circulated.message_hash,
    )
    return outcome.state, tuple(reached)


def _describe(body: Body) -> str:
    if isinstance(body, Acknowledgement):
        return f"{body.decision}, Rabat's reference {body.reference}"
    if isinstance(body, StatusUpdate):
        return f"{body.stage}: {body.summary}"
    if isinstance(body, AssistanceResponse):
        return f"{body.outcome} (handling {body.handling.code}): {body.findings}"
    return body.schema_id


def _journals(play: _Play) -> tuple[int, int, int]:
    """Check every journal: all sent accepted, all received handled, nothing refused."""
    sent = received = refused = 0
    for principal, bureau in play.bureaus.items():
        outbox, inbox = bureau.outbox(), bureau.inbox()
        _expect(
            all(row.state is RowState.ACCEPTED for row in outbox),
            f"the relay to accept every message {principal} sent",
        )
        _expect(
            all(row.state is RowState.HANDLED for row in inbox),
            f"{principal} to handle every message it received",
        )
        sent, received = sent + len(outbox), received + len(inbox)
        refused += len(bureau.store.refused())
    _expect(refused == 0, "no message to be refused")
    _expect(not play.arrivals.seen, "every message received to be part of the case")
    play.step(
        f"{len(play.bureaus)} principals",
        "journals checked",
        f"{sent} messages sent, all accepted by the relay; {received} received, all handled",
        "every message passed every check on arrival: no bureau refused any",
    )
    return sent, received, refused


async def _log(play: _Play, relay_id: str, signer: Signer) -> None:
    """Every acceptance's evidence, then the coordinator as a witness and an auditor."""
    gs = play.bureaus[GS]
    directory = gs.keys
    assert isinstance(directory, VerifiedDirectory)
    # the delivery receipts each bureau sends by itself may still be on their way
    while any(
        row.state is not RowState.ACCEPTED
        for bureau in play.bureaus.values()
        for row in bureau.outbox(receipts=True)
    ):
        await anyio.sleep(0.05)
    leaves, sizes, count = [], [], 0
    for principal, bureau in play.bureaus.items():
        for row in bureau.outbox(receipts=True):
            receipt = bureau.log.receipt(row.message_id)
            _expect(receipt is not None, f"a verified receipt for every message {principal} sent")
            assert receipt is not None
            leaves.append(receipt.log_index)
            sizes.append(receipt.size)
            count += 1
    _expect(len(set(leaves)) == count, "every message to have its own leaf in the log")
    held = [b.log.latest for b in play.bureaus.values()]
    _expect(all(c is not None for c in held), "every bureau to hold a verified checkpoint")
    play.step(
        relay_id,
        "receipts for every message",
        f"{count} messages (with the delivery receipts the recipients sent back by themselves) "
        f"accepted into the relay's log, at leaves {min(leaves)} to "
        f"{max(leaves)} (leaf 0 is the directory version it serves), each with a receipt signed "
        f"by {relay_id} and an inclusion proof in one of {len(set(sizes))} checkpoints",
        "each sender verified its receipt's signature against the relay's key in the "
        "directory, the inclusion proof against the relay's signed checkpoint, and that "
        "checkpoint's consistency with the one it held before, before it called the message "
        f"accepted; the bureaus now hold checkpoints of sizes "
        f"{', '.join(str(c.size) for c in held if c is not None)}",
    )

    now = int(time.time())
    log_key = relay_log_key(directory, relay_id, now)
    key = witness_key(directory, GS, now)
    witness = Witness(log=log_key, key=key, signer=signer)
    note = await gs.relay.checkpoint()
    _expect(note is not None, "the relay to serve its latest checkpoint")
    assert note is not None
    cosigned = witness.cosign(note, (), now=now)
    await gs.relay.cosign(cosigned)
    report = await run_audit(gs.relay, log_keys=[log_key], witnesses=[key])
    _expect(report.ok, f"the audit of the relay's log to find nothing: {report.text()}")
    checkpoint = witness.held
    assert checkpoint is not None
    play.step(
        GS,
        "cosigned and audited the log",
        f"checkpoint {checkpoint.size} (root {_short(checkpoint.root)}) cosigned as a witness; "
        f"the audit replayed all {report.size} entries and {report.checkpoints_checked} "
        f"signed checkpoints",
        f"every checkpoint's signature and root recomputed from the entries, "
        f"{report.inclusion_proofs} inclusion and {report.consistency_proofs} consistency "
        f"proofs checked against the signed roots: no problem found",
    )


@contextlib.contextmanager
def _failures(doing: Callable[[], str], timeout: float) -> Iterator[None]:
    """Turn a time-out, a socket error or a group of errors into one typed error.

    Task groups (trio's are strict) wrap what fails inside them in exception
    groups; the first library error in the group is raised as it is.  A group
    that holds anything but plain exceptions (a cancellation) passes unchanged.
    """
    try:
        yield
    except Exception as exc:
        leaves = leaf_errors(exc)
        if not all(isinstance(e, Exception) for e in leaves):
            raise
        first = next((e for e in leaves if isinstance(e, NcbRelayError)), None)
        if first is not None:
            raise first from None
        if any(isinstance(e, TimeoutError) for e in leaves):
            raise DemoFailed(
                f"the demo did not finish within {timeout:g} s (waiting for {doing()})"
            ) from None
        oserror = next((e for e in leaves if isinstance(e, OSError)), None)
        if oserror is not None:
            reason = oserror.strerror or type(oserror).__name__
            raise DemoFailed(f"network or file error: {reason}") from None
        raise DemoFailed(f"the demo failed while waiting for {doing()}") from exc


async def play(
    *,
    say: Callable[[DemoStep], object] = lambda _step: None,
    timeout: float = 45.0,
    root: Path | None = None,
) -> Transcript:
    """Play the SkyManga case on a fresh relay; return the transcript or raise DemoFailed.

    ``say`` gets each step as it happens.  Everything lives in ``root`` (which
    must exist and be empty), or in a temporary folder removed afterwards.
    """
    if root is None:
        with tempfile.TemporaryDirectory(prefix="ncb-relay-demo-") as folder:
            return await play(say=say, timeout=timeout, root=Path(folder))
    started = time.monotonic()
    arrivals = _Arrivals()
    driver = _Play(arrivals, say)
    # The case has ``timeout`` seconds; starting and stopping the relay and the bureaus (which
    # stop gracefully even when the case fails) have their own bound on top.
    with _failures(lambda: driver.current, timeout), anyio.fail_after(timeout + SETUP_TIME):
        deployment = make_deployment(root, scenario.CAST, now=int(time.time()), rng=os.urandom)
        async with running_relay(deployment) as relay, contextlib.AsyncExitStack() as stack:
            driver.current = "the principals to connect"
            for member in scenario.CAST:
                driver.bureaus[member.principal] = await stack.enter_async_context(
                    deployment.connect(
                        member.principal,
                        relay.api.url,
                        handlers={Body: arrivals.handler(member.principal)},
                        poll_wait=10,
                        retry_interval=1.0,
                        shutdown_timeout=SETUP_TIME / 4,
                    )
                )
            with anyio.fail_after(timeout):
                state, reached = await _case(driver, relay.api.url, deployment.relay_id, timeout)
                sent, received, refused = _journals(driver)
                driver.current = "the relay's log to be checked"
                await _log(driver, deployment.relay_id, deployment.identities[GS].signer)
            driver.current = "the bureaus and the relay to stop"
    _expect(len(driver.steps) == STEPS, f"{STEPS} steps")
    return Transcript(
        relay_id=deployment.relay_id,
        relay_url=relay.api.url,
        principals=tuple(driver.bureaus),
        steps=tuple(driver.steps),
        request_state=str(state),
        diffusion_reached=reached,
        messages_sent=sent,
        messages_received=received,
        refused=refused,
        seconds=time.monotonic() - started,
    )


def run_demo(*, quiet: bool = False, as_json: bool = False, out: Callable[[str], object]) -> None:
    """``ncb-relay demo``: play under trio, print each step (or the JSON transcript) to ``out``.

    ``quiet`` prints the summary line only; ``as_json`` one JSON document only.
    """
    chatty = not (quiet or as_json)

    def say(step: DemoStep) -> None:
        if chatty:
            out("\n".join(step.lines()))

    if chatty:
        out(textwrap.fill(INTRO, WIDTH))
    transcript = anyio.run(partial(play, say=say), backend="trio")
    out(json.dumps(transcript.to_json(), indent=2) if as_json else transcript.summary())
