"""``ncb-relay keys ...``: a principal's private keys in a keystore (an adapter).

A principal (bureau, coordinator, relay) generates its keys into a keystore,
exports its public identity for the coordinator, rotates its keys (the new
signing key endorsed by the old one, ROT-2; a new encryption key endorsed by
the signing key, ROT-4) and prunes encryption keys past their retention
(KS-12).  Randomness is the system's (``os.urandom``).
"""

from __future__ import annotations

import argparse
import json
import os

from .admin_display import keyring_lines
from .admin_exports import IdentityExport, SigningRotation
from .admin_files import about, check_free, read_bytes, write_json
from .admin_keystores import (
    ROOT_KEYSTORE_ID,
    add_kdf_option,
    add_passphrase_option,
    ask_passphrase,
    is_root_keyring,
    kdf_of,
    open_keystore,
    require_principal_keyring,
    save_keystore,
)
from .admin_options import (
    SubParsers,
    add_command,
    add_force_option,
    add_json_option,
    add_now_option,
    clock,
)
from .admin_times import parse_duration, parse_time, show_duration, show_time
from .endorsements import endorse_encryption_key, endorse_signing_key
from .entries import EncryptionKeyRecord
from .errors import UsageError
from .identity import EncryptionKeyPair, SigningKeyPair, check_principal_id, fingerprint_text
from .keyring import (
    DEFAULT_RETENTION,
    MAX_KEYSTORE_BYTES,
    HeldEncryptionKey,
    KdfParameters,
    Keyring,
    parse_keystore_header,
)
from .keystore import remove_expired_keys
from .lifecycle import EncryptionKeySchedule

__all__ = ["register"]


def _file_costs(path: str) -> KdfParameters:
    """The Argon2id costs a keystore was locked with (kept when it is rewritten)."""
    with about(path):
        return parse_keystore_header(read_bytes(path, max_bytes=MAX_KEYSTORE_BYTES)).kdf


def _open_principal(args: argparse.Namespace) -> tuple[Keyring, str]:
    with about(args.keystore):
        keyring, passphrase = open_keystore(args, args.keystore)
        return require_principal_keyring(keyring, args.keystore), passphrase


def _endorsed(
    signer: SigningKeyPair, principal: str, held: HeldEncryptionKey
) -> EncryptionKeyRecord:
    key = held.key_pair.public_key
    endorsement = endorse_encryption_key(signer, principal, key, held.not_before, held.not_after)
    return EncryptionKeyRecord(key, held.not_before, held.not_after, endorsement)


def _new_encryption_key(args: argparse.Namespace, not_before: int) -> HeldEncryptionKey:
    schedule = EncryptionKeySchedule(period=args.period, overlap=args.overlap)
    not_after = not_before + schedule.period + schedule.overlap
    return HeldEncryptionKey(EncryptionKeyPair.generate(os.urandom), not_before, not_after)


def _say_identity(identity: IdentityExport, path: str) -> None:
    key = identity.signing_key
    print(f"wrote the public identity of {identity.principal} to {path}")
    print(f"  signing key  {key.key_id.hex()}")
    print(f"  fingerprint  {fingerprint_text(key.fingerprint)}")
    for record in identity.encryption_keys:
        print(
            f"  encryption   {record.key_id.hex()}  {show_time(record.not_before)} .. "
            f"{show_time(record.not_after)}"
        )
    print("Read the fingerprint to the coordinator over a second channel (ROT-1).")


# --- keys ------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    not_before = clock(args, "not_before")
    held = _new_encryption_key(args, not_before)
    keyring = Keyring(args.principal, SigningKeyPair.generate(os.urandom), [held])
    with about(args.keystore):
        save_keystore(args, args.keystore, keyring)
    print(f"generated the keys of {args.principal} into {args.keystore} (mode 0600)")
    for line in keyring_lines(keyring, not_before, root=False)[1:]:
        print(line)
    print(f"next: ncb-relay keys export --keystore {args.keystore} --out IDENTITY.json")
    return 0


