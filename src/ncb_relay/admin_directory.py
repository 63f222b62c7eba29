"""``ncb-relay directory ...``: the coordinator's drafts of directory versions (an adapter).

The coordinator never edits a published version: it starts a draft (version 1
with ``init``, or the successor of the published version with ``next``),
applies changes to the draft in place, each checked by the core lifecycle
functions (ROT-1 to ROT-6), and has root key holders sign it.  A draft is a
signed file with no signatures yet.  Changing a draft that already carries
signatures would discard them, so it needs ``--force``.

Times: a draft has one issue time, and every change in it takes effect at
the latest then (DIR-5); keys it publishes must not start before it (DIR-7).
So the coordinator opens the draft before the principals generate or rotate
their keys, or the principals pass ``--not-before`` no earlier than the
draft's issue time.
"""

from __future__ import annotations

import argparse

from .admin_display import directory_summary
from .admin_files import about, check_free, read_bytes, write_bytes
from .admin_options import (
    SubParsers,
    add_anchor_option,
    add_command,
    add_force_option,
    clock,
    load_anchor_chain,
)
from .admin_principals import register_changes
from .admin_times import parse_duration, parse_time, show_duration, show_time
from .directory_document import DirectoryDocument
from .errors import UsageError
from .lifecycle import (
    DEFAULT_VALIDITY,
    new_directory,
    next_version,
    prune_encryption_keys,
)
from .verified_directory import load_directory

__all__ = ["register"]


def _write_draft(path: str, document: DirectoryDocument, *, replace: bool) -> None:
    with about(path):
        write_bytes(path, document.draft().encode(), replace=replace)


# --- starting a draft ---------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    chain = load_anchor_chain(args.anchors)
    issued = clock(args, "issued")
    if issued < chain.current.issued:
        raise UsageError("a directory cannot be issued before its trust anchor (ANCHOR-6)")
    document = new_directory(anchor=chain.current.hash, issued=issued, validity=args.validity)
    _write_draft(args.out, document, replace=args.force)
    print(f"wrote a draft of {directory_summary(document)} to {args.out}")
    print(f"next: ncb-relay directory add {args.out} --identity IDENTITY.json --name NAME")
    return 0


def _next(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    chain = load_anchor_chain(args.anchors)
    with about(args.previous):
        published = load_directory(read_bytes(args.previous), anchors=chain)
    issued = clock(args, "issued")
    anchor = chain.current
    if issued < anchor.issued:
        raise UsageError(
            f"the draft must be issued at or after trust anchor {anchor.serial}, "
            f"{show_time(anchor.issued)} (ANCHOR-6)"
        )
    document = next_version(
        published.document, issued=issued, validity=args.validity, anchor=anchor.hash
    )
    if anchor.hash != published.anchor.hash:
        print(f"the draft names trust anchor {anchor.serial}: the root keys were rotated")
    if not args.keep_retired_keys:
        pruned = prune_encryption_keys(document)
        for before, after in zip(document.entries, pruned.entries, strict=True):
            kept = {k.key_id for k in after.encryption_keys}
            for key in before.encryption_keys:
                if key.key_id not in kept:
                    print(f"dropped {before.principal}'s retired encryption key {key.key_id.hex()}")
        document = pruned
    _write_draft(args.out, document, replace=args.force)
    print(f"wrote a draft of {directory_summary(document)} to {args.out}")
    return 0


# --- the parsers --------------------------------------------------------------------------


def _start_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--issued",
        type=parse_time,
        metavar="TIME",
        help="the version's issue time (ISO 8601 UTC; default: now)",
    )
    parser.add_argument(
        "--validity",
        type=parse_duration,
        default=DEFAULT_VALIDITY,
        metavar="DURATION",
        help=(
            "how long after issue it expires "
            f"(default {show_duration(DEFAULT_VALIDITY)}, at most 90d)"
        ),
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the draft to write")
    add_force_option(parser, "replace FILE if it exists")


def register(commands: SubParsers) -> None:
    """Add ``directory`` with its sub-commands to the top-level parser."""
    top = commands.add_parser(
        "directory",
        help="the coordinator's directory drafts: init, next, add, rotate, suspend, revoke",
        description=(
            "Build the next version of the signed directory as a draft: start it, apply "
            "changes, then have root key holders sign it ('ncb-relay sign'). Changes edit "
            "the draft in place."
        ),
    )
    group = top.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do (ACTION --help for more)"
    )

    p = add_command(
        group,
        "init",
        _init,
        parent="directory",
        summary="start version 1 of a directory",
        description="Write an empty draft of directory version 1 under the given trust anchor.",
    )
    add_anchor_option(p, required=True, why="the anchor whose root keys will sign it")
    _start_options(p)

    p = add_command(
        group,
        "next",
        _next,
        parent="directory",
        summary="start the version after a published one",
        description=(
            "Verify the published version (--from) against the trust anchors and write a "
            "draft of its successor: serial + 1, linked to it by hash, new issue and expiry "
            "times, under the newest --anchor given (after a root key rotation, that is the "
            "new anchor). Encryption keys past their retention are dropped (DIR-7). With no "
            "further change, signing the draft renews the directory."
        ),
    )
    p.add_argument(
        "--from",
        dest="previous",
        required=True,
        metavar="FILE",
        help="the published version to continue from",
    )
    add_anchor_option(p, required=True, why="to verify the published version")
    p.add_argument(
        "--keep-retired-keys",
        action="store_true",
        help="keep encryption keys past their retention instead of dropping them",
    )
    _start_options(p)
    register_changes(group)
