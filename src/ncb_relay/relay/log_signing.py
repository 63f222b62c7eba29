"""What the relay signs for its log: checkpoints (one per transaction) and receipts."""

from __future__ import annotations

from ..checkpoint import Checkpoint, LogKey, sign_checkpoint
from ..identity import Signer
from .sqlite_log import CheckpointSigner

__all__ = ["checkpoint_signer"]


def checkpoint_signer(origin: str, signer: Signer) -> CheckpointSigner:
    """Signs the checkpoint of a (size, root) as the log ``origin`` with ``signer`` (LOG-8)."""
    log = LogKey(origin, signer.public_key)

    def sign(size: int, root: bytes) -> bytes:
        return sign_checkpoint(Checkpoint(origin, size, root), log=log, signer=signer)

    return sign
