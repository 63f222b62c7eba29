"""The world of directory.json: test keys, trust anchors and a history of versions.

Five root keys and a rogue one, a coordinator and three bureaus, and four
directory versions with a root rotation before the last (the ``T_*`` times
below), then a fifth, later than "now", that drops the encryption keys past
their retention.  Valid documents are made with the library's lifecycle functions;
hostile ones are built as raw document values, encoded canonically and signed
with the test root keys, so that each fails for exactly the reason it is about.
``FILES`` holds every signed file by name.  These are test keys only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ncb_relay import codec, primitives
from ncb_relay.anchor import RootKey, TrustAnchor
from ncb_relay.codec import Value
from ncb_relay.directory_document import DirectoryDocument
from ncb_relay.endorsements import endorse_encryption_key, endorse_signing_key
from ncb_relay.entries import SigningKeyRecord
from ncb_relay.identity import EncryptionKeyPair, EncryptionPublicKey, SigningKeyPair
from ncb_relay.lifecycle import (
    EncryptionKeySchedule,
    add_encryption_key,
    new_directory,
    new_principal,
    next_version,
    prune_encryption_keys,
    reinstate,
    revoke_key,
    rotate_signing_key,
    suspend,
)
from ncb_relay.signatures import ANCHOR_KIND, DIRECTORY_KIND, SignedDocument

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
DAY = 24 * 3600
GRACE = 7 * DAY
MAX_SKEW = 300
PERSON = b"NCBR1 tv dir"
SCHEDULE = EncryptionKeySchedule()

T_A1 = NOW - 30 * DAY  # anchor 1
T_D1 = NOW - 29 * DAY  # genesis
T_D2 = NOW - 22 * DAY  # Seoul rotates its signing key and adds an encryption key
T_COMPROMISE = NOW - 17 * DAY  # Paris's signing key may be in other hands from here
T_D3 = NOW - 15 * DAY  # Paris's key revoked (backdated); Rabat suspended
T_A2 = NOW - 8 * DAY  # the root keys are rotated
T_D4 = NOW - 7 * DAY  # first version under anchor 2; Rabat reinstated
T_D5 = NOW + 10 * DAY  # the first encryption keys are past their retention and dropped

SEOUL, RABAT, PARIS, GS = "KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris", "XP.interpol-gs"
SMALL_ORDER = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def derive(label: str) -> bytes:
    return primitives.blake2b(label.encode("utf-8"), person=PERSON)


ROOT_NAMES = ("root-1", "root-2", "root-3", "root-4", "root-5", "rogue")
ROOTS = {name: SigningKeyPair(derive(f"{name} signing")) for name in ROOT_NAMES}
SIGNING = {
    f"{p}/{g}": SigningKeyPair(derive(f"{p} signing {g}"))
    for p in (SEOUL, RABAT, PARIS, GS)
    for g in (0, 1)
}
ENCRYPTION = {
    f"{p}/{g}": EncryptionKeyPair(derive(f"{p} encryption {g}"))
    for p in (SEOUL, RABAT, PARIS, GS)
    for g in (0, 1)
}

# ---------------------------------------------------------------------------------
# the honest history
# ---------------------------------------------------------------------------------


def anchor(serial: int, names: Sequence[str], issued: int, previous: bytes | None) -> TrustAnchor:
    roots = tuple(RootKey(name, ROOTS[name].public_key) for name in names)
    return TrustAnchor(serial, issued, previous, roots, 2)


def sign_file(draft: SignedDocument, *names: str) -> bytes:
    for name in names:
        draft = draft.sign(ROOTS[name])
    return draft.encode()


def sign_value(value: Value, *names: str) -> bytes:
    return sign_file(SignedDocument(DIRECTORY_KIND, codec.encode(value)), *names)


A1 = anchor(1, ("root-1", "root-2", "root-3"), T_A1, None)
A2 = anchor(2, ("root-3", "root-4", "root-5"), T_A2, A1.hash)


def entry(principal: str, role: str, since: int) -> Any:
    signer = SIGNING[f"{principal}/0"]
    key = ENCRYPTION[f"{principal}/0"].public_key
    return new_principal(
        principal,
        name=f"Test {principal}",
        role=role,  # type: ignore[arg-type]
        signing_key=signer.public_key,
        encryption_key=SCHEDULE.record(signer, principal, key, since),
        since=since,
    )


D1 = new_directory(
    anchor=A1.hash,
    issued=T_D1,
    entries=[
        entry(p, "coordinator" if p == GS else "bureau", T_D1) for p in (SEOUL, RABAT, PARIS, GS)
    ],
)


def _d2() -> DirectoryDocument:
    draft = next_version(D1, issued=T_D2)
    new = SIGNING[f"{SEOUL}/1"]
    endorsement = endorse_signing_key(SIGNING[f"{SEOUL}/0"], SEOUL, new.public_key, T_D2)
    draft = rotate_signing_key(draft, SEOUL, key=new.public_key, endorsement=endorsement)
    record = SCHEDULE.record(new, SEOUL, ENCRYPTION[f"{SEOUL}/1"].public_key, T_D2)
    return add_encryption_key(draft, SEOUL, record)


D2 = _d2()
D3 = suspend(
    revoke_key(
        next_version(D2, issued=T_D3),
        PARIS,
        SIGNING[f"{PARIS}/0"].public_key.key_id,
        at=T_COMPROMISE,
    ),
    RABAT,
)
D4 = reinstate(next_version(D3, issued=T_D4, anchor=A2.hash), RABAT)
D5 = prune_encryption_keys(next_version(D4, issued=T_D5))

FILES: dict[str, bytes] = {
    "anchor-1": sign_file(A1.draft(), "root-1", "root-2"),
    "anchor-2": sign_file(A2.draft(), "root-1", "root-2", "root-4", "root-5"),
    "directory-1": sign_file(D1.draft(), "root-1", "root-3"),
    "directory-2": sign_file(D2.draft(), "root-2", "root-3"),
    "directory-3": sign_file(D3.draft(), "root-1", "root-2"),
    "directory-4": sign_file(D4.draft(), "root-4", "root-5"),
    "directory-5-pruned": sign_file(D5.draft(), "root-3", "root-4"),
}

# ---------------------------------------------------------------------------------
# hostile anchors and documents
# ---------------------------------------------------------------------------------


def value_of(doc: DirectoryDocument) -> dict[str, Any]:
    value: Any = doc.to_value()
    return value  # type: ignore[no-any-return]


def entry_of(value: dict[str, Any], principal: str) -> dict[str, Any]:
    for item in value["entries"]:
        if item["id"] == principal:
            return item  # type: ignore[no-any-return]
    raise KeyError(principal)


def hostile_anchors() -> None:
    FILES["anchor-1-one-root"] = sign_file(A1.draft(), "root-1")
    FILES["anchor-1-bad-signature"] = sign_file(A1.draft(), "root-1", "root-2")[:-1] + b"\x00"
    FILES["anchor-2-one-old-root"] = sign_file(A2.draft(), "root-1", "root-4", "root-5")
    FILES["anchor-2-one-new-root"] = sign_file(A2.draft(), "root-1", "root-2", "root-4")
    FILES["anchor-2-rogue"] = sign_file(A2.draft(), "root-1", "root-2", "root-4", "root-5", "rogue")
    unlinked = replace(A2, previous=bytes(32))
    FILES["anchor-2-unlinked"] = sign_file(unlinked.draft(), "root-1", "root-2", "root-4", "root-5")
    forked = anchor(2, ("root-3", "root-4", "rogue"), T_A2, A1.hash)
    FILES["anchor-2-fork"] = sign_file(forked.draft(), "root-1", "root-2", "root-4", "rogue")
    a3 = anchor(3, ("root-4", "root-5", "rogue"), NOW - DAY, A2.hash)
    FILES["anchor-3"] = sign_file(a3.draft(), "root-4", "root-5", "rogue")
    bad_version: Any = A1.to_value()
    bad_version["version"] = 2
    FILES["anchor-1-version-2"] = sign_file(
        SignedDocument(ANCHOR_KIND, codec.encode(bad_version)), "root-1", "root-2"
    )


def hostile_directories() -> None:
    FILES["directory-1-one-root"] = sign_file(D1.draft(), "root-2")
    FILES["directory-1-rogue"] = sign_file(D1.draft(), "root-1", "root-2", "rogue")
    good = SignedDocument.decode(DIRECTORY_KIND, FILES["directory-1"])
    other = D2.draft().sign(ROOTS["root-2"])
    FILES["directory-1-bad-signature"] = SignedDocument(
        DIRECTORY_KIND, good.document, (*good.signatures, *other.signatures)
    ).encode()
    # the same key under two principals: Rabat lists Paris's signing key (and endorses with it)
    dup = value_of(D1)
    rabat = entry_of(dup, RABAT)
    paris_signer = SIGNING[f"{PARIS}/0"]
    rabat["signing_keys"][0]["key"] = paris_signer.public_key.raw
    key = ENCRYPTION[f"{RABAT}/0"].public_key
    enc = rabat["encryption_keys"][0]
    enc["endorsement"] = endorse_encryption_key(
        paris_signer, RABAT, key, enc["not_before"], enc["not_after"]
    )
    FILES["directory-1-duplicate-key"] = sign_value(dup, "root-1", "root-2")
    low = value_of(D1)
    entry_of(low, RABAT)["encryption_keys"][0]["key"] = SMALL_ORDER
    FILES["directory-1-low-order-key"] = sign_value(low, "root-1", "root-2")
    # KEY-3: Rabat's encryption key is its own signing key in X25519 form, endorsed
    usage = value_of(D1)
    rabat = entry_of(usage, RABAT)
    signer = SIGNING[f"{RABAT}/0"]
    converted = primitives.ed25519_public_key_to_x25519(signer.public_key.raw)
    enc = rabat["encryption_keys"][0]
    enc["key"] = converted
    enc["endorsement"] = endorse_encryption_key(
        signer, RABAT, EncryptionPublicKey(converted), enc["not_before"], enc["not_after"]
    )
    FILES["directory-1-key-usage"] = sign_value(usage, "root-1", "root-2")
    # a root key listed as a principal's signing key
    rooted = value_of(D1)
    gs = entry_of(rooted, GS)
    root = ROOTS["root-3"]
    gs["signing_keys"][0]["key"] = root.public_key.raw
    enc = gs["encryption_keys"][0]
    enc["endorsement"] = endorse_encryption_key(
        root, GS, ENCRYPTION[f"{GS}/0"].public_key, enc["not_before"], enc["not_after"]
    )
    FILES["directory-1-root-as-principal"] = sign_value(rooted, "root-1", "root-2")
    # a root key as Seoul's encryption key: in X25519 form, and as the same 32 bytes
    for name, raw in (
        ("x25519", primitives.ed25519_public_key_to_x25519(root.public_key.raw)),
        ("bytes", root.public_key.raw),
    ):
        reused = value_of(D1)
        enc = entry_of(reused, SEOUL)["encryption_keys"][0]
        enc["key"] = raw
        enc["endorsement"] = endorse_encryption_key(
            SIGNING[f"{SEOUL}/0"],
            SEOUL,
            EncryptionPublicKey(raw),
            enc["not_before"],
            enc["not_after"],
        )
        FILES[f"directory-1-root-{name}-as-encryption-key"] = sign_value(reused, "root-1", "root-2")
    # not msgpack at all: unsigned, signed by a key that is no root, and properly signed
    garbage = SignedDocument(DIRECTORY_KIND, b"\xc1" * 64)
    FILES["directory-not-msgpack-unsigned"] = garbage.encode()
    FILES["directory-not-msgpack-rogue-signed"] = sign_file(garbage, "rogue")
    FILES["directory-not-msgpack"] = sign_file(garbage, "root-1", "root-2")
    version = value_of(D1)
    version["version"] = 2
    FILES["directory-1-version-2"] = sign_value(version, "root-1", "root-2")
    FILES["directory-1-noncanonical"] = FILES["directory-1"].replace(b"\x82", b"\xde\x00\x02", 1)
    # version 2, hostile
    bad = value_of(D2)
    entry_of(bad, SEOUL)["signing_keys"][1]["endorsement"] = endorse_signing_key(
        SIGNING[f"{SEOUL}/0"], SEOUL, SIGNING[f"{SEOUL}/1"].public_key, T_D2 + 1
    )
    FILES["directory-2-bad-endorsement"] = sign_value(bad, "root-1", "root-2")
    missing = value_of(D2)
    entry_of(missing, SEOUL)["signing_keys"][1]["endorsement"] = None
    FILES["directory-2-no-endorsement"] = sign_value(missing, "root-1", "root-2")
    # the coordinator slips in an encryption key of its own for Paris
    slipped = add_encryption_key(
        next_version(D1, issued=T_D2),
        PARIS,
        SCHEDULE.record(SIGNING[f"{PARIS}/0"], PARIS, ENCRYPTION[f"{GS}/1"].public_key, T_D2),
    )
    inserted = value_of(slipped)
    paris_enc = entry_of(inserted, PARIS)["encryption_keys"][1]
    paris_enc["endorsement"] = endorse_encryption_key(
        SIGNING[f"{GS}/0"],
        PARIS,
        ENCRYPTION[f"{GS}/1"].public_key,
        paris_enc["not_before"],
        paris_enc["not_after"],
    )
    FILES["directory-2-coordinator-key"] = sign_value(inserted, "root-1", "root-2")
    FILES["directory-2-unlinked"] = sign_file(
        replace(D2, previous=bytes(32)).draft(), "root-1", "root-2"
    )
    FILES["directory-2-fork"] = sign_file(
        replace(D2, expires=D2.expires - 1).draft(), "root-1", "root-2"
    )
    FILES["directory-2-same-other-signers"] = sign_file(D2.draft(), "root-1", "root-3")
    dropped = value_of(D2)
    entry_of(dropped, PARIS)["encryption_keys"] = []
    FILES["directory-2-drops-a-key"] = sign_value(dropped, "root-1", "root-2")
    backdated = add_encryption_key(
        next_version(D1, issued=T_D2),
        PARIS,
        SCHEDULE.record(SIGNING[f"{PARIS}/0"], PARIS, ENCRYPTION[f"{PARIS}/1"].public_key, T_D2),
    )
    early = value_of(backdated)
    paris_enc = entry_of(early, PARIS)["encryption_keys"][1]
    paris_enc["not_before"] = T_D1 + DAY
    paris_enc["not_after"] = T_D1 + DAY + SCHEDULE.period + SCHEDULE.overlap
    paris_enc["endorsement"] = endorse_encryption_key(
        SIGNING[f"{PARIS}/0"],
        PARIS,
        ENCRYPTION[f"{PARIS}/1"].public_key,
        paris_enc["not_before"],
        paris_enc["not_after"],
    )
    FILES["directory-2-backdated-key"] = sign_value(early, "root-1", "root-2")
    # old roots sign a version issued after the root rotation
    late = next_version(D3, issued=T_A2 + DAY)
    FILES["directory-4-old-roots"] = sign_file(late.draft(), "root-1", "root-2")
    # old roots sign version 4 itself, which names anchor 2
    FILES["directory-4-old-roots-name-anchor-2"] = sign_file(D4.draft(), "root-1", "root-2")
    hostile_endorsers()
    hostile_relisting()
    hostile_validity()
    hostile_sizes()


def hostile_validity() -> None:
    """DIR-5: version 1 with its validity period or a change outside what it may say."""
    for name, expires in (
        ("directory-1-valid-90-days", T_D1 + 90 * DAY),
        ("directory-1-valid-90-days-and-1-s", T_D1 + 90 * DAY + 1),
        ("directory-1-expires-at-issue", T_D1),
    ):
        changed = value_of(D1)
        changed["expires"] = expires
        FILES[name] = sign_value(changed, "root-1", "root-2")
    suspended = value_of(D1)
    entry_of(suspended, RABAT)["status"].append(["suspended", T_D1 + 1])
    FILES["directory-1-later-status"] = sign_value(suspended, "root-1", "root-2")
    revoked = value_of(D1)
    entry_of(revoked, PARIS)["signing_keys"][0]["revoked"] = T_D1 + 1
    FILES["directory-1-later-revocation"] = sign_value(revoked, "root-1", "root-2")


def hostile_sizes() -> None:
    """DIR-14: files over the limits a verifier applies before it spends memory."""
    long_name = value_of(D1)
    entry_of(long_name, SEOUL)["name"] = "S" * 257
    FILES["directory-1-name-257-bytes"] = sign_value(long_name, "root-1", "root-2")
    deep = value_of(D1)  # document, entries, entry, keys, key, revoked: 6; one array more is 7
    entry_of(deep, SEOUL)["signing_keys"][0]["revoked"] = [[]]
    FILES["directory-1-nested-7-deep"] = sign_value(deep, "root-1", "root-2")
    wide = value_of(D1)
    wide.update({f"extra-{n}": n for n in range(9)})  # 8 fields and 9 more
    FILES["directory-1-map-of-17"] = sign_value(wide, "root-1", "root-2")
    # 65 signatures, the roots' among them: written by hand, since a writer refuses the file
    document = D1.draft().document
    signers = [ROOTS["root-1"], ROOTS["root-2"]]
    signers += [SigningKeyPair(derive(f"signer {n}")) for n in range(63)]
    signatures = sorted(
        [s.public_key.key_id, s.sign(DIRECTORY_KIND.signed_message(document))] for s in signers
    )
    FILES["directory-1-65-signatures"] = codec.encode(
        {"document": document, "signatures": signatures}  # type: ignore[dict-item]
    )
    long_root = A1.to_value()
    long_root["roots"][0]["name"] = "r" * 257  # type: ignore[index, call-overload]
    FILES["anchor-1-root-name-257-bytes"] = sign_file(
        SignedDocument(ANCHOR_KIND, codec.encode(long_root)), "root-1", "root-2"
    )


def hostile_endorsers() -> None:
    """Version 4 under anchor 1: keys endorsed by Paris's key, revoked in version 3 (DIR-15)."""
    draft = next_version(D3, issued=T_D3 + DAY)
    paris = draft.entry(PARIS)
    stolen = SIGNING[f"{PARIS}/0"]
    key = ENCRYPTION[f"{PARIS}/1"].public_key
    record = SCHEDULE.record(stolen, PARIS, key, draft.issued)
    added = replace(paris, encryption_keys=(*paris.encryption_keys, record))
    FILES["directory-4-revoked-endorser"] = sign_file(
        draft.with_entry(added).draft(), "root-1", "root-2"
    )
    successor = SIGNING[f"{PARIS}/1"].public_key
    endorsement = endorse_signing_key(stolen, PARIS, successor, draft.issued)
    rotation = SigningKeyRecord(successor, draft.issued, None, endorsement)
    rotated = replace(paris, signing_keys=(*paris.signing_keys, rotation))
    FILES["directory-4-revoked-rotation"] = sign_file(
        draft.with_entry(rotated).draft(), "root-1", "root-2"
    )


def hostile_relisting() -> None:
    """Version 6: Rabat lists Seoul's first encryption key, which version 5 dropped (DIR-16)."""
    draft = next_version(D5, issued=T_D5 + DAY)
    key = ENCRYPTION[f"{SEOUL}/0"].public_key
    record = SCHEDULE.record(SIGNING[f"{RABAT}/0"], RABAT, key, draft.issued)
    relisted = add_encryption_key(draft, RABAT, record)
    FILES["directory-6-relisted-key"] = sign_file(relisted.draft(), "root-3", "root-4")


hostile_anchors()
hostile_directories()
