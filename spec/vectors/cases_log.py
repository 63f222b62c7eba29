"""log.json: the relay's Merkle log, its checkpoints and receipts (spec/log.md, LOG-1 .. LOG-20).

Everything is fixed: the entries (RFC 6962's reference entries, then BLAKE2b of a
label), the keys (BLAKE2b of a label; Ed25519 signatures are deterministic) and
the witnesses' timestamps.  The reference roots and proofs of transparency-dev/merkle
(``proof/verify_test.go``, the data of RFC 6962's reference implementation) are
copied below and checked against the library; every other expected value is the
library's own, checked against an independent recursive implementation of RFC
9162's MTH, PATH and PROOF in :func:`_mth`, :func:`_path` and :func:`_proof`.

:func:`build` runs the library on every case and raises if it disagrees with the
expected outcome, so a wrong vector cannot be written.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from principals import derive
from vectorfile import JSON, document

from ncb_relay import codec, merkle, primitives
from ncb_relay.checkpoint import (
    COSIGNATURE_HEADER,
    DEFAULT_LIMITS,
    LOG_SIGNATURE_TYPE,
    WITNESS_SIGNATURE_TYPE,
    Checkpoint,
    LogKey,
    LogView,
    NoteSignature,
    SignedNote,
    WitnessKey,
    cosign_checkpoint,
    cosigned_message,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from ncb_relay.errors import LogFork, NcbRelayError
from ncb_relay.header import MAX_TIME
from ncb_relay.identity import SigningKeyPair
from ncb_relay.receipt import (
    MAX_RECEIPT_BYTES,
    RECEIPT_LABEL,
    Receipt,
    log_origin,
    parse_receipt,
    sign_receipt,
    verify_receipt,
)

PERSON_TV_LOG = b"NCBR1 tv log"
COSIGNED_AT = 1_800_000_000  # 2027-01-15T08:00:00Z
LOG_NAME = "relay-lyon.example/ncbr-log"
WITNESS_NAMES = ("witness-1.example/w", "witness-2.example/w", "witness-3.example/w")
MAX_SIZE = 16

# transparency-dev/merkle, proof/verify_test.go: leaves, roots[size - 1], and proofs
REFERENCE_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
_H = {
    "96a2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac5": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6e34": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b086": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
# (leaf index, tree size, proof): the reference numbers leaves from 1; these from 0
REFERENCE_INCLUSION = [
    (0, 8, ["96a2", "5f08", "6b47"]),
    (5, 8, ["bc1a", "ca85", "d37e"]),
    (2, 3, ["fac5"]),
    (1, 5, ["6e34", "5f08", "bc1a"]),
]
REFERENCE_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a2", "5f08", "6b47"]),
    (6, 8, ["0ebc", "ca85", "d37e"]),
    (2, 5, ["5f08", "bc1a"]),
    (6, 7, ["0ebc", "b086", "d37e"]),
]
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode("ascii")
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

NOTES: JSON = {
    "Valid": "A value or proof as RFC 9162 defines it, or a checkpoint that verifies.",
    "Reference": "From RFC 6962's reference test data (transparency-dev/merkle).",
    "Generated": "Computed by the library and by an independent recursive implementation.",
    "WrongIndex": "The proof is for another leaf index.",
    "WrongSize": "The proof is for another tree size (LOG-3, LOG-4).",
    "WrongHash": "A leaf hash or root that is not the one proven.",
    "Truncated": "An element removed from the end of the proof.",
    "Extended": "An element added to the front or the end of the proof.",
    "Modified": "One bit of one element flipped.",
    "BadElement": "An element that is not 32 bytes.",
    "BadSignature": "A signature by a known key that does not verify (LOG-9).",
    "UnknownKey": "No signature by the log's key: another key, or another name (LOG-9).",
    "Origin": "Signed by the log key but naming another origin (LOG-7).",
    "Malformed": "Not the one text LOG-6 and LOG-8 allow.",
    "Size": "Above a bound of LOG-6 or LOG-8.",
    "Ignored": "An unknown signature line, ignored as the note format requires (LOG-9).",
    "Witness": "Witness cosignatures counted against a threshold (LOG-10).",
    "Fork": "A checkpoint that contradicts the one held (LOG-13).",
    "Older": "A checkpoint smaller than the one held, joined to it by a proof (LOG-12).",
    "Receipt": "An acceptance receipt checked as LOG-17 says.",
    "WrongRelay": "A receipt or checkpoint of another relay (LOG-17, LOG-20).",
    "WrongMessage": "A receipt for another message than the one submitted (LOG-17).",
    "WrongKey": "A receipt signed with another key than the relay's (LOG-17).",
    "Order": "Two faults at once: the earlier step of LOG-17 gives the code.",
}


def _mth(leaves: Sequence[bytes]) -> bytes:
    """MTH of RFC 9162, 2.1.1, written from the definition (not the library's)."""
    if not leaves:
        return primitives.sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return primitives.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:]))


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162, 2.1.3.1."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_subproof(m, leaves[:k], b), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162, 2.1.4.1; empty for m = 0 or m = n."""
    return [] if m in (0, len(leaves)) else _subproof(m, leaves, True)


ENTRIES = REFERENCE_ENTRIES + [derive(f"entry {i}", PERSON_TV_LOG) for i in range(8, MAX_SIZE)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]
NODE = merkle.nodes_from_leaves(lambda start, end: LEAVES[start:end])


def root(size: int) -> bytes:
    return _mth(LEAVES[:size])


def _outcome(run: Callable[[], object]) -> str | None:
    try:
        run()
    except NcbRelayError as exc:
        return exc.code
    return None


def _expect(what: str, run: Callable[[], object], error: str | None) -> None:
    got = _outcome(run)
    if got != error:
        raise AssertionError(f"log.json {what}: expected {error}, got {got}")


# --- hashing --------------------------------------------------------------------------------


def hash_group() -> list[JSON]:
    tests: list[JSON] = []
    for entry in [*REFERENCE_ENTRIES, ENTRIES[8]]:
        value = merkle.leaf_hash(entry)
        if value != primitives.sha256(b"\x00" + entry):
            raise AssertionError("leaf hash")
        tests.append(
            {
                "comment": f"leaf hash of a {len(entry)}-byte entry",
                "flags": ["Valid"],
                "requirements": ["LOG-1"],
                "kind": "leaf",
                "entry": entry.hex(),
                "hash": value.hex(),
                "result": "valid",
            }
        )
    for left, right in ((LEAVES[0], LEAVES[1]), (LEAVES[1], LEAVES[0]), (LEAVES[2], LEAVES[3])):
        value = merkle.node_hash(left, right)
        if value != primitives.sha256(b"\x01" + left + right):
            raise AssertionError("node hash")
        tests.append(
            {
                "comment": "node hash",
                "flags": ["Valid"],
                "requirements": ["LOG-2"],
                "kind": "node",
                "left": left.hex(),
                "right": right.hex(),
                "hash": value.hex(),
                "result": "valid",
            }
        )
    return tests


