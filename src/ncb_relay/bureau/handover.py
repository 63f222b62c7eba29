"""Handing verified messages over to the application's handlers, and recording what came of it.

A message that passed every check is committed to the journal (``pending``)
before its handler runs; then one transaction marks it ``handled`` (or
``failed``, with the error's class, if the handler raised) and records the
replies the handler queued with ``incoming.reply``; then those replies are
submitted.  See :mod:`ncb_relay.bureau.store` for what a crash at each point
leaves behind.  Replies queued with ``incoming.reply`` are sent exactly once;
a handler that sends through ``Bureau.send`` or ``Bureau.reply`` instead
sends at least once (again, if it is run again after a crash), except
``Bureau.forward``, which does not forward the same message to the same
bureaus twice.  A message for which no handler is registered is
``unhandled``, and handed over at the next start if a handler is registered
for it then.  A reply that was parked, waiting for the request or forward it
names, is handed over once that one binds it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

import anyio

from ..errors import NcbRelayError, UsageError
from ..messages import (
    Body,
    Conversation,
    Delivery,
    DeliveryReceipt,
    Disposition,
    Forward,
    ForwardedMessage,
    Message,
    OpaqueBody,
    Step,
)
from .incoming import Incoming
from .outbox import Outbox
from .outgoing import Draft
from .store import BureauStore, Direction, RowState

__all__ = ["HANDLER_RAISED", "Handler", "Handover"]

log = logging.getLogger("ncb_relay.bureau")

Handler = Callable[[Incoming], Awaitable[None]]
HANDLER_RAISED = "handler raised "  # the detail of a row whose handler raised, then its class


class Handover:
    """The handlers of one bureau and the messages handed to them.

    ``received`` holds every message handed over (in this run or rebuilt from
    the journal), ``waiting`` the deliveries of parked replies bound since,
    ``unfinished`` the messages of the journal whose handler had not finished.
    """

    def __init__(
        self,
        store: BureauStore,
        outbox: Outbox,
        *,
        record: Callable[..., None],
        seal: Callable[[Incoming, Body, Iterable[str] | None], Draft],
        notify: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.handlers: dict[type[Body] | str, Handler] = {}
        self.received: dict[bytes, Incoming] = {}
        self.waiting: list[Delivery] = []
        self.unfinished: list[Incoming] = []
        self._store = store
        self._outbox = outbox
        self._record = record  # (drafts, *, handled, handled_state, detail): Bureau._record
        self._seal = seal
        self._notify = notify
        self._stopping = stopping

    def received_message(self, message_id: bytes) -> Incoming:
        try:
            return self.received[message_id]
        except KeyError:
            raise UsageError(f"no received message {message_id.hex()}") from None

    def register(self, kind: type[Body] | str, handler: Handler) -> None:
        if not (isinstance(kind, str) or (isinstance(kind, type) and issubclass(kind, Body))):
            raise UsageError("a handler is registered for a Body class or a schema id")
        self.handlers[kind] = handler

    def incoming(
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
            _seal=self._seal,
        )

    def handler_for(self, incoming: Incoming) -> Handler | None:
        """The handler of a message: by its body's class or schema id, else ``"*"``.

        A copy of a request this bureau wrote or was handed already (the
        requester in copy of its forward, a bureau that got it directly and
        forwarded) is not new work: a forward goes to a ``Forward`` handler
        only, a direct copy to none.
        """
        body = incoming.body
        if isinstance(body, DeliveryReceipt):  # evidence, not work: only a handler of its own
            return self.handlers.get(DeliveryReceipt) or self.handlers.get(body.schema_id)
        if incoming.copy:
            if incoming.forwarded is None:
                return None  # the direct copy of a request whose forward came first
            kinds: tuple[type, ...] = Forward.__mro__
        else:
            kinds = () if isinstance(body, OpaqueBody) else type(body).__mro__
        for kind in kinds:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        by_id = None if incoming.copy else self.handlers.get(body.schema_id)
        return by_id or self.handlers.get("*")

    @staticmethod
    def _needs_handler(incoming: Incoming) -> bool:
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

    async def hand_over(self, incoming: Incoming) -> None:
        """Run the message's handler; record its replies and the outcome in one transaction."""
        handler = self.handler_for(incoming)
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
        self.received[incoming.message_id] = incoming
        self._notify()
        for draft in drafts:
            with contextlib.suppress(NcbRelayError):  # recorded as failed, and logged
                await self._outbox.submit(draft.sealed)
        await self.dispatch_waiting()

    async def hand_over_all(self, deliveries: Iterable[Delivery]) -> None:
        """Hand over the replies of ``deliveries``; a refused one is marked ``failed``."""
        for delivery in deliveries:
            message = delivery.message
            if delivery.disposition is Disposition.REFUSED:
                assert delivery.error is not None
                self._store.mark(message.message_id, RowState.FAILED, delivery.error.code)
                continue
            incoming = self.incoming(
                message, message.body, conversation=delivery.conversation, step=delivery.step
            )
            await self.hand_over(incoming)

    def park(self, deliveries: Sequence[Delivery]) -> None:
        """Keep the deliveries of replies a sent message bound, for :meth:`dispatch_waiting`."""
        self.waiting.extend(deliveries)

    async def dispatch_waiting(self) -> None:
        waiting, self.waiting = self.waiting, []
        await self.hand_over_all(waiting)

    async def hand_over_unfinished(self, released: anyio.Event | None) -> None:
        """Hand the messages whose handler had not finished over again, before the inbox."""
        if released is not None:
            await released.wait()
        while self.unfinished and not self._stopping():  # the rest stay pending in the journal
            await self.hand_over(self.unfinished.pop(0))

    async def retry_failed(self) -> int:
        """Hand every message whose handler raised over to its handler again; return how many."""
        failed = [
            self.received[row.message_id]
            for row in self._store.rows(direction=Direction.IN, states=(RowState.FAILED,))
            if row.message_id in self.received and (row.detail or "").startswith(HANDLER_RAISED)
        ]
        for incoming in failed:
            await self.hand_over(replace(incoming, _seal=self._seal, _queued=[]))
        return len(failed)
