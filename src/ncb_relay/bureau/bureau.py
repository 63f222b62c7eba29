"""A bureau's side of NCBR/1: send, request, receive through handlers, and remember.

Theory of operation.  A :class:`Bureau` joins the bureau's keys, its relay
(:class:`~ncb_relay.client.RelayClient`), its journal (:mod:`.store`), the keys
it trusts (:mod:`.directory_keeper`), the relay's log (:mod:`.log_keeper`: a
message is ``accepted`` only once the relay's evidence verified) and its
submissions (:mod:`.outbox`: a submission that timed out is ``unknown``, never
failed, and is resubmitted with the identical bytes until the relay says what
it holds).  It uses anyio only, so it runs under trio and asyncio alike.  Each
part of its work has a module of its own, to which it delegates: sealing and
recording what it sends (:mod:`.composer`); the inbox loop, whose checks refuse
a message for good or defer it (:mod:`.inbox`); handing each message that
passed to its handler, exactly once or again after a crash (:mod:`.handover`);
the delivery receipts it owes and holds (:mod:`.receipts`, :mod:`.delivery`;
MSG-13 to MSG-16).  :meth:`Bureau.start` rebuilds the conversations by
replaying the journal (:mod:`.rebuild`); messages whose handler had not
finished are handed over again when :meth:`Bureau.run` starts, before the
inbox, and under :meth:`Bureau.connect` only once the caller holds the bureau
(a handler may use it, to forward say).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx

from .. import primitives
from ..anchor import AnchorChain
from ..checkpoint import VerifiedCheckpoint, WitnessKey
from ..client import RelayClient, RetryPolicy
from ..envelope import DEFAULT_TTL
from ..errors import NoAnswer, ProtocolError, RelayUnavailable, UsageError
from ..freshness import DEFAULT_POLICY, FreshnessPolicy, ReplayGuard
from ..identity import PrivateIdentity
from ..messages import (
    DEFAULT_RECEIPT_POLICY,
    DEFAULT_REGISTRY,
    AssistanceRequest,
    Body,
    BodyRegistry,
    Conversation,
    DeliveryReceipt,
    ReceiptPolicy,
    Withdrawal,
)
from ..messages.request_states import OPEN_STATES
from ..verified_directory import VerifiedDirectory
from .composer import Composer
from .delivery import DEFAULT_RECEIPT_DEADLINE, DeliveryState, Evidence
from .directory_keeper import DirectoryKeeper, Keys
from .handover import Handler, Handover
from .inbox import Inbox, Outcome
from .incoming import Incoming
from .log_keeper import LogKeeper
from .outbox import Outbox
from .outgoing import Draft, Outgoing
from .rebuild import JournalReplay
from .receipts import ReceiptBook
from .routing import Router
from .store import BureauStore, Direction, JournalRow, RowState

__all__ = ["Bureau", "Handler"]

log = logging.getLogger("ncb_relay.bureau")

UNKNOWN_KEY_REFRESH = 60.0  # at most one refresh a minute because of an unknown key


def _wall_clock() -> int:
    return int(time.time())


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
        self._guard = ReplayGuard(policy=policy)
        self._started = False
        self._changed: anyio.Event | None = None  # made in start(): an event needs a running loop
        self._stopping = False
        self._last_key_refresh = -UNKNOWN_KEY_REFRESH
        self._released: anyio.Event | None = None  # set by connect() once it hands the bureau out
        self._running = False
        self._done: anyio.Event | None = None
        self.deferrals = 0  # messages left at the relay, to be checked again (see .inbox)
        # what it sends, what it hands over, its delivery receipts, its mailbox (see their modules)
        self._composer = Composer(self, clock=clock, rng=rng, notify=self._notify)
        self._handover = Handover(
            store,
            self.outbox_task,
            record=self._record,
            seal=self._composer.reply_draft,
            notify=self._notify,
            stopping=self._is_stopping,
        )
        self._receipts = ReceiptBook(
            self, draft=self._composer.draft, clock=clock, stopping=self._is_stopping
        )
        self._inbox = Inbox(
            self,
            composer=self._composer,
            handover=self._handover,
            receipts=self._receipts,
            guard=self._guard,
            clock=clock,
            notify=self._notify,
            stopping=self._is_stopping,
            refresh_directory=self._try_refresh,
            refresh_for_unknown_key=self._refresh_for_unknown_key,
        )

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
        self._handover.register(kind, handler)

    async def start(self) -> None:
        """Load the directory and rebuild the conversations from the journal.

        The messages whose handler had not finished are handed over again by :meth:`run`.
        """
        if self._started:
            raise UsageError("the bureau is already started")
        self._changed, self._done = anyio.Event(), anyio.Event()
        self._composer.seq = self.store.last_seq
        if self.anchors is not None:
            self.directory.load()
            try:
                await self.refresh_directory()
            except (RelayUnavailable, ProtocolError) as exc:
                if not self.directory.has_keys():
                    raise
                log.warning("directory-refresh-failed", extra={"code": exc.code})
        self.log.load()
        try:
            await self.refresh_log()
        except (RelayUnavailable, ProtocolError) as exc:
            log.warning("log-refresh-failed", extra={"code": exc.code})
        self._rebuild()
        self._started = True

    async def refresh_log(self) -> VerifiedCheckpoint | None:
        """Move the checkpoint held of the relay's log forward to the relay's latest one.

        It must verify with ``log_threshold`` witness cosignatures and be
        consistent with the one held; a fork raises
        :class:`~ncb_relay.errors.LogFork` and is kept in ``log.forks``.
        """
        return await self.log.refresh(self.relay)

    def stop(self) -> None:
        """Ask the inbox loop to stop after the message in hand (a long-poll is cut short)."""
        self._stopping = True
        self._inbox.stop_waiting()
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

    def _is_stopping(self) -> bool:
        return self._stopping

    def _record(self, drafts: Sequence[Draft], **handled: Any) -> None:
        self._handover.park(self._composer.record(drafts, **handled))

    async def _submit(self, draft: Draft) -> Outgoing:
        """Record ``draft``, hand over the replies it bound, then submit it."""
        self._record([draft])
        await self._handover.dispatch_waiting()
        return await self.outbox_task.submit(draft.sealed)

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
            self._composer.check_withdrawal(self.conversations.get(reply_to))
        draft = self._composer.draft(body, to, reply_to=reply_to, refers_to=reply_to)
        return await self._submit(draft)

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
        recorded = self._composer.recorded_forward(incoming, names)
        if recorded is not None:
            return recorded
        draft = self._composer.forward_draft(incoming, names, permission=permission, note=note)
        return await self._submit(draft)

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
        draft = self._composer.reply_draft(incoming, body, to)
        return await self._submit(draft)

    def received(self, message_id: bytes) -> Incoming:
        """A message received and handed over (in this run or rebuilt from the journal)."""
        return self._handover.received_message(message_id)

    async def withdraw(self, conversation: Conversation, *, reason: str) -> Outgoing:
        """Withdraw a request this bureau sent, to everyone it went to."""
        self._composer.check_withdrawal(conversation)
        recipients = [r.principal for r in conversation.request.header.recipients]
        return await self.send(
            Withdrawal(handling=conversation.body.handling, reason=reason),
            to=recipients,
            reply_to=conversation.request_hash,
        )

    async def flush(self) -> list[Outgoing]:
        """Submit every recorded message not yet accepted (queued or unknown), oldest first."""
        return await self.outbox_task.flush()

    async def retry_failed(self) -> int:
        """Hand every message whose handler raised over to its handler again; return how many."""
        return await self._handover.retry_failed()

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
                tasks.start_soon(self._receipts.submit_while_running)
                task_status.started()
                await self._handover.hand_over_unfinished(self._released)
                await self._inbox.run()
                await self._receipts.submit_owed()  # what was journaled goes before we stop
                tasks.cancel_scope.cancel()
        finally:
            self._running = False
            self._done.set()
            self._notify()

    async def _outbox_loop(self) -> None:
        await self.outbox_task.run(stopping=self._is_stopping, interval=lambda: self.retry_interval)

    async def _try_refresh(self) -> None:
        try:
            await self.refresh_directory()
        except (RelayUnavailable, ProtocolError) as exc:
            log.warning("directory-refresh-failed", extra={"code": exc.code})

    async def take(self, envelope: bytes) -> Incoming | None:
        """Check one envelope from the mailbox, record it and hand it over; ``None`` if not.

        ``None`` for a refused message, a deferred one (see :mod:`.inbox`)
        and a copy of a message already in the journal.
        """
        _, incoming = await self._take(envelope)
        return incoming

    async def _take(self, envelope: bytes, *, attempt: int = 1) -> tuple[Outcome, Incoming | None]:
        return await self._inbox.take(envelope, attempt=attempt)

    async def _refresh_for_unknown_key(self) -> bool:
        if self.anchors is None:
            return False
        if anyio.current_time() - self._last_key_refresh < UNKNOWN_KEY_REFRESH:
            return False
        before = self.keys
        await self._try_refresh()
        return self.keys is not before

    def _rebuild(self) -> None:
        """Replay the journal into the conversations; keep the unfinished messages for run()."""
        replay = JournalReplay(
            self,
            inbox=self._inbox,
            handover=self._handover,
            composer=self._composer,
            guard=self._guard,
            clock=self._clock,
        )
        self._handover.unfinished = replay.replay()
        self._handover.waiting = []

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
        self._receipts.expect(message_id, by=by)

    def evidence(self, message_id: bytes, *, now: int | None = None) -> Evidence:
        """The delivery evidence of a message this bureau sent, and its state at ``now``."""
        return self._receipts.evidence(message_id, now=now)

    def evidences(
        self, *, now: int | None = None, states: Iterable[DeliveryState] = ()
    ) -> list[Evidence]:
        """The evidence of every message sent (only those in ``states``, if given), oldest first."""
        return self._receipts.evidences(now=now, states=states)

    def overdue(self, *, now: int | None = None) -> list[Evidence]:
        """The messages sent whose receipts are missing after their deadline (``overdue``)."""
        return self.evidences(now=now, states=(DeliveryState.OVERDUE,))


def _without_receipts(rows: list[JournalRow], keep: bool) -> list[JournalRow]:
    return rows if keep else [r for r in rows if r.schema != DeliveryReceipt.schema_id]
