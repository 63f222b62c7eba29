"""A bureau's view of its relay's log: every acceptance verified, every checkpoint checked.

Theory of operation.  The relay logs every envelope it accepts and answers
with evidence (spec/log.md): a signed receipt, the signed checkpoint it is
proven against, an inclusion proof and, since the bureau says which tree size
it observed (``known``), a consistency proof.  :class:`LogKeeper` holds a
:class:`~ncb_relay.checkpoint.LogView` of the log ``log_origin(relay_id)``,
whose keys are the relay principal's signing keys in the bureau's directory:
those valid now verify what the relay offers, every key listed verifies the
checkpoints held, so a rotated key neither drops them nor lets the relay start
another history (the first checkpoint under the new key must be proven
consistent with the one held).  If no listed key verifies the checkpoint held,
the keeper has a :attr:`~LogKeeper.problem` and refuses to verify anything (no
message becomes ``accepted``) until the directory lists that key again: it
never starts again from an empty view.

The view holds two checkpoints, both kept in the journal and taken up again
at the next start (LOG-12): the one *observed*, the largest verified by the
relay's key and proven consistent, against which every later checkpoint is
checked; and the *latest*, the largest that also had ``threshold`` witness
cosignatures, which only moves forward.  Without a threshold they are one.

:meth:`LogKeeper.verify_acceptance` runs
:func:`~ncb_relay.receipt.verify_receipt` and then
:meth:`~ncb_relay.checkpoint.LogView.check` with a consistency proof between
the checkpoint observed and the offered one.  The answer's proof is used if it
is for those two sizes; another submission may have moved the checkpoint
observed while this one was in flight, and then the proof for the right sizes
is fetched (``GET /v1/log/consistency``).

With a witness threshold, a message whose receipt verifies is ``accepted``
at once (the relay signed that it holds it, and its checkpoint is consistent
with everything observed), but it is *witnessed* only once a witnessed
checkpoint that includes its entry is held (:meth:`LogKeeper.witnessed`:
``False`` until then; it becomes ``True`` after a :meth:`LogKeeper.refresh`
brings one).  Without a threshold every accepted message is witnessed.

Evidence that does not verify is a fault of the relay: it is kept exactly in
the journal (``log_refusals``; a :class:`~ncb_relay.errors.LogFork` also in
``log_forks``, both signed notes) and the error is raised; the held
checkpoint does not change.  The caller (the outbox) then does not report the
message accepted.  A relay that cannot be reached for a proof, or a directory
without the relay's key, is raised as it is and recorded nowhere: nothing was
shown to be wrong, and the next resubmission brings fresh evidence.

:meth:`LogKeeper.refresh` fetches the relay's latest checkpoint with
``threshold`` cosignatures (``GET /v1/log/checkpoint?cosigned=k``) and moves
the checkpoints held forward the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..checkpoint import LogKey, LogView, VerifiedCheckpoint, WitnessKey, verify_checkpoint
from ..client import Acceptance, RelayClient
from ..envelope import SealedEnvelope
from ..errors import (
    BelowThreshold,
    BindingMismatch,
    LogFork,
    MalformedInput,
    NcbRelayError,
    ProtocolError,
    RelayUnavailable,
    UnknownKey,
    UsageError,
)
from ..identity import SigningPublicKey
from ..log_keys import relay_log_keys, witness_key
from ..receipt import VerifiedReceipt, log_origin, parse_receipt, verify_receipt
from ..verified_directory import VerifiedDirectory
from .directory_keeper import DirectoryKeeper
from .store import (
    BureauStore,
    LogEvidence,
    LogForkRow,
    LogReceiptRow,
    LogRefusalRow,
)

__all__ = ["LogKeeper", "LogProblem"]

log = logging.getLogger("ncb_relay.bureau")

PROOF_ATTEMPTS = 3  # fetches of a consistency proof while concurrent answers move the held size


@dataclass(frozen=True, slots=True)
class LogProblem:
    """Why the log view is not up to date: a code and a sentence, never key material."""

    code: str
    detail: str


class LogKeeper:
    """The bureau's view of its relay's log (see the module docstring).

    ``witnesses`` are principal ids (their directory signing keys are the
    witness keys, named by the id) or :class:`~ncb_relay.checkpoint.WitnessKey`;
    ``threshold`` is how many of them must have cosigned a checkpoint before it
    becomes the one held.  :attr:`problem` is the last failure (of a
    verification, a refresh, or the relay's key in the directory), ``None``
    again after the next verification or refresh that succeeds; the evidence
    of each failure the relay is to blame for stays in :attr:`problems` and
    :attr:`forks`.
    """

    def __init__(
        self,
        store: BureauStore,
        *,
        relay_id: str,
        directory: DirectoryKeeper,
        clock: Callable[[], int],
        witnesses: Sequence[str | WitnessKey] = (),
        threshold: int = 0,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise UsageError("the witness threshold is a non-negative integer")
        if threshold > len(witnesses):
            raise UsageError("the witness threshold exceeds the number of witnesses")
        self.relay_id = relay_id
        self.origin = log_origin(relay_id)
        self.witnesses = tuple(witnesses)
        self.threshold = threshold
        self.problem: LogProblem | None = None
        self._store = store
        self._directory = directory
        self._clock = clock
        self._view: LogView | None = None
        self._keys: tuple[tuple[LogKey, ...], tuple[LogKey, ...]] | None = None
        self._last_refused: ProtocolError | None = None  # the last error kept with its evidence

    # --- looking -------------------------------------------------------------------------------

    @property
    def latest(self) -> VerifiedCheckpoint | None:
        """The latest checkpoint held with the witness cosignatures required (``None`` before
        the first)."""
        return None if self._view is None else self._view.latest

    @property
    def observed(self) -> VerifiedCheckpoint | None:
        """The largest checkpoint verified by the relay's key and proven consistent."""
        return None if self._view is None else self._view.observed

    def known_size(self) -> int | None:
        """The size of the checkpoint observed, to ask the relay for a consistency proof."""
        observed = self.observed
        return None if observed is None else observed.size

    def witnessed(self, message_id: bytes) -> bool | None:
        """Whether the entry of an accepted message is in the latest (witnessed) checkpoint
        held; ``None`` for a message with no verified evidence kept."""
        row = self._store.log_receipt(message_id)
        if row is None:
            return None
        latest = self.latest
        return latest is not None and row.log_index < latest.size

    @property
    def forks(self) -> list[LogForkRow]:
        """Every fork of the relay's log seen, with both signed checkpoints, oldest first."""
        return self._store.log_forks()

    @property
    def problems(self) -> list[LogRefusalRow]:
        """Every piece of the relay's evidence that did not verify, oldest first."""
        return self._store.log_refusals()

    def receipt(self, message_id: bytes) -> LogReceiptRow | None:
        """The verified evidence kept for an accepted message."""
        return self._store.log_receipt(message_id)

    # --- the view ------------------------------------------------------------------------------

    def load(self) -> None:
        """Take up the checkpoint held before, from the journal (if the relay's key allows).

        A directory without the relay's key is not an error here: it is the
        :attr:`problem` until the directory lists it.
        """
        self._view = None
        try:
            self.view()
        except NcbRelayError as exc:
            self.problem = LogProblem(exc.code, f"the relay's log key is unknown: {exc.message}")

    def view(self) -> LogView:
        """The log view, with the relay's keys in the directory now; made again if they changed.

        The checkpoints held (in memory, else in the journal) are taken up
        with every key the directory lists for the relay.  Raises
        :class:`~ncb_relay.errors.UnknownKey` (or the directory's error) if the
        directory does not list the relay or a witness, or if no listed key
        verifies a checkpoint held: then :attr:`problem` says so and nothing
        is verified until it is resolved (never an empty view instead).
        """
        now = self._clock()
        keys = self._log_keys(now)
        if self._view is not None and self._keys == keys:
            return self._view
        witnesses = [self._witness(w, now) for w in self.witnesses]
        old = self._view
        latest = old.latest.data if old is not None and old.latest else None
        observed = old.observed.data if old is not None and old.observed else None
        latest = latest or self._store.log_checkpoint(self.origin)
        observed = observed or self._store.log_observed(self.origin)
        try:  # verified when they were kept; a threshold raised since does not drop them
            view = LogView(
                keys[0],
                witnesses=witnesses,
                threshold=0,
                latest=latest,
                observed=observed,
                held_keys=keys[1],
            )
        except NcbRelayError as exc:
            self._view = self._keys = None
            self.problem = LogProblem(
                "unknown-key",
                f"the checkpoint held does not verify with the relay's keys: {exc.code}",
            )
            log.error("log-checkpoint-unverifiable", extra={"code": exc.code})
            raise UnknownKey(
                "the checkpoint held of the relay's log verifies with no key the directory "
                "lists for the relay"
            ) from exc
        view.threshold = self.threshold
        self._view, self._keys = view, keys
        return view

    def _log_keys(self, now: int) -> tuple[tuple[LogKey, ...], tuple[LogKey, ...]]:
        """The relay's log keys valid now, and every log key listed for it."""
        keys = self._directory.keys
        if isinstance(keys, VerifiedDirectory):  # a relay principal, with its signing keys
            return relay_log_keys(keys, self.relay_id, now), relay_log_keys(keys, self.relay_id)
        key = LogKey(self.origin, keys.identity(self.relay_id).signing_key)
        return (key,), (key,)

    def _witness(self, witness: str | WitnessKey, now: int) -> WitnessKey:
        if isinstance(witness, WitnessKey):
            return witness
        principal = witness
        keys = self._directory.keys
        if isinstance(keys, VerifiedDirectory):
            return witness_key(keys, principal, now)
        return WitnessKey(principal, keys.identity(principal).signing_key)

    # --- verifying -----------------------------------------------------------------------------

    async def verify_acceptance(
        self, sealed: SealedEnvelope, acceptance: Acceptance, relay: RelayClient
    ) -> VerifiedReceipt:
        """Verify the relay's evidence that it logged ``sealed``; keep it if it does not verify.

        Returns the verified receipt; the checkpoint held moves forward if the
        acceptance's checkpoint extends it (with the cosignatures required).
        Raises the :class:`~ncb_relay.errors.ProtocolError` of the evidence
        (recorded in the journal with it; a fork also in ``forks``), or
        :class:`~ncb_relay.errors.RelayUnavailable` and the directory's errors
        unrecorded.  Nothing is written for evidence that verifies: the caller
        records it with :meth:`record_accepted`.
        """
        view = self.view()
        evidence = _evidence(acceptance)
        try:
            if acceptance.receipt is None or acceptance.checkpoint is None:
                raise MalformedInput("the relay's acceptance carries no receipt")
            relay_key = _receipt_key(view, acceptance.receipt)
            verified = verify_receipt(
                acceptance.receipt,
                acceptance.checkpoint,
                acceptance.inclusion,
                relay_id=self.relay_id,
                relay_key=relay_key,
                log=LogKey(self.origin, relay_key),
                message_id=sealed.message_id,
                message_hash=sealed.message_hash,
            )
            if acceptance.log_index != verified.log_index:
                raise BindingMismatch("the acceptance's log index is not its receipt's")
            await self._check(view, verified.checkpoint, acceptance, relay)
        except ProtocolError as exc:
            self._refused(exc, evidence, sealed.message_id)
            raise
        self.problem = None
        return verified

    def record_accepted(self, verified: VerifiedReceipt, *, detail: str) -> None:
        """Mark the message ``accepted`` with its verified evidence and the checkpoints held."""
        receipt = verified.receipt
        row = LogReceiptRow(
            receipt.message_id,
            receipt.log_index,
            verified.checkpoint.size,
            verified.data,
            verified.checkpoint.data,
            verified.inclusion,
        )
        latest, observed = self.latest, self.observed
        held = None if latest is None else (self.origin, latest.size, latest.data)
        seen = None if observed is None else (self.origin, observed.size, observed.data)
        self._store.record_log_acceptance(row, detail=detail, checkpoint=held, observed=seen)

    async def refresh(self, relay: RelayClient) -> VerifiedCheckpoint | None:
        """Fetch the relay's latest checkpoint with ``threshold`` cosignatures and move the
        checkpoints held forward to it.

        It must verify by the relay's key and be consistent with the one
        observed (else its error is raised and recorded, with the note as
        evidence; a fork also in :attr:`forks`), then have ``threshold``
        cosignatures of the bureau's witnesses (else
        :class:`~ncb_relay.errors.BelowThreshold`, the :attr:`problem` but not
        recorded: the witnesses are late, the relay is not at fault; also when
        the relay holds no checkpoint that many witnesses cosigned).  Returns
        the latest checkpoint held afterwards (``None`` if none is held).
        """
        view = self.view()
        note = await relay.checkpoint(cosigned=self.threshold)
        if note is None:
            if self.threshold:
                return self._below(
                    BelowThreshold(f"the relay holds no checkpoint {self.threshold} cosigned")
                )
            return view.latest
        try:  # consistent with the one observed, whatever its cosignatures: a fork is a fork
            offered = verify_checkpoint(note, log=view.logs)
            await self._check(view, offered, None, relay)
        except ProtocolError as exc:
            self._refused(exc, LogEvidence(b"", note, ()), None)
            raise
        finally:
            self._save(view)
        try:
            verify_checkpoint(
                note, log=view.logs, witnesses=view.witnesses, threshold=view.threshold
            )
        except BelowThreshold as exc:  # not the relay's fault: the witnesses have not cosigned
            return self._below(exc)
        self.problem = None
        return view.latest

    def _below(self, exc: BelowThreshold) -> VerifiedCheckpoint | None:
        self.problem = LogProblem(exc.code, exc.message)
        raise exc

    def _save(self, view: LogView) -> None:
        """Keep the checkpoints ``view`` holds in the journal (never smaller ones)."""
        latest, observed = view.latest, view.observed
        if latest is not None:
            seen = None if observed is None else (observed.size, observed.data)
            self._store.save_log_checkpoint(self.origin, latest.size, latest.data, observed=seen)
        elif observed is not None:
            self._store.save_log_observed(self.origin, observed.size, observed.data)

    async def _check(
        self,
        view: LogView,
        offered: VerifiedCheckpoint,
        acceptance: Acceptance | None,
        relay: RelayClient,
    ) -> None:
        """``view.check`` the offered checkpoint with a proof for the sizes held right then."""
        for _ in range(PROOF_ATTEMPTS):
            held = view.observed
            if held is None or held.size == offered.size:
                view.check(offered.data, ())
                return
            sizes = (min(held.size, offered.size), max(held.size, offered.size))
            given = None if acceptance is None else acceptance.consistency
            if given is not None and (given.old_size, given.new_size) == sizes:
                proof = given.proof
            else:
                try:
                    proof = await relay.consistency(*sizes)
                except ProtocolError:  # refused: it cannot join two checkpoints it signed
                    proof = ()  # (LOG-13: no valid consistency proof is a fork)
            if view.observed is held:  # no other answer moved it while the proof came
                view.check(offered.data, proof)
                return
        raise RelayUnavailable("the relay's log moved while its consistency proof came")

    def _refused(self, exc: ProtocolError, evidence: LogEvidence, message_id: bytes | None) -> None:
        at = self._clock()
        log.warning("log-evidence-refused", extra={"code": exc.code})
        self.problem = LogProblem(exc.code, f"the relay's evidence did not verify: {exc.message}")
        if isinstance(exc, LogFork):
            self._store.record_log_fork(
                LogForkRow(at, self.origin, exc.reason, exc.held, exc.offered, exc.proof)
            )
        self._store.record_log_refusal(
            at=at,
            origin=self.origin,
            message_id=message_id,
            code=exc.code,
            reason=exc.message,
            evidence=evidence,
        )
        self._last_refused = exc

    def detail(self, exc: NcbRelayError) -> str:
        """The detail of a message whose acceptance :meth:`verify_acceptance` raised ``exc``."""
        return unverified_detail(exc, refused=exc is self._last_refused)


def unverified_detail(exc: NcbRelayError, *, refused: bool) -> str:
    """The detail of a message whose acceptance did not verify (``refused``: the relay's
    evidence is at fault) or could not be verified yet (a relay unreachable for a proof, a
    directory without the relay's key)."""
    if refused:
        return f"the relay's receipt did not verify: {exc.code}"
    return f"the relay's receipt is not verified yet: {exc.code}"


def _receipt_key(view: LogView, receipt: bytes | None) -> SigningPublicKey:
    """The relay's key valid now that the receipt names (its key id), else the newest one:
    :func:`~ncb_relay.receipt.verify_receipt` then says what is wrong."""
    if receipt is not None:
        try:
            _, key_id, _ = parse_receipt(receipt)
        except NcbRelayError:
            return view.log.public_key
        for key in view.logs:
            if key.public_key.key_id == key_id:
                return key.public_key
    return view.log.public_key


def _evidence(acceptance: Acceptance) -> LogEvidence:
    given = acceptance.consistency
    return LogEvidence(
        acceptance.receipt or b"",
        acceptance.checkpoint or b"",
        acceptance.inclusion,
        None if given is None else (given.old_size, given.new_size, given.proof),
    )
