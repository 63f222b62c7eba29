"""What a handler receives: one verified message, its meaning, and a way to answer it.

An :class:`Incoming` is made by the bureau's inbox loop only after the message
passed every check (signature against the directory as of its creation,
recipient binding, replay, freshness, body schema and context, and for a
forward the original author's signature and handling code) and after it was
committed to the bureau's journal.  Replies queued with :meth:`Incoming.reply`
are sealed at once but recorded, with the message marked handled, only when
the handler returns; if the handler raises, or the process dies first, they
were never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..envelope import SealedEnvelope, VerifiedEnvelope
from ..errors import UsageError
from ..messages import (
    Body,
    Conversation,
    ForwardedMessage,
    Message,
    OpaqueBody,
    Step,
)

if TYPE_CHECKING:
    from .outgoing import Draft

__all__ = ["Incoming"]


@dataclass(eq=False, repr=False)
class Incoming:
    """A verified message handed to the application.

    ``body`` is what the message says: for a forward, the original's body
    (``forwarded`` then holds the forward, its author and its forwarder).
    ``conversation`` and ``step`` are set for a reply bound to a request this
    bureau follows (``step`` is ``None`` while the reply waits for its request,
    or for a duplicate).  ``handle`` is the envelope a reply to this message
    names: the forward for a forwarded request, the message itself otherwise.
    """

    message: Message
    body: Body | OpaqueBody
    handle: VerifiedEnvelope
    forwarded: ForwardedMessage | None = None
    conversation: Conversation | None = None
    step: Step | None = None
    copy: bool = False  # a request this bureau wrote or was handed already (see Bureau.on)
    _seal: Callable[[Incoming, Body, Iterable[str] | None], Draft] | None = field(
        default=None, repr=False
    )
    _queued: list[Draft] = field(default_factory=list, repr=False)

    @property
    def sender(self) -> str:
        return self.message.sender

    @property
    def author(self) -> str:
        """Who wrote ``body``: the original's author for a forward, else the sender."""
        return self.forwarded.author if self.forwarded is not None else self.message.sender

    @property
    def message_id(self) -> bytes:
        return self.message.message_id

    @property
    def in_handler(self) -> bool:
        """Whether its handler is running (replies then go through :meth:`reply`)."""
        return self._seal is not None

    def reply(self, body: Body, *, to: Iterable[str] | None = None) -> SealedEnvelope:
        """Seal ``body`` as a reply to :attr:`handle`; it is sent once the handler returns.

        ``to`` defaults, for a request (or a forwarded one), to everyone on the
        handle but this bureau: its sender and the other recipients (the
        requester in copy of a forward, the coordinator in copy of a request);
        for anything else, such as a diffusion to many bureaus, to its sender only.
        """
        if self._seal is None:
            raise UsageError(
                "reply() queues replies while the handler runs; "
                "afterwards use `await bureau.reply(incoming, body)`"
            )
        draft = self._seal(self, body, to)
        self._queued.append(draft)
        return draft.sealed

    def __repr__(self) -> str:  # never the body: it is case information (ERR-2)
        return (
            f"Incoming({self.message.body.schema_id} from {self.sender!r}, "
            f"id {self.message_id.hex()[:16]}...)"
        )

    @property
    def replies(self) -> tuple[SealedEnvelope, ...]:
        """The replies queued so far by the handler."""
        return tuple(d.sealed for d in self._queued)
