"""Reading and writing the administrators' files (an adapter of the command line).

Every file the commands write is written atomically: the bytes go to a new
temporary file beside the target, which is flushed to disk (``fsync``) and
then moved into place in one step, and the directory is flushed too, so a
crash leaves the old file or the new one, whole, never a mixture.  A target
that exists is replaced only when the caller says so (``replace=True``);
otherwise the new file is hard-linked into place, which fails if anything
appeared there meanwhile.  Public files (anchors, directories, drafts,
exports) get mode 0644 less the umask; private keys go only into keystores
(:mod:`ncb_relay.keystore`, mode 0600).

Reads are bounded: a file larger than what its format allows is refused
before it is read.  Every failure is an :class:`~ncb_relay.errors.NcbRelayError`;
:func:`about` adds the file's name to one that escapes a block of work.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import codec
from .atomic_file import write_atomically
from .directory_document import DOCUMENT_LIMITS
from .errors import LimitExceeded, MalformedInput, NcbRelayError, UsageError
from .signatures import ANCHOR_KIND, DIRECTORY_KIND, SignedDocument

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_SIGNED_BYTES",
    "PUBLIC_MODE",
    "about",
    "check_free",
    "load_signed",
    "read_bytes",
    "read_json",
    "write_bytes",
    "write_json",
]

PUBLIC_MODE = 0o644
MAX_SIGNED_BYTES = DIRECTORY_KIND.outer_limits.max_bytes
MAX_JSON_BYTES = 1024 * 1024


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def about(path: str | os.PathLike[str]) -> Iterator[None]:
    """Name ``path`` in any ncb_relay error raised inside the block (as a note)."""
    try:
        yield
    except NcbRelayError as exc:
        if not getattr(exc, "__notes__", None):
            exc.add_note(os.fspath(path))
        raise


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_SIGNED_BYTES) -> bytes:
    """The whole file, refused unread if it is larger than ``max_bytes``."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise LimitExceeded(f"{path} has {size} bytes, more than {max_bytes} allowed")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {_reason(exc)}") from exc
    if len(data) > max_bytes:
        raise LimitExceeded(f"{path} grew beyond {max_bytes} bytes while being read")
    return data


def check_free(path: str | os.PathLike[str], *, force: bool) -> None:
    """Refuse early (before any work) to replace an existing output without ``--force``."""
    if not force and os.path.lexists(path):
        raise UsageError(f"{os.fspath(path)} exists; pass --force to replace it")


def write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    replace: bool,
    refusal: str = "pass --force to replace it",
) -> None:
    """Write ``data`` to ``path`` atomically; an existing file only if ``replace``.

    ``refusal`` finishes the message that refuses an existing file.
    """
    target = Path(path)
    exists = f"{target} exists; {refusal}"
    if not replace and os.path.lexists(target):
        raise UsageError(exists)
    try:
        write_atomically(target, data, mode=PUBLIC_MODE, exact_mode=False, replace=replace)
    except FileExistsError as exc:  # something appeared at the target meanwhile
        raise UsageError(exists) from exc
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {_reason(exc)}") from exc


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A JSON object from a file of at most :data:`MAX_JSON_BYTES`."""
    data = read_bytes(path, max_bytes=MAX_JSON_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedInput(f"{path} is not UTF-8 text, so not {what}") from None
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"{path} is not {what}: invalid JSON at line {exc.lineno} ({exc.msg})"
        ) from None
    if not isinstance(value, dict):
        raise MalformedInput(f"{path} is not {what}: not a JSON object")
    return value


def write_json(path: str | os.PathLike[str], value: dict[str, Any], *, replace: bool) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    write_bytes(path, text.encode("utf-8"), replace=replace)


def load_signed(data: bytes) -> SignedDocument:
    """A signed trust anchor or directory file (or a draft of one), by its document's type.

    Nothing is verified here beyond the shape and the limits of the kind.
    """
    try:
        outer = SignedDocument.decode(DIRECTORY_KIND, data)
        value = codec.decode(outer.document, limits=DOCUMENT_LIMITS)
    except (MalformedInput, LimitExceeded) as exc:
        raise type(exc)(
            f"not a signed trust anchor or directory file, or damaged: {exc.message}"
        ) from exc
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == ANCHOR_KIND.type:
        return SignedDocument.decode(ANCHOR_KIND, data)
    if kind == DIRECTORY_KIND.type:
        return outer
    raise MalformedInput("the signed document is neither a trust anchor nor a directory")
