"""directory.json: trust anchor chains, directory versions and key look-ups (spec/directory.md).

The files come from :mod:`directory_history`; each case here states its
expected outcome by hand, and :func:`checked` runs the library on it and
refuses to write the file if the library disagrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from directory_history import (
    D1,
    D4,
    DAY,
    ENCRYPTION,
    FILES,
    GRACE,
    MAX_SKEW,
    NOW,
    PARIS,
    RABAT,
    ROOTS,
    SEOUL,
    SIGNING,
    T_A2,
    T_COMPROMISE,
    T_D1,
    T_D2,
    T_D3,
    T_D5,
)
from vectorfile import JSON, document

from ncb_relay.anchor import AnchorChain
from ncb_relay.directory_keys import DirectoryKeys
from ncb_relay.errors import NcbRelayError
from ncb_relay.verified_directory import DirectoryPolicy, load_directory, verify_directory

NOTES: JSON = {
    "Valid": "An honest input: it verifies.",
    "Grace": "Past expires but within the grace period: accepted, with inGrace true (DIR-10).",
    "Threshold": "Fewer distinct root signatures than the anchor's threshold.",
    "RootKey": "A signature by a key that is not a root of the anchor, or one that fails.",
    "Expired": "Past expires plus the grace period (DIR-10).",
    "FutureDated": "Issued later than now plus max skew (DIR-10).",
    "Rollback": "A serial lower than the one held (DIR-12, ANCHOR-5).",
    "Fork": "The serial held, with a different document (DIR-12, ANCHOR-5).",
    "Chain": "Does not extend the version held: wrong previous, a gap, or the past rewritten.",
    "DuplicateKey": "The same key under two principals (DIR-4).",
    "LowOrderKey": "A small-order X25519 key (DIR-4, KEY-4).",
    "KeyUsage": "A key used for the wrong purpose (KEY-3, DIR-4).",
    "Endorsement": (
        "A key change without the principal's own valid endorsement, by a key valid and "
        "unrevoked when the new key starts (ROT-2, ROT-4, DIR-15)."
    ),
    "AnchorPeriod": "Signed under an anchor that is not in force at the issue time (ANCHOR-6).",
    "Validity": "A validity period, status change or revocation that the version may not state "
    "(DIR-5).",
    "Size": "Over a limit that a verifier applies before it spends memory (DIR-14).",
    "Format": "Not the canonical encoding or layout, or an unsupported version.",
    "Revoked": "A key looked up after its revocation, or revoked and used live (DIR-11).",
    "Suspended": "A key of a principal that is (or was at the time) suspended (DIR-11).",
    "Window": "A key looked up outside its validity window (DIR-9).",
    "Binding": "A key id of another principal or of the other kind (DIR-9).",
}

HEADER = [
    "Test vectors for the NCBR/1 directory (spec/directory.md).",
    "signedFiles holds every signed anchor and directory file, hex; cases name them.",
    "AnchorChain: trust the first anchor, extend with the others in order.",
    "DirectoryVerify: build the chain from anchors; if previous is set, load it and the",
    "intermediates without a freshness check; then verify directory at now with the grace.",
    "KeyLookup: load the directory under the chain and look the key up in the given view.",
    "These are test keys, published so that every value can be recomputed.",
]

# ---------------------------------------------------------------------------------
# running a case with the library (the generator's check)
# ---------------------------------------------------------------------------------


def outcome(run: Callable[[], JSON]) -> JSON:
    try:
        return {"result": "valid", **run()}
    except NcbRelayError as error:
        return {"result": "invalid", "error": error.code}


def chain_of(names: Sequence[str]) -> AnchorChain:
    chain = AnchorChain.trust(FILES[names[0]])
    for name in names[1:]:
        chain = chain.extend(FILES[name])
    return chain


def run_anchor(case: JSON) -> JSON:
    def run() -> JSON:
        chain = chain_of(case["anchors"])
        return {"currentSerial": chain.current.serial, "fingerprint": chain.fingerprint.hex()}

    return outcome(run)


def run_directory(case: JSON) -> JSON:
    def run() -> JSON:
        chain = chain_of(case["anchors"])
        policy = DirectoryPolicy(grace=case["grace"], max_skew=case["maxSkew"])
        previous = None
        if case["previous"] is not None:
            previous = load_directory(FILES[case["previous"]], anchors=chain, policy=policy)
        verified = verify_directory(
            FILES[case["directory"]],
            anchors=chain,
            now=case["now"],
            previous=previous,
            intermediates=[FILES[n] for n in case["intermediates"]],
            policy=policy,
        )
        return {
            "serial": verified.serial,
            "hash": verified.hash.hex(),
            "inGrace": verified.in_grace,
        }

    return outcome(run)


def run_lookup(case: JSON) -> JSON:
    def run() -> JSON:
        chain = chain_of(case["anchors"])
        verified = load_directory(
            FILES[case["directory"]], anchors=chain, policy=DirectoryPolicy(grace=case["grace"])
        )
        view: DirectoryKeys = verified.live if case["view"] == "live" else verified.historical
        key_id = bytes.fromhex(case["keyId"]) if "keyId" in case else b""
        if case["lookup"] == "signingKey":
            return {"key": view.signing_key(case["principal"], key_id, case["at"]).raw.hex()}
        if case["lookup"] == "checkEncryptionKey":
            view.check_encryption_key(case["principal"], key_id, case["at"])
            return {}
        return {"key": view.encryption_key(case["principal"], case["at"]).raw.hex()}

    return outcome(run)


def checked(run: Callable[[JSON], JSON], case: JSON, expected: JSON) -> JSON:
    got = run(case)
    for name, value in expected.items():
        if got.get(name) != value:
            raise AssertionError(f"{case['comment']}: expected {expected}, the library gives {got}")
    return {**case, **got}


# ---------------------------------------------------------------------------------
# the cases: (comment, flag, requirement ids, inputs..., expected)
# ---------------------------------------------------------------------------------

HOUR = 3600
BOTH = ("anchor-1", "anchor-2")
Expected = dict[str, Any]

# (comment, flag, requirements, anchor files in order, expected)
# fmt: off
ANCHOR_ROWS: list[tuple[str, str, str, tuple[str, ...], Expected]] = [
    ("the first anchor, 2 of 3 roots", "Valid", "ANCHOR-1 ANCHOR-2 ANCHOR-3",
     ("anchor-1",), {"currentSerial": 1}),
    ("a rotation signed by 2 old and 2 new roots", "Valid", "ANCHOR-4 ANCHOR-5 ROT-7",
     BOTH, {"currentSerial": 2}),
    ("starting from the rotated anchor; old roots' signatures are ignored", "Valid", "ANCHOR-3",
     ("anchor-2",), {"currentSerial": 2}),
    ("the same anchor twice changes nothing", "Valid", "ANCHOR-5",
     (*BOTH, "anchor-2"), {"currentSerial": 2}),
    ("the first anchor signed by one of its roots", "Threshold", "ANCHOR-3",
     ("anchor-1-one-root",), {"error": "below-threshold"}),
    ("the first anchor with a broken signature", "RootKey", "ANCHOR-3",
     ("anchor-1-bad-signature",), {"error": "bad-signature"}),
    ("a rotation not signed by the old threshold (1 old root, 2 new)", "Threshold", "ANCHOR-4",
     ("anchor-1", "anchor-2-one-old-root"), {"error": "below-threshold"}),
    ("a rotation not signed by the new threshold (2 old roots, 1 new)", "Threshold", "ANCHOR-4",
     ("anchor-1", "anchor-2-one-new-root"), {"error": "below-threshold"}),
    ("a rotation also signed by a key of neither anchor", "RootKey", "ANCHOR-4",
     ("anchor-1", "anchor-2-rogue"), {"error": "unknown-key"}),
    ("a rotation naming another predecessor", "Chain", "ANCHOR-5",
     ("anchor-1", "anchor-2-unlinked"), {"error": "broken-chain"}),
    ("a skipped serial", "Chain", "ANCHOR-5",
     ("anchor-1", "anchor-3"), {"error": "broken-chain"}),
    ("a second, different anchor 2", "Fork", "ANCHOR-5",
     (*BOTH, "anchor-2-fork"), {"error": "fork"}),
    ("anchor 1 after anchor 2", "Rollback", "ANCHOR-5",
     ("anchor-2", "anchor-1"), {"error": "rollback"}),
    ("anchor version 2", "Format", "ANCHOR-1",
     ("anchor-1-version-2",), {"error": "unsupported-version"}),
    ("a root named with 257 bytes (str at most 256)", "Size", "DIR-14",
     ("anchor-1-root-name-257-bytes",), {"error": "limit-exceeded"}),
]
# fmt: on

# (comment, flag, requirements, directory, now, other inputs, expected)
# fmt: off
DIRECTORY_ROWS: list[tuple[str, str, str, str, int, dict[str, Any], Expected]] = [
    ("version 1, an hour after issue", "Valid", "DIR-1 DIR-2 DIR-3 DIR-8",
     "directory-1", T_D1 + HOUR, {}, {"serial": 1, "inGrace": False}),
    ("version 1 a day past expiry: in grace", "Grace", "DIR-10",
     "directory-1", D1.expires + DAY, {}, {"inGrace": True}),
    ("version 1 at expiry plus grace", "Expired", "DIR-10",
     "directory-1", D1.expires + GRACE, {}, {"error": "directory-expired"}),
    ("version 1 past expiry with no grace", "Expired", "DIR-10",
     "directory-1", D1.expires, {"grace": 0}, {"error": "directory-expired"}),
    ("version 1 seen 301 s before its issue time", "FutureDated", "DIR-10",
     "directory-1", T_D1 - 301, {}, {"error": "future-dated"}),
    ("version 2 after version 1", "Valid", "DIR-6 DIR-7 ROT-2 ROT-4",
     "directory-2", T_D2 + HOUR, {"previous": "directory-1"}, {"serial": 2}),
    ("version 4 after 1, through 2 and 3, across the root rotation", "Valid",
     "DIR-6 ANCHOR-6 ROT-5 ROT-6 ROT-7", "directory-4", NOW,
     {"anchors": BOTH, "previous": "directory-1", "intermediates": ("directory-2", "directory-3")},
     {"serial": 4}),
    ("version 4 without the anchor that signs it", "AnchorPeriod", "ANCHOR-6",
     "directory-4", NOW, {}, {"error": "unknown-key"}),
    ("version 2 again, signed by another pair of roots", "Valid", "DIR-12",
     "directory-2-same-other-signers", T_D2 + HOUR, {"previous": "directory-2"}, {"serial": 2}),
    ("signed by one root of a 2-of-3 anchor", "Threshold", "DIR-8",
     "directory-1-one-root", T_D1 + HOUR, {}, {"error": "below-threshold"}),
    ("also signed by a key that is not a root", "RootKey", "DIR-8",
     "directory-1-rogue", T_D1 + HOUR, {}, {"error": "unknown-key"}),
    ("a signature over another document", "RootKey", "DIR-1 DIR-8",
     "directory-1-bad-signature", T_D1 + HOUR, {}, {"error": "bad-signature"}),
    ("version 1 when version 2 is held", "Rollback", "DIR-12",
     "directory-1", T_D2 + HOUR, {"previous": "directory-2"}, {"error": "rollback"}),
    ("another version 2 when version 2 is held", "Fork", "DIR-12",
     "directory-2-fork", T_D2 + HOUR, {"previous": "directory-2"}, {"error": "fork"}),
    ("version 2 naming another previous version", "Chain", "DIR-6",
     "directory-2-unlinked", T_D2 + HOUR, {"previous": "directory-1"}, {"error": "broken-chain"}),
    ("version 3 when version 1 is held, without version 2", "Chain", "DIR-6",
     "directory-3", T_D3 + HOUR, {"previous": "directory-1"}, {"error": "broken-chain"}),
    ("version 2 drops one of Paris's keys", "Chain", "DIR-7",
     "directory-2-drops-a-key", T_D2 + HOUR, {"previous": "directory-1"},
     {"error": "broken-chain"}),
    ("version 2 adds a key valid before version 2 was issued", "Chain", "DIR-7",
     "directory-2-backdated-key", T_D2 + HOUR, {"previous": "directory-1"},
     {"error": "broken-chain"}),
    ("Paris's signing key also listed as Rabat's", "DuplicateKey", "DIR-4",
     "directory-1-duplicate-key", T_D1 + HOUR, {}, {"error": "invalid-peer-key"}),
    ("a small-order encryption key", "LowOrderKey", "DIR-4 KEY-4",
     "directory-1-low-order-key", T_D1 + HOUR, {}, {"error": "invalid-peer-key"}),
    ("an encryption key that is the signing key converted", "KeyUsage", "DIR-4 KEY-3",
     "directory-1-key-usage", T_D1 + HOUR, {}, {"error": "invalid-peer-key"}),
    ("a root key listed as a principal's key", "KeyUsage", "DIR-4",
     "directory-1-root-as-principal", T_D1 + HOUR, {}, {"error": "invalid-peer-key"}),
    ("a rotation endorsed over the wrong not_before", "Endorsement", "ROT-2",
     "directory-2-bad-endorsement", T_D2 + HOUR, {"previous": "directory-1"},
     {"error": "bad-signature"}),
    ("a rotation with no endorsement", "Endorsement", "ROT-2 ROT-3",
     "directory-2-no-endorsement", T_D2 + HOUR, {"previous": "directory-1"},
     {"error": "bad-signature"}),
    ("an encryption key for Paris endorsed by the coordinator", "Endorsement", "ROT-4",
     "directory-2-coordinator-key", T_D2 + HOUR, {"previous": "directory-1"},
     {"error": "bad-signature"}),
    ("old roots sign a version issued after the rotation", "AnchorPeriod", "ANCHOR-6 ROT-7",
     "directory-4-old-roots", T_A2 + DAY, {"anchors": BOTH}, {"error": "broken-chain"}),
    ("an encryption key endorsed by a signing key revoked in the version before",
     "Endorsement", "DIR-15 ROT-4 ROT-6", "directory-4-revoked-endorser", T_D3 + DAY + HOUR,
     {"previous": "directory-3"}, {"error": "bad-signature"}),
    ("a rotation endorsed by a signing key revoked in the version before", "Endorsement",
     "DIR-15 ROT-2 ROT-6", "directory-4-revoked-rotation", T_D3 + DAY + HOUR,
     {"previous": "directory-3"}, {"error": "bad-signature"}),
    ("version 5 drops the encryption keys past their retention", "Valid", "DIR-7 ROT-8",
     "directory-5-pruned", T_D5 + HOUR, {"anchors": BOTH, "previous": "directory-4"},
     {"serial": 5}),
    ("version 6 lists for Rabat the encryption key of Seoul that version 5 dropped", "Chain",
     "DIR-16", "directory-6-relisted-key", T_D5 + DAY + HOUR,
     {"anchors": BOTH, "previous": "directory-4", "intermediates": ("directory-5-pruned",)},
     {"error": "broken-chain"}),
    ("a root key in X25519 form listed as Seoul's encryption key", "KeyUsage", "DIR-4 KEY-3",
     "directory-1-root-x25519-as-encryption-key", T_D1 + HOUR, {}, {"error": "invalid-peer-key"}),
    ("a root key's 32 bytes listed as Seoul's encryption key", "KeyUsage", "DIR-4",
     "directory-1-root-bytes-as-encryption-key", T_D1 + HOUR, {},
     {"error": "invalid-peer-key"}),
    # DIR-8: the signatures are checked before the document is decoded
    ("an unsigned document that is not msgpack: refused for its signatures", "Threshold",
     "DIR-8", "directory-not-msgpack-unsigned", T_D1 + HOUR, {}, {"error": "below-threshold"}),
    ("a document that is not msgpack, signed by a key that is not a root", "RootKey", "DIR-8",
     "directory-not-msgpack-rogue-signed", T_D1 + HOUR, {}, {"error": "unknown-key"}),
    ("a document that is not msgpack, signed by a threshold of roots", "Format", "DIR-8",
     "directory-not-msgpack", T_D1 + HOUR, {}, {"error": "malformed"}),
    ("version 4, which names anchor 2, signed by a threshold of anchor 1's roots", "RootKey",
     "DIR-8 ANCHOR-6", "directory-4-old-roots-name-anchor-2", NOW, {"anchors": BOTH},
     {"error": "unknown-key"}),
    ("directory version 2", "Format", "DIR-2",
     "directory-1-version-2", T_D1 + HOUR, {}, {"error": "unsupported-version"}),
    ("a map length in a longer format than needed", "Format", "DIR-1",
     "directory-1-noncanonical", T_D1 + HOUR, {}, {"error": "malformed"}),
    ("version 1 valid for 90 days exactly", "Valid", "DIR-5",
     "directory-1-valid-90-days", T_D1 + HOUR, {}, {"serial": 1, "inGrace": False}),
    ("version 1 valid for 90 days and 1 second", "Validity", "DIR-5",
     "directory-1-valid-90-days-and-1-s", T_D1 + HOUR, {}, {"error": "malformed"}),
    ("version 1 that expires when it is issued", "Validity", "DIR-5",
     "directory-1-expires-at-issue", T_D1, {}, {"error": "malformed"}),
    ("Rabat suspended 1 s after the version's issue time", "Validity", "DIR-5",
     "directory-1-later-status", T_D1 + HOUR, {}, {"error": "malformed"}),
    ("Paris's signing key revoked 1 s after the version's issue time", "Validity", "DIR-5",
     "directory-1-later-revocation", T_D1 + HOUR, {}, {"error": "malformed"}),
    ("Seoul's name of 257 bytes (str at most 256)", "Size", "DIR-14",
     "directory-1-name-257-bytes", T_D1 + HOUR, {}, {"error": "limit-exceeded"}),
    ("containers nested 7 deep (at most 6)", "Size", "DIR-14",
     "directory-1-nested-7-deep", T_D1 + HOUR, {}, {"error": "limit-exceeded"}),
    ("a document map of 17 entries (at most 16)", "Size", "DIR-14",
     "directory-1-map-of-17", T_D1 + HOUR, {}, {"error": "limit-exceeded"}),
    ("65 signatures, 2 of them by roots (at most 64)", "Size", "DIR-14",
     "directory-1-65-signatures", T_D1 + HOUR, {}, {"error": "limit-exceeded"}),
]
# fmt: on

SEOUL_0, SEOUL_1 = SIGNING[f"{SEOUL}/0"].public_key, SIGNING[f"{SEOUL}/1"].public_key
SEOUL_E0, SEOUL_E1 = ENCRYPTION[f"{SEOUL}/0"].public_key, ENCRYPTION[f"{SEOUL}/1"].public_key
PARIS_0, RABAT_0 = SIGNING[f"{PARIS}/0"].public_key, SIGNING[f"{RABAT}/0"].public_key
OVERLAP_END = T_D2 + 7 * DAY

# (comment, flag, requirements, view, look-up, principal, at, key id, expected)
# fmt: off
LOOKUP_ROWS: list[tuple[str, str, str, str, str, str, int, bytes | None, Expected]] = [
    ("Seoul's first key, at genesis", "Valid", "DIR-9",
     "historical", "signingKey", SEOUL, T_D1, SEOUL_0.key_id, {"key": SEOUL_0.raw.hex()}),
    ("Seoul's first key, live, inside the overlap", "Valid", "DIR-9 ROT-2",
     "live", "signingKey", SEOUL, OVERLAP_END - 1, SEOUL_0.key_id, {"key": SEOUL_0.raw.hex()}),
    ("Seoul's first key after the overlap", "Window", "DIR-9 ROT-2",
     "live", "signingKey", SEOUL, OVERLAP_END, SEOUL_0.key_id, {"error": "unknown-key"}),
    ("Seoul's second key before it starts", "Window", "DIR-9",
     "historical", "signingKey", SEOUL, T_D2 - 1, SEOUL_1.key_id, {"error": "unknown-key"}),
    ("Seoul's second key now", "Valid", "DIR-9",
     "live", "signingKey", SEOUL, NOW, SEOUL_1.key_id, {"key": SEOUL_1.raw.hex()}),
    ("Paris's revoked key, historically, before the revocation time", "Valid",
     "DIR-9 DIR-11 ROT-6", "historical", "signingKey", PARIS, T_COMPROMISE - 1, PARIS_0.key_id,
     {"key": PARIS_0.raw.hex()}),
    ("Paris's revoked key used after the revocation time", "Revoked", "DIR-9 ROT-6",
     "historical", "signingKey", PARIS, T_COMPROMISE, PARIS_0.key_id, {"error": "unknown-key"}),
    ("Paris's revoked key, live, at a backdated time", "Revoked", "DIR-11",
     "live", "signingKey", PARIS, T_D1, PARIS_0.key_id, {"error": "unknown-key"}),
    ("Rabat during its suspension", "Suspended", "DIR-9 ROT-5",
     "historical", "signingKey", RABAT, T_D3, RABAT_0.key_id, {"error": "unknown-key"}),
    ("Rabat before its suspension", "Valid", "DIR-9 ROT-5",
     "historical", "signingKey", RABAT, T_D3 - 1, RABAT_0.key_id, {"key": RABAT_0.raw.hex()}),
    ("Rabat, reinstated, live", "Valid", "DIR-11 ROT-5",
     "live", "signingKey", RABAT, NOW, RABAT_0.key_id, {"key": RABAT_0.raw.hex()}),
    ("Seoul's key id under Rabat", "Binding", "DIR-9",
     "live", "signingKey", RABAT, NOW, SEOUL_1.key_id, {"error": "binding-mismatch"}),
    ("Seoul's encryption key id as a signing key", "Binding", "DIR-9",
     "live", "signingKey", SEOUL, NOW, SEOUL_E1.key_id, {"error": "binding-mismatch"}),
    ("an unknown key id", "Binding", "DIR-9",
     "live", "signingKey", SEOUL, NOW, bytes(16), {"error": "unknown-key"}),
    ("Seoul's first encryption key at genesis", "Valid", "DIR-9",
     "historical", "checkEncryptionKey", SEOUL, T_D1, SEOUL_E0.key_id, {}),
    ("Seoul's signing key id as an encryption key", "Binding", "DIR-9",
     "live", "checkEncryptionKey", SEOUL, NOW, SEOUL_1.key_id, {"error": "binding-mismatch"}),
    ("the key to seal to Seoul after its rotation", "Valid", "DIR-13",
     "live", "encryptionKeyFor", SEOUL, T_D2, None, {"key": SEOUL_E1.raw.hex()}),
    ("the key to seal to Paris, whose encryption key has expired", "Window", "DIR-13",
     "live", "encryptionKeyFor", PARIS, NOW, None, {"error": "unknown-key"}),
    ("a time after expiry plus grace", "Expired", "DIR-9 DIR-10",
     "historical", "signingKey", SEOUL, D4.expires + GRACE + 1, SEOUL_1.key_id,
     {"error": "unknown-key"}),
]
# fmt: on


def head(comment: str, flag: str, reqs: str) -> JSON:
    return {"comment": comment, "flags": [flag], "requirements": reqs.split()}


def result_of(expected: Expected) -> Expected:
    return {"result": "invalid" if "error" in expected else "valid", **expected}


def anchor_cases() -> list[JSON]:
    return [
        checked(run_anchor, {**head(c, f, r), "anchors": list(files)}, result_of(expected))
        for c, f, r, files, expected in ANCHOR_ROWS
    ]


def directory_cases() -> list[JSON]:
    cases = []
    for c, f, r, name, now, inputs, expected in DIRECTORY_ROWS:
        case = {
            **head(c, f, r),
            "anchors": list(inputs.get("anchors", ("anchor-1",))),
            "previous": inputs.get("previous"),
            "intermediates": list(inputs.get("intermediates", ())),
            "directory": name,
            "now": now,
            "grace": inputs.get("grace", GRACE),
            "maxSkew": MAX_SKEW,
        }
        cases.append(checked(run_directory, case, result_of(expected)))
    return cases


def lookup_cases() -> list[JSON]:
    cases = []
    for c, f, r, view, lookup, principal, at, key_id, expected in LOOKUP_ROWS:
        case: JSON = {
            **head(c, f, r),
            "anchors": list(BOTH),
            "directory": "directory-4",
            "grace": GRACE,
            "view": view,
            "lookup": lookup,
            "principal": principal,
            "at": at,
        }
        if key_id is not None:
            case["keyId"] = key_id.hex()
        cases.append(checked(run_lookup, case, result_of(expected)))
    return cases


def principals() -> list[JSON]:
    out = []
    for label, pair in SIGNING.items():
        out.append(
            {
                "label": f"{label} signing",
                "seed": pair.seed.hex(),
                "publicKey": pair.public_key.raw.hex(),
                "keyId": pair.public_key.key_id.hex(),
            }
        )
    for label, enc in ENCRYPTION.items():
        out.append(
            {
                "label": f"{label} encryption",
                "secret": enc.secret.hex(),
                "publicKey": enc.public_key.raw.hex(),
                "keyId": enc.public_key.key_id.hex(),
            }
        )
    return out


def build() -> dict[str, Any]:
    return {
        "directory.json": document(
            algorithm="NCBR/1 directory",
            header=HEADER,
            notes=NOTES,
            fields={
                "now": NOW,
                "grace": GRACE,
                "maxSkew": MAX_SKEW,
                "roots": [
                    {
                        "name": name,
                        "seed": pair.seed.hex(),
                        "publicKey": pair.public_key.raw.hex(),
                        "keyId": pair.public_key.key_id.hex(),
                    }
                    for name, pair in ROOTS.items()
                ],
                "keys": principals(),
                "signedFiles": {name: data.hex() for name, data in FILES.items()},
            },
            groups=[
                ("AnchorChain", anchor_cases()),
                ("DirectoryVerify", directory_cases()),
                ("KeyLookup", lookup_cases()),
            ],
        )
    }
