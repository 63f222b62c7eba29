"""A witness of a relay's log: it cosigns a checkpoint only after checking it extends its own view.

Theory of operation
-------------------
A :class:`Witness` holds, for one log, the largest checkpoint it has cosigned
(the exact signed bytes, as the log signed them) and the evidence of every fork
it has seen.  :meth:`Witness.cosign` is LOG-10's witness obligation and LOG-30's
rules: it verifies the log's signature, then

- with nothing held, takes the checkpoint as its starting point (trust on
  first use; an operator who knows a checkpoint of the log gives it as the
  starting state instead);
- for a larger tree, verifies the consistency proof from the one held;
- for the same size, requires the same root;
- for a smaller tree, refuses (:class:`~ncb_relay.errors.Rollback`) if the
  proof shows it is an earlier head of the same tree, since a witness never
  moves back, and otherwise has found a fork.

A contradiction raises :class:`~ncb_relay.errors.LogFork` with both signed
notes and the proof; the witness keeps them in :attr:`Witness.forks` and keeps
the checkpoint it held.  It keeps each fork (two sizes and roots) once and at
most :data:`MAX_FORKS_KEPT`; beyond, it drops the oldest, but never the first
fork nor one of two roots for the same size, which proves a fork on its own.
Only when every check passed does it call
:func:`~ncb_relay.checkpoint.cosign_checkpoint` and hold the new checkpoint.

:attr:`Witness.state` is a plain JSON value (notes as text, proofs in hex),
which an adapter writes atomically after every cosignature and hands back to
:meth:`Witness.restore` on its next start; restoring verifies the held note
again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import merkle
from .checkpoint import (
    DEFAULT_LIMITS,
    Checkpoint,
    LogKey,
    VerifiedCheckpoint,
    WitnessKey,
    cosign_checkpoint,
    parse_note,
    verify_checkpoint,
)
from .errors import (
    InvalidProof,
    LimitExceeded,
    LogFork,
    MalformedInput,
    ProtocolError,
    Rollback,
    UsageError,
)
from .identity import Signer

__all__ = ["MAX_FORKS_KEPT", "STATE_VERSION", "Witness"]

STATE_VERSION = 1
MAX_FORKS_KEPT = 64  # forks kept as evidence; beyond, the oldest that proves least is dropped


def _proof_json(proof: Sequence[bytes]) -> list[str]:
    return [p.hex() for p in proof]


def _proof_from_json(value: Any) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > merkle.MAX_PROOF_HASHES:
        raise MalformedInput("a proof is a list of at most 64 hashes")
    try:
        proof = tuple(bytes.fromhex(item) for item in value)
    except (TypeError, ValueError) as exc:
        raise MalformedInput("a proof hash is not hex") from exc
    if any(len(p) != merkle.HASH_BYTES for p in proof):
        raise MalformedInput("a proof hash is not 32 bytes")
    return proof


def _note_from_json(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput(f"{what} is a signed note as text")
    data = value.encode("utf-8")
    if len(data) > DEFAULT_LIMITS.max_bytes:
        raise MalformedInput(f"{what} is too large")
    return data


def _verify_held(note: bytes, keys: Sequence[LogKey]) -> VerifiedCheckpoint:
    """``note`` verified with the first of ``keys`` that signed it; else the first key's error."""
    failure: ProtocolError | None = None
    for key in keys:
        try:
            return verify_checkpoint(note, log=key)
        except ProtocolError as exc:
            failure = failure or exc
    assert failure is not None
    raise failure


_ForkKey = tuple[int, bytes, int, bytes]  # held size and root, offered size and root


def _fork_key(fork: LogFork) -> _ForkKey:
    """What identifies a fork: the two sizes and roots (not the proof, nor the signatures).

    Raises :class:`MalformedInput` if a note is not a checkpoint.
    """
    held = Checkpoint.parse(parse_note(fork.held).text)
    offered = Checkpoint.parse(parse_note(fork.offered).text)
    return held.size, held.root, offered.size, offered.root


def _proves_itself(key: _ForkKey) -> bool:
    """Two roots for the same size: a fork shown without any proof."""
    held_size, held_root, offered_size, offered_root = key
    return held_size == offered_size and held_root != offered_root


