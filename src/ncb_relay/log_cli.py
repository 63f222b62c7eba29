"""``ncb-relay log audit|witness``: check a relay's log, cosign its checkpoints (an adapter).

Both commands first fetch the relay's directory and verify it against the trust
anchors given with ``--anchor``; the relay is the directory's principal of role
``relay`` (``--relay-id`` when it lists several), and its log key is the log
name ``<relay id>/log`` with the relay's directory signing key (LOG-20).

``audit`` needs no key.  It reads the relay's latest checkpoint and verifies
it with the relay's log key valid now (so it pages only up to a size the log
signed), pages through every signed checkpoint (verified with any key the
directory lists for the relay: older ones were signed with older keys) and
every entry up to its size, asks for a sample of inclusion and consistency
proofs, and feeds it all to :class:`~ncb_relay.log_audit.LogAuditor` (the
checks are there).  A witness cosignature counts only if the coordinator's or
bureau's key was valid at the time it states (:func:`witness_validity`).  Progress goes
to stderr every few seconds; the report to stdout, as text or JSON.  Exit 0
when the log verified, 1 when problems were found (or the audit could not
start), 2 for a usage error.

``witness`` is a coordinator's or a bureau's witness (LOG-30): it opens the
principal's keystore, holds its :class:`~ncb_relay.witness.Witness` state in
the JSON file ``--state`` (written atomically, before a cosignature leaves),
and cosigns the relay's latest checkpoint once it is shown consistent with the
one held, then gives it to the relay (``POST /v1/log/cosignature``).  The log
key and the witness's key are those the directory lists as valid when it
starts (:func:`witnessing_keys`).  With ``--once`` it does this once (any error
ends it, exit 1); otherwise every ``--interval`` seconds until Ctrl-C.  A fork
is kept in the state as evidence and ends the command (exit 1); every other
error (the relay down or refusing, a note or proof that does not verify, an
older head) is warned about and the next round comes at the next interval, so
a relay cannot silence its witnesses by serving them junk (:func:`witness_loop`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio

from .admin_files import about, read_json
from .admin_keystores import add_passphrase_option, open_keystore, require_principal_keyring
from .admin_options import SubParsers, add_anchor_option, add_command, load_anchor_chain, warn
from .anchor import AnchorChain
from .atomic_file import write_atomically
from .checkpoint import LogKey, SignedNote, WitnessKey, parse_note, verify_checkpoint
from .client import RelayClient
from .entries import PrincipalEntry, SigningKeyRecord
from .errors import (
    LogFork,
    NcbRelayError,
    ProtocolError,
    RelayRefused,
    RelayUnavailable,
    UnknownKey,
    UsageError,
)
from .identity import PrivateIdentity, check_principal_id
from .log_audit import AuditReport, LogAuditor, ServedEntry
from .log_keys import WITNESS_ROLES, relay_log_key, relay_log_keys, witness_key
from .verified_directory import VerifiedDirectory
from .witness import Witness

__all__ = [
    "register",
    "run_audit",
    "witness_loop",
    "witness_round",
    "witness_validity",
    "witnessing_keys",
]

T = TypeVar("T")

PAGE = 1000  # entries or checkpoints a request (the relay's maximum)
DEFAULT_SAMPLE = 64
PROGRESS_EVERY = 2.0  # seconds between progress lines
READER = "XX.log-auditor"  # the client's principal for public reads, which are not signed
_FETCH_ERRORS = (RelayUnavailable, RelayRefused, ProtocolError)


# --- the relay and its keys ---------------------------------------------------------------------


def _relay_id(directory: VerifiedDirectory, wanted: str | None) -> str:
    relays = [e.principal for e in directory.document.entries if e.role == "relay"]
    if wanted is not None:
        check_principal_id(wanted, error=UsageError)
        if wanted not in relays:
            raise UsageError(f"--relay-id: {wanted} is not a relay in the directory")
        return wanted
    if len(relays) != 1:
        listed = ", ".join(relays) or "none"
        raise UsageError(
            f"the directory lists {len(relays)} relays ({listed}); name one with --relay-id"
        )
    return relays[0]


def witnessing_keys(
    directory: VerifiedDirectory, relay_id: str, identity: PrivateIdentity, now: int
) -> tuple[LogKey, WitnessKey]:
    """The relay's log key valid ``now`` and the witness's key (LOG-20, LOG-30).

    Raises :class:`UnknownKey` if the relay or the witness holds no valid key
    now (not active, revoked, outside its window, or not a coordinator or a
    bureau), :class:`UsageError` if the keystore's key is not the one the
    directory lists for the witness now.
    """
    log = relay_log_key(directory, relay_id, now)
    key = witness_key(directory, identity.principal, now)
    if key.public_key != identity.signer.public_key:
        raise UsageError(
            f"the keystore's signing key is not the one the directory lists for "
            f"{identity.principal} now"
        )
    return log, key


def witness_validity(
    directory: VerifiedDirectory,
) -> tuple[list[WitnessKey], Callable[[WitnessKey, int], bool]]:
    """Every key a witness may have cosigned with, and whether a key could at a time.

    The witnesses are the coordinator and the bureaus (LOG-30), each under its
    principal id with each signing key the directory lists for it.  A key may
    cosign at ``t`` (the time its cosignature states) if its principal was
    active then and the key was in its window and not yet revoked (the
    historical view of DIR-9: a revocation counts from its own time).
    """
    records: dict[tuple[str, bytes], tuple[PrincipalEntry, SigningKeyRecord]] = {}
    for entry in directory.document.entries:
        if entry.role in WITNESS_ROLES:
            for record in entry.signing_keys:
                records[entry.principal, record.key.raw] = (entry, record)

    def valid_at(key: WitnessKey, at: int) -> bool:
        found = records.get((key.name, key.public_key.raw))
        if found is None:
            return False
        entry, record = found
        return (
            entry.state_at(at) == "active"
            and record.in_window(at)
            and (record.revoked is None or at < record.revoked)
        )

    witnesses = [
        WitnessKey(principal, record.key) for (principal, _), (_e, record) in records.items()
    ]
    return witnesses, valid_at


def _run(function: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(function, backend="trio")


# --- audit --------------------------------------------------------------------------------------


class _Progress:
    """A line on stderr at most every few seconds, for long runs."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = time.monotonic()

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last >= PROGRESS_EVERY:
            self._last = now
            print(f"ncb-relay log audit: {text}", file=sys.stderr, flush=True)


