"""``ncb-relay directory add|rotate|suspend|reinstate|revoke``: changing a draft (an adapter).

Each command changes one principal in a directory draft, in place, through
the core lifecycle functions, which check every change (ROT-1 to ROT-6,
DIR-4, DIR-5, DIR-7): a principal is added from the identity file it
exported, its rotated keys are published from the identity file written by
``ncb-relay keys rotate`` (each new key endorsed by the principal, never by
the coordinator), and it is suspended, reinstated or revoked.  A draft that
already carries signatures is changed only with ``--force``, which discards
them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ._fields import check_text
from .admin_display import directory_summary
from .admin_exports import IdentityExport
from .admin_files import about, read_bytes, read_json, write_bytes
from .admin_options import SubParsers, add_command, add_force_option, warn
from .admin_times import parse_duration, parse_time, show_duration, show_time
from .directory_document import DirectoryDocument
from .entries import ROLES, PrincipalEntry, SigningKeyRecord, StatusChange
from .errors import UsageError
from .identity import KEY_ID_BYTES
from .lifecycle import (
    DEFAULT_OVERLAP,
    add_encryption_key,
    add_principal,
    reenrol,
    reinstate,
    revoke_key,
    revoke_principal,
    rotate_signing_key,
    suspend,
)
from .signatures import DIRECTORY_KIND, SignedDocument

__all__ = ["register_changes"]

Change = Callable[[DirectoryDocument], tuple[DirectoryDocument, str]]


def _edit(args: argparse.Namespace, change: Change) -> int:
    """Apply ``change`` to the draft in ``args.draft`` and write it back in place."""
    with about(args.draft):
        signed = SignedDocument.decode(DIRECTORY_KIND, read_bytes(args.draft))
        document = DirectoryDocument.decode(signed.document)
        if signed.signatures and not args.force:
            raise UsageError(
                f"it carries {len(signed.signatures)} signature(s), which a change would "
                "discard; pass --force to change it anyway"
            )
    changed, done = change(document)
    with about(args.draft):
        write_bytes(args.draft, changed.draft().encode(), replace=True)
    print(f"{done}; {directory_summary(changed)}")
    print(f"next: root key holders run 'ncb-relay sign {args.draft} --keystore ROOT.keys'")
    return 0


def _identity(path: str) -> IdentityExport:
    with about(path):
        return IdentityExport.from_json(read_json(path, "a public identity file"))


def _check_starts(document: DirectoryDocument, principal: str, starts: list[int]) -> None:
    """Keys a draft publishes may not start before its issue time (DIR-7): say so clearly."""
    if starts and min(starts) < document.issued:
        raise UsageError(
            f"the new keys of {principal} start at {show_time(min(starts))}, before this "
            f"draft's issue time {show_time(document.issued)}: keys can only be published "
            "from then on (DIR-7); have the principal make them with a later --not-before, "
            "or issue the draft earlier"
        )


def _check_after_last_change(document: DirectoryDocument, principal: str, when: int) -> None:
    """Status changes are strictly ordered in time (DIR-3): say so in the operator's terms."""
    last = document.entry(principal).status[-1]
    if when <= last.since:
        raise UsageError(
            f"{principal}'s last status change ({last.state}) took effect at "
            f"{show_time(last.since)}; a new one must be later (use --since, or a later draft)"
        )


# --- changes ------------------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    identity = _identity(args.identity)
    if identity.rotation is not None:
        raise UsageError(f"{args.identity} is a rotation; use 'ncb-relay directory rotate'")

    def change(document: DirectoryDocument) -> tuple[DirectoryDocument, str]:
        starts = [r.not_before for r in identity.encryption_keys]
        _check_starts(document, identity.principal, starts)
        since = document.issued
        try:
            entry = PrincipalEntry(
                identity.principal,
                args.name,
                args.role,
                (StatusChange("active", since),),
                (SigningKeyRecord(identity.signing_key, since),),
                identity.encryption_keys,
            )
        except UsageError as exc:
            raise UsageError(f"{identity.principal}: {exc.message}") from exc
        return add_principal(document, entry), f"added {identity.principal} ({args.role})"

    return _edit(args, change)


def _rotate(args: argparse.Namespace) -> int:
    identity = _identity(args.identity)
    principal = identity.principal

    def change(document: DirectoryDocument) -> tuple[DirectoryDocument, str]:
        entry = document.entry(principal)
        current = entry.signing_keys[-1]
        listed = {k.key_id for k in entry.encryption_keys}
        new_keys = [r for r in identity.encryption_keys if r.key_id not in listed]
        starts = [r.not_before for r in new_keys]
        if identity.rotation is not None and identity.signing_key != current.key:
            starts.append(identity.rotation.not_before)
        _check_starts(document, principal, starts)
        done = []
        if identity.signing_key != current.key:
            rotation = identity.rotation
            if rotation is None and all(k.revoked is not None for k in entry.signing_keys):
                document = reenrol(document, principal, key=identity.signing_key)
                warn(f"re-enrolling {principal} (ROT-3): check its identity out of band")
                done.append("re-enrolled the signing key")
            elif rotation is None:
                raise UsageError(
                    f"the identity's signing key is not {principal}'s current one and carries "
                    "no endorsement by it (use the file written by 'keys rotate')"
                )
            elif rotation.previous != current.key:
                raise UsageError(
                    f"the rotation continues from signing key {rotation.previous.key_id.hex()}"
                    f", but {principal}'s current one is {current.key_id.hex()}"
                )
            else:
                document = rotate_signing_key(
                    document,
                    principal,
                    key=identity.signing_key,
                    endorsement=rotation.endorsement,
                    not_before=rotation.not_before,
                    overlap=args.overlap,
                )
                done.append(
                    f"rotated the signing key (old one valid {show_duration(args.overlap)} more)"
                )
        for record in new_keys:
            document = add_encryption_key(document, principal, record)
            done.append(f"added encryption key {record.key_id.hex()}")
        if not done:
            raise UsageError(f"every key in the identity is already listed for {principal}")
        return document, f"{principal}: " + ", ".join(done)

    return _edit(args, change)


