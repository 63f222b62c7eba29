"""Keystore files: a principal's private keys on disk, under a passphrase (spec/keystore.md).

This is an adapter: it does the file I/O around the pure
:mod:`ncb_relay.keyring`, which defines the bytes.  Files are written with mode
0600 and atomically: the bytes go to a new temporary file in the same
directory, which is flushed to disk and then renamed over the target (or, when
overwriting was not asked for, hard-linked to it, which fails if the target
exists), and the directory is flushed too.  A crash at any point leaves either
the old file or the new one, whole.  A symbolic link at the target is refused,
never followed, both when reading and when writing.

Replacing a file gives it a new inode with a fresh salt and nonce, so the old
bytes are no longer in the file; whether the file system or the disk keeps a
copy of the old blocks is beyond this module's reach (see KS-13).  Concurrent
writers to one keystore are not coordinated: keep one administrator per file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .atomic_file import write_atomically
from .errors import KeystoreCorrupt, KeystoreError, KeystoreExists
from .keyring import (
    DEFAULT_KDF,
    DEFAULT_KDF_BOUNDS,
    DEFAULT_RETENTION,
    MAX_KEYSTORE_BYTES,
    KdfBounds,
    KdfParameters,
    Keyring,
    lock_keyring,
    parse_keystore_header,
    unlock_keyring,
)
from .primitives import RandomSource

__all__ = ["FILE_MODE", "read_keystore", "remove_expired_keys", "write_keystore"]

FILE_MODE = 0o600

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing a symlink, a non-regular file or more than ``max_bytes``."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeystoreError(
                f"{path} is a symbolic link; keystores are not read through links"
            ) from exc
        raise KeystoreError(f"cannot open keystore {path}: {_reason(exc)}") from exc
    chunks: list[bytes] = []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreError(f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise KeystoreCorrupt(f"keystore of {info.st_size} bytes exceeds {max_bytes}")
        remaining = max_bytes + 1  # the file may grow after fstat
        while remaining > 0 and (chunk := os.read(fd, remaining)):
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise KeystoreCorrupt(f"keystore exceeds {max_bytes} bytes")
    return data


def _check_target(path: Path, *, overwrite: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KeystoreError(f"cannot inspect {path}: {_reason(exc)}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise KeystoreError(f"{path} is a symbolic link; keystores are not written through links")
    if not overwrite:
        raise KeystoreExists(f"{path} exists; pass overwrite=True to replace it")
    if not stat.S_ISREG(info.st_mode):
        raise KeystoreError(f"{path} exists and is not a regular file")


def _write_atomically(path: Path, data: bytes, *, overwrite: bool) -> None:
    """KS-14, KS-15: a new 0600 file, flushed, then renamed (or linked) into place."""
    _check_target(path, overwrite=overwrite)
    try:
        write_atomically(path, data, mode=FILE_MODE, exact_mode=True, replace=overwrite)
    except FileExistsError as exc:
        raise KeystoreExists(f"{path} exists; pass overwrite=True to replace it") from exc
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore {path}: {_reason(exc)}") from exc


def write_keystore(
    path: str | os.PathLike[str],
    keyring: Keyring,
    passphrase: str | bytes,
    *,
    rng: RandomSource = os.urandom,
    kdf: KdfParameters = DEFAULT_KDF,
    bounds: KdfBounds = DEFAULT_KDF_BOUNDS,
    overwrite: bool = False,
) -> None:
    """Lock ``keyring`` under ``passphrase`` and write it to ``path``.

    Raises :class:`KeystoreExists` if ``path`` exists and ``overwrite`` is
    false, and :class:`KeystoreError` if it is a symbolic link or cannot be
    written.  On any failure an existing file is left as it was.
    """
    data = lock_keyring(keyring, passphrase, rng=rng, kdf=kdf, bounds=bounds)
    _write_atomically(Path(path), data, overwrite=overwrite)


def read_keystore(
    path: str | os.PathLike[str],
    passphrase: str | bytes,
    *,
    bounds: KdfBounds = DEFAULT_KDF_BOUNDS,
) -> Keyring:
    """Read and unlock the keystore at ``path`` (see :func:`ncb_relay.keyring.unlock_keyring`)."""
    return unlock_keyring(_read_bounded(Path(path), MAX_KEYSTORE_BYTES), passphrase, bounds=bounds)


def remove_expired_keys(
    path: str | os.PathLike[str],
    passphrase: str | bytes,
    *,
    now: int,
    retention: int = DEFAULT_RETENTION,
    rng: RandomSource = os.urandom,
    kdf: KdfParameters | None = None,
    bounds: KdfBounds = DEFAULT_KDF_BOUNDS,
) -> tuple[bytes, ...]:
    """Delete the encryption keys that expired ``retention`` seconds before ``now`` (KS-12).

    The file is rewritten atomically under a fresh salt and nonce, with the
    Argon2id costs it had unless ``kdf`` raises them.  Returns the key ids of
    the removed keys; if there are none, the file is not touched.
    """
    target = Path(path)
    data = _read_bounded(target, MAX_KEYSTORE_BYTES)
    keyring = unlock_keyring(data, passphrase, bounds=bounds)
    removed = keyring.expired_keys(now, retention)
    if not removed:
        return ()
    kept = keyring.without_expired(now, retention)
    costs = kdf if kdf is not None else parse_keystore_header(data, bounds=bounds).kdf
    new = lock_keyring(kept, passphrase, rng=rng, kdf=costs, bounds=bounds)
    _write_atomically(target, new, overwrite=True)
    return tuple(k.key_id for k in removed)
