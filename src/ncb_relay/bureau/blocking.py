"""The bureau for code that does not use async: the same :class:`Bureau`, run in a portal.

:class:`BlockingBureau` starts an event loop (trio by default) in a background
thread with :func:`anyio.from_thread.start_blocking_portal`, opens
:meth:`Bureau.connect` in it, and exposes each coroutine method of
:class:`Bureau` as a blocking call through :func:`_blocking`, so nothing is
written twice: the behaviour, the checks and the errors are the async code's.
Handlers are plain functions; each runs in a worker thread while the inbox
waits for it, and the replies it queues are sealed back on the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from functools import partial
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from ..identity import PrivateIdentity
from ..messages import Body, Conversation
from .bureau import Bureau, Handler
from .delivery import Evidence
from .incoming import Incoming
from .store import JournalRow, RowState

__all__ = ["BlockingBureau", "SyncHandler"]

P = ParamSpec("P")
R = TypeVar("R")
SyncHandler = Callable[[Incoming], None]


def _blocking(
    method: Callable[Concatenate[Bureau, P], Awaitable[R]],
) -> Callable[Concatenate[BlockingBureau, P], R]:
    """``Bureau.method`` as a blocking call on the portal's loop."""

    def call(self: BlockingBureau, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._portal.call(partial(method, self.bureau, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _threaded(handler: SyncHandler) -> Handler:
    """A plain handler run in a worker thread; its replies are sealed on the loop."""

    async def run(incoming: Incoming) -> None:
        seal = incoming._seal
        if seal is not None:
            incoming._seal = lambda message, body, to: anyio.from_thread.run_sync(
                seal, message, body, to
            )
        try:
            # a handler that never returns must not hold up shutdown: its thread is abandoned
            # and the message stays pending, to be handed over again after a restart
            await anyio.to_thread.run_sync(handler, incoming, abandon_on_cancel=True)
        finally:
            incoming._seal = seal

    return run


class BlockingBureau:
    """A :class:`Bureau` for blocking code; use it as a context manager.

    ``BlockingBureau(identity, relay_url=..., relay_id=..., store=...,
    coordinator=..., anchors=...)`` takes :meth:`Bureau.connect`'s arguments;
    ``handlers`` maps body types to plain functions.
    """

    send = _blocking(Bureau.send)
    request = _blocking(Bureau.request)
    reply = _blocking(Bureau.reply)
    forward = _blocking(Bureau.forward)
    withdraw = _blocking(Bureau.withdraw)
    wait_for = _blocking(Bureau.wait_for)
    flush = _blocking(Bureau.flush)
    retry_failed = _blocking(Bureau.retry_failed)
    refresh_directory = _blocking(Bureau.refresh_directory)
    refresh_log = _blocking(Bureau.refresh_log)

    def __init__(
        self,
        identity: PrivateIdentity,
        *,
        handlers: dict[type[Body] | str, SyncHandler] | None = None,
        backend: str = "trio",
        **connect: Any,
    ) -> None:
        self._identity = identity
        self._handlers = {k: _threaded(h) for k, h in (handlers or {}).items()}
        self._backend = backend
        self._connect = connect
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._bureau_cm: AbstractContextManager[Bureau] | None = None

    def __enter__(self) -> Self:
        self._portal_cm = anyio.from_thread.start_blocking_portal(self._backend)
        self._portal = self._portal_cm.__enter__()
        try:
            self._bureau_cm = self._portal.wrap_async_context_manager(
                Bureau.connect(self._identity, handlers=self._handlers, **self._connect)
            )
            self.bureau = self._bureau_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._bureau_cm is not None:
                self._bureau_cm.__exit__(exc_type, exc, tb)
        finally:
            if self._portal_cm is not None:
                self._portal_cm.__exit__(None, None, None)

    def on(self, kind: type[Body] | str, handler: SyncHandler) -> None:
        """Hand messages of ``kind`` to the plain function ``handler`` (see :meth:`Bureau.on`)."""
        self._portal.call(self.bureau.on, kind, _threaded(handler))

    def conversation(self, request_hash: bytes) -> Conversation:
        return self._portal.call(self.bureau.conversations.get, request_hash)

    def inbox(self, *states: RowState, receipts: bool = False) -> list[JournalRow]:
        return self._portal.call(partial(self.bureau.inbox, *states, receipts=receipts))

    def outbox(self, *, receipts: bool = False) -> list[JournalRow]:
        return self._portal.call(partial(self.bureau.outbox, receipts=receipts))

    def evidence(self, message_id: bytes, *, now: int | None = None) -> Evidence:
        """A sent message's delivery evidence and state (see :meth:`Bureau.evidence`)."""
        return self._portal.call(partial(self.bureau.evidence, message_id, now=now))

    def overdue(self, *, now: int | None = None) -> list[Evidence]:
        return self._portal.call(partial(self.bureau.overdue, now=now))

    def expect_receipts(self, message_id: bytes, *, by: int) -> None:
        self._portal.call(partial(self.bureau.expect_receipts, message_id, by=by))

    def journal_of(self, request_hash: bytes) -> list[JournalRow]:
        return self._portal.call(self.bureau.journal_of, request_hash)

    def received(self, message_id: bytes) -> Incoming:
        return self._portal.call(self.bureau.received, message_id)
