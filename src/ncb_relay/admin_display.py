"""Anchors, directories and keystores as administrators read them (an adapter).

Text for people: times in ISO 8601 UTC, hashes as fingerprints (hex in groups
of four, ANCHOR-3), key ids in hex.  A signing key listed without an
endorsement after the first is marked as a re-enrolment (ROT-3).  Nothing
secret is ever shown: a keystore is described by its key ids and windows.
The ``--json`` forms are the core's ``to_json`` of each object.
"""

from __future__ import annotations

from .admin_times import show_time
from .anchor import TrustAnchor
from .directory_document import DirectoryDocument
from .entries import EncryptionKeyRecord, PrincipalEntry, SigningKeyRecord
from .identity import fingerprint_text
from .keyring import DEFAULT_RETENTION, Keyring
from .signatures import SignedDocument

__all__ = [
    "anchor_lines",
    "directory_lines",
    "directory_summary",
    "keyring_lines",
    "signature_summary",
]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def signature_summary(signed: SignedDocument) -> str:
    ids = ", ".join(key_id.hex() for key_id in signed.signer_ids)
    return _count(len(signed.signatures), "signature") + (f" ({ids})" if ids else "")


def anchor_lines(anchor: TrustAnchor, signed: SignedDocument, verdict: str) -> list[str]:
    lines = [
        f"trust anchor {anchor.serial} ({verdict})",
        f"  fingerprint  {fingerprint_text(anchor.hash)}",
        f"  issued       {show_time(anchor.issued)}",
        f"  previous     {anchor.previous.hex() if anchor.previous else '-'}",
        f"  threshold    {anchor.threshold} of {len(anchor.roots)} root keys",
    ]
    lines += [f"  root         {r.key_id.hex()}  {r.name}" for r in anchor.roots]
    lines.append(f"  signed by    {signature_summary(signed)}")
    return lines


def directory_summary(document: DirectoryDocument) -> str:
    return (
        f"directory {document.serial}, issued {show_time(document.issued)}, "
        f"expires {show_time(document.expires)}, {_count(len(document.entries), 'principal')}"
    )


def _window(record: SigningKeyRecord | EncryptionKeyRecord) -> str:
    until = "open" if record.not_after is None else show_time(record.not_after)
    text = f"{record.key_id.hex()}  {show_time(record.not_before)} .. {until}"
    if record.revoked is not None:
        text += f"  REVOKED from {show_time(record.revoked)}"
    return text


def _entry_lines(entry: PrincipalEntry) -> list[str]:
    history = ", ".join(f"{s.state} {show_time(s.since)}" for s in entry.status)
    lines = [
        f"  {entry.principal}  {entry.role}  {entry.name!r}  {entry.current_state.upper()}",
        f"    status      {history}",
    ]
    for index, key in enumerate(entry.signing_keys):
        mark = ""
        if index and key.endorsement is None:
            mark = "  re-enrolled: not endorsed by an earlier key (ROT-3)"
        lines.append(f"    signing     {_window(key)}{mark}")
    lines += [f"    encryption  {_window(key)}" for key in entry.encryption_keys]
    return lines


def directory_lines(document: DirectoryDocument, signed: SignedDocument, verdict: str) -> list[str]:
    lines = [
        f"directory {document.serial} ({verdict})",
        f"  hash         {fingerprint_text(document.hash)}",
        f"  issued       {show_time(document.issued)}",
        f"  expires      {show_time(document.expires)}",
        f"  previous     {document.previous.hex() if document.previous else '-'}",
        f"  anchor       {document.anchor.hex()}",
        f"  signed by    {signature_summary(signed)}",
        f"  principals   {len(document.entries)}",
    ]
    for entry in document.entries:
        lines += _entry_lines(entry)
    return lines


def keyring_lines(keyring: Keyring, now: int, *, root: bool) -> list[str]:
    signing = keyring.signing.public_key
    if root:
        return [
            "coordinator root key",
            f"  key id       {signing.key_id.hex()}",
            f"  fingerprint  {fingerprint_text(signing.fingerprint)}",
        ]
    lines = [
        f"keys of {keyring.principal}",
        f"  signing      {signing.key_id.hex()}",
        f"  fingerprint  {fingerprint_text(signing.fingerprint)}",
    ]
    for held in keyring.encryption_keys:
        if held.expired(now):
            state = "past its retention: remove it with ncb-relay keys prune"
        elif now >= held.not_after:
            state = f"retired, kept until {show_time(held.not_after + DEFAULT_RETENTION)}"
        elif now < held.not_before:
            state = "not yet valid"
        else:
            state = "valid"
        lines.append(
            f"  encryption   {held.key_id.hex()}  {show_time(held.not_before)} .. "
            f"{show_time(held.not_after)}  {state}"
        )
    return lines
