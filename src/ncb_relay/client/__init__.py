"""A bureau's low-level client of a relay (spec/relay-api.md), over anyio and httpx.

Import it as ``ncb_relay.client``; the top-level package does not export it.
"""

from __future__ import annotations

from .answers import Acceptance, Batch, ConsistencyProof, Delivery, LogEntry, RetryPolicy
from .relay_client import RelayClient

__all__ = [
    "Acceptance",
    "Batch",
    "ConsistencyProof",
    "Delivery",
    "LogEntry",
    "RelayClient",
    "RetryPolicy",
]
