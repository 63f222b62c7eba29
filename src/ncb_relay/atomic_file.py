"""Writing a file atomically (an adapter: it does file I/O).

The bytes go to a new temporary file beside the target, which is flushed to
disk (``fsync``) and then moved into place in one step, and the directory is
flushed too, so a crash leaves the old file or the new one, whole, never a
mixture.  A target that exists is replaced only when the caller says so;
otherwise the new file is hard-linked into place, which fails if anything (even
a dangling symbolic link) appeared there meanwhile.  ``os.replace`` replaces a
symbolic link at the target; it never writes through one.

Failures are the operating system's own ``OSError`` (``FileExistsError`` when
the target exists and replacing was not asked for): each caller translates
them into its own :class:`~ncb_relay.errors.NcbRelayError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["fsync_directory", "write_atomically"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def fsync_directory(directory: Path) -> None:
    """Flush a directory, so that a rename or link in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    path: Path, data: bytes, *, mode: int, exact_mode: bool, replace: bool
) -> None:
    """Put ``data`` at ``path`` in one step.

    ``mode`` is the new file's mode, less the umask unless ``exact_mode``
    (private files must be exactly 0600 whatever the umask).
    """
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode)
    try:
        try:
            if exact_mode:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
        fsync_directory(path.parent)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
