"""A bureau's side of NCBR/1: send, request, receive through handlers, and remember.

Theory of operation.  A :class:`Bureau` joins the bureau's keys, its relay
(through :class:`~ncb_relay.client.RelayClient`), its journal
(:class:`~ncb_relay.bureau.store.BureauStore`), the keys it trusts
(:class:`~ncb_relay.bureau.directory_keeper.DirectoryKeeper`) and its
submissions (:class:`~ncb_relay.bureau.outbox.Outbox`).  It uses anyio only, so
it runs under trio and asyncio alike.

Receiving.  The inbox loop long-polls the relay's mailbox.  Each envelope is
checked before anything else sees it: structure and size, then the journal (a
copy already handed over is only acknowledged again; another message under a
known id is a replay), then :func:`~ncb_relay.open_envelope` (outer and inner
signatures against the directory as of the message's creation, recipient
binding, freshness, the replay guard), then the body
(:func:`~ncb_relay.messages.read_message`; a forward through
:func:`~ncb_relay.messages.verify_forward`), then its conversation (a reply
must be bound to a request this bureau follows, or it waits, parked, for the
forward that names it; each sender may park at most ``max_parked_per_sender``).
A message that fails a check for good is kept in the journal's ``refused``
table as evidence, acknowledged so it cannot block the mailbox, and never
reaches a handler.  A message that fails only because of this bureau's own
state (a sender's key not in its directory yet, an expired directory, a full
replay guard or parking space, a key id of its own it does not hold) is
*deferred*: not acknowledged, so the relay delivers it again after its lease
and it is checked again then.

Handing over.  A message that passes is committed to the journal (the
seen-message record); then its handler runs; then one transaction marks it
handled and records the replies the handler queued; then the batch is
acknowledged to the relay and the replies submitted.  See
:mod:`ncb_relay.bureau.store` for what a crash at each point leaves behind.
Replies queued with ``incoming.reply`` are sent exactly once; a handler that
sends through :meth:`Bureau.send` or :meth:`Bureau.reply` instead sends at
least once (again, if it is run again after a crash), except :meth:`forward`,
which does not forward the same message to the same bureaus twice.  A message
for which no handler is registered is ``unhandled``, and handed over at the
next start if a handler is registered for it then.

Sending.  A message is sealed with the next sequence number, recorded with its
body, then submitted; the relay's answer moves its state
(:mod:`ncb_relay.bureau.outbox`).  A submission that timed out is ``unknown``,
never failed, and the outbox task resubmits the identical bytes until the
relay says what it holds.

The relay's log.  A message is ``accepted`` only once the relay's evidence
verified (:mod:`.log_keeper`): its signed receipt, the checkpoint it is
proven against (consistent with the one the journal holds) and the inclusion
proof.  Evidence that does not verify is kept (``log.problems``, a fork's two
signed checkpoints in ``log.forks``) and the message stays ``unknown``;
:meth:`Bureau.refresh_log` (also run at start) moves the checkpoint held
forward, with ``log_threshold`` of the ``log_witnesses``' cosignatures.

Delivery evidence.  In the transaction that journals a message whose schema
the bureau's :class:`~ncb_relay.messages.ReceiptPolicy` receipts, it also
journals a :class:`~ncb_relay.messages.DeliveryReceipt` to the message's
sender; a task of its own submits it beside the handler, and what is still
owed when the bureau stops is submitted before it stops (MSG-13).  A
delivery receipt received is checked against the journal (:mod:`.delivery`,
MSG-15), journaled with the evidence it gives, and handed only to a handler
registered for ``DeliveryReceipt`` itself.  :meth:`Bureau.evidence` and
:meth:`Bureau.overdue` give each sent message's delivery state (MSG-16).

Restart.  :meth:`Bureau.start` rebuilds the conversations by replaying the
journal: sent requests and forwards from their recorded bodies, received
messages by opening their envelopes again with the bureau's keys (so the
keystore must keep an encryption key as long as the journal holds messages
sealed to it; a row that no longer opens is logged, and if its handler had
not finished it is marked ``failed``).  Messages whose handler had not
finished are handed to their handlers again when :meth:`Bureau.run` starts,
before the inbox, and under :meth:`Bureau.connect` only once the caller holds
the bureau (a handler may use it, to forward say).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx

from .. import primitives
from ..anchor import AnchorChain
from ..checkpoint import VerifiedCheckpoint, WitnessKey
from ..client import RelayClient, RetryPolicy
from ..envelope import (
    DEFAULT_TTL,
    SealedEnvelope,
    VerifiedEnvelope,
    open_envelope,
)
from ..errors import (
    DecryptionFailed,
    DirectoryExpired,
    InvalidTransition,
    LimitExceeded,
    NcbRelayError,
    NoAnswer,
    ProtocolError,
    RelayUnavailable,
    Replay,
    StorageError,
    UnknownKey,
    UsageError,
)
from ..freshness import DEFAULT_POLICY, FreshnessPolicy, ReplayGuard
from ..header import DEFAULT_LIMITS, parse_envelope
from ..identity import PrivateIdentity
from ..messages import (
    DEFAULT_RECEIPT_POLICY,
    DEFAULT_REGISTRY,
    AssistanceRequest,
    Body,
    BodyRegistry,
    Conversation,
    Delivery,
    DeliveryReceipt,
    Disposition,
    Forward,
    ForwardedMessage,
    Message,
    OpaqueBody,
    ReceiptPolicy,
    SealedForward,
    Step,
    Withdrawal,
    read_message,
    seal_forward,
    seal_message,
)
from ..messages.request_states import OPEN_STATES, RequestEvent, next_state
from ..verified_directory import VerifiedDirectory
from .delivery import DEFAULT_RECEIPT_DEADLINE, DeliveryState, Evidence, Receipted, check_receipt
from .delivery import evidence_of as _evidence_of
from .directory_keeper import DirectoryKeeper, Keys, RebuildKeys
from .incoming import Incoming
from .log_keeper import LogKeeper
from .outbox import Outbox
from .outgoing import Draft, Outgoing, sent_row
from .routing import ParkingFull, Router
from .store import BureauStore, Direction, JournalRow, RowState

__all__ = ["Bureau", "Handler"]

log = logging.getLogger("ncb_relay.bureau")

Handler = Callable[[Incoming], Awaitable[None]]
DIRECTORY_REFRESH = 3600.0
IDLE_PAUSE = 0.5  # seconds between fetches that bring nothing new and come back at once
HANDLER_RAISED = "handler raised "  # the detail of a row whose handler raised, then its class
MAX_DEFERRALS = 5  # deliveries of one message deferred before it is refused for good
MAX_RECEIPTS_OWED = 1024  # delivery receipts waiting for the receipt loop (more: the outbox's)
UNKNOWN_KEY_REFRESH = 60.0  # at most one refresh a minute because of an unknown key


def _wall_clock() -> int:
    return int(time.time())


def _reply_targets(handle: VerifiedEnvelope, own: str) -> list[str]:
    return [handle.sender, *(r for r in handle.recipients if r not in (own, handle.sender))]


class Bureau:
    """One bureau (or the coordinator) on one relay; see the module docstring.

    Build it with :meth:`connect`, which opens the journal and the relay
    client, starts the inbox in a task group and stops it gracefully.  Give
    the handlers to :meth:`connect` (or call :meth:`on` before :meth:`start`):
    a message that arrives while no handler is registered for it is
    ``unhandled`` until the next start::

        async with Bureau.connect(identity, relay_url=url, relay_id=relay,
                                  store="seoul.db", coordinator=gs, anchors=chain,
                                  handlers={AssistanceResponse: on_response}) as seoul:
            conversation = await seoul.request(body, to=["MA.ncb-rabat"], timeout=60)
    """

    def __init__(
        self,
        identity: PrivateIdentity,
        *,
        relay: RelayClient,
        store: BureauStore,
        coordinator: str,
        directory: Keys | None = None,
        anchors: AnchorChain | None = None,
        clock: Callable[[], int] = _wall_clock,
        rng: primitives.RandomSource = os.urandom,
        policy: FreshnessPolicy = DEFAULT_POLICY,
        registry: BodyRegistry = DEFAULT_REGISTRY,
        poll_wait: int = 25,
        batch_size: int = 50,
        retry_interval: float = 5.0,
        ttl: int = DEFAULT_TTL,
        max_parked: int = 1024,
        max_parked_per_sender: int = 64,
        log_witnesses: Sequence[str | WitnessKey] = (),
        log_threshold: int = 0,
        receipts: ReceiptPolicy = DEFAULT_RECEIPT_POLICY,
        receipt_deadline: int = DEFAULT_RECEIPT_DEADLINE,
    ) -> None:
        if not isinstance(identity, PrivateIdentity):
            raise UsageError("identity is the bureau's PrivateIdentity")
        if store.principal != identity.principal or relay.identity is not identity:
            raise UsageError("the store and the relay client must be this identity's")
        self.identity = identity
        self.principal = identity.principal
        self.relay = relay
        self.store = store
        self.coordinator = coordinator
        self.registry = registry
        self.poll_wait = poll_wait
        self.batch_size = batch_size
        self.retry_interval = retry_interval
        self.ttl = ttl
        if not isinstance(receipts, ReceiptPolicy) or receipt_deadline < 0:
            raise UsageError("receipts is a ReceiptPolicy; receipt_deadline seconds, not negative")
        self.receipts = receipts  # which schemas are receipted, and expected receipted (MSG-13)
        self.receipt_deadline = receipt_deadline  # default: receipts due this long after created
        self._receipts_owed: list[SealedEnvelope] = []  # journaled, for the receipt loop to submit
        self._receipts_due: anyio.Event | None = None
        self.router = Router(
            identity.principal,
            coordinator=coordinator,
            registry=registry,
            max_parked=max_parked,
            max_parked_per_sender=max_parked_per_sender,
        )
        self.conversations = self.router.conversations
        self.directory = DirectoryKeeper(store, directory=directory, anchors=anchors, clock=clock)
        self.log = LogKeeper(  # the relay's log: every acceptance verified (.log_keeper)
            store,
            relay_id=relay.relay_id,
            directory=self.directory,
            clock=clock,
            witnesses=log_witnesses,
            threshold=log_threshold,
        )
        self.outbox_task = Outbox(store, relay, log=self.log, clock=clock, notify=self._notify)
        self._clock = clock
        self._rng = rng
        self._guard = ReplayGuard(policy=policy)
        self._handlers: dict[type[Body] | str, Handler] = {}
        self._seq = 0
        self._started = False
        self._changed: anyio.Event | None = None  # made in start(): an event needs a running loop
        self._stopping = False
        self._fetch_scope: anyio.CancelScope | None = None
        self._last_key_refresh = -UNKNOWN_KEY_REFRESH
        self._pending_parked: list[Delivery] = []
        self._received: dict[bytes, Incoming] = {}
        self._unfinished: list[Incoming] = []  # from the journal, handed over again by run()
        self._released: anyio.Event | None = None  # set by connect() once it hands the bureau out
        self._running = False
        self._done: anyio.Event | None = None
        self.deferrals = 0  # messages left at the relay, to be checked again (see the docstring)

    @property
    def anchors(self) -> AnchorChain | None:
        return self.directory.anchors

    # --- opening and closing -------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        identity: PrivateIdentity,
        *,
        relay_url: str,
        relay_id: str,
        store: str | os.PathLike[str],
        coordinator: str,
        directory: Keys | None = None,
        anchors: AnchorChain | None = None,
        handlers: dict[type[Body] | str, Handler] | None = None,
        clock: Callable[[], int] = _wall_clock,
        rng: primitives.RandomSource = os.urandom,
        retry: RetryPolicy | None = None,
        shutdown_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> AsyncIterator[Bureau]:
        """Open the journal, connect to the relay, start the inbox; stop it all on exit.

        ``handlers`` maps body classes or schema ids (``"*"``: any other) to
        handlers; ``transport`` replaces the relay client's network transport
        (tests, proxies).  The other options are :class:`Bureau`'s.
        """
        journal = BureauStore(Path(store), principal=identity.principal)
        try:
            async with RelayClient(
                relay_url,
                relay_id=relay_id,
                identity=identity,
                clock=clock,
                rng=rng,
                retry=retry,
                transport=transport,
            ) as client:
                bureau = cls(
                    identity,
                    relay=client,
                    store=journal,
                    coordinator=coordinator,
                    directory=directory,
                    anchors=anchors,
                    clock=clock,
                    rng=rng,
                    **options,
                )
                for kind, handler in (handlers or {}).items():
                    bureau.on(kind, handler)
                await bureau.start()
                bureau._released = anyio.Event()
                async with anyio.create_task_group() as tasks:
                    await tasks.start(bureau.run)
                    try:
                        # the handlers of unfinished messages may use the bureau only once the
                        # caller holds it: run() waits for this (no checkpoint before the yield)
                        bureau._released.set()
                        yield bureau
                    finally:
                        bureau.stop()
                        with anyio.move_on_after(shutdown_timeout, shield=True):
                            await bureau.stopped()
                        tasks.cancel_scope.cancel()
        finally:
            journal.close()

    def on(self, kind: type[Body] | str, handler: Handler) -> None:
        """Hand each verified message whose body is ``kind`` (class or schema id) to ``handler``.

        ``"*"`` catches every body no other handler takes.  The handler is
        awaited in the inbox loop, one message at a time, in the order the
        relay delivered them; it must not wait for another bureau's answer
        (that answer comes through the same loop).  A handler that raises
        leaves the message ``failed`` in the journal (with the error's class)
        and the loop goes on; :meth:`retry_failed` hands such messages over again.
        """
        if not (isinstance(kind, str) or (isinstance(kind, type) and issubclass(kind, Body))):
            raise UsageError("a handler is registered for a Body class or a schema id")
        self._handlers[kind] = handler

    async def start(self) -> None:
        """Load the directory and rebuild the conversations from the journal.

        The messages whose handler had not finished are handed over again by :meth:`run`.
        """
        if self._started:
            raise UsageError("the bureau is already started")
        self._changed, self._done = anyio.Event(), anyio.Event()
        self._seq = self.store.last_seq
        if self.anchors is not None:
            self.directory.load()
            try:
                await self.refresh_directory()
            except (RelayUnavailable, ProtocolError) as exc:
                if not self._has_keys():
                    raise
                log.warning("directory-refresh-failed", extra={"code": exc.code})
        self.log.load()
        await self._try_refresh_log()
        self._rebuild()
        self._started = True

    async def refresh_log(self) -> VerifiedCheckpoint | None:
        """Move the checkpoint held of the relay's log forward to the relay's latest one.

        It must verify with ``log_threshold`` witness cosignatures and be
        consistent with the one held; a fork raises
        :class:`~ncb_relay.errors.LogFork` and is kept in ``log.forks``.
        """
        return await self.log.refresh(self.relay)

    async def _try_refresh_log(self) -> None:
        try:
            await self.refresh_log()
        except (RelayUnavailable, ProtocolError) as exc:
            log.warning("log-refresh-failed", extra={"code": exc.code})

    def _has_keys(self) -> bool:
        try:
            self.directory.keys  # noqa: B018 - raises without keys
        except UsageError:
            return False
        return True

    def stop(self) -> None:
        """Ask the inbox loop to stop after the message in hand (a long-poll is cut short)."""
        self._stopping = True
        if self._fetch_scope is not None:
            self._fetch_scope.cancel()
        if self.outbox_task.wake is not None:
            self.outbox_task.wake.set()

    async def stopped(self) -> None:
        """Return once :meth:`run` has returned."""
        if self._running and self._done is not None:
            await self._done.wait()

    # --- the directory -------------------------------------------------------------------------

    @property
    def keys(self) -> Keys:
        """The directory version (or fixed keys) in use."""
        return self.directory.keys

    async def refresh_directory(self) -> VerifiedDirectory:
        """Fetch and verify the relay's directory against the anchors and the version held.

        A :class:`~ncb_relay.errors.Rollback`, :class:`~ncb_relay.errors.Fork`
        or any other refusal raises; the version held stays in use, and
        ``directory.problem`` names the refusal until a refresh succeeds.
        """
        self._last_key_refresh = anyio.current_time()
        return await self.directory.refresh(self.relay)

    # --- sending -------------------------------------------------------------------------------

    def _draft(
        self,
        body: Body,
        to: Iterable[str],
        *,
        reply_to: bytes | None = None,
        refers_to: bytes | None = None,
    ) -> Draft:
        if not isinstance(body, Body):
            raise UsageError("a bureau sends a typed Body")
        names = list(dict.fromkeys(to))
        if not names:
            raise UsageError("a message needs at least one recipient")
        now = self._clock()
        recipients = [self.directory.identity(name, now) for name in names]
        seq = self._seq + 1  # taken only once the message is sealed: no gap for a refusal
        sealed = seal_message(
            body,
            sender=self.identity,
            recipients=recipients,
            now=now,
            seq=seq,
            rng=self._rng,
            ttl=self.ttl,
            reply_to=reply_to,
        )
        self._seq = seq
        return Draft(sealed, body, sent_row(sealed, body, at=now, refers_to=refers_to))

    def _reply_draft(self, incoming: Incoming, body: Body, to: Iterable[str] | None) -> Draft:
        """A reply to ``incoming``, by default to everyone on a request but this bureau, else
        to its sender only (a reply to a diffusion does not go to every bureau it reached)."""
        handle = incoming.handle
        if to is not None:
            targets = list(to)
        elif isinstance(incoming.body, AssistanceRequest):
            targets = _reply_targets(handle, self.principal)
        else:
            targets = [handle.sender]
        return self._draft(
            body, targets, reply_to=handle.message_hash, refers_to=self._request_of(handle)
        )

    def _request_of(self, handle: VerifiedEnvelope) -> bytes:
        """The request a reply to ``handle`` belongs to (the original of a forward)."""
        row = self.store.lookup(handle.message_id)
        if row is not None and row.refers_to is not None:
            return row.refers_to
        return handle.message_hash

    def _record(self, drafts: Sequence[Draft], **handled: Any) -> None:
        self.store.record_sent([d.row for d in drafts], seq=self._seq, **handled)
        for draft in drafts:
            self._apply_sent(draft.sealed, draft.body, draft.row.refers_to)

    def _apply_sent(self, sealed: SealedEnvelope, body: Body, refers_to: bytes | None) -> None:
        """What a sent message changes in the conversations this bureau follows."""
        deliveries: tuple[Delivery, ...] = ()
        if isinstance(body, AssistanceRequest):
            _, deliveries = self.conversations.start(sealed, body)
        elif isinstance(body, Forward) and refers_to in self.conversations:
            assert refers_to is not None
            deliveries = self.conversations.add_forward(SealedForward(sealed, body, refers_to))
        elif isinstance(body, Withdrawal) and sealed.header.reply_to in self.conversations:
            assert sealed.header.reply_to is not None
            self.conversations.get(sealed.header.reply_to).withdraw(sealed, body)
        self._pending_parked.extend(deliveries)
        self._notify()

    async def send(
        self, body: Body, *, to: Iterable[str], reply_to: bytes | None = None
    ) -> Outgoing:
        """Seal, record and submit ``body``; return its state (see :class:`Outgoing`).

        A refusal by the relay raises its error after the state is recorded as
        ``failed``; an unreachable relay or an unknown outcome is not an error:
        the outbox task submits the identical bytes again.
        """
        if isinstance(body, Withdrawal) and reply_to in self.conversations:
            assert reply_to is not None
            self._check_withdrawal(self.conversations.get(reply_to))
        draft = self._draft(body, to, reply_to=reply_to, refers_to=reply_to)
        self._record([draft])
        await self._dispatch_parked()
        return await self.outbox_task.submit(draft.sealed)

    async def request(
        self, body: AssistanceRequest, *, to: Iterable[str], timeout: float
    ) -> Conversation:
        """Send a request and wait until it is answered, declined or withdrawn.

        Raises :class:`~ncb_relay.errors.NoAnswer` after ``timeout`` seconds
        (the request stays followed; its state is in ``conversations``).
        """
        if not isinstance(body, AssistanceRequest):
            raise UsageError("request() sends an AssistanceRequest; use send() for other bodies")
        outgoing = await self.send(body, to=to)
        conversation = self.conversations.get(outgoing.message_hash)
        return await self.wait_for(conversation, timeout=timeout)

    async def wait_for(
        self,
        conversation: Conversation,
        *,
        timeout: float,
        until: Callable[[Conversation], bool] | None = None,
    ) -> Conversation:
        """Wait until ``until(conversation)`` (default: it left the open states) or time out."""
        done = until or (lambda c: c.state not in OPEN_STATES)
        with anyio.move_on_after(timeout):
            while not done(conversation):
                await self._changed_wait()
            return conversation
        raise NoAnswer(  # names the request by its hash: the case reference is case information
            f"no answer to request {conversation.request_hash.hex()[:16]} within {timeout} s "
            f"(state {conversation.state})",
            conversation=conversation,
        )

    async def forward(
        self,
        incoming: Incoming,
        *,
        to: Iterable[str],
        permission: Incoming | None = None,
        note: str | None = None,
    ) -> Outgoing:
        """Forward a message this bureau received (the coordinator's job), with provenance.

        An H2 original needs ``permission``: the originator's
        :class:`~ncb_relay.messages.DisseminationPermission` as received.
        A forward of the same message to the same recipients recorded before
        (and not refused) is not made again: its state is returned.  So a
        handler that forwards, interrupted and run again after a restart,
        forwards once.
        """
        if not isinstance(incoming, Incoming):
            raise UsageError("forward() passes on an Incoming message")
        names = list(dict.fromkeys(to))
        for row in self.store.sent_referring_to(incoming.message.message_hash):
            if (
                row.schema == Forward.schema_id
                and set(row.recipients) == set(names)
                and row.state is not RowState.FAILED
            ):
                return Outgoing(
                    SealedEnvelope.from_bytes(row.envelope), row.state, detail=row.detail
                )
        now = self._clock()
        seq = self._seq + 1
        forward = seal_forward(
            incoming.message.envelope,
            sender=self.identity,
            recipients=[self.directory.identity(name, now) for name in names],
            now=now,
            seq=seq,
            rng=self._rng,
            coordinator=self.coordinator,
            permission=permission.message.envelope if permission is not None else None,
            note=note,
            ttl=self.ttl,
            registry=self.registry,
        )
        self._seq = seq
        row = sent_row(forward.sealed, forward.body, at=now, refers_to=forward.original_hash)
        self._record([Draft(forward.sealed, forward.body, row)])
        await self._dispatch_parked()
        return await self.outbox_task.submit(forward.sealed)

    async def reply(
        self, incoming: Incoming, body: Body, *, to: Iterable[str] | None = None
    ) -> Outgoing:
        """Reply to a message handled before (a status update days later, the response).

        While the message's handler runs, its replies go through
        ``incoming.reply`` (sent in order, exactly once, when it returns).
        """
        if not isinstance(incoming, Incoming):
            raise UsageError("reply() answers an Incoming message")
        if incoming.in_handler:
            raise UsageError("the message's handler is still running: use incoming.reply()")
        draft = self._reply_draft(incoming, body, to)
        self._record([draft])
        await self._dispatch_parked()
        return await self.outbox_task.submit(draft.sealed)

    def received(self, message_id: bytes) -> Incoming:
        """A message received and handed over (in this run or rebuilt from the journal)."""
        try:
            return self._received[message_id]
        except KeyError:
            raise UsageError(f"no received message {message_id.hex()}") from None

    async def withdraw(self, conversation: Conversation, *, reason: str) -> Outgoing:
        """Withdraw a request this bureau sent, to everyone it went to."""
        self._check_withdrawal(conversation)
        recipients = [r.principal for r in conversation.request.header.recipients]
        return await self.send(
            Withdrawal(handling=conversation.body.handling, reason=reason),
            to=recipients,
            reply_to=conversation.request_hash,
        )

    def _check_withdrawal(self, conversation: Conversation) -> None:
        """Refuse, before anything is sealed, a withdrawal the state table would refuse."""
        if conversation.requester != self.principal:
            raise UsageError("only the requester withdraws a request")
        try:
            next_state(conversation.state, RequestEvent.WITHDRAW)
        except InvalidTransition as exc:
            raise UsageError(f"not withdrawn: the request is {conversation.state}") from exc

    async def flush(self) -> list[Outgoing]:
        """Submit every recorded message not yet accepted (queued or unknown), oldest first."""
        return await self.outbox_task.flush()

    async def retry_failed(self) -> int:
        """Hand every message whose handler raised over to its handler again; return how many."""
        failed = [
            self._received[row.message_id]
            for row in self.store.rows(direction=Direction.IN, states=(RowState.FAILED,))
            if row.message_id in self._received and (row.detail or "").startswith(HANDLER_RAISED)
        ]
        for incoming in failed:
            await self._hand_over(replace(incoming, _seal=self._reply_draft, _queued=[]))
        return len(failed)

    # --- receiving -----------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The inbox loop and the outbox task, until :meth:`stop`."""
        if not self._started or self._done is None:
            raise UsageError("start() the bureau before running it")
        self._running = True
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._outbox_loop)
                tasks.start_soon(self._receipt_loop)
                task_status.started()
                await self._hand_over_unfinished()
                await self._inbox_loop()
                await self._submit_owed_receipts()  # what was journaled goes before we stop
                tasks.cancel_scope.cancel()
        finally:
            self._running = False
            self._done.set()
            self._notify()

    async def _outbox_loop(self) -> None:
        while not self._stopping:
            await self.outbox_task.flush()
            self.outbox_task.wake = anyio.Event()
            with anyio.move_on_after(self.retry_interval):
                await self.outbox_task.wake.wait()

    async def _inbox_loop(self) -> None:
        cursor, delay = 0, 1.0
        last_refresh = anyio.current_time()
        while not self._stopping:
            if self.anchors is not None and (
                anyio.current_time() - last_refresh > DIRECTORY_REFRESH
                or not self.directory.usable()
            ):
                last_refresh = anyio.current_time()
                await self._try_refresh()
            if not self.directory.usable():
                await anyio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self._fetch_scope = anyio.CancelScope()
            batch = None
            asked = anyio.current_time()
            with self._fetch_scope:
                try:
                    batch = await self.relay.fetch(
                        after=cursor, limit=self.batch_size, wait=self.poll_wait
                    )
                except NcbRelayError as exc:
                    log.warning("fetch-failed", extra={"code": exc.code})
            self._fetch_scope = None
            if batch is None:
                if not self._stopping:
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            done, new, taken = [], 0, 0
            for delivery in batch.messages:
                if self._stopping:
                    break
                outcome, _ = await self._take(delivery.envelope, attempt=delivery.attempt)
                taken += 1
                if outcome is _Outcome.DEFERRED:
                    continue  # not acknowledged: the relay delivers it again after its lease
                new += outcome is _Outcome.HANDED_OVER
                done.append(delivery.message_id)
            if done:
                try:
                    await self.relay.acknowledge(done)
                except NcbRelayError as exc:  # they come again, and are known copies then
                    log.warning("acknowledge-failed", extra={"code": exc.code})
            cursor = batch.cursor if taken == len(batch.messages) else 0
            quick = anyio.current_time() - asked < IDLE_PAUSE
            if not new and quick and len(batch.messages) < self.batch_size:
                await anyio.sleep(IDLE_PAUSE)  # a relay answering at once with nothing new

    async def _try_refresh(self) -> None:
        try:
            await self.refresh_directory()
        except (RelayUnavailable, ProtocolError) as exc:
            log.warning("directory-refresh-failed", extra={"code": exc.code})

    async def take(self, envelope: bytes) -> Incoming | None:
        """Check one envelope from the mailbox, record it and hand it over; ``None`` if not.

        ``None`` for a refused message, a deferred one (see the module
        docstring) and a copy of a message already in the journal.
        """
        _, incoming = await self._take(envelope)
        return incoming

    async def _take(self, envelope: bytes, *, attempt: int = 1) -> tuple[_Outcome, Incoming | None]:
        outcome = await self._check_and_hand_over(envelope, attempt)
        if isinstance(outcome, Incoming):
            return _Outcome.HANDED_OVER, outcome
        return outcome, None

    async def _check_and_hand_over(self, envelope: bytes, attempt: int) -> _Outcome | Incoming:
        """The incoming message handed over (or parked), or why not."""
        now = self._clock()
        try:
            parsed = parse_envelope(envelope, DEFAULT_LIMITS)
        except ProtocolError as exc:
            self._refuse(envelope, None, exc, now)
            return _Outcome.REFUSED
        header = parsed.header
        held = self.store.lookup(header.message_id)
        if held is not None:
            if primitives.constant_time_equal(held.envelope, envelope):
                return _Outcome.KNOWN  # a copy of a message handed over before
            self._refuse(envelope, header.sender, Replay("a known message id, other bytes"), now)
            return _Outcome.REFUSED
        self._guard.prune(now)
        message: Message | None = None
        try:
            if len(self._guard) >= self._guard.max_entries:
                raise _Defer("the replay guard is full")
            message = await self._open_checked(envelope, now)
            incoming, applied = self._route(message)
            delivered = self._check_receipt(message)
        except (_Defer, ParkingFull, ProtocolError) as exc:
            ours = not isinstance(exc, ProtocolError) or self._is_our_state(
                exc, header.sender_key_id
            )
            if ours and attempt < MAX_DEFERRALS:
                if message is not None:  # opened, so in the replay guard: it comes again
                    self._guard.forget(header.sender, header.message_id, header.seq)
                self.deferrals += 1
                why = exc.code if isinstance(exc, ProtocolError) else str(exc)
                log.warning("message-deferred", extra={"code": why, "sender": header.sender})
                return _Outcome.DEFERRED
            refusal = exc if isinstance(exc, ProtocolError) else LimitExceeded(str(exc))
            self._refuse(envelope, header.sender, refusal, now)
            return _Outcome.REFUSED
        parked = self._is_parked(message)
        receipt = None if delivered is not None else self._receipt_for(message, now)
        self.store.record_received(
            _received_row(message, envelope, at=now, refers_to=_refers_to(incoming), parked=parked),
            receipt=None if receipt is None else receipt.row,
            seq=self._seq,
            delivered=delivered,
        )
        self._notify()
        if receipt is not None:  # sent beside the handler, whatever it does (MSG-13)
            self._owe_receipt(receipt.sealed)
        if not parked:
            await self._hand_over(incoming)
        await self._hand_over_all(applied)
        return incoming

    def _check_receipt(self, message: Message) -> tuple[bytes, int] | None:
        """For a delivery receipt: the message it receipts and when, once checked (MSG-15)."""
        body = message.body
        if not isinstance(body, DeliveryReceipt):
            return None
        check_receipt(message, self.store.lookup(body.message_id))
        return body.message_id, body.received_at

    def _receipt_for(self, message: Message, now: int) -> Draft | None:
        """The delivery receipt this bureau owes for ``message``, sealed, if its policy says so."""
        if not self.receipts.wants(message.body.schema_id):
            return None  # never a receipt of a receipt (MSG-14)
        receipt = DeliveryReceipt.of(message.message_id, message.message_hash, now)
        try:
            return self._draft(
                receipt,
                [message.sender],
                reply_to=message.message_hash,
                refers_to=message.message_hash,
            )
        except NcbRelayError as exc:  # the clock stepped back, the sender's key is gone, ...
            log.error("receipt-not-sealed", extra={"code": exc.code, "sender": message.sender})
            return None

    def _owe_receipt(self, sealed: SealedEnvelope) -> None:
        if len(self._receipts_owed) < MAX_RECEIPTS_OWED:  # else the outbox task sends it
            self._receipts_owed.append(sealed)
        if self._receipts_due is not None:
            self._receipts_due.set()

    async def _receipt_loop(self) -> None:
        """Submit the delivery receipts owed, as they are journaled, beside the inbox loop."""
        while not self._stopping:
            if not self._receipts_owed:
                self._receipts_due = anyio.Event()
                await self._receipts_due.wait()
                continue
            await self._submit_owed_receipts(1)

    async def _submit_owed_receipts(self, count: int = MAX_RECEIPTS_OWED) -> None:
        for _ in range(min(count, len(self._receipts_owed))):
            sealed = self._receipts_owed.pop(0)
            with contextlib.suppress(NcbRelayError):  # recorded: the outbox task sends it again
                await self.outbox_task.submit(sealed)

    def _is_our_state(self, exc: ProtocolError, sender_key_id: bytes) -> bool:
        """Whether a refusal may come from this bureau's own state rather than the message.

        An unknown key counts only when the directory version held does not
        list the sender's key id at all (a bureau or key newer than it); a key
        it lists as revoked, suspended or outside its window is refused for
        good (DIR-11), and so is anything with fixed keys, which never change.
        """
        if isinstance(exc, DirectoryExpired):
            return True
        if isinstance(exc, DecryptionFailed):
            return exc.reason == "no-such-key"  # sealed to a key of ours not loaded (yet)
        if isinstance(exc, UnknownKey):
            keys = self.directory.keys
            unlisted = isinstance(keys, VerifiedDirectory) and not keys.document.owner(
                sender_key_id
            )
            return unlisted
        return False

    async def _open_checked(self, envelope: bytes, now: int) -> Message:
        """Open and read an envelope; on an unknown key, refresh the directory once and retry."""
        try:
            return self._open(envelope, now)
        except UnknownKey:
            if not await self._refresh_for_unknown_key():
                raise
        return self._open(envelope, now)

    def _open(self, envelope: bytes, now: int) -> Message:
        verified = open_envelope(
            envelope, recipient=self.identity, directory=self.keys, now=now, replay=self._guard
        )
        return read_message(verified, coordinator=self.coordinator, registry=self.registry)

    async def _refresh_for_unknown_key(self) -> bool:
        if self.anchors is None:
            return False
        if anyio.current_time() - self._last_key_refresh < UNKNOWN_KEY_REFRESH:
            return False
        before = self.keys
        await self._try_refresh()
        return self.keys is not before

    def _refuse(self, envelope: bytes, sender: str | None, exc: NcbRelayError, now: int) -> None:
        log.warning("message-refused", extra={"code": exc.code, "sender": sender})
        self.store.record_refused(
            at=now, sender=sender, code=exc.code, reason=exc.message, envelope=envelope
        )

    def _route(self, message: Message) -> tuple[Incoming, tuple[Delivery, ...]]:
        """What a verified message means here (:mod:`.routing`); a ProtocolError refuses it.

        Returns its :class:`Incoming` and the deliveries of replies that were
        parked waiting for it (a request or forward they name).
        """
        routed = self.router.route(message, historical=self.directory.historical)
        incoming = self._incoming(
            message,
            routed.body,
            forwarded=routed.forwarded,
            conversation=routed.conversation,
            step=routed.step,
        )
        incoming.copy = routed.copy
        return incoming, routed.applied

    def _incoming(
        self,
        message: Message,
        body: Body | OpaqueBody,
        *,
        forwarded: ForwardedMessage | None = None,
        conversation: Conversation | None = None,
        step: Step | None = None,
    ) -> Incoming:
        handle = forwarded.forward.envelope if forwarded is not None else message.envelope
        return Incoming(
            message,
            body,
            handle,
            forwarded=forwarded,
            conversation=conversation,
            step=step,
            _seal=self._reply_draft,
        )

    def _is_parked(self, message: Message) -> bool:
        return self.router.is_parked(message)

    async def _hand_over_all(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            message = delivery.message
            if delivery.disposition is Disposition.REFUSED:
                assert delivery.error is not None
                self.store.mark(message.message_id, RowState.FAILED, delivery.error.code)
                continue
            incoming = self._incoming(
                message, message.body, conversation=delivery.conversation, step=delivery.step
            )
            await self._hand_over(incoming)

    async def _dispatch_parked(self) -> None:
        waiting, self._pending_parked = self._pending_parked, []
        await self._hand_over_all(waiting)

    def _handler_for(self, incoming: Incoming) -> Handler | None:
        """The handler of a message: by its body's class or schema id, else ``"*"``.

        A copy of a request this bureau wrote or was handed already (the
        requester in copy of its forward, a bureau that got it directly and
        forwarded) is not new work: a forward goes to a ``Forward`` handler
        only, a direct copy to none.
        """
        body = incoming.body
        if isinstance(body, DeliveryReceipt):  # evidence, not work: only a handler of its own
            return self._handlers.get(DeliveryReceipt) or self._handlers.get(body.schema_id)
        if incoming.copy:
            if incoming.forwarded is None:
                return None  # the direct copy of a request whose forward came first
            kinds: tuple[type, ...] = Forward.__mro__
        else:
            kinds = () if isinstance(body, OpaqueBody) else type(body).__mro__
        for kind in kinds:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler
        by_id = None if incoming.copy else self._handlers.get(body.schema_id)
        return by_id or self._handlers.get("*")

    def _needs_handler(self, incoming: Incoming) -> bool:
        """Whether a message without a handler waits for one (``unhandled``).

        Replies bound to a conversation and copies of forwards of a followed
        request have done their work once applied; everything else is for the
        application.
        """
        return (
            incoming.conversation is None
            and not incoming.copy
            and not isinstance(incoming.body, DeliveryReceipt)
        )

    async def _hand_over(self, incoming: Incoming) -> None:
        """Run the message's handler; record its replies and the outcome in one transaction."""
        handler = self._handler_for(incoming)
        state, detail = RowState.HANDLED, None
        if handler is None and self._needs_handler(incoming):
            state, detail = RowState.UNHANDLED, "no handler"
        elif handler is not None:
            try:
                await handler(incoming)
            except Exception as exc:
                state, detail = RowState.FAILED, f"{HANDLER_RAISED}{type(exc).__name__}"
                incoming._queued.clear()
                log.error(
                    "handler-failed",
                    extra={"schema": incoming.message.body.schema_id, "error": detail},
                )
        drafts = list(incoming._queued)
        incoming._queued.clear()
        incoming._seal = None  # from now on, replies go through Bureau.reply
        self._record(drafts, handled=incoming.message_id, handled_state=state, detail=detail)
        self._received[incoming.message_id] = incoming
        self._notify()
        for draft in drafts:
            with contextlib.suppress(NcbRelayError):  # recorded as failed, and logged
                await self.outbox_task.submit(draft.sealed)
        await self._dispatch_parked()

    # --- rebuilding ----------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Replay the journal into the conversations; keep the unfinished messages for run()."""
        keys = RebuildKeys(self.directory.historical, self.identity)
        unfinished: dict[bytes, Incoming] = {}
        self.router.replaying = True
        try:
            self._replay_journal(keys, unfinished)
        finally:
            self.router.replaying = False
        self._pending_parked = []
        self._unfinished = list(unfinished.values())

    def _replay_journal(self, keys: RebuildKeys, unfinished: dict[bytes, Incoming]) -> None:
        for row in self.store.rows():
            if row.direction is Direction.OUT:
                self._replay_sent(row)
                continue
            try:
                verified = open_envelope(
                    row.envelope,
                    recipient=self.identity,
                    directory=keys,
                    now=row.at,
                    replay=ReplayGuard(policy=self._guard.policy),
                )
                message = read_message(
                    verified, coordinator=self.coordinator, registry=self.registry
                )
                incoming, applied = self._route(message)
            except ProtocolError as exc:
                log.error("journal-row-unverifiable", extra={"code": exc.code, "pos": row.pos})
                if row.state in (RowState.PENDING, RowState.UNHANDLED):
                    self.store.mark(row.message_id, RowState.FAILED, "unverifiable")
                continue
            self._remember(verified)
            self._received[message.message_id] = incoming
            if row.state not in (RowState.PENDING, RowState.UNHANDLED):
                incoming._seal = None
            elif not self._is_parked(message) and (
                row.state is RowState.PENDING or self._handler_for(incoming) is not None
            ):
                unfinished[message.message_id] = incoming
            for delivery in applied:  # replies parked before, bound now: unfinished if pending
                held = self.store.lookup(delivery.message.message_id)
                if held is None or held.state is not RowState.PENDING:
                    continue
                if delivery.disposition is Disposition.REFUSED:  # the crash came before the mark
                    assert delivery.error is not None
                    self.store.mark(held.message_id, RowState.FAILED, delivery.error.code)
                else:
                    unfinished[delivery.message.message_id] = self._incoming(
                        delivery.message,
                        delivery.message.body,
                        conversation=delivery.conversation,
                        step=delivery.step,
                    )

    def _replay_sent(self, row: JournalRow) -> None:
        if row.body is None:
            raise StorageError(f"bureau store: sent message {row.pos} has no body")
        try:
            body = self.registry.decode(row.body)
            if isinstance(body, Body):
                self._apply_sent(SealedEnvelope.from_bytes(row.envelope), body, row.refers_to)
        except NcbRelayError as exc:  # recorded, but refused by the state table: kept out
            log.error("journal-row-not-applied", extra={"code": exc.code, "pos": row.pos})

    async def _hand_over_unfinished(self) -> None:
        """Hand the messages whose handler had not finished over again, before the inbox."""
        if self._released is not None:
            await self._released.wait()
        while self._unfinished and not self._stopping:  # the rest stay pending in the journal
            await self._hand_over(self._unfinished.pop(0))

    def _remember(self, verified: VerifiedEnvelope) -> None:
        """Seed the live replay guard with a message whose window is still open."""
        now = self._clock()
        if self._guard.policy.forget_after(verified.expires) > now:
            with contextlib.suppress(NcbRelayError):
                self._guard.record(
                    verified.sender, verified.message_id, verified.seq, verified.expires, now
                )

    # --- looking ---------------------------------------------------------------------------------

    async def _changed_wait(self) -> None:
        if self._changed is None:
            raise UsageError("start() the bureau first")
        await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    def outbox(self, *, receipts: bool = False) -> list[JournalRow]:
        """Every sent message, oldest first, with its state.

        The delivery receipts the bureau sent by itself are listed only with
        ``receipts=True``; :meth:`evidence` shows what each message's receipts prove.
        """
        return _without_receipts(self.store.rows(direction=Direction.OUT), receipts)

    def inbox(self, *states: RowState, receipts: bool = False) -> list[JournalRow]:
        """Every received message (optionally only some states), oldest first.

        Delivery receipts received are listed only with ``receipts=True``.
        """
        return _without_receipts(self.store.rows(direction=Direction.IN, states=states), receipts)

    def journal_of(self, request_hash: bytes) -> list[JournalRow]:
        """The journal rows of one request: the request, its forwards, every reply."""
        return [
            row for row in self.store.rows() if request_hash in (row.message_hash, row.refers_to)
        ]

    # --- delivery evidence (spec/messages.md, MSG-16) ------------------------------------------

    def expect_receipts(self, message_id: bytes, *, by: int) -> None:
        """Set the time by which every recipient of a sent message should have receipted it.

        Without it, receipts are due ``receipt_deadline`` seconds after the message's created.
        """
        self._sent_row(message_id)
        self.store.set_receipt_deadline(message_id, by)

    def evidence(self, message_id: bytes, *, now: int | None = None) -> Evidence:
        """The delivery evidence of a message this bureau sent, and its state at ``now``."""
        row = self._sent_row(message_id)
        receipts = self.store.delivery_receipts(message_id)
        deadline = self.store.receipt_deadlines().get(message_id)
        return self._evidence(row, receipts, deadline, self._clock() if now is None else now)

    def evidences(
        self, *, now: int | None = None, states: Iterable[DeliveryState] = ()
    ) -> list[Evidence]:
        """The evidence of every message sent (only those in ``states``, if given), oldest first."""
        at = self._clock() if now is None else now
        wanted = set(states)
        receipts: dict[bytes, list[tuple[bytes, str, bytes, int, int]]] = {}
        for receipt in self.store.delivery_receipts():
            receipts.setdefault(receipt[0], []).append(receipt)
        deadlines = self.store.receipt_deadlines()
        found = (
            self._evidence(row, receipts.get(row.message_id, ()), deadlines.get(row.message_id), at)
            for row in self.outbox(receipts=True)
        )
        return [e for e in found if not wanted or e.state in wanted]

    def overdue(self, *, now: int | None = None) -> list[Evidence]:
        """The messages sent whose receipts are missing after their deadline (``overdue``)."""
        return self.evidences(now=now, states=(DeliveryState.OVERDUE,))

    def _sent_row(self, message_id: bytes) -> JournalRow:
        row = self.store.lookup(message_id)
        if row is None or row.direction is not Direction.OUT:
            raise UsageError(f"no sent message {message_id.hex()}")
        return row

    def _evidence(
        self,
        row: JournalRow,
        receipts: Iterable[tuple[bytes, str, bytes, int, int]],
        deadline: int | None,
        now: int,
    ) -> Evidence:
        return _evidence_of(
            row,
            [Receipted(who, rid, received_at, at) for _, who, rid, received_at, at in receipts],
            expects=self.receipts.wants(row.schema),
            deadline=deadline,
            default_deadline=self.receipt_deadline,
            now=now,
        )


class _Outcome(Enum):
    HANDED_OVER = "handed-over"  # new, verified, recorded, handed over (or parked)
    KNOWN = "known"  # a copy of a message in the journal: acknowledged again
    REFUSED = "refused"  # failed a check for good: kept as evidence, acknowledged
    DEFERRED = "deferred"  # failed because of this bureau's own state: not acknowledged


class _Defer(Exception):
    """This bureau cannot take the message now (its parking space or replay guard is full)."""


def _without_receipts(rows: list[JournalRow], keep: bool) -> list[JournalRow]:
    return rows if keep else [r for r in rows if r.schema != DeliveryReceipt.schema_id]


def _refers_to(incoming: Incoming) -> bytes | None:
    if incoming.forwarded is not None:
        return incoming.forwarded.original_hash
    if incoming.conversation is not None:
        return incoming.conversation.request_hash
    if isinstance(incoming.body, AssistanceRequest):
        return None
    return incoming.message.reply_to


def _received_row(
    message: Message, data: bytes, *, at: int, refers_to: bytes | None, parked: bool
) -> JournalRow:
    envelope = message.envelope
    return JournalRow(
        pos=0,
        direction=Direction.IN,
        message_id=envelope.message_id,
        message_hash=envelope.message_hash,
        sender=envelope.sender,
        recipients=envelope.recipients,
        schema=message.body.schema_id,
        created=envelope.created,
        at=at,
        reply_to=envelope.reply_to,
        refers_to=refers_to,
        envelope=data,
        body=None,
        state=RowState.PENDING,
        detail="parked" if parked else None,
    )
