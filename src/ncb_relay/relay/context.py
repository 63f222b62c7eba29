"""What every handler of one relay application shares: its identity, store, clock and limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..directory import KeyDirectory
from ..identity import Signer
from ..request_auth import RequestVerifier
from .app_settings import AppSettings
from .mailbox_signals import MailboxSignals
from .metrics import RelayMetrics
from .rate_limit import RateLimiter
from .storage import MailboxStore

__all__ = ["DirectoryProvider", "RelayContext"]

DirectoryProvider = Callable[[], KeyDirectory]
"""Returns the relay's current directory version (a VerifiedDirectory in production)."""


@dataclass(frozen=True, slots=True)
class RelayContext:
    relay_id: str
    directory: DirectoryProvider
    store: MailboxStore
    clock: Callable[[], int]
    settings: AppSettings
    verifier: RequestVerifier
    signals: MailboxSignals
    rates: RateLimiter
    metrics: RelayMetrics
    signer: Signer | None = None  # the relay's directory signing key: receipts (LOG-14)
    log_reads: RateLimiter | None = None  # public log reads, all clients together (API-21)
    directory_leaves: dict[bytes, int] = field(default_factory=dict)  # version hash -> leaf

    def current_directory(self) -> KeyDirectory:
        """The current directory, handed to the request verifier as well (its live view)."""
        directory = self.directory()
        self.verifier.directory = directory
        return directory