def root_group() -> list[JSON]:
    tests: list[JSON] = []
    tree = merkle.CompactTree()
    for size in range(MAX_SIZE + 1):
        if size:
            tree.append(LEAVES[size - 1])
        value = root(size)
        if tree.root() != value or merkle.tree_root(LEAVES[:size]) != value:
            raise AssertionError(f"root of size {size}")
        flags = ["Valid", "Generated"]
        if 1 <= size <= len(REFERENCE_ROOTS):
            if value.hex() != REFERENCE_ROOTS[size - 1]:
                raise AssertionError(f"reference root of size {size}")
            flags = ["Valid", "Reference"]
        tests.append(
            {
                "comment": f"the root of the first {size} entries",
                "flags": flags,
                "requirements": ["LOG-2"],
                "size": size,
                "root": value.hex(),
                "result": "valid",
            }
        )
    return tests


# --- inclusion proofs -----------------------------------------------------------------------


def _hexes(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def inclusion_case(comment: str, flags: list[str], *args: Any, error: str | None) -> JSON:
    """``args``: leaf index, tree size, leaf hash, proof, root."""
    index, size, leaf, proof, root_hash = args
    _expect(
        comment,
        lambda: merkle.verify_inclusion(leaf, index, size, proof, root_hash),
        error,
    )
    test: JSON = {
        "comment": comment,
        "flags": flags,
        "requirements": ["LOG-3", "LOG-5"] if error else ["LOG-3"],
        "leafIndex": index,
        "treeSize": size,
        "leafHash": leaf.hex(),
        "proof": _hexes(proof),
        "root": root_hash.hex(),
    }
    test.update({"result": "valid"} if error is None else {"result": "invalid", "error": error})
    return test


def _flip(proof: Sequence[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def inclusion_group() -> list[JSON]:
    tests: list[JSON] = []
    for index, size, short in REFERENCE_INCLUSION:
        proof = [bytes.fromhex(_H[s]) for s in short]
        if merkle.inclusion_proof(index, size, NODE) != proof or _path(index, LEAVES[:size]) != (
            proof
        ):
            raise AssertionError(f"reference inclusion proof {index}/{size}")
        tests.append(
            inclusion_case(
                f"reference: leaf {index} of {size}",
                ["Valid", "Reference"],
                index,
                size,
                LEAVES[index],
                proof,
                root(size),
                error=None,
            )
        )
    for size in (1, 2, 3, 5, 7, 9, 13, 16):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, NODE)
            if proof != _path(index, LEAVES[:size]):
                raise AssertionError(f"inclusion proof {index}/{size}")
            tests.append(
                inclusion_case(
                    f"leaf {index} of {size}",
                    ["Valid", "Generated"],
                    index,
                    size,
                    LEAVES[index],
                    proof,
                    root(size),
                    error=None,
                )
            )
    bad = "invalid-proof"
    for index, size in ((5, 8), (1, 5), (6, 13), (0, 1)):
        proof = merkle.inclusion_proof(index, size, NODE)
        leaf, good = LEAVES[index], root(size)
        mutations: list[tuple[str, list[str], int, int, bytes, list[bytes], bytes]] = [
            ("index + 1", ["WrongIndex"], index + 1, size, leaf, proof, good),
            ("index ^ 2", ["WrongIndex"], index ^ 2, size, leaf, proof, good),
            ("size * 2", ["WrongSize"], index, size * 2, leaf, proof, good),
            ("the leaf hash of another entry", ["WrongHash"], index, size, SOME_HASH, proof, good),
            ("the empty tree's root", ["WrongHash"], index, size, leaf, proof, merkle.EMPTY_ROOT),
            ("trailing root", ["Extended"], index, size, leaf, [*proof, good], good),
            ("preceding root", ["Extended"], index, size, leaf, [good, *proof], good),
            (
                "an element of 31 bytes",
                ["BadElement"],
                index,
                size,
                leaf,
                [*proof, bytes(31)],
                good,
            ),
        ]
        if index:
            mutations.append(("index - 1", ["WrongIndex"], index - 1, size, leaf, proof, good))
        if size > 1:
            mutations.append(("size / 2", ["WrongSize"], index, size // 2, leaf, proof, good))
        if proof:
            mutations.append(
                ("removed component", ["Truncated"], index, size, leaf, proof[:-1], good)
            )
            for i in range(len(proof)):
                mutations.append(
                    (f"proof[{i}] bit 3", ["Modified"], index, size, leaf, _flip(proof, i, 8), good)
                )
        for what, flags, i, n, lf, pf, rt in mutations:
            tests.append(
                inclusion_case(
                    f"leaf {index} of {size}: {what}", flags, i, n, lf, pf, rt, error=bad
                )
            )
    return tests


# --- consistency proofs ---------------------------------------------------------------------


def consistency_case(comment: str, flags: list[str], *args: Any, error: str | None) -> JSON:
    """``args``: old size, new size, old root, new root, proof."""
    old, new, old_root, new_root, proof = args
    _expect(
        comment,
        lambda: merkle.verify_consistency(old, new, old_root, new_root, proof),
        error,
    )
    test: JSON = {
        "comment": comment,
        "flags": flags,
        "requirements": ["LOG-4", "LOG-5"] if error else ["LOG-4"],
        "oldSize": old,
        "newSize": new,
        "oldRoot": old_root.hex(),
        "newRoot": new_root.hex(),
        "proof": _hexes(proof),
    }
    test.update({"result": "valid"} if error is None else {"result": "invalid", "error": error})
    return test


def consistency_group() -> list[JSON]:
    tests: list[JSON] = []
    for old, new, short in REFERENCE_CONSISTENCY:
        proof = [bytes.fromhex(_H[s]) for s in short]
        if merkle.consistency_proof(old, new, NODE) != proof or _proof(old, LEAVES[:new]) != proof:
            raise AssertionError(f"reference consistency proof {old}/{new}")
        tests.append(
            consistency_case(
                f"reference: {old} to {new}",
                ["Valid", "Reference"],
                old,
                new,
                root(old),
                root(new),
                proof,
                error=None,
            )
        )
    for new in (1, 2, 3, 5, 8, 13, 16):
        for old in range(new + 1):
            proof = merkle.consistency_proof(old, new, NODE)
            if proof != _proof(old, LEAVES[:new]):
                raise AssertionError(f"consistency proof {old}/{new}")
            tests.append(
                consistency_case(
                    f"{old} to {new}",
                    ["Valid", "Generated"],
                    old,
                    new,
                    root(old),
                    root(new),
                    proof,
                    error=None,
                )
            )
    bad = "invalid-proof"
    for old, new in ((6, 8), (2, 5), (3, 16), (7, 13)):
        proof = merkle.consistency_proof(old, new, NODE)
        r1, r2 = root(old), root(new)
        mutations: list[tuple[str, list[str], int, int, bytes, bytes, list[bytes]]] = [
            ("old size - 1", ["WrongSize"], old - 1, new, r1, r2, proof),
            ("old size + 1", ["WrongSize"], old + 1, new, r1, r2, proof),
            ("old size ^ 2", ["WrongSize"], old ^ 2, new, r1, r2, proof),
            ("new size * 2", ["WrongSize"], old, new * 2, r1, r2, proof),
            ("new size / 2", ["WrongSize"], old, new // 2, r1, r2, proof),
            ("swapped sizes", ["WrongSize"], new, old, r2, r1, proof),
            ("wrong old root", ["WrongHash"], old, new, SOME_HASH, r2, proof),
            ("wrong new root", ["WrongHash"], old, new, r1, SOME_HASH, proof),
            ("swapped roots", ["WrongHash"], old, new, r2, r1, proof),
            ("empty proof", ["Truncated"], old, new, r1, r2, []),
            ("truncated proof", ["Truncated"], old, new, r1, r2, proof[:-1]),
            ("trailing old root", ["Extended"], old, new, r1, r2, [*proof, r1]),
            ("trailing new root", ["Extended"], old, new, r1, r2, [*proof, r2]),
            ("preceding old root", ["Extended"], old, new, r1, r2, [r1, *proof]),
            ("preceding proof[0]", ["Extended"], old, new, r1, r2, [proof[0], *proof]),
            ("an element of 33 bytes", ["BadElement"], old, new, r1, r2, [*proof[:-1], bytes(33)]),
        ]
        for i in range(len(proof)):
            mutations.append(
                (f"proof[{i}] bit 4", ["Modified"], old, new, r1, r2, _flip(proof, i, 16))
            )
        for what, flags, m, n, a, b, pf in mutations:
            tests.append(
                consistency_case(f"{old} to {new}: {what}", flags, m, n, a, b, pf, error=bad)
            )
    for what, m, n, a, b, pf in (
        ("equal sizes, different roots", 5, 5, root(5), root(4), []),
        ("equal sizes, a non-empty proof", 5, 5, root(5), root(5), [root(5)]),
        ("from 0, a non-empty proof", 0, 5, merkle.EMPTY_ROOT, root(5), [root(5)]),
        ("from 0, an old root that is not SHA-256('')", 0, 5, SOME_HASH, root(5), []),
        ("65 elements", 3, 16, root(3), root(16), [SOME_HASH] * 65),
    ):
        tests.append(consistency_case(what, ["WrongHash"], m, n, a, b, pf, error=bad))
    return tests


# --- checkpoints ----------------------------------------------------------------------------


def _key(label: str) -> SigningKeyPair:
    return SigningKeyPair(derive(label, PERSON_TV_LOG))


LOG_SIGNER = _key(LOG_NAME)
LOG = LogKey(LOG_NAME, LOG_SIGNER.public_key)
WITNESS_SIGNERS = [_key(name) for name in WITNESS_NAMES]
WITNESSES = [
    WitnessKey(n, k.public_key) for n, k in zip(WITNESS_NAMES, WITNESS_SIGNERS, strict=True)
]
OTHER_SIGNER = _key("another key")


def checkpoint(size: int, extensions: tuple[str, ...] = (), origin: str = LOG_NAME) -> Checkpoint:
    return Checkpoint(origin, size, root(size), extensions)


def signed(size: int, *, witnesses: int = 0, extensions: tuple[str, ...] = ()) -> bytes:
    note = sign_checkpoint(checkpoint(size, extensions), log=LOG, signer=LOG_SIGNER)
    for i in range(witnesses):
        note = cosign_checkpoint(
            note, witness=WITNESSES[i], signer=WITNESS_SIGNERS[i], now=COSIGNED_AT + i
        )
    return note


def _raw_line(name: str, key_id: bytes, signature: bytes) -> bytes:
    return NoteSignature(name, key_id, signature).line()


def _note_json(note: bytes) -> JSON:
    try:
        text: str | None = note.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"note": note.hex(), "noteText": text}


def checkpoint_case(
    comment: str,
    flags: list[str],
    reqs: list[str],
    note: bytes,
    error: str | None,
    *,
    threshold: int = 0,
) -> JSON:
    verified: list[Any] = []
    _expect(
        comment,
        lambda: verified.append(
            verify_checkpoint(note, log=LOG, witnesses=WITNESSES, threshold=threshold)
        ),
        error,
    )
    test: JSON = {"comment": comment, "flags": flags, "requirements": reqs}
    test.update(_note_json(note))
    test["threshold"] = threshold
    if error is None:
        v = verified[0]
        test.update(
            result="valid",
            origin=v.origin,
            size=v.size,
            root=v.root.hex(),
            extensions=list(v.checkpoint.extensions),
            cosigned=v.cosigned,
        )
    else:
        test.update(result="invalid", error=error)
    return test


def checkpoint_group() -> list[JSON]:
    tests: list[JSON] = []
    valid = ["Valid"]
    text13 = checkpoint(13).text()
    sig13 = LOG_SIGNER.sign(text13)
    log_line = _raw_line(LOG_NAME, LOG.key_id, sig13)

    def note(text: bytes, *lines: bytes) -> bytes:
        return text + b"\n" + b"".join(lines)

    tests.append(checkpoint_case("signed by the log", valid, ["LOG-6", "LOG-8"], signed(13), None))
    tests.append(checkpoint_case("the empty tree", valid, ["LOG-6", "LOG-8"], signed(0), None))
    tests.append(checkpoint_case("size 1", valid, ["LOG-6"], signed(1), None))
    tests.append(
        checkpoint_case(
            "two extension lines",
            valid,
            ["LOG-6"],
            signed(16, extensions=("timestamp 1800000000", "batch 7")),
            None,
        )
    )
    witnessed = ["Valid", "Witness"]
    tests.append(
        checkpoint_case(
            "2 of 3 witnesses, 2 required",
            witnessed,
            ["LOG-10"],
            signed(13, witnesses=2),
            None,
            threshold=2,
        )
    )
    tests.append(
        checkpoint_case(
            "3 witnesses, none required", witnessed, ["LOG-10"], signed(13, witnesses=3), None
        )
    )
    unknown = _raw_line("someone.example/else", b"\x01\x02\x03\x04", bytes(64))
    tests.append(
        checkpoint_case(
            "an unknown signature line before the log's",
            ["Valid", "Ignored"],
            ["LOG-9"],
            note(text13, unknown, log_line),
            None,
        )
    )
    other_id = _raw_line(LOG_NAME, b"\xff\xff\xff\xff", bytes(64))
    tests.append(
        checkpoint_case(
            "the log's name with another key id (ignored)",
            ["Valid", "Ignored"],
            ["LOG-9"],
            note(text13, log_line, other_id),
            None,
        )
    )
    # a witness cosigning twice counts once
    once = cosign_checkpoint(
        signed(13, witnesses=1),
        witness=WITNESSES[0],
        signer=WITNESS_SIGNERS[0],
        now=COSIGNED_AT + 99,
    )
    tests.append(
        checkpoint_case(
            "one witness cosigning twice, 2 required",
            ["Witness"],
            ["LOG-10"],
            once,
            "below-threshold",
            threshold=2,
        )
    )
    tests.append(
        checkpoint_case(
            "1 witness, 2 required",
            ["Witness"],
            ["LOG-10"],
            signed(13, witnesses=1),
            "below-threshold",
            threshold=2,
        )
    )

    # --- signatures ------------------------------------------------------------------------
    flipped = bytes([sig13[0] ^ 1]) + sig13[1:]
    tests.append(
        checkpoint_case(
            "the log's signature with one bit flipped",
            ["BadSignature"],
            ["LOG-9"],
            note(text13, _raw_line(LOG_NAME, LOG.key_id, flipped)),
            "bad-signature",
        )
    )
    tests.append(
        checkpoint_case(
            "the log's signature over another size",
            ["BadSignature"],
            ["LOG-8", "LOG-9"],
            note(checkpoint(12).text(), log_line),
            "bad-signature",
        )
    )
    tests.append(
        checkpoint_case(
            "the log's signature truncated to 63 bytes",
            ["BadSignature"],
            ["LOG-9"],
            note(text13, _raw_line(LOG_NAME, LOG.key_id, sig13[:63])),
            "bad-signature",
        )
    )
    tests.append(
        checkpoint_case(
            "a valid log signature and a failing one",
            ["BadSignature"],
            ["LOG-9"],
            note(text13, log_line, _raw_line(LOG_NAME, LOG.key_id, flipped)),
            "bad-signature",
        )
    )
    good_cosigned = signed(13, witnesses=1)
    parsed = parse_note(good_cosigned)
    ws = parsed.signatures[1]
    bad_time = NoteSignature(
        ws.name, ws.key_id, (COSIGNED_AT + 1).to_bytes(8, "big") + ws.signature[8:]
    )
    tests.append(
        checkpoint_case(
            "a cosignature whose time was changed",
            ["BadSignature", "Witness"],
            ["LOG-10"],
            SignedNote(parsed.text, (parsed.signatures[0], bad_time)).data,
            "bad-signature",
        )
    )
    plain = NoteSignature(ws.name, ws.key_id, WITNESS_SIGNERS[0].sign(parsed.text))
    tests.append(
        checkpoint_case(
            "a witness's plain note signature where a cosignature is expected",
            ["BadSignature", "Witness"],
            ["LOG-10"],
            SignedNote(parsed.text, (parsed.signatures[0], plain)).data,
            "bad-signature",
        )
    )
    other = OTHER_SIGNER.sign(text13)
    tests.append(
        checkpoint_case(
            "signed by another key under the log's name",
            ["UnknownKey"],
            ["LOG-9"],
            note(
                text13,
                _raw_line(
                    LOG_NAME,
                    LogKey(LOG_NAME, OTHER_SIGNER.public_key).key_id,
                    other,
                ),
            ),
            "unknown-key",
        )
    )
    tests.append(
        checkpoint_case(
            "the log's key id under another name",
            ["UnknownKey"],
            ["LOG-9"],
            note(text13, _raw_line("relay-lyon.example/other", LOG.key_id, sig13)),
            "unknown-key",
        )
    )
    tests.append(
        checkpoint_case(
            "only witness cosignatures",
            ["UnknownKey"],
            ["LOG-9"],
            SignedNote(parsed.text, (ws,)).data,
            "unknown-key",
        )
    )
    elsewhere = Checkpoint("relay-singapore.example/ncbr-log", 13, root(13))
    tests.append(
        checkpoint_case(
            "another origin, signed by the log's key and name",
            ["Origin"],
            ["LOG-7"],
            note(
                elsewhere.text(), _raw_line(LOG_NAME, LOG.key_id, LOG_SIGNER.sign(elsewhere.text()))
            ),
            "binding-mismatch",
        )
    )

    # --- the text ---------------------------------------------------------------------------
    b64root = base64.b64encode(root(13)).decode()

    def malformed(comment: str, text: str, reqs: list[str], code: str = "malformed") -> None:
        raw = text.encode("utf-8")
        tests.append(
            checkpoint_case(
                comment,
                ["Malformed"] if code == "malformed" else ["Size"],
                reqs,
                note(raw, _raw_line(LOG_NAME, LOG.key_id, LOG_SIGNER.sign(raw))),
                code,
            )
        )

    six = ["LOG-6"]
    malformed("a leading zero in the size", f"{LOG_NAME}\n013\n{b64root}\n", six)
    malformed("a plus sign in the size", f"{LOG_NAME}\n+13\n{b64root}\n", six)
    malformed("the size 2**63", f"{LOG_NAME}\n{2**63}\n{b64root}\n", six)
    malformed("the root without padding", f"{LOG_NAME}\n13\n{b64root.rstrip('=')}\n", six)
    malformed(
        "the root in base64url",
        f"{LOG_NAME}\n13\n{URLSAFE_ROOT}\n",
        six,
    )
    last = b64root[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    low = alphabet[alphabet.index(last) ^ 1]
    malformed("the root's unused low bits set", f"{LOG_NAME}\n13\n{b64root[:-2]}{low}=\n", six)
    malformed(
        "a 31-byte root", f"{LOG_NAME}\n13\n{base64.b64encode(root(13)[:31]).decode()}\n", six
    )
    malformed("size 0 with a non-empty root", f"{LOG_NAME}\n0\n{b64root}\n", six)
    malformed("no root line", f"{LOG_NAME}\n13\n", six)
    malformed("an empty extension line", f"{LOG_NAME}\n13\n{b64root}\n\nx\n", six)
    malformed("a tab in an extension line", f"{LOG_NAME}\n13\n{b64root}\nx\ty\n", six)
    malformed(
        "a NUL in an extension line", f"{LOG_NAME}\n13\n{b64root}\nx\x00y\n", ["LOG-6", "LOG-14"]
    )
    malformed("a CR before each newline", f"{LOG_NAME}\r\n13\r\n{b64root}\r\n", six)
    malformed("a space in the origin", f"relay lyon\n13\n{b64root}\n", ["LOG-6", "LOG-7"])
    malformed(
        "nine extension lines",
        f"{LOG_NAME}\n13\n{b64root}\n" + "x\n" * 9,
        six,
        "limit-exceeded",
    )
    malformed("an origin of 257 bytes", f"{'o' * 257}\n13\n{b64root}\n", six, "limit-exceeded")

    eight = ["LOG-8"]

    def raw_case(comment: str, data: bytes, reqs: list[str], code: str = "malformed") -> None:
        flags = ["Malformed"] if code == "malformed" else ["Size"]
        tests.append(checkpoint_case(comment, flags, reqs, data, code))

    raw_case("no blank line before the signature", text13 + log_line, eight)
    raw_case("no signature line", text13 + b"\n", eight)
    raw_case(
        "a hyphen instead of the em dash",
        text13 + b"\n" + log_line.replace("\u2014".encode(), b"-"),
        eight,
    )
    raw_case(
        "two spaces after the name", text13 + b"\n" + log_line.replace(b"log ", b"log  "), eight
    )
    raw_case("no final newline", text13 + b"\n" + log_line[:-1], eight)
    raw_case("a trailing blank line", text13 + b"\n" + log_line + b"\n", eight)
    raw_case("not UTF-8", text13.replace(b"relay", b"r\xe9lay") + b"\n" + log_line, eight)
    raw_case(
        "a signature of 4 bytes (a key id alone)",
        text13 + b"\n" + _raw_line(LOG_NAME, LOG.key_id, b"")[:-1] + b"\n",
        eight,
    )
    raw_case(
        "33 signature lines",
        text13 + b"\n" + log_line + unknown * 32,
        eight,
        "limit-exceeded",
    )
    raw_case(
        "a note of 16,385 bytes",
        text13
        + b"\n"
        + log_line
        + unknown * 0
        + b"x" * (DEFAULT_LIMITS.max_bytes + 1 - len(text13) - 1 - len(log_line)),
        eight,
        "limit-exceeded",
    )
    return tests


# --- a client's view ------------------------------------------------------------------------


def view_group() -> list[JSON]:
    tests: list[JSON] = []
    forked_root = _mth([*LEAVES[:7], SOME_HASH, *LEAVES[8:13]])
    forked13 = sign_checkpoint(Checkpoint(LOG_NAME, 13, forked_root), log=LOG, signer=LOG_SIGNER)

    def sequence(
        comment: str,
        flags: list[str],
        reqs: list[str],
        steps: list[tuple[bytes, list[bytes], str | None]],
    ) -> None:
        view = LogView(LOG)
        out: list[JSON] = []
        for data, proof, error in steps:
            _expect(comment, lambda d=data, p=proof: view.update(d, p), error)  # type: ignore[misc]
            assert view.latest is not None or error is not None
            step: JSON = {**_note_json(data), "proof": _hexes(proof)}
            step.update(
                {"result": "valid"} if error is None else {"result": "invalid", "error": error}
            )
            step["latestSize"] = None if view.latest is None else view.latest.size
            out.append(step)
        forks = view.forks
        tests.append(
            {
                "comment": comment,
                "flags": flags,
                "requirements": reqs,
                "steps": out,
                "forks": [
                    {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason}
                    for f in forks
                ],
                "result": "valid" if not forks else "invalid",
            }
        )

    def cp(old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, NODE)

    sequence(
        "growing from 0 to 5 to 13 to 16",
        ["Valid"],
        ["LOG-11", "LOG-12"],
        [
            (signed(0), [], None),
            (signed(5), cp(0, 5), None),
            (signed(13), cp(5, 13), None),
            (signed(16), cp(13, 16), None),
        ],
    )
    sequence(
        "the same checkpoint twice, then with a witness cosignature",
        ["Valid"],
        ["LOG-12"],
        [(signed(8), [], None), (signed(8), [], None), (signed(8, witnesses=1), [], None)],
    )
    sequence(
        "a smaller tree after a larger one",
        ["Fork"],
        ["LOG-13"],
        [(signed(13), [], None), (signed(8), [], "log-fork")],
    )
    sequence(
        "two roots for size 13",
        ["Fork"],
        ["LOG-13"],
        [(signed(13), [], None), (forked13, [], "log-fork")],
    )
    sequence(
        "a rewritten entry 7: no consistency proof can be given",
        ["Fork"],
        ["LOG-13"],
        [(signed(5), [], None), (forked13, cp(5, 13), "log-fork"), (signed(13), cp(5, 13), None)],
    )
    sequence(
        "a consistency proof for other sizes",
        ["Fork"],
        ["LOG-13"],
        [(signed(5), [], None), (signed(13), cp(6, 13), "log-fork")],
    )
    bad = bytearray(signed(13))
    bad[-3] ^= 1
    sequence(
        "a damaged note is refused and not recorded",
        ["BadSignature"],
        ["LOG-12"],
        [
            (signed(5), [], None),
            (bytes(bad), cp(5, 13), "malformed"),
            (signed(13), cp(5, 13), None),
        ],
    )
    return tests


# --- a client's view, in both directions (LogView.check) --------------------------------


def check_group() -> list[JSON]:
    tests: list[JSON] = []
    forked_root = _mth([*LEAVES[:7], SOME_HASH, *LEAVES[8:13]])
    forked13 = sign_checkpoint(Checkpoint(LOG_NAME, 13, forked_root), log=LOG, signer=LOG_SIGNER)
    forked_leaves = [*LEAVES[:7], SOME_HASH, *LEAVES[8:13]]
    forked_node = merkle.nodes_from_leaves(lambda start, end: forked_leaves[start:end])

    def cp(old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, NODE)

    def forked_cp(old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, forked_node)

    def sequence(
        comment: str,
        flags: list[str],
        reqs: list[str],
        steps: list[tuple[bytes, list[bytes], str | None]],
        *,
        threshold: int = 0,
    ) -> None:
        view = LogView(LOG, witnesses=WITNESSES, threshold=threshold)
        out: list[JSON] = []
        for data, proof, error in steps:
            _expect(comment, lambda d=data, p=proof: view.check(d, p), error)  # type: ignore[misc]
            step: JSON = {**_note_json(data), "proof": _hexes(proof)}
            step.update(
                {"result": "valid"} if error is None else {"result": "invalid", "error": error}
            )
            step["latestSize"] = None if view.latest is None else view.latest.size
            out.append(step)
        tests.append(
            {
                "comment": comment,
                "flags": flags,
                "requirements": reqs,
                "threshold": threshold,
                "steps": out,
                "forks": [
                    {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason}
                    for f in view.forks
                ],
                "result": "valid" if not view.forks else "invalid",
            }
        )

    both = ["LOG-12", "LOG-18"]
    sequence(
        "growing from 0 to 5 to 13 to 16",
        ["Valid"],
        both,
        [
            (signed(0), [], None),
            (signed(5), cp(0, 5), None),
            (signed(13), cp(5, 13), None),
            (signed(16), cp(13, 16), None),
        ],
    )
    sequence(
        "an older checkpoint with a proof to the one held changes nothing",
        ["Valid", "Older"],
        both,
        [
            (signed(13), [], None),
            (signed(8), cp(8, 13), None),
            (signed(1), cp(1, 13), None),
            (signed(0), [], None),
            (signed(16), cp(13, 16), None),
            (signed(13), cp(13, 16), None),
        ],
    )
    sequence(
        "the same checkpoint twice, then with a witness cosignature",
        ["Valid"],
        both,
        [(signed(8), [], None), (signed(8), [], None), (signed(8, witnesses=1), [], None)],
    )
    sequence(
        "a smaller tree without a proof",
        ["Fork"],
        ["LOG-13", "LOG-18"],
        [(signed(13), [], None), (signed(8), [], "log-fork")],
    )
    sequence(
        "a smaller tree with a proof for other sizes",
        ["Fork"],
        ["LOG-13"],
        [(signed(13), [], None), (signed(8), cp(7, 13), "log-fork")],
    )
    sequence(
        "a smaller tree with a proof in the wrong direction's order",
        ["Fork"],
        ["LOG-13"],
        [(signed(13), [], None), (signed(8), cp(8, 16), "log-fork")],
    )
    sequence(
        "a rewritten entry 7, offered smaller than the tree held",
        ["Fork"],
        ["LOG-13", "LOG-18"],
        [
            (signed(16), [], None),
            (forked13, cp(13, 16), "log-fork"),
            (signed(13), cp(13, 16), None),
        ],
    )
    sequence(
        "a rewritten entry 7, offered larger than the tree held",
        ["Fork"],
        ["LOG-13"],
        [(signed(5), [], None), (forked13, cp(5, 13), "log-fork"), (signed(13), cp(5, 13), None)],
    )
    sequence(
        "two roots for size 13",
        ["Fork"],
        ["LOG-13"],
        [(signed(13), [], None), (forked13, [], "log-fork")],
    )
    sequence(
        "a larger tree without a proof",
        ["Fork"],
        ["LOG-13"],
        [(signed(5), [], None), (signed(13), [], "log-fork")],
    )
    sequence(
        "the same size with a non-empty proof is refused and not recorded",
        ["Extended"],
        ["LOG-4", "LOG-12"],
        [(signed(13), [], None), (signed(13), cp(5, 13), "invalid-proof")],
    )
    sequence(
        "with a witness threshold: adopted only once cosigned, checked before",
        ["Valid", "Witness"],
        [*both, "LOG-10"],
        [
            (signed(5), [], None),
            (signed(5, witnesses=1), [], None),
            (signed(13), cp(5, 13), None),
            (signed(13, witnesses=1), [], None),
            (signed(8), cp(8, 13), None),
            (signed(16), cp(13, 16), None),
        ],
        threshold=1,
    )
    sequence(
        "with a witness threshold: two roots for one size, neither cosigned, are a fork",
        ["Fork", "Witness"],
        ["LOG-12", "LOG-13", "LOG-18"],
        [
            (signed(5, witnesses=1), [], None),
            (signed(13), cp(5, 13), None),
            (forked13, forked_cp(5, 13), "log-fork"),
        ],
        threshold=1,
    )
    sequence(
        "with a witness threshold: a smaller tree is proven against the largest observed",
        ["Fork", "Witness", "Older"],
        ["LOG-12", "LOG-13"],
        [
            (signed(5, witnesses=1), [], None),
            (signed(13), cp(5, 13), None),
            (signed(8, witnesses=1), cp(5, 8), "log-fork"),
            (signed(8, witnesses=1), cp(8, 13), None),
        ],
        threshold=1,
    )
    sequence(
        "with a witness threshold: an uncosigned fork is still caught",
        ["Fork", "Witness"],
        ["LOG-13", "LOG-18"],
        [(signed(5, witnesses=1), [], None), (forked13, cp(5, 13), "log-fork")],
        threshold=1,
    )
    bad = bytearray(signed(13))
    bad[-3] ^= 1
    sequence(
        "a damaged note is refused and not recorded",
        ["BadSignature"],
        ["LOG-12"],
        [
            (signed(5), [], None),
            (bytes(bad), cp(5, 13), "malformed"),
            (signed(8), cp(5, 8), None),
        ],
    )
    return tests


# --- acceptance receipts --------------------------------------------------------------------

RELAY_ID = "XP.relay-lyon"
RELAY_SIGNER = _key(f"relay {RELAY_ID}")
RELAY_LOG = LogKey(log_origin(RELAY_ID), RELAY_SIGNER.public_key)
ACCEPTED_AT = COSIGNED_AT - 100


def message_id(index: int) -> bytes:
    return derive(f"message id {index}", PERSON_TV_LOG)


def relay_signed(
    size: int,
    *,
    origin: str = RELAY_LOG.name,
    signer: SigningKeyPair = RELAY_SIGNER,
    root_hash: bytes | None = None,
) -> bytes:
    key = LogKey(origin, signer.public_key)
    body = Checkpoint(origin, size, root(size) if root_hash is None else root_hash)
    return sign_checkpoint(body, log=key, signer=signer)


def raw_receipt(
    fields: list[codec.Value],
    *,
    signer: SigningKeyPair = RELAY_SIGNER,
    key_id: bytes | None = None,
    signature: bytes | None = None,
) -> bytes:
    """A receipt of any fields, signed as LOG-16 says (written here, not by sign_receipt)."""
    kid = signer.public_key.key_id if key_id is None else key_id
    if signature is None:
        signature = signer.sign(RECEIPT_LABEL + codec.encode([*fields, kid]))
    return codec.encode([*fields, kid, signature])


def fields_of(index: int, *, relay: str = RELAY_ID) -> list[codec.Value]:
    return [relay, message_id(index), ENTRIES[index], index, ACCEPTED_AT]


def receipt_case(
    comment: str,
    flags: list[str],
    reqs: list[str],
    data: bytes,
    *,
    note: bytes,
    inclusion: Sequence[bytes],
    index: int,
    error: str | None,
) -> JSON:
    """``index``: the message the client submitted (its id and hash are expected)."""
    verified: list[Any] = []
    _expect(
        comment,
        lambda: verified.append(
            verify_receipt(
                data,
                note,
                inclusion,
                relay_id=RELAY_ID,
                relay_key=RELAY_SIGNER.public_key,
                log=RELAY_LOG,
                message_id=message_id(index),
                message_hash=ENTRIES[index],
            )
        ),
        error,
    )
    test: JSON = {
        "comment": comment,
        "flags": ["Receipt", *flags],
        "requirements": reqs,
        "receipt": data.hex(),
        "checkpoint": note.hex(),
        "inclusion": _hexes(inclusion),
        "messageId": message_id(index).hex(),
        "messageHash": ENTRIES[index].hex(),
    }
    if error is None:
        v = verified[0]
        test.update(
            result="valid",
            relay=v.receipt.relay,
            logIndex=v.receipt.log_index,
            acceptedAt=v.receipt.accepted_at,
            checkpointSize=v.checkpoint.size,
        )
    else:
        test.update(result="invalid", error=error)
    return test


def receipt_group() -> list[JSON]:
    tests: list[JSON] = []
    valid = ["LOG-15", "LOG-16", "LOG-17", "LOG-19", "LOG-20"]
    steps = ["LOG-15", "LOG-17"]

    def incl(index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, NODE)

    def add(
        comment: str,
        flags: list[str],
        reqs: list[str],
        data: bytes,
        *rest: Any,
        index: int = 11,
        error: str | None,
    ) -> None:
        note, inclusion = rest if rest else (relay_signed(13), incl(11, 13))
        tests.append(
            receipt_case(
                comment, flags, reqs, data, note=note, inclusion=inclusion, index=index, error=error
            )
        )

    good = raw_receipt(fields_of(11))
    made = sign_receipt(
        Receipt(RELAY_ID, message_id(11), ENTRIES[11], 11, ACCEPTED_AT), RELAY_SIGNER
    )
    if made != good or parse_receipt(good)[0].log_index != 11:
        raise AssertionError("sign_receipt disagrees with LOG-15 and LOG-16")
    add("entry 11 in the checkpoint of size 13", ["Valid"], valid, good, error=None)
    add(
        "entry 11 in a later checkpoint of size 16",
        ["Valid"],
        valid,
        good,
        relay_signed(16),
        incl(11, 16),
        error=None,
    )
    for index, size in ((8, 9), (15, 16), (12, 13)):
        add(
            f"entry {index}, the last but one or the last of {size}",
            ["Valid"],
            valid,
            raw_receipt(fields_of(index)),
            relay_signed(size),
            incl(index, size),
            index=index,
            error=None,
        )
    cosigned = cosign_checkpoint(
        relay_signed(13), witness=WITNESSES[0], signer=WITNESS_SIGNERS[0], now=COSIGNED_AT
    )
    add(
        "a checkpoint with a witness cosignature (not needed here)",
        ["Valid"],
        valid,
        good,
        cosigned,
        incl(11, 13),
        error=None,
    )
    limits = [MAX_TIME, merkle.MAX_TREE_SIZE - 1]
    extreme = raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], 11, limits[0]])
    add("accepted at the largest time, 2^40", ["Valid"], valid, extreme, error=None)

    # (1) bounds
    add(
        "a receipt of 513 bytes",
        ["Size"],
        steps,
        good + bytes(MAX_RECEIPT_BYTES + 1 - len(good)),
        error="limit-exceeded",
    )
    big = relay_signed(13) + b"x" * (DEFAULT_LIMITS.max_bytes + 1 - len(relay_signed(13)))
    add(
        "a checkpoint of 16,385 bytes",
        ["Size"],
        ["LOG-17", "LOG-8"],
        good,
        big,
        incl(11, 13),
        error="limit-exceeded",
    )
    add(
        "an inclusion proof of 65 hashes",
        ["Size"],
        ["LOG-17", "LOG-5"],
        good,
        relay_signed(13),
        [SOME_HASH] * 65,
        error="invalid-proof",
    )
    # (2) decoding
    wide_index = b"".join(
        [
            b"\x97",
            *(codec.encode(v) for v in (RELAY_ID, message_id(11), ENTRIES[11])),
            b"\xcf" + (11).to_bytes(8, "big"),
            *(codec.encode(v) for v in (ACCEPTED_AT, RELAY_SIGNER.public_key.key_id)),
            codec.encode(bytes(64)),
        ]
    )
    malformed: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("truncated by one byte", good[:-1]),
        ("a trailing byte", good + b"\x00"),
        ("six fields", codec.encode(codec.decode(good)[:6])),  # type: ignore[index]
        ("eight fields", codec.encode([*codec.decode(good), 0])),  # type: ignore[misc]
        ("a map", codec.encode({"relay": RELAY_ID})),
        ("the log index in 9 bytes (not the shortest form)", wide_index),
        ("an invalid relay id", raw_receipt(fields_of(11, relay="xp.relay-lyon"))),
        (
            "a message id of 31 bytes",
            raw_receipt([RELAY_ID, message_id(11)[:31], ENTRIES[11], 11, ACCEPTED_AT]),
        ),
        (
            "a message hash as a text string",
            raw_receipt([RELAY_ID, message_id(11), ENTRIES[11].hex(), 11, ACCEPTED_AT]),
        ),
        (
            "a negative log index",
            raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], -1, ACCEPTED_AT]),
        ),
        (
            "a log index of 2^63 - 1",
            raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], limits[1] + 1, ACCEPTED_AT]),
        ),
        (
            "a time above 2^40",
            raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], 11, MAX_TIME + 1]),
        ),
        (
            "a key id of 15 bytes",
            raw_receipt(fields_of(11), key_id=RELAY_SIGNER.public_key.key_id[:15]),
        ),
        (
            "a signature of 63 bytes",
            codec.encode([*fields_of(11), RELAY_SIGNER.public_key.key_id, bytes(63)]),
        ),
        (
            "a boolean log index",
            raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], True, ACCEPTED_AT]),
        ),
    ]
    for what, data in malformed:
        add(f"malformed: {what}", ["Malformed"], steps, data, error="malformed")
    # (3) the relay, (4) the key, (5) the signature
    add(
        "signed by the relay for another relay id",
        ["WrongRelay"],
        steps,
        raw_receipt(fields_of(11, relay="XP.relay-paris")),
        error="binding-mismatch",
    )
    add(
        "signed by another key, with its own key id",
        ["WrongKey"],
        [*steps, "LOG-16"],
        raw_receipt(fields_of(11), signer=OTHER_SIGNER),
        error="unknown-key",
    )
    add(
        "signed by another key, with the relay's key id",
        ["BadSignature"],
        [*steps, "LOG-16"],
        raw_receipt(fields_of(11), signer=OTHER_SIGNER, key_id=RELAY_SIGNER.public_key.key_id),
        error="bad-signature",
    )
    flipped = bytearray(good)
    flipped[-1] ^= 0x01
    add(
        "one bit of the signature flipped",
        ["BadSignature"],
        [*steps, "LOG-16"],
        bytes(flipped),
        error="bad-signature",
    )
    unlabelled = RELAY_SIGNER.sign(codec.encode([*fields_of(11), RELAY_SIGNER.public_key.key_id]))
    add(
        "signed without the label",
        ["BadSignature"],
        [*steps, "LOG-16"],
        raw_receipt(fields_of(11), signature=unlabelled),
        error="bad-signature",
    )
    other_index = raw_receipt(fields_of(11))
    swapped = (
        other_index[:-64]
        + raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], 12, ACCEPTED_AT])[-64:]
    )
    add(
        "the signature of index 12 on index 11",
        ["BadSignature"],
        [*steps, "LOG-16"],
        swapped,
        error="bad-signature",
    )
    # (6) the message
    add(
        "for another message id",
        ["WrongMessage"],
        steps,
        raw_receipt([RELAY_ID, message_id(12), ENTRIES[11], 11, ACCEPTED_AT]),
        error="binding-mismatch",
    )
    add(
        "for another message hash",
        ["WrongMessage"],
        steps,
        raw_receipt([RELAY_ID, message_id(11), ENTRIES[12], 11, ACCEPTED_AT]),
        error="binding-mismatch",
    )
    add(
        "a valid receipt for another message",
        ["WrongMessage"],
        steps,
        raw_receipt(fields_of(12)),
        relay_signed(13),
        incl(12, 13),
        error="binding-mismatch",
    )
    # (7) the checkpoint
    add(
        "a checkpoint of another relay's log",
        ["WrongRelay"],
        ["LOG-17", "LOG-20", "LOG-7"],
        good,
        relay_signed(13, origin=log_origin("XP.relay-paris")),
        incl(11, 13),
        error="binding-mismatch",
    )
    add(
        "a checkpoint of the log signed by another key",
        ["UnknownKey"],
        ["LOG-17", "LOG-20", "LOG-9"],
        good,
        relay_signed(13, signer=OTHER_SIGNER),
        incl(11, 13),
        error="unknown-key",
    )
    add(
        "a checkpoint of a log of another name",
        ["WrongRelay"],
        ["LOG-17", "LOG-20"],
        good,
        signed(13),
        incl(11, 13),
        error="binding-mismatch",
    )
    text13 = Checkpoint(RELAY_LOG.name, 13, root(13)).text()
    add(
        "a checkpoint whose note is cut short",
        ["Malformed"],
        ["LOG-17", "LOG-8"],
        good,
        text13,
        incl(11, 13),
        error="malformed",
    )
    # (8) the entry in the tree
    add(
        "index 13 in the checkpoint of size 13",
        ["WrongIndex"],
        ["LOG-17", "LOG-19", "LOG-3"],
        raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], 13, ACCEPTED_AT]),
        relay_signed(13),
        incl(11, 13),
        error="invalid-proof",
    )
    add(
        "entry 11 in the checkpoint of size 11",
        ["WrongIndex"],
        ["LOG-17", "LOG-19", "LOG-3"],
        good,
        relay_signed(11),
        incl(10, 11),
        error="invalid-proof",
    )
    add(
        "index 12 with entry 11's hash",
        ["WrongIndex"],
        ["LOG-17", "LOG-19", "LOG-3"],
        raw_receipt([RELAY_ID, message_id(11), ENTRIES[11], 12, ACCEPTED_AT]),
        relay_signed(13),
        incl(12, 13),
        error="invalid-proof",
    )
    add(
        "the proof of leaf 10",
        ["WrongIndex"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        incl(10, 13),
        error="invalid-proof",
    )
    add(
        "the proof for size 16 with the checkpoint of size 13",
        ["WrongSize"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        incl(11, 16),
        error="invalid-proof",
    )
    add(
        "a truncated proof",
        ["Truncated"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        incl(11, 13)[:-1],
        error="invalid-proof",
    )
    add(
        "no proof",
        ["Truncated"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        [],
        error="invalid-proof",
    )
    add(
        "one bit of the proof flipped",
        ["Modified"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        _flip(incl(11, 13), 1, 4),
        error="invalid-proof",
    )
    add(
        "a proof element of 31 bytes",
        ["BadElement"],
        ["LOG-17", "LOG-3"],
        good,
        relay_signed(13),
        [*incl(11, 13)[:-1], bytes(31)],
        error="invalid-proof",
    )
    forked_root = _mth([*LEAVES[:11], SOME_HASH, *LEAVES[12:13]])
    add(
        "a signed tree where entry 11 is another hash",
        ["WrongHash"],
        ["LOG-17", "LOG-19", "LOG-3"],
        good,
        relay_signed(13, root_hash=forked_root),
        incl(11, 13),
        error="invalid-proof",
    )
    # the order of the steps
    order = ["Order"]
    add(
        "another relay and a bad signature: the relay first",
        order,
        steps,
        raw_receipt(
            fields_of(11, relay="XP.relay-paris"),
            signer=OTHER_SIGNER,
            key_id=RELAY_SIGNER.public_key.key_id,
        ),
        error="binding-mismatch",
    )
    add(
        "another key and another message: the key first",
        order,
        steps,
        raw_receipt(fields_of(12), signer=OTHER_SIGNER),
        error="unknown-key",
    )
    add(
        "a bad signature and another message: the signature first",
        order,
        steps,
        raw_receipt(fields_of(12), signer=OTHER_SIGNER, key_id=RELAY_SIGNER.public_key.key_id),
        error="bad-signature",
    )
    add(
        "another message and a bad checkpoint: the message first",
        order,
        steps,
        raw_receipt(fields_of(12)),
        text13,
        [],
        error="binding-mismatch",
    )
    add(
        "a bad checkpoint and a bad proof: the checkpoint first",
        order,
        steps,
        good,
        relay_signed(13, signer=OTHER_SIGNER),
        [],
        error="unknown-key",
    )
    add(
        "a malformed receipt and 65 proof hashes: the bound first",
        order,
        steps,
        good[:-1],
        relay_signed(13),
        [SOME_HASH] * 65,
        error="invalid-proof",
    )
    return tests


def build() -> dict[str, Any]:
    """``{"log.json": document}``; raises if the library disagrees with any case."""
    doc = document(
        algorithm="NCBR1-LOG: RFC 9162 SHA-256 Merkle tree, C2SP checkpoint (Ed25519 note)",
        header=[
            "The relay's Merkle log (spec/log.md): leaf and node hashes (Hash), roots of the "
            "first 0 to 16 entries (TreeHead), inclusion proofs (Inclusion) and consistency "
            "proofs (Consistency), valid and mutated, signed checkpoints verified by a client "
            "(Checkpoint), sequences of checkpoints through a client's view, forward only "
            "(LogView) and in both directions (LogCheck), and the relay's acceptance receipts "
            "with a checkpoint and an inclusion proof (Receipt).",
            "Cases flagged Reference are RFC 6962's reference test data as published in "
            "transparency-dev/merkle (proof/verify_test.go; leaf indices here count from 0).",
            "The log, witness and relay keys are test keys: their seeds are published so that "
            "every signature can be recomputed (Ed25519 is deterministic).",
        ],
        notes=NOTES,
        fields={
            "entries": [e.hex() for e in ENTRIES],
            "emptyRoot": merkle.EMPTY_ROOT.hex(),
            "log": {
                "name": LOG_NAME,
                "signatureType": LOG_SIGNATURE_TYPE,
                "seed": LOG_SIGNER.seed.hex(),
                "publicKey": LOG.public_key.raw.hex(),
                "keyId": LOG.key_id.hex(),
            },
            "witnesses": [
                {
                    "name": w.name,
                    "signatureType": WITNESS_SIGNATURE_TYPE,
                    "seed": s.seed.hex(),
                    "publicKey": w.public_key.raw.hex(),
                    "keyId": w.key_id.hex(),
                }
                for w, s in zip(WITNESSES, WITNESS_SIGNERS, strict=True)
            ],
            "relay": {
                "id": RELAY_ID,
                "seed": RELAY_SIGNER.seed.hex(),
                "publicKey": RELAY_SIGNER.public_key.raw.hex(),
                "keyId": RELAY_SIGNER.public_key.key_id.hex(),
                "logName": RELAY_LOG.name,
                "logKeyId": RELAY_LOG.key_id.hex(),
            },
            "receiptLabel": RECEIPT_LABEL.hex(),
            "cosignatureHeader": COSIGNATURE_HEADER.decode("ascii"),
            "exampleCosignedMessage": cosigned_message(checkpoint(13).text(), COSIGNED_AT).decode(),
            "limits": {
                "maxBytes": DEFAULT_LIMITS.max_bytes,
                "maxSignatures": DEFAULT_LIMITS.max_signatures,
                "maxOriginBytes": DEFAULT_LIMITS.max_origin_bytes,
                "maxNameBytes": DEFAULT_LIMITS.max_name_bytes,
                "maxExtensionLines": DEFAULT_LIMITS.max_extension_lines,
                "maxLineBytes": DEFAULT_LIMITS.max_line_bytes,
                "maxProofHashes": merkle.MAX_PROOF_HASHES,
                "maxReceiptBytes": MAX_RECEIPT_BYTES,
            },
        },
        groups=[
            ("Hash", hash_group()),
            ("TreeHead", root_group()),
            ("Inclusion", inclusion_group()),
            ("Consistency", consistency_group()),
            ("Checkpoint", checkpoint_group()),
            ("LogView", view_group()),
            ("LogCheck", check_group()),
            ("Receipt", receipt_group()),
        ],
    )
    if LogFork.code != "log-fork":
        raise AssertionError("the fork code")
    return {"log.json": doc}