def _size_of(note: bytes) -> int | None:
    """The size a note claims on its second line, unverified (to page through a list only)."""
    lines = note.split(b"\n", 2)
    if len(lines) < 3 or not lines[1].isdigit() or len(lines[1]) > 19:
        return None
    return int(lines[1])


async def run_audit(
    client: RelayClient,
    *,
    log_keys: Sequence[LogKey],
    latest_keys: Sequence[LogKey] = (),
    witnesses: Sequence[WitnessKey] = (),
    witness_valid_at: Callable[[WitnessKey, int], bool] | None = None,
    sample: int = DEFAULT_SAMPLE,
    rng: Callable[[int], bytes] = os.urandom,
    progress: Callable[[str], None] = lambda _text: None,
) -> AuditReport:
    """Audit the log of the relay behind ``client`` up to its latest checkpoint now.

    ``log_keys`` verify the checkpoints listed (every key the relay held);
    ``latest_keys`` (default ``log_keys``) the latest one, which is verified
    first: the audit pages only up to a size the log signed.
    """
    auditor = LogAuditor(log_keys=log_keys, witnesses=witnesses, witness_valid_at=witness_valid_at)
    try:
        latest = await client.checkpoint()
    except _FETCH_ERRORS as exc:
        auditor.fetch_failed("the latest checkpoint", exc)
        return auditor.finish()
    if latest is None:
        return auditor.finish()
    target = auditor.verify_latest(latest, log_keys=latest_keys)
    if target is None:
        return auditor.finish()
    try:
        after = 0
        while True:
            page = await client.checkpoints(after=after, limit=PAGE)
            sizes = [_size_of(note) for note in page]
            kept = [n for n, s in zip(page, sizes, strict=True) if s is None or s <= target]
            auditor.add_checkpoints(kept)
            known = [s for s in sizes if s is not None]
            if not page or not known or max(known) >= target or max(known) <= after:
                break
            after = max(known)
            progress(f"{auditor.report.checkpoints} checkpoints read, up to size {after}")
        start = 0
        while start < target:
            entries = await client.entries(start=start, limit=min(PAGE, target - start))
            if not entries:
                break
            auditor.add_entries([ServedEntry(e.index, e.kind, e.entry) for e in entries])
            start += len(entries)
            progress(f"{start} of {target} entries replayed")
    except _FETCH_ERRORS as exc:
        auditor.fetch_failed("paging through the log", exc)
        return auditor.finish()
    auditor.check_latest(latest)
    requests = auditor.proof_requests(rng, sample=sample)
    for index, size in requests.inclusion:
        try:
            auditor.check_inclusion(index, size, await client.inclusion(index, size))
        except _FETCH_ERRORS as exc:
            auditor.fetch_failed(f"the inclusion proof of {index} in {size}", exc)
    for old, new in requests.consistency:
        try:
            auditor.check_consistency(old, new, await client.consistency(old, new))
        except _FETCH_ERRORS as exc:
            auditor.fetch_failed(f"the consistency proof from {old} to {new}", exc)
    return auditor.finish()


