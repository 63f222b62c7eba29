"""``ncb-relay anchor ...``: create the first trust anchor and rotate the root keys (an adapter).

The coordinator collects the root key holders' public key files, writes an
unsigned anchor (a signed file with no signatures yet) and passes it to the
holders, who each sign a copy (``ncb-relay sign``); ``ncb-relay merge``
combines the copies.  The first anchor needs ``k`` signatures by its own
roots (ANCHOR-3); a rotation (ROT-7) needs the old anchor's threshold of old
roots and the new anchor's threshold of new roots (ANCHOR-4).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .admin_exports import RootKeyFile
from .admin_files import about, read_json, write_bytes
from .admin_options import (
    SubParsers,
    add_anchor_option,
    add_command,
    add_force_option,
    clock,
    load_anchor_chain,
    warn,
)
from .admin_times import parse_time, show_time
from .anchor import RootKey, TrustAnchor
from .identity import fingerprint_text

__all__ = ["register"]


def _roots(paths: Sequence[str]) -> tuple[RootKey, ...]:
    roots = []
    for path in paths:
        with about(path):
            roots.append(RootKeyFile.from_json(read_json(path, "a root key file")).root)
    return tuple(roots)


def _advise(anchor: TrustAnchor) -> None:
    """The SHOULDs of ANCHOR-2, as warnings."""
    n, k = len(anchor.roots), anchor.threshold
    if k < 2:
        warn("a threshold of 1 lets a single stolen root key sign a directory (ANCHOR-2)")
    elif 2 * k <= n:
        warn(
            f"with {k} of {n}, two disjoint groups of root key holders could each sign a "
            "different version with the same serial; choose k > n/2 (ANCHOR-2)"
        )


def _write(args: argparse.Namespace, anchor: TrustAnchor) -> None:
    with about(args.out):
        write_bytes(args.out, anchor.draft().encode(), replace=args.force)
    print(f"wrote unsigned trust anchor {anchor.serial} to {args.out}")
    print(f"  fingerprint  {fingerprint_text(anchor.hash)}")
    print(f"  issued       {show_time(anchor.issued)}")
    print(f"  threshold    {anchor.threshold} of {len(anchor.roots)}")
    for root in anchor.roots:
        print(f"  root         {root.key_id.hex()}  {root.name}")


def _create(args: argparse.Namespace) -> int:
    issued = clock(args, "issued")
    anchor = TrustAnchor(1, issued, None, _roots(args.roots), args.threshold)
    _advise(anchor)
    _write(args, anchor)
    print(
        f"next: {anchor.threshold} root key holders each run "
        f"'ncb-relay sign {args.out} --keystore ROOT.keys' (on a copy), then "
        "'ncb-relay merge' the copies; bureaus compare the fingerprint out of band"
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    chain = load_anchor_chain(args.anchors)
    old = chain.current.anchor
    issued = clock(args, "issued")
    anchor = old.successor(roots=_roots(args.roots), threshold=args.threshold, issued=issued)
    _advise(anchor)
    _write(args, anchor)
    print(
        f"next: sign it with {old.threshold} of the old root keys (anchor {old.serial}) and "
        f"{anchor.threshold} of the new ones, merge the copies, then issue the next "
        "directory under it ('directory next' with every --anchor)"
    )
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        dest="roots",
        action="append",
        required=True,
        metavar="FILE",
        help="a root key file from 'ncb-relay root generate'; repeat for each of the n roots",
    )
    parser.add_argument(
        "--threshold",
        type=int,
        required=True,
        metavar="K",
        help="how many distinct root keys must sign each directory (1..n; 2-of-3 is typical)",
    )
    parser.add_argument(
        "--issued",
        type=parse_time,
        metavar="TIME",
        help="the anchor's issue time (ISO 8601 UTC; default: now)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the unsigned anchor to write")
    add_force_option(parser, "replace FILE if it exists")


def register(commands: SubParsers) -> None:
    """Add ``anchor`` with its sub-commands to the top-level parser."""
    anchor = commands.add_parser(
        "anchor",
        help="trust anchors: create the first one, rotate the root keys",
        description=(
            "A trust anchor lists the coordinator's n root keys and the threshold k of them "
            "that must sign each directory version. Bureaus receive the first one out of "
            "band; later ones replace the root keys and are signed by the old ones."
        ),
    )
    group = anchor.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do (ACTION --help for more)"
    )
    p = add_command(
        group,
        "create",
        _create,
        parent="anchor",
        summary="write the first trust anchor, unsigned",
        description=(
            "Write trust anchor 1 listing the given root keys and threshold, with no "
            "signatures yet. It becomes valid once K of its own root keys have signed it."
        ),
    )
    _common(p)
    p = add_command(
        group,
        "rotate",
        _rotate,
        parent="anchor",
        summary="write the anchor that replaces the root keys, unsigned",
        description=(
            "Write the trust anchor that replaces the newest one given with --anchor (ROT-7): "
            "new root keys and threshold, linked to the old anchor. It must be signed by the "
            "old threshold of old root keys and the new threshold of new root keys."
        ),
    )
    add_anchor_option(p, required=True, why="the chain ending with the anchor to replace")
    _common(p)
