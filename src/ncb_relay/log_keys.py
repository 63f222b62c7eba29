"""The keys of a relay's log and of its witnesses, as the directory lists them (spec/log.md).

A relay is a principal of role ``relay`` in the directory; its log is named
``<relay id>/log`` (:func:`ncb_relay.receipt.log_origin`) and signed with the
relay's directory signing key.  A witness (the coordinator or a bureau)
cosigns under its principal id with its own directory signing key.  These
functions pick the signing key a principal holds at a time: the principal
active then, the newest key in its window and not revoked then (the live view
of DIR-11); every miss raises ``UnknownKey``.
"""

from __future__ import annotations

from .checkpoint import LogKey, WitnessKey
from .errors import UnknownKey
from .identity import SigningPublicKey
from .receipt import log_origin
from .verified_directory import VerifiedDirectory

__all__ = [
    "WITNESS_ROLES",
    "current_signing_key",
    "relay_log_key",
    "relay_log_keys",
    "witness_key",
]

WITNESS_ROLES = frozenset({"coordinator", "bureau"})


def current_signing_key(directory: VerifiedDirectory, principal: str, at: int) -> SigningPublicKey:
    """The newest signing key of ``principal`` valid at ``at``: the principal active then,
    the key in its window and not revoked (the live view of DIR-11)."""
    entry = directory.entry(principal)
    if entry.state_at(at) != "active":
        raise UnknownKey(f"{principal} is not active at {at}")
    valid = [
        record
        for record in entry.signing_keys
        if record.in_window(at) and (record.revoked is None or at < record.revoked)
    ]
    if not valid:
        raise UnknownKey(f"{principal} holds no valid signing key at {at}")
    return max(valid, key=lambda record: record.not_before).key


def relay_log_key(directory: VerifiedDirectory, relay_id: str, at: int) -> LogKey:
    """The log key of relay ``relay_id``: its log's name and its signing key at ``at``."""
    entry = directory.entry(relay_id)
    if entry.role != "relay":
        raise UnknownKey(f"{relay_id} is not listed as a relay")
    return LogKey(log_origin(relay_id), current_signing_key(directory, relay_id, at))


def relay_log_keys(
    directory: VerifiedDirectory, relay_id: str, at: int | None = None
) -> tuple[LogKey, ...]:
    """The log keys of relay ``relay_id``, newest first: under every signing key the
    directory lists for it (``at`` None: to verify a checkpoint already held, whatever its
    key's window), or under those valid at ``at`` (the relay active then, the key in its
    window and not revoked: to verify a checkpoint offered now).  Raises ``UnknownKey`` if
    there is none, or the principal is not a relay."""
    entry = directory.entry(relay_id)
    if entry.role != "relay":
        raise UnknownKey(f"{relay_id} is not listed as a relay")
    records = list(entry.signing_keys)
    if at is not None:
        if entry.state_at(at) != "active":
            raise UnknownKey(f"{relay_id} is not active at {at}")
        records = [
            record
            for record in records
            if record.in_window(at) and (record.revoked is None or at < record.revoked)
        ]
    if not records:
        raise UnknownKey(f"{relay_id} holds no valid signing key at {at}")
    records.sort(key=lambda record: record.not_before, reverse=True)
    return tuple(LogKey(log_origin(relay_id), record.key) for record in records)


def witness_key(directory: VerifiedDirectory, principal: str, at: int) -> WitnessKey:
    """The witness key of ``principal`` (the coordinator or a bureau, LOG-30) at ``at``."""
    if directory.entry(principal).role not in WITNESS_ROLES:
        raise UnknownKey(f"{principal} is not a coordinator or a bureau: it witnesses nothing")
    return WitnessKey(principal, current_signing_key(directory, principal, at))