def _suspend(args: argparse.Namespace) -> int:
    def change(document: DirectoryDocument) -> tuple[DirectoryDocument, str]:
        _check_after_last_change(
            document, args.principal, document.issued if args.since is None else args.since
        )
        changed = suspend(document, args.principal, since=args.since)
        since = changed.entry(args.principal).status[-1].since
        return changed, f"suspended {args.principal} from {show_time(since)}"

    return _edit(args, change)


def _reinstate(args: argparse.Namespace) -> int:
    def change(document: DirectoryDocument) -> tuple[DirectoryDocument, str]:
        _check_after_last_change(document, args.principal, document.issued)
        changed = reinstate(document, args.principal)
        return changed, f"reinstated {args.principal} from {show_time(changed.issued)}"

    return _edit(args, change)


def _revoke(args: argparse.Namespace) -> int:
    def change(document: DirectoryDocument) -> tuple[DirectoryDocument, str]:
        if args.key is None:
            _check_after_last_change(
                document, args.principal, document.issued if args.since is None else args.since
            )
            changed = revoke_principal(document, args.principal, since=args.since)
            since = changed.entry(args.principal).status[-1].since
            return changed, f"revoked {args.principal} from {show_time(since)}"
        changed = revoke_key(document, args.principal, args.key, at=args.since)
        return changed, f"revoked key {args.key.hex()} of {args.principal}"

    return _edit(args, change)


# --- the parsers --------------------------------------------------------------------------


def _key_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != KEY_ID_BYTES:
        raise argparse.ArgumentTypeError(f"a key id is {KEY_ID_BYTES} bytes in hex")
    return value


def _draft_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("draft", metavar="DRAFT", help="the draft to change, in place")
    add_force_option(parser, "change the draft even if it is signed, discarding the signatures")


def _principal_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--principal", required=True, metavar="ID", help="the principal's id")


def _since_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--since",
        type=parse_time,
        metavar="TIME",
        help=(
            f"when the {what} takes effect (ISO 8601 UTC; default: the draft's issue time); "
            "may be earlier, back to when the keys may have been exposed, never later"
        ),
    )


def _display_name(text: str) -> str:
    return check_text(text, "a display name", argparse.ArgumentTypeError)


def register_changes(group: SubParsers) -> None:
    """Add the commands that change a draft to the ``directory`` group."""
    p = add_command(
        group,
        "add",
        _add,
        parent="directory",
        summary="add a principal from its identity file",
        description=(
            "Add a principal with the keys in its identity file (from 'ncb-relay keys "
            "export'), active from the draft's issue time (ROT-1). Check the identity's "
            "fingerprint with the principal out of band first."
        ),
    )
    _draft_argument(p)
    p.add_argument("--identity", required=True, metavar="FILE", help="the identity file")
    p.add_argument(
        "--name",
        required=True,
        type=_display_name,
        help="the display name the directory shows, e.g. 'NCB Seoul' (1 to 128 bytes)",
    )
    p.add_argument(
        "--role", choices=ROLES, default="bureau", help="the principal's role (default bureau)"
    )

    p = add_command(
        group,
        "rotate",
        _rotate,
        parent="directory",
        summary="publish a principal's rotated keys",
        description=(
            "Publish the keys in an identity file from 'ncb-relay keys rotate': a new signing "
            "key endorsed by the current one (ROT-2), whose predecessor stays valid for "
            "--overlap, and new encryption keys (ROT-4). For a principal whose signing keys "
            "are all revoked, an unendorsed key re-enrols it (ROT-3)."
        ),
    )
    _draft_argument(p)
    p.add_argument("--identity", required=True, metavar="FILE", help="the identity file")
    p.add_argument(
        "--overlap",
        type=parse_duration,
        default=DEFAULT_OVERLAP,
        metavar="DURATION",
        help=(
            "how long the previous signing key stays valid after the new one starts "
            f"(default {show_duration(DEFAULT_OVERLAP)})"
        ),
    )

    p = add_command(
        group,
        "suspend",
        _suspend,
        parent="directory",
        summary="suspend a principal",
        description=(
            "Suspend a principal (ROT-5): live verifiers refuse all its keys until it is "
            "reinstated; what it sent while active still verifies historically."
        ),
    )
    _draft_argument(p)
    _principal_option(p)
    _since_option(p, "suspension")

    p = add_command(
        group,
        "reinstate",
        _reinstate,
        parent="directory",
        summary="lift a principal's suspension",
        description="Make a suspended principal active again, from the draft's issue time.",
    )
    _draft_argument(p)
    _principal_option(p)

    p = add_command(
        group,
        "revoke",
        _revoke,
        parent="directory",
        summary="revoke a principal, or one of its keys",
        description=(
            "Revoke a principal for good (ROT-5), or with --key only one of its keys (ROT-6). "
            "Messages created from the revocation time on no longer verify, even "
            "historically; date it back to when the keys may have been stolen."
        ),
    )
    _draft_argument(p)
    _principal_option(p)
    p.add_argument(
        "--key",
        type=_key_id,
        metavar="KEY_ID",
        help="revoke only this key (its key id in hex, as 'ncb-relay show' lists it)",
    )
    _since_option(p, "revocation")
