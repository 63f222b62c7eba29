"""The keys a bureau trusts: fixed, or the relay's directory checked against its anchors.

With trust anchors, the version accepted last is kept in the journal across
restarts (DIR-12).  A refresh fetches the relay's current version and verifies
it against the anchors and that version: an older one is a
:class:`~ncb_relay.errors.Rollback`, another one under the same serial a
:class:`~ncb_relay.errors.Fork`.  Either way the version held stays in use,
the refused file is kept in the journal as evidence (the signed files of a
fork prove it), and :attr:`DirectoryKeeper.problem` says what is wrong until a
refresh succeeds.  So does a :class:`~ncb_relay.errors.BrokenChain`: the relay
serves only its current version (API-14), so a bureau that missed a version
cannot verify the chain to the new one and keeps the old one until an operator
brings it the missing versions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..anchor import AnchorChain
from ..client import RelayClient
from ..directory import KeyDirectory, StaticDirectory
from ..errors import DirectoryExpired, Fork, NcbRelayError, ProtocolError, Rollback, UsageError
from ..identity import (
    EncryptionPublicKey,
    PrivateIdentity,
    PublicIdentity,
    SigningPublicKey,
)
from ..verified_directory import VerifiedDirectory, load_directory, verify_directory
from .store import BureauStore

__all__ = ["DirectoryKeeper", "Keys", "RebuildKeys"]

log = logging.getLogger("ncb_relay.bureau")

Keys = StaticDirectory | VerifiedDirectory


class DirectoryKeeper:
    """The bureau's current keys, and how it got them."""

    def __init__(
        self,
        store: BureauStore,
        *,
        directory: Keys | None,
        anchors: AnchorChain | None,
        clock: Callable[[], int],
    ) -> None:
        if (directory is None) == (anchors is None):
            raise UsageError("give exactly one of directory (fixed keys) and anchors")
        self.anchors = anchors
        self.problem: NcbRelayError | None = None
        self._store = store
        self._keys: Keys | None = directory
        self._clock = clock

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            raise UsageError("the bureau has no directory yet: call start()")
        return self._keys

    @property
    def historical(self) -> KeyDirectory:
        """The view for verifying what was signed in the past (DIR-9, DIR-11)."""
        keys = self.keys
        return keys.historical if isinstance(keys, VerifiedDirectory) else keys

    def identity(self, principal: str, at: int) -> PublicIdentity:
        """``principal``'s keys to seal to at ``at``."""
        keys = self.keys
        if isinstance(keys, VerifiedDirectory):
            return keys.identity(principal, at)
        return keys.identity(principal)

    def load(self) -> None:
        """Take up the version accepted before, from the journal (no freshness judged)."""
        if self.anchors is None:
            return
        stored = self._store.latest_directory()
        if stored is not None:
            self._keys = load_directory(stored, anchors=self.anchors)

    async def refresh(self, relay: RelayClient) -> VerifiedDirectory:
        """Fetch the relay's version and verify it; keep the held one if it does not verify."""
        if self.anchors is None:
            raise UsageError("a bureau with fixed keys has no directory to refresh")
        previous = self._keys if isinstance(self._keys, VerifiedDirectory) else None
        data = await relay.directory()
        try:
            fresh = verify_directory(
                data, anchors=self.anchors, now=self._clock(), previous=previous
            )
        except ProtocolError as exc:
            self.problem = exc
            if isinstance(exc, (Rollback, Fork)):
                self._store.record_directory_conflict(at=self._clock(), code=exc.code, data=data)
            raise
        if previous is None or fresh.serial > previous.serial:
            self._store.save_directory(fresh.serial, fresh.data)
            log.info("directory", extra={"serial": fresh.serial})
        self._keys = fresh
        self.problem = None
        return fresh

    def has_keys(self) -> bool:
        """Whether a directory version (or fixed keys) is held at all, usable or not."""
        try:
            self.keys  # noqa: B018 - raises without keys
        except UsageError:
            return False
        return True

    def usable(self) -> bool:
        """Whether the keys may be used now (DIR-10: warn in the grace period, stop after)."""
        keys = self.keys
        if not isinstance(keys, VerifiedDirectory):
            return True
        try:
            if keys.freshness(self._clock()) == "grace":
                log.warning("directory-in-grace", extra={"serial": keys.serial})
        except DirectoryExpired as exc:
            self.problem = exc
            log.error("directory-expired", extra={"serial": keys.serial})
            return False
        return True


class RebuildKeys:
    """The keys for opening a journal row again: historical signing keys, our own key ids.

    The row was verified live when it arrived; opening it again at start
    checks the same signatures as of the message's creation (DIR-9's
    historical view), and accepts the bureau's own encryption key ids even if
    a later directory version dropped them.
    """

    def __init__(self, keys: KeyDirectory, own: PrivateIdentity) -> None:
        self._keys = keys
        self._own = own.principal
        self._own_ids = frozenset(k.public_key.key_id for k in own.encryption_keys)

    def signing_key(self, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        return self._keys.signing_key(principal, key_id, at)

    def check_encryption_key(self, principal: str, key_id: bytes, at: int) -> None:
        if principal == self._own and key_id in self._own_ids:
            return
        self._keys.check_encryption_key(principal, key_id, at)

    def encryption_key(self, principal: str, at: int) -> EncryptionPublicKey:
        return self._keys.encryption_key(principal, at)