def _reader(args: argparse.Namespace, relay_id: str = READER) -> RelayClient:
    reader = PrivateIdentity.generate(READER, os.urandom)  # reads are public, never signed
    return RelayClient(args.relay, relay_id=relay_id, identity=reader)


async def _directory(client: RelayClient, anchors: AnchorChain) -> VerifiedDirectory:
    try:
        return await client.verified_directory(anchors=anchors)
    except NcbRelayError as exc:
        exc.add_note("the relay's directory")
        raise


def _audit(args: argparse.Namespace) -> int:
    """Exit 0: verified; 1: problems found, or no audit (main reports the error); 2: usage."""
    try:
        if args.sample < 0:
            raise UsageError("--sample is a non-negative integer")
        relay_id, report = _run(partial(_audit_relay, args, load_anchor_chain(args.anchors)))
    except UsageError as exc:
        where = "".join(f"{note}: " for note in getattr(exc, "__notes__", ()))
        print(f"ncb-relay log audit: {where}{exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"relay": relay_id, **report.to_json()}, indent=2))
    else:
        print(f"relay {relay_id}")
        print(report.text())
    return 0 if report.ok else 1


async def _audit_relay(args: argparse.Namespace, anchors: AnchorChain) -> tuple[str, AuditReport]:
    async with _reader(args) as client:
        directory = await _directory(client, anchors)
        relay_id = _relay_id(directory, args.relay_id)
        now = int(time.time())
        try:
            latest_keys = relay_log_keys(directory, relay_id, now)
        except UnknownKey as exc:  # a suspended relay's log is still worth auditing
            warn(f"{exc.message}: its latest checkpoint is checked with every key it held")
            latest_keys = ()
        witnesses, valid_at = witness_validity(directory)
        report = await run_audit(
            client,
            log_keys=relay_log_keys(directory, relay_id),
            latest_keys=latest_keys,
            witnesses=witnesses,
            witness_valid_at=valid_at,
            sample=args.sample,
            progress=_Progress(not args.quiet),
        )
        return relay_id, report


# --- witness ------------------------------------------------------------------------------------


def _load_witness(
    path: Path,
    *,
    log: LogKey,
    key: WitnessKey,
    identity: PrivateIdentity,
    held_keys: Sequence[LogKey] = (),
) -> Witness:
    if not path.exists():
        return Witness(log=log, key=key, signer=identity.signer)
    with about(path):
        state = read_json(path, "a witness state (JSON)")
        return Witness.restore(state, log=log, key=key, signer=identity.signer, held_keys=held_keys)


def _save_witness(path: Path, witness: Witness) -> None:
    data = (json.dumps(witness.state, indent=2) + "\n").encode("utf-8")
    try:
        write_atomically(path, data, mode=0o644, exact_mode=False, replace=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _own_lines(note: bytes, log: LogKey, key: WitnessKey) -> tuple[bytes, int, int]:
    """``note`` without the lines in ``key``'s name and key id; how many verified, how many not.

    A line in the witness's name that does not verify was never signed by the
    witness: the relay served it, and it is the relay's fault.
    """
    parsed = parse_note(note)
    own = [s for s in parsed.signatures if (s.name, s.key_id) == (key.name, key.key_id)]
    others = tuple(s for s in parsed.signatures if (s.name, s.key_id) != (key.name, key.key_id))
    good = 0
    for line in own:
        try:
            verify_checkpoint(
                SignedNote(parsed.text, (*others, line)).data, log=log, witnesses=[key]
            )
        except ProtocolError:
            continue
        good += 1
    return SignedNote(parsed.text, others).data, good, len(own) - good


async def witness_round(
    client: RelayClient, witness: Witness, *, save: Callable[[Witness], None], now: int
) -> str:
    """Cosign the relay's latest checkpoint if consistent with the one held; say what was done.

    The note is verified with the log's key only.  A cosignature line in the
    witness's name that does not verify is the relay's fault: it is reported in
    what is said, and the note is cosigned without it.  The state is saved
    before the cosignature is given to the relay (LOG-30).  A fork is saved
    too, then raised; every other error is raised as it is.
    """
    note = await client.checkpoint()
    if note is None:
        return "the relay has no checkpoint yet"
    offered = verify_checkpoint(note, log=witness.log)
    clean, good, bad = _own_lines(note, witness.log, witness.key)
    fault = (
        f" ({bad} cosignature line(s) in {witness.key.name}'s name served by the relay "
        "do not verify: the relay's fault; dropped)"
        if bad
        else ""
    )
    held = witness.held
    if held is not None and offered.size == held.size and good:
        return f"size {offered.size} already cosigned{fault}"
    proof: Sequence[bytes] = ()
    if held is not None and offered.size != held.size:
        old, new = sorted((held.size, offered.size))
        proof = await client.consistency(old, new)
    try:
        cosigned = witness.cosign(clean, proof, now=now)
    except LogFork:
        save(witness)
        raise
    save(witness)
    await client.cosign(cosigned)
    return f"cosigned size {offered.size}{fault}"


async def witness_loop(
    client: RelayClient,
    witness: Witness,
    *,
    save: Callable[[Witness], None],
    clock: Callable[[], int],
    interval: float,
    once: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = warn,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> None:
    """Run :func:`witness_round` every ``interval`` seconds, or ``once``.

    A fork (saved by the round) is raised and ends the loop.  Every other
    error of the library (the relay down, refusing, or serving a note that
    does not verify, an older head, a junk proof, the state not written) is
    warned about and the loop goes on at the next interval: a relay cannot
    silence its witnesses by serving them something bad.  With ``once`` the
    round's error is raised.
    """
    name = f"{witness.key.name} witness of {witness.log.name}"
    while True:
        try:
            said = await witness_round(client, witness, save=save, now=clock())
        except LogFork:
            raise
        except NcbRelayError as exc:
            if once:
                raise
            warn(f"{name}: {exc.message} ({exc.code}); trying again in {interval}s")
        else:
            say(f"{name}: {said}")
        if once:
            return
        await sleep(interval)


def _witness(args: argparse.Namespace) -> int:
    if args.interval is not None and not (args.interval > 0 and math.isfinite(args.interval)):
        raise UsageError("--interval is a positive number of seconds")
    anchors = load_anchor_chain(args.anchors)
    with about(args.keystore):
        keyring, _ = open_keystore(args, args.keystore)
        identity = require_principal_keyring(keyring, args.keystore).identity
    state = Path(args.state)

    async def run() -> None:
        async with _reader(args) as reader:
            directory = await _directory(reader, anchors)
            relay_id = _relay_id(directory, args.relay_id)
        log, key = witnessing_keys(directory, relay_id, identity, int(time.time()))
        held_keys = relay_log_keys(directory, relay_id)  # the held one may predate a rotation
        witness = _load_witness(state, log=log, key=key, identity=identity, held_keys=held_keys)
        async with RelayClient(args.relay, relay_id=relay_id, identity=identity) as client:
            await witness_loop(
                client,
                witness,
                save=lambda w: _save_witness(state, w),
                clock=lambda: int(time.time()),
                interval=args.interval,
                once=args.once,
                say=lambda text: print(text, flush=True),
            )

    try:
        _run(run)
    except KeyboardInterrupt:
        return 0
    return 0


# --- registering --------------------------------------------------------------------------------


def _add_relay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--relay", required=True, metavar="URL", help="the relay's origin (https://relay.example)"
    )
    add_anchor_option(parser, required=True, why="against which the relay's directory is checked")
    parser.add_argument(
        "--relay-id",
        metavar="ID",
        help="the relay's principal id, if the directory lists more than one relay",
    )


def register(commands: SubParsers) -> None:
    log = commands.add_parser(
        "log",
        help="audit a relay's log, or witness its checkpoints",
        description=(
            "The relay's transparency log (spec/log.md): audit replays it whole and checks "
            "every checkpoint and a sample of proofs; witness cosigns its checkpoints."
        ),
    )
    group = log.add_subparsers(
        dest="log_command",
        required=True,
        metavar="COMMAND",
        help="the log command to run; ncb-relay log COMMAND --help explains it",
    )
    audit = add_command(
        group,
        "audit",
        _audit,
        parent="log",
        summary="replay a relay's whole log and check every claim it makes",
        description=(
            "Verify the relay's directory against the anchors, then replay every log entry up "
            "to the relay's latest checkpoint: each checkpoint's signature and root, sizes "
            "growing, witness cosignatures counted, and inclusion and consistency proofs "
            "(first, last and a random sample) checked against the signed roots and against "
            "the proofs computed from the entries. Exit 0 if the log verified, 1 if problems "
            "were found, 2 for a usage error."
        ),
    )
    _add_relay_options(audit)
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"random inclusion proofs and checkpoint pairs to check (default {DEFAULT_SAMPLE})",
    )
    audit.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    witness = add_command(
        group,
        "witness",
        _witness,
        parent="log",
        summary="cosign the relay's checkpoints after checking their consistency",
        description=(
            "As the principal of the keystore (the coordinator or a bureau), cosign the relay's "
            "latest checkpoint once it is proven consistent with the one cosigned before "
            "(kept in the --state file, written atomically), and give the cosignature to the "
            "relay. A fork is kept in the state as evidence and ends the command (exit 1); "
            "any other error is reported and the witness tries again at the next interval."
        ),
    )
    _add_relay_options(witness)
    witness.add_argument("--keystore", required=True, help="the witness's keystore")
    add_passphrase_option(witness)
    witness.add_argument(
        "--state", required=True, metavar="FILE", help="the witness's state (JSON; created)"
    )
    witness.add_argument("--once", action="store_true", help="one round, then exit")
    witness.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between rounds (default 60)",
    )
