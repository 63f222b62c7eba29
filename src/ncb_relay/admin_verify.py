"""``ncb-relay verify``, ``audit`` and ``show``: checking and reading signed files (an adapter).

``verify`` is what a bureau runs on each new directory version: the full
check of DIR-8 against its trust anchors and the version it accepted before,
which it keeps in the file named by ``--accepted``.  That file is replaced
only by a version that passed every check; a rollback, a fork, a broken chain
or any damaged or wrongly signed file leaves it as it was (DIR-12).  On a
trust anchor, ``verify`` checks the threshold (ANCHOR-3) or the extension of
the chain (ANCHOR-4, ANCHOR-5) and prints the fingerprint to compare out of
band.  ``audit`` checks a stored history (DIR-8 steps 1 to 7, no freshness).
``show`` prints a file for people, or as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .admin_display import anchor_lines, directory_lines, directory_summary
from .admin_files import about, load_signed, read_bytes, write_bytes
from .admin_options import (
    SubParsers,
    add_anchor_option,
    add_command,
    add_json_option,
    add_now_option,
    clock,
    load_anchor_chain,
    warn,
)
from .admin_times import parse_duration, show_duration, show_time
from .anchor import AnchorChain, TrustAnchor
from .directory_document import DirectoryDocument
from .errors import UnknownKey, UsageError
from .identity import fingerprint_text
from .signatures import ANCHOR_KIND, SignedDocument
from .verified_directory import (
    DEFAULT_DIRECTORY_POLICY,
    DirectoryPolicy,
    VerifiedDirectory,
    load_directory,
    verify_directory,
    verify_history,
)

__all__ = ["register"]


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _check_fingerprint(args: argparse.Namespace, chain: AnchorChain) -> None:
    expected: str | None = args.fingerprint
    if expected is None:
        return
    wanted = "".join(expected.split()).lower()
    if wanted != chain.fingerprint.hex():
        raise UnknownKey(
            f"the first trust anchor's fingerprint is {fingerprint_text(chain.fingerprint)}, "
            "not the one given with --fingerprint: do not trust it"
        )


def _verify_anchor(args: argparse.Namespace, data: bytes, signed: SignedDocument) -> int:
    if args.accepted is not None or args.intermediates:
        raise UsageError("--accepted and --intermediate apply to directories, not anchors")
    chain = load_anchor_chain(args.anchors) if args.anchors else None
    with about(args.file):
        chain = AnchorChain.trust(data) if chain is None else chain.extend(data)
    _check_fingerprint(args, chain)
    anchor = chain.find(signed.hash).anchor  # the chain may hold it already, among later ones
    if args.json:
        _dump({**anchor.to_json(), "chainFingerprint": chain.fingerprint.hex()})
        return 0
    print(
        f"trust anchor {anchor.serial} verified: {anchor.threshold} of {len(anchor.roots)} "
        f"root keys, issued {show_time(anchor.issued)}"
    )
    print(f"  fingerprint of the first anchor  {fingerprint_text(chain.fingerprint)}")
    if len(chain) == 1 and args.fingerprint is None:
        print("Compare it with the coordinator's over a second channel before trusting it.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with about(args.file):
        data = read_bytes(args.file)
        signed = load_signed(data)
    if signed.kind is ANCHOR_KIND:
        return _verify_anchor(args, data, signed)
    if not args.anchors:
        raise UsageError("give the trust anchors with --anchor to verify a directory")
    chain = load_anchor_chain(args.anchors)
    _check_fingerprint(args, chain)
    policy = DirectoryPolicy(grace=args.grace)
    previous: VerifiedDirectory | None = None
    if args.accepted is not None and os.path.lexists(args.accepted):
        with about(args.accepted):
            previous = load_directory(read_bytes(args.accepted), anchors=chain, policy=policy)
    intermediates = []
    for path in args.intermediates:
        with about(path):
            intermediates.append(read_bytes(path))
    now = clock(args)
    with about(args.file):
        verified = verify_directory(
            data,
            anchors=chain,
            now=now,
            previous=previous,
            intermediates=intermediates,
            policy=policy,
        )
    stored = ""
    if args.accepted is not None:
        if previous is not None and previous.hash == verified.hash:
            stored = f"; {args.accepted} already holds it"
        else:
            with about(args.accepted):
                write_bytes(args.accepted, data, replace=previous is not None)
            was = f" (was version {previous.serial})" if previous is not None else ""
            stored = f"; accepted into {args.accepted}{was}"
    if verified.in_grace:
        warn(
            f"directory {verified.serial} expired at {show_time(verified.expires)}; it is "
            f"usable in its grace period until {show_time(verified.expires + policy.grace)}: "
            "fetch a new version"
        )
    if args.json:
        _dump(verified.to_json())
        return 0
    anchor = verified.anchor.anchor
    print(f"verified {directory_summary(verified.document)}{stored}")
    print(
        f"  signed by {len(verified.signer_ids)} root keys of trust anchor {anchor.serial} "
        f"(threshold {anchor.threshold}), hash {fingerprint_text(verified.hash)}"
    )
    return 0


def _audit(args: argparse.Namespace) -> int:
    chain = load_anchor_chain(args.anchors)
    files = []
    for path in args.files:
        with about(path):
            data = read_bytes(path)
            load_directory(data, anchors=chain)  # name the file that fails on its own
        files.append(data)
    versions = verify_history(files, anchors=chain)
    if args.json:
        _dump([v.to_json() for v in versions])
        return 0
    for version in versions:
        print(f"  {directory_summary(version.document)}, trust anchor {version.anchor.serial}")
    print(
        f"history verified: versions {versions[0].serial} to {versions[-1].serial}, "
        "each signed by its anchor's threshold and extending the one before"
    )
    return 0


def _show_anchor(args: argparse.Namespace, data: bytes, signed: SignedDocument) -> None:
    anchor = TrustAnchor.decode(signed.document)
    verified = False
    if args.anchors:
        chain = load_anchor_chain(args.anchors)
        with about(args.file):
            chain.extend(data)  # an anchor the chain holds already passes unchanged
        verified = True
    if args.json:
        signers = [key_id.hex() for key_id in signed.signer_ids]
        _dump({**anchor.to_json(), "signedBy": signers, "verified": verified})
        return
    verdict = (
        "verified"
        if verified
        else ("NOT VERIFIED: give the chain with --anchor (for a first anchor, the file itself)")
    )
    for line in anchor_lines(anchor, signed, verdict):
        print(line)


def _show(args: argparse.Namespace) -> int:
    with about(args.file):
        data = read_bytes(args.file)
        signed = load_signed(data)
    if signed.kind is ANCHOR_KIND:
        _show_anchor(args, data, signed)
        return 0
    if args.anchors:
        chain = load_anchor_chain(args.anchors)
        with about(args.file):
            verified = load_directory(data, anchors=chain, policy=DEFAULT_DIRECTORY_POLICY)
        if args.json:
            _dump({**verified.to_json(), "verified": True})
            return 0
        anchor = verified.anchor
        verdict = (
            f"verified: signed by {len(verified.signer_ids)} root keys of trust anchor "
            f"{anchor.serial}, threshold {anchor.anchor.threshold}"
        )
        document = verified.document
    else:
        with about(args.file):
            document = DirectoryDocument.decode(signed.document)
        if args.json:
            signers = [key_id.hex() for key_id in signed.signer_ids]
            _dump({**document.to_json(), "signedBy": signers, "verified": False})
            return 0
        verdict = "NOT VERIFIED: give --anchor to check its signatures"
    for line in directory_lines(document, signed, verdict):
        print(line)
    return 0


def register(commands: SubParsers) -> None:
    """Add ``verify``, ``audit`` and ``show`` to the top-level parser."""
    p = add_command(
        commands,
        "verify",
        _verify,
        summary="verify a directory (and accept it) or a trust anchor",
        description=(
            "Verify a directory version against the trust anchors (DIR-8): encoding, a "
            "threshold of root signatures, consistency and endorsements, the link to the "
            "version accepted before (rollback, fork and broken chains are refused) and "
            "freshness, with a grace period after expiry. With --accepted, the version is "
            "stored there, replacing the one held, only if every check passes. Given a trust "
            "anchor instead, check its signatures and print its fingerprint."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the signed directory or trust anchor")
    add_anchor_option(p, required=False, why="required for a directory")
    p.add_argument(
        "--accepted",
        metavar="FILE",
        help=(
            "the directory this verifier accepted last; the new one must extend it, and "
            "replaces it only if it verifies (created on first use)"
        ),
    )
    p.add_argument(
        "--intermediate",
        dest="intermediates",
        action="append",
        default=[],
        metavar="FILE",
        help="a version between the accepted one and FILE, in order; repeat for each (DIR-6)",
    )
    p.add_argument(
        "--fingerprint",
        metavar="HEX",
        help="refuse unless the first trust anchor has this fingerprint (spaces ignored)",
    )
    grace = DEFAULT_DIRECTORY_POLICY.grace
    p.add_argument(
        "--grace",
        type=parse_duration,
        default=grace,
        metavar="DURATION",
        help=(
            "how long an expired version stays usable, flagged "
            f"(default {show_duration(grace)}, at most 30d)"
        ),
    )
    add_now_option(p, "judge freshness")
    add_json_option(p)

    p = add_command(
        commands,
        "audit",
        _audit,
        summary="verify a stored history of directory versions",
        description=(
            "Verify consecutive directory versions, oldest first, as an auditor or a court "
            "would (DIR-8 steps 1 to 7): each is signed by its anchor's threshold and extends "
            "the one before without rewriting the past (DIR-6, DIR-7). Expiry is not judged."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="the versions, oldest first")
    add_anchor_option(p, required=True, why="covering every version")
    add_json_option(p)

    p = add_command(
        commands,
        "show",
        _show,
        summary="print a directory or trust anchor",
        description=(
            "Print a directory (a draft or a signed version) or a trust anchor for people, "
            "or as JSON with --json. With --anchor its signatures are verified first "
            "(not its freshness); without, a directory is shown as unverified."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the file to show")
    add_anchor_option(p, required=False, why="to verify the file before showing it")
    add_json_option(p)
