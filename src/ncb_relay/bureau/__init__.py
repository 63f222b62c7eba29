"""A bureau's client: send, request, receive through handlers, remember across restarts.

Import it as ``ncb_relay.bureau``.  :class:`Bureau` is the async API (anyio:
trio or asyncio); :class:`BlockingBureau` the same for blocking code.
"""

from __future__ import annotations

from .blocking import BlockingBureau, SyncHandler
from .bureau import Bureau, Handler
from .delivery import DeliveryState, Evidence, Receipted
from .incoming import Incoming
from .outgoing import Outgoing
from .store import BureauStore, Direction, JournalRow, RowState

__all__ = [
    "BlockingBureau",
    "Bureau",
    "BureauStore",
    "DeliveryState",
    "Direction",
    "Evidence",
    "Handler",
    "Incoming",
    "JournalRow",
    "Outgoing",
    "Receipted",
    "RowState",
    "SyncHandler",
]
