"""``ncb-relay sign`` and ``ncb-relay merge``: collecting root signatures (an adapter).

Each root key holder signs the same document bytes with one root key; a
signature only ever adds a pair to the signed file and never changes the
document (DIR-1), so holders can sign one file in turn or each sign a copy,
and ``merge`` combines the copies.  Before signing, the document is decoded
and checked for consistency and summarised, so a holder sees what it signs,
and the holder's key is checked against the roots that may sign it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .admin_display import directory_summary, signature_summary
from .admin_files import about, check_free, load_signed, read_bytes, write_bytes
from .admin_keystores import add_passphrase_option, open_keystore, require_root_keyring
from .admin_options import (
    SubParsers,
    add_anchor_option,
    add_command,
    add_force_option,
    load_anchor_chain,
    warn,
)
from .admin_times import show_time
from .anchor import TrustAnchor
from .directory_document import DirectoryDocument
from .errors import UsageError
from .identity import fingerprint_text
from .signatures import ANCHOR_KIND, SignedDocument

__all__ = ["register"]


def _anchor_signers(anchor: TrustAnchor, anchors: Sequence[str]) -> tuple[str, set[bytes]]:
    """What the anchor draft is, and the root key ids that may sign it (ANCHOR-3, -4)."""
    allowed = set(anchor.root_keys)
    what = (
        f"trust anchor {anchor.serial}, issued {show_time(anchor.issued)}, "
        f"{anchor.threshold} of {len(anchor.roots)} roots, "
        f"fingerprint {fingerprint_text(anchor.hash)}"
    )
    if anchor.serial > 1 and anchors:
        replaced = load_anchor_chain(anchors).by_serial(anchor.serial - 1)
        if replaced is None or replaced.hash != anchor.previous:
            raise UsageError(
                f"the --anchor files do not hold the trust anchor {anchor.serial} replaces"
            )
        allowed |= set(replaced.anchor.root_keys)
    return what, allowed


def _subject(signed: SignedDocument, anchors: Sequence[str]) -> tuple[str, set[bytes] | None]:
    """A one-line description of the document, and who may sign it (None: not checked)."""
    if signed.kind is ANCHOR_KIND:
        return _anchor_signers(TrustAnchor.decode(signed.document), anchors)
    document = DirectoryDocument.decode(signed.document)
    what = f"{directory_summary(document)}, hash {fingerprint_text(document.hash)}"
    if not anchors:
        return what, None
    anchor = load_anchor_chain(anchors).find(document.anchor)
    return what, set(anchor.anchor.root_keys)


def _sign(args: argparse.Namespace) -> int:
    target: str = args.out or args.file
    if args.out is not None:
        check_free(args.out, force=args.force)
    with about(args.file):
        signed = load_signed(read_bytes(args.file))
        what, allowed = _subject(signed, args.anchors)
    with about(args.keystore):
        keyring, _ = open_keystore(args, args.keystore)
        signer = require_root_keyring(keyring, args.keystore).signing
    key_id = signer.public_key.key_id
    if allowed is None:
        warn("no --anchor given: not checked that this root key may sign the directory")
    elif key_id not in allowed:
        hint = ""
        if signed.kind is ANCHOR_KIND and not args.anchors:
            hint = "; an old root signing a rotation must give the old anchor with --anchor"
        raise UsageError(f"root key {key_id.hex()} is not one that may sign this{hint}")
    with about(args.file):
        signed = signed.sign(signer)
    with about(target):
        write_bytes(target, signed.encode(), replace=args.out is None or args.force)
    print(f"signed {what}")
    print(f"  with root key {key_id.hex()}; {signature_summary(signed)} in {target}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    merged: SignedDocument | None = None
    for path in args.files:
        with about(path):
            copy = load_signed(read_bytes(path))
            merged = copy if merged is None else merged.merge(copy)
    if merged is None:  # pragma: no cover - argparse requires one file
        raise UsageError("nothing to merge")
    with about(args.out):
        write_bytes(args.out, merged.encode(), replace=args.force)
    print(f"merged {len(args.files)} copies into {args.out}: {signature_summary(merged)}")
    return 0


def register(commands: SubParsers) -> None:
    """Add ``sign`` and ``merge`` to the top-level parser."""
    p = add_command(
        commands,
        "sign",
        _sign,
        summary="sign a trust anchor or directory draft with one root key",
        description=(
            "Add one root key's signature to a trust anchor or directory (a draft, or a copy "
            "other holders signed). The document is checked and summarised first; it never "
            "changes, only the list of signatures grows. Without --out the file is updated "
            "in place, which loses nothing. Each holder signs with their own keystore; "
            "'ncb-relay merge' combines copies signed separately."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the trust anchor or directory to sign")
    p.add_argument(
        "--keystore", required=True, metavar="FILE", help="the root keystore to sign with"
    )
    p.add_argument(
        "--out", metavar="FILE", help="write the signed copy here instead of updating FILE"
    )
    add_anchor_option(
        p,
        required=False,
        why=(
            "to check that the key is a root that may sign (for a directory: a root of the "
            "anchor it names; for a new anchor: a root of it or of the anchor it replaces)"
        ),
    )
    add_force_option(p, "replace the --out file if it exists")
    add_passphrase_option(p)

    p = add_command(
        commands,
        "merge",
        _merge,
        summary="combine copies of one document signed by different root keys",
        description=(
            "Combine the signatures of copies of the same trust anchor or directory, each "
            "signed by different root key holders, into one file. Copies of different "
            "documents are refused."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="the signed copies")
    p.add_argument("--out", required=True, metavar="FILE", help="the merged file to write")
    add_force_option(p, "replace the --out file if it exists")