def _export(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    keyring, _ = _open_principal(args)
    records = tuple(
        _endorsed(keyring.signing, keyring.principal, held) for held in keyring.encryption_keys
    )
    identity = IdentityExport(keyring.principal, keyring.signing.public_key, None, records)
    with about(args.out):
        write_json(args.out, identity.to_json(), replace=args.force)
    _say_identity(identity, args.out)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    if args.new_keystore is not None and os.path.lexists(args.new_keystore):
        raise UsageError(f"{args.new_keystore} exists; keystores are never overwritten")
    keyring, passphrase = _open_principal(args)
    costs = kdf_of(args) or _file_costs(args.keystore)
    not_before = clock(args, "not_before")
    principal = keyring.principal
    rotation = None
    signer = keyring.signing
    if not args.encryption_only:
        signer = SigningKeyPair.generate(os.urandom)
        endorsement = endorse_signing_key(keyring.signing, principal, signer.public_key, not_before)
        rotation = SigningRotation(keyring.signing.public_key, not_before, endorsement)
    held = _new_encryption_key(args, not_before)
    rotated = Keyring(principal, signer, (*keyring.encryption_keys, held))
    identity = IdentityExport(
        principal, signer.public_key, rotation, (_endorsed(signer, principal, held),)
    )
    # the keys first: an identity file must never announce keys that no keystore holds
    target = args.keystore if args.encryption_only else args.new_keystore
    with about(target):
        save_keystore(
            args,
            target,
            rotated,
            passphrase=passphrase,
            replace=args.encryption_only,
            kdf=costs,
        )
    with about(args.out):
        write_json(args.out, identity.to_json(), replace=args.force)
    _say_identity(identity, args.out)
    if rotation is None:
        print(f"added the encryption key to {args.keystore}")
    else:
        print(
            f"wrote the new keys to {target}; keep signing with {args.keystore} until the "
            "directory that publishes the rotation is out, then switch and delete the old file"
        )
    return 0


def _prune(args: argparse.Namespace) -> int:
    now = clock(args)
    with about(args.keystore):
        passphrase = ask_passphrase(args, args.keystore, new=False)
        removed = remove_expired_keys(
            args.keystore, passphrase, now=now, retention=args.retention, kdf=kdf_of(args)
        )
    if not removed:
        print(f"{args.keystore}: no encryption key is past its retention at {show_time(now)}")
        return 0
    print(f"removed {len(removed)} encryption key(s) from {args.keystore}:")
    for key_id in removed:
        print(f"  {key_id.hex()}")
    return 0


def _show(args: argparse.Namespace) -> int:
    now = clock(args)
    with about(args.keystore):
        keyring, _ = open_keystore(args, args.keystore)
    root = is_root_keyring(keyring)
    if args.json:
        signing = keyring.signing.public_key
        print(
            json.dumps(
                {
                    "principal": None if root else keyring.principal,
                    "root": root,
                    "signingKey": {"key": signing.raw.hex(), "keyId": signing.key_id.hex()},
                    "encryptionKeys": []
                    if root
                    else [
                        {
                            "keyId": k.key_id.hex(),
                            "notBefore": k.not_before,
                            "notAfter": k.not_after,
                            "removableFrom": k.not_after + DEFAULT_RETENTION,
                        }
                        for k in keyring.encryption_keys
                    ],
                },
                indent=2,
            )
        )
        return 0
    for line in keyring_lines(keyring, now, root=root):
        print(line)
    return 0


# --- the parsers -----------------------------------------------------------------------


def _principal_id(text: str) -> str:
    if text == ROOT_KEYSTORE_ID:
        raise argparse.ArgumentTypeError(f"{text} is reserved for root keystores")
    try:
        return check_principal_id(text, error=UsageError)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _keystore_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--keystore", required=True, metavar="FILE", help=what)


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    default = EncryptionKeySchedule()
    parser.add_argument(
        "--not-before",
        type=parse_time,
        metavar="TIME",
        help=(
            "when the new keys become valid (ISO 8601 UTC; default: now); the coordinator "
            "can publish them only in a directory issued at or before TIME"
        ),
    )
    parser.add_argument(
        "--period",
        type=parse_duration,
        default=default.period,
        metavar="DURATION",
        help=f"encryption key rotation period (default {show_duration(default.period)}, ROT-8)",
    )
    parser.add_argument(
        "--overlap",
        type=parse_duration,
        default=default.overlap,
        metavar="DURATION",
        help=(
            "how long an encryption key stays valid after the next one starts "
            f"(default {show_duration(default.overlap)}); its window is period + overlap"
        ),
    )


def register(commands: SubParsers) -> None:
    """Add ``keys`` with its sub-commands to the top-level parser."""
    keys = commands.add_parser(
        "keys",
        help="a principal's private keys: generate, export, rotate, prune, show",
        description=(
            "Manage the keystore of a principal (a bureau, the coordinator or a relay): its "
            "Ed25519 signing key and X25519 encryption keys, locked under a passphrase "
            "(spec/keystore.md). The passphrase is asked for, or read from the environment "
            "variable named by --passphrase-env."
        ),
    )
    group = keys.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do (ACTION --help for more)"
    )

    p = add_command(
        group,
        "generate",
        _generate,
        parent="keys",
        summary="generate a principal's keys into a new keystore",
        description=(
            "Generate a signing key and a first encryption key for PRINCIPAL and lock them "
            "into a new keystore (mode 0600). An existing file is never overwritten."
        ),
    )
    _keystore_option(p, "the keystore to create")
    p.add_argument(
        "--principal",
        required=True,
        type=_principal_id,
        metavar="ID",
        help="the principal id: country code, a dot, lower-case labels (e.g. KR.ncb-seoul)",
    )
    _schedule_options(p)
    add_passphrase_option(p)
    add_kdf_option(p)

    p = add_command(
        group,
        "export",
        _export,
        parent="keys",
        summary="export the public identity for the coordinator",
        description=(
            "Write the principal's public identity (signing key, encryption keys with their "
            "windows, and the principal's own endorsements of them) as JSON, for the "
            "coordinator's 'directory add'. It holds no secret."
        ),
    )
    _keystore_option(p, "the principal's keystore")
    p.add_argument("--out", required=True, metavar="FILE", help="the identity file to write")
    add_force_option(p, "replace FILE if it exists")
    add_passphrase_option(p)

    p = add_command(
        group,
        "rotate",
        _rotate,
        parent="keys",
        summary="rotate the keys (new signing key endorsed by the old one)",
        description=(
            "Rotate the principal's keys and write the identity file the coordinator needs "
            "for 'directory rotate'. With --new-keystore: a new signing key, endorsed by the "
            "current one (ROT-2), and a new encryption key, written to a new keystore with "
            "the encryption keys still held; keep using the old keystore until the directory "
            "that publishes the rotation is out. With --encryption-only: a new encryption key "
            "endorsed by the current signing key (ROT-8), added to this keystore."
        ),
    )
    _keystore_option(p, "the principal's current keystore")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="the identity file of the rotation to write"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--new-keystore",
        metavar="FILE",
        help="where to write the keystore with the new signing key (must not exist)",
    )
    which.add_argument(
        "--encryption-only",
        action="store_true",
        help="keep the signing key; add a new encryption key to --keystore",
    )
    _schedule_options(p)
    add_force_option(p, "replace the identity file if it exists (never a keystore)")
    add_passphrase_option(p)
    add_kdf_option(p, keeps_costs=True)

    p = add_command(
        group,
        "prune",
        _prune,
        parent="keys",
        summary="delete encryption keys past their retention",
        description=(
            "Remove from the keystore every encryption key whose window ended at least the "
            "retention ago (KS-12: no message sealed to it can still be accepted), rewriting "
            "the file atomically under a fresh salt and nonce. The last key is never removed."
        ),
    )
    _keystore_option(p, "the principal's keystore")
    add_now_option(p, "judge expiry")
    p.add_argument(
        "--retention",
        type=parse_duration,
        default=DEFAULT_RETENTION,
        metavar="DURATION",
        help=(
            f"how long a key is kept after its window ends (default {DEFAULT_RETENTION} s: "
            "30 days for a message's life plus 15 minutes of clock skew)"
        ),
    )
    add_passphrase_option(p)
    add_kdf_option(p, keeps_costs=True)

    p = add_command(
        group,
        "show",
        _show,
        parent="keys",
        summary="list the key ids and windows in a keystore",
        description="Show the key ids and windows in a keystore; never a secret.",
    )
    _keystore_option(p, "the keystore to open")
    add_now_option(p, "judge each key's state")
    add_json_option(p)
    add_passphrase_option(p)
