"""Opening and writing keystores from the command line (an adapter).

The passphrase comes from a prompt (``getpass``, never echoed) or from the
environment variable named by ``--passphrase-env``; it is never a command-line
argument, where other users of the machine could read it, and it is never
printed.  A new keystore asks for its passphrase twice.

Argon2id costs are chosen by name with ``--kdf-profile``: ``moderate`` (the
default of spec/keystore.md KS-16), ``sensitive`` (stronger, slower) or
``interactive`` (the lowest the default reader bounds accept, for test suites
and small machines).  Every profile is inside the default bounds, so a file
written with any of them opens everywhere.

A coordinator root key is kept in a keystore of format 1 as well.  Its
principal id is :data:`ROOT_KEYSTORE_ID` and, because format 1 requires an
encryption key, it holds one placeholder X25519 key with the window
``[0, 2**40)`` that is never published nor used; only the signing seed
matters.  The commands refuse to use a root keystore as a principal's and
the other way round.
"""

from __future__ import annotations

import argparse
import getpass
import os

from .errors import KeystoreExists, UsageError
from .header import MAX_TIME
from .identity import EncryptionKeyPair, SigningKeyPair
from .keyring import DEFAULT_KDF, HeldEncryptionKey, KdfParameters, Keyring
from .keystore import read_keystore, write_keystore
from .primitives import RandomSource

__all__ = [
    "KDF_PROFILES",
    "ROOT_KEYSTORE_ID",
    "add_kdf_option",
    "add_passphrase_option",
    "ask_passphrase",
    "is_root_keyring",
    "kdf_of",
    "open_keystore",
    "require_principal_keyring",
    "require_root_keyring",
    "root_keyring",
    "save_keystore",
]

KDF_PROFILES: dict[str, KdfParameters] = {
    "interactive": KdfParameters(ops=2, mem_kib=64 * 1024),
    "moderate": DEFAULT_KDF,
    "sensitive": KdfParameters(ops=4, mem_kib=1024 * 1024),
}
ROOT_KEYSTORE_ID = "XP.root-key"


def add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-env",
        metavar="NAME",
        help=(
            "read the keystore passphrase from the environment variable NAME instead of "
            "prompting for it (for scripts; the passphrase is never a command-line argument)"
        ),
    )


def add_kdf_option(parser: argparse.ArgumentParser, *, keeps_costs: bool = False) -> None:
    default = "the file's own costs" if keeps_costs else "moderate"
    parser.add_argument(
        "--kdf-profile",
        choices=sorted(KDF_PROFILES),
        default=None,
        help=(
            "Argon2id costs to lock the keystore with: moderate (3 passes, 256 MiB), "
            "sensitive (4 passes, 1 GiB) or interactive (2 passes, 64 MiB: the lowest "
            f"readers accept, meant for tests and small machines); default: {default}"
        ),
    )


def kdf_of(args: argparse.Namespace) -> KdfParameters | None:
    """The costs chosen with ``--kdf-profile``, or None if none was chosen."""
    name: str | None = args.kdf_profile
    return None if name is None else KDF_PROFILES[name]


def ask_passphrase(args: argparse.Namespace, path: str, *, new: bool) -> str:
    name: str | None = args.passphrase_env
    if name is not None:
        value = os.environ.get(name)
        if value is None:
            raise UsageError(f"the environment variable {name} (--passphrase-env) is not set")
        return value
    try:
        first = getpass.getpass(f"Passphrase for {path}: ")
        if new and getpass.getpass(f"Repeat the passphrase for {path}: ") != first:
            raise UsageError("the two passphrases differ; nothing was written")
    except EOFError:
        raise UsageError("no passphrase was entered") from None
    return first


def open_keystore(args: argparse.Namespace, path: str) -> tuple[Keyring, str]:
    """The keyring in ``path`` and the passphrase that opened it (to lock a successor)."""
    passphrase = ask_passphrase(args, path, new=False)
    return read_keystore(path, passphrase), passphrase


def save_keystore(
    args: argparse.Namespace,
    path: str,
    keyring: Keyring,
    *,
    passphrase: str | None = None,
    replace: bool = False,
    kdf: KdfParameters | None = None,
) -> None:
    """Lock ``keyring`` into ``path`` (mode 0600, atomically); asks for a new passphrase
    unless one is given.  A keystore is replaced only by a rewrite of itself
    (``replace``); a new one never overwrites a file."""
    if not replace and os.path.lexists(path):
        raise KeystoreExists(f"{path} exists; keystores are never overwritten, move it first")
    secret = passphrase if passphrase is not None else ask_passphrase(args, path, new=True)
    costs = kdf or kdf_of(args) or DEFAULT_KDF
    try:
        write_keystore(path, keyring, secret, kdf=costs, overwrite=replace)
    except KeystoreExists:
        raise KeystoreExists(
            f"{path} appeared while it was being written; nothing was replaced"
        ) from None


def root_keyring(rng: RandomSource) -> Keyring:
    """A new root key in the keystore shape described above."""
    placeholder = HeldEncryptionKey(EncryptionKeyPair.generate(rng), 0, MAX_TIME)
    return Keyring(ROOT_KEYSTORE_ID, SigningKeyPair.generate(rng), [placeholder])


def is_root_keyring(keyring: Keyring) -> bool:
    return keyring.principal == ROOT_KEYSTORE_ID


def require_root_keyring(keyring: Keyring, path: str) -> Keyring:
    if not is_root_keyring(keyring):
        raise UsageError(
            f"{path} holds the keys of {keyring.principal}, not a root key "
            "(make one with: ncb-relay root generate)"
        )
    return keyring


def require_principal_keyring(keyring: Keyring, path: str) -> Keyring:
    if is_root_keyring(keyring):
        raise UsageError(f"{path} holds a coordinator root key, not a principal's keys")
    return keyring