class Witness:
    """One witness's view of one log; see the module docstring."""

    __slots__ = ("_forks", "_held", "key", "log", "signer")

    def __init__(
        self,
        *,
        log: LogKey,
        key: WitnessKey,
        signer: Signer,
        held: bytes | None = None,
        held_keys: Sequence[LogKey] = (),
    ) -> None:
        """``log`` verifies every checkpoint offered; ``held`` may verify with it or with
        one of ``held_keys`` (the log's earlier keys: it was cosigned before a rotation)."""
        if signer.public_key != key.public_key:
            raise UsageError("the signer does not hold the witness's key")
        if any(k.name != log.name for k in held_keys):
            raise UsageError("the held keys are the log's, under its name")
        self.log = log
        self.key = key
        self.signer = signer
        self._forks: list[tuple[_ForkKey, LogFork]] = []
        self._held = None if held is None else _verify_held(held, (log, *held_keys))

    @property
    def held(self) -> VerifiedCheckpoint | None:
        """The largest checkpoint of the log this witness cosigned (without its cosignature)."""
        return self._held

    @property
    def forks(self) -> tuple[LogFork, ...]:
        """Every contradiction seen, each with both signed notes and the proof given."""
        return tuple(fork for _key, fork in self._forks)

    def _fork(self, reason: str, offered: VerifiedCheckpoint, proof: Sequence[bytes]) -> LogFork:
        assert self._held is not None
        error = LogFork(
            f"the log {self.log.name} forked: {reason}",
            held=self._held.data,
            offered=offered.data,
            reason=reason,
            proof=tuple(proof),
        )
        self._keep((self._held.size, self._held.root, offered.size, offered.root), error)
        return error

    def _keep(self, key: _ForkKey, error: LogFork) -> None:
        """Keep ``error`` as evidence, at most :data:`MAX_FORKS_KEPT` forks in all.

        A fork already kept (the same two sizes and roots) is not kept twice.
        Beyond the bound the oldest fork is dropped, but never the first one
        nor one of two roots for the same size (which proves a fork on its
        own), so a flood of junk forks cannot push that evidence out; when
        only such forks are kept, the new one is not kept.
        """
        if any(kept == key for kept, _fork in self._forks):
            return
        forks = [*self._forks, (key, error)]
        if len(forks) > MAX_FORKS_KEPT:
            droppable = [i for i in range(1, len(forks)) if not _proves_itself(forks[i][0])]
            if not droppable:
                return
            del forks[droppable[0]]
        self._forks = forks

    def cosign(self, note: bytes, proof: Sequence[bytes] = (), *, now: int) -> bytes:
        """``note`` with this witness's cosignature at ``now``, once it is shown consistent.

        ``proof`` is the consistency proof from the held checkpoint's size to
        ``note``'s (from ``note``'s to the held one's if ``note`` is smaller).
        Raises what :func:`~ncb_relay.checkpoint.verify_checkpoint` raises for a
        bad note, :class:`LogFork` for a contradiction, :class:`Rollback` for
        an earlier head of the held tree; nothing changes then.
        """
        offered = verify_checkpoint(note, log=self.log)
        held = self._held
        if held is not None:
            self._check(held, offered, proof)
        cosigned = cosign_checkpoint(note, witness=self.key, signer=self.signer, now=now)
        if held is None or offered.size > held.size:
            self._held = offered
        return cosigned

    def _check(
        self, held: VerifiedCheckpoint, offered: VerifiedCheckpoint, proof: Sequence[bytes]
    ) -> None:
        if offered.size == held.size:
            if offered.root != held.root:
                raise self._fork("two roots for the same size", offered, proof)
            if proof:
                raise InvalidProof("a checkpoint of the same size needs an empty proof")
            return
        old, new = (held, offered) if offered.size > held.size else (offered, held)
        try:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
        except InvalidProof as exc:
            raise self._fork("no valid consistency proof", offered, proof) from exc
        if new is held:
            raise Rollback(
                f"the checkpoint of size {offered.size} is older than the one of size "
                f"{held.size} the witness cosigned"
            )

    # --- the state an adapter persists -----------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The witness's state as a JSON value (the adapter writes it atomically)."""
        return {
            "version": STATE_VERSION,
            "log": self.log.name,
            "witness": self.key.name,
            "held": None if self._held is None else self._held.data.decode("utf-8"),
            "forks": [
                {
                    "reason": fork.reason,
                    "held": fork.held.decode("utf-8"),
                    "offered": fork.offered.decode("utf-8"),
                    "proof": _proof_json(fork.proof),
                }
                for _key, fork in self._forks
            ],
        }

    @classmethod
    def restore(
        cls,
        state: Any,
        *,
        log: LogKey,
        key: WitnessKey,
        signer: Signer,
        held_keys: Sequence[LogKey] = (),
    ) -> Witness:
        """The witness whose :attr:`state` was saved; the held note is verified again
        (with ``log`` or one of ``held_keys``, as :class:`Witness` says).

        Raises :class:`MalformedInput` for a state of another shape, log or
        witness, and what :func:`verify_checkpoint` raises for the held note.
        """
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise MalformedInput(f"a witness state is a JSON object of version {STATE_VERSION}")
        if state.get("log") != log.name or state.get("witness") != key.name:
            raise MalformedInput(f"the state is not {key.name}'s for the log {log.name}")
        held = state.get("held")
        forks = state.get("forks")
        if not isinstance(forks, list) or len(forks) > MAX_FORKS_KEPT:
            raise MalformedInput(f"forks is a list of at most {MAX_FORKS_KEPT}")
        witness = cls(
            log=log,
            key=key,
            signer=signer,
            held=None if held is None else _note_from_json(held, "the held checkpoint"),
            held_keys=held_keys,
        )
        for fork in forks:
            if not isinstance(fork, dict) or not isinstance(fork.get("reason"), str):
                raise MalformedInput("a fork is an object with a reason")
            error = LogFork(
                f"the log {log.name} forked: {fork['reason']}",
                held=_note_from_json(fork.get("held"), "a fork's held note"),
                offered=_note_from_json(fork.get("offered"), "a fork's offered note"),
                reason=fork["reason"],
                proof=_proof_from_json(fork.get("proof")),
            )
            try:
                fork_key = _fork_key(error)
            except LimitExceeded as exc:
                raise MalformedInput(f"a fork's note: {exc.message}") from exc
            witness._forks.append((fork_key, error))
        return witness
