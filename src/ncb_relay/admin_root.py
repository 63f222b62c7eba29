"""``ncb-relay root ...``: a coordinator root key in a keystore (an adapter).

Each root key holder generates one Ed25519 root key, keeps it offline in a
keystore (see :mod:`ncb_relay.admin_keystores` for the keystore's shape) and
hands the coordinator a JSON file with the public key and the holder's name,
which the trust anchor lists (ANCHOR-1).
"""

from __future__ import annotations

import argparse
import os

from ._fields import check_text
from .admin_exports import RootKeyFile
from .admin_files import about, check_free, write_json
from .admin_keystores import (
    add_kdf_option,
    add_passphrase_option,
    open_keystore,
    require_root_keyring,
    root_keyring,
    save_keystore,
)
from .admin_options import SubParsers, add_command, add_force_option
from .anchor import RootKey
from .identity import fingerprint_text
from .keyring import Keyring

__all__ = ["register"]


def _write_public(args: argparse.Namespace, keyring: Keyring) -> None:
    root = RootKey(args.name, keyring.signing.public_key)
    with about(args.out):
        write_json(args.out, RootKeyFile(root).to_json(), replace=args.force)
    print(f"wrote the public root key {root.key_id.hex()} ({root.name}) to {args.out}")
    print(f"  fingerprint  {fingerprint_text(root.key.fingerprint)}")


def _generate(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    keyring = root_keyring(os.urandom)
    with about(args.keystore):
        save_keystore(args, args.keystore, keyring)
    print(f"generated a root key into {args.keystore} (mode 0600); keep it offline")
    _write_public(args, keyring)
    return 0


def _export(args: argparse.Namespace) -> int:
    check_free(args.out, force=args.force)
    with about(args.keystore):
        keyring, _ = open_keystore(args, args.keystore)
        require_root_keyring(keyring, args.keystore)
    _write_public(args, keyring)
    return 0


def _holder_name(text: str) -> str:
    return check_text(text, "a root key holder's name", argparse.ArgumentTypeError)


def register(commands: SubParsers) -> None:
    """Add ``root`` with its sub-commands to the top-level parser."""
    root = commands.add_parser(
        "root",
        help="a coordinator root key: generate, export",
        description=(
            "Manage a coordinator root key: an Ed25519 key that signs trust anchors and "
            "directory versions. Each root key holder keeps one, offline, in a keystore."
        ),
    )
    group = root.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do (ACTION --help for more)"
    )
    for name, run, summary in (
        ("generate", _generate, "generate a root key and write its public half"),
        ("export", _export, "write the public half of an existing root key"),
    ):
        p = add_command(
            group,
            name,
            run,
            parent="root",
            summary=summary,
            description=(
                f"{summary[0].upper()}{summary[1:]}: a JSON file with the key and the holder's "
                "name, for the coordinator's 'anchor create' or 'anchor rotate'."
            ),
        )
        p.add_argument(
            "--keystore",
            required=True,
            metavar="FILE",
            help="the keystore to create" if name == "generate" else "the root keystore",
        )
        p.add_argument(
            "--name",
            required=True,
            type=_holder_name,
            help="who holds the key, as the trust anchor will show it (1 to 128 bytes)",
        )
        p.add_argument("--out", required=True, metavar="FILE", help="the public key file")
        add_force_option(p, "replace the public key file if it exists (never a keystore)")
        add_passphrase_option(p)
        if name == "generate":
            add_kdf_option(p)
