"""Trust anchors, signed files and the anchor chain (DIR-1, ANCHOR-1 .. ANCHOR-6)."""

from __future__ import annotations

from typing import Any

import pytest

from directory_world import (
    ANCHOR,
    ANCHOR_FILE,
    CHAIN,
    DAY,
    ROOTS,
    T0,
    genesis,
    make_anchor,
    sign_with,
    signed,
)
from ncb_relay import (
    AnchorChain,
    BadSignature,
    BelowThreshold,
    BrokenChain,
    Fork,
    InvalidPeerKey,
    LimitExceeded,
    MalformedInput,
    Rollback,
    RootKey,
    RootSignature,
    SignedDocument,
    TrustAnchor,
    UnknownKey,
    UnsupportedVersion,
    UsageError,
    codec,
    load_directory,
    primitives,
)
from ncb_relay.lifecycle import next_version
from ncb_relay.signatures import ANCHOR_KIND, DIRECTORY_KIND

ROTATED = ANCHOR.successor(
    roots=[RootKey(f"new holder {i}", r.public_key) for i, r in enumerate(ROOTS[2:5])],
    threshold=2,
    issued=T0 + 10 * DAY,
)


def rotation_file(*signers: int) -> bytes:
    return sign_with(ROTATED.draft(), [ROOTS[i] for i in signers])


# --- DIR-1: signed files -----------------------------------------------------------------


@pytest.mark.req("DIR-1")
def test_signatures_cover_label_and_hash_of_the_exact_bytes() -> None:
    draft = ANCHOR.draft()
    one = draft.sign(ROOTS[0])
    (sig,) = one.signatures
    assert sig.key_id == ROOTS[0].public_key.key_id
    message = b"NCBR/1 trust anchor signature\x00" + primitives.blake2b(
        draft.document, person=b"NCBR1 anchor"
    )
    ROOTS[0].public_key.verify(message, sig.signature)
    assert one.hash == ANCHOR.hash == ANCHOR_KIND.hash(ANCHOR.encode())
    # the same root key cannot sign twice
    with pytest.raises(UsageError, match="already signed"):
        one.sign(ROOTS[0])


@pytest.mark.req("DIR-1")
def test_directory_and_anchor_labels_differ() -> None:
    assert DIRECTORY_KIND.label != ANCHOR_KIND.label
    assert DIRECTORY_KIND.person != ANCHOR_KIND.person
    for kind in (DIRECTORY_KIND, ANCHOR_KIND):
        assert kind.label.endswith(b"\x00")
        assert kind.label.count(b"\x00") == 1
    # a signature on bytes as a directory does not verify as an anchor
    doc = SignedDocument(DIRECTORY_KIND, ANCHOR.encode()).sign(ROOTS[0])
    as_anchor = SignedDocument(ANCHOR_KIND, doc.document, doc.signatures)
    with pytest.raises(BadSignature):
        as_anchor.verify_signers({ROOTS[0].public_key.key_id: ROOTS[0].public_key})


@pytest.mark.req("DIR-1")
def test_signatures_collected_separately_merge_in_key_order() -> None:
    draft = ANCHOR.draft()
    a, b, c = draft.sign(ROOTS[2]), draft.sign(ROOTS[0]), draft.sign(ROOTS[1])
    merged = a.merge(b).merge(c).merge(a)
    assert merged.signer_ids == tuple(sorted(r.public_key.key_id for r in ROOTS[:3]))
    assert SignedDocument.decode(ANCHOR_KIND, merged.encode()) == merged
    with pytest.raises(UsageError, match="same document"):
        a.merge(SignedDocument(ANCHOR_KIND, b"other"))
    forged = SignedDocument(
        ANCHOR_KIND, draft.document, (RootSignature(a.signer_ids[0], bytes(64)),)
    )
    with pytest.raises(UsageError, match="two different signatures"):
        a.merge(forged)


@pytest.mark.req("DIR-1")
@pytest.mark.parametrize(
    "value",
    [
        [b"doc", []],
        {"document": b"doc"},
        {"document": "doc", "signatures": []},
        {"document": b"doc", "signatures": [[b"x" * 16]]},
        {"document": b"doc", "signatures": [[b"x" * 15, b"s" * 64]]},
        {"document": b"doc", "signatures": [[b"x" * 16, b"s" * 63]]},
        {"document": b"doc", "signatures": [[b"b" * 16, b"s" * 64], [b"a" * 16, b"s" * 64]]},
        {"document": b"doc", "signatures": [[b"a" * 16, b"s" * 64], [b"a" * 16, b"s" * 64]]},
    ],
)
def test_other_signed_file_shapes_are_malformed(value: Any) -> None:
    with pytest.raises(MalformedInput):
        SignedDocument.decode(ANCHOR_KIND, codec.encode(value))


@pytest.mark.req("DIR-1", "DIR-14")
def test_signed_files_are_bounded_before_decoding() -> None:
    too_many: dict[str, Any] = {
        "document": b"",
        "signatures": [[bytes([i]) * 16, bytes(64)] for i in range(65)],
    }
    with pytest.raises(LimitExceeded):
        SignedDocument.decode(ANCHOR_KIND, codec.encode(too_many))
    huge = codec.encode(
        {"document": bytes(ANCHOR_KIND.max_bytes + 1), "signatures": []},
        limits=codec.CodecLimits(max_bytes=2**24, max_bin_bytes=2**24),
    )
    with pytest.raises(LimitExceeded):
        SignedDocument.decode(ANCHOR_KIND, huge)
    with pytest.raises(MalformedInput):
        SignedDocument.decode(ANCHOR_KIND, ANCHOR_FILE + b"\x00")


@pytest.mark.req("DIR-14")
def test_a_signed_file_as_large_as_the_limits_allow_can_be_written() -> None:
    # 9 MiB and the largest document DIR-14 allows: both are written and read back
    for size in (9 * 1024 * 1024, DIRECTORY_KIND.max_bytes):
        draft = SignedDocument(DIRECTORY_KIND, bytes(size))
        signed_file = draft.sign(ROOTS[0]).sign(ROOTS[1])
        data = signed_file.encode()
        assert len(data) <= DIRECTORY_KIND.max_bytes + 8 * 1024
        assert SignedDocument.decode(DIRECTORY_KIND, data) == signed_file
    with pytest.raises(LimitExceeded):
        SignedDocument(DIRECTORY_KIND, bytes(DIRECTORY_KIND.max_bytes + 1)).encode()
    with pytest.raises(LimitExceeded):
        SignedDocument(ANCHOR_KIND, bytes(ANCHOR_KIND.max_bytes + 1)).encode()
    assert SignedDocument(ANCHOR_KIND, bytes(ANCHOR_KIND.max_bytes)).encode()


# --- ANCHOR-1, ANCHOR-2: the anchor document ---------------------------------------------


@pytest.mark.req("ANCHOR-1", "ANCHOR-2")
def test_an_anchor_round_trips_and_keeps_roots_sorted() -> None:
    reversed_roots = TrustAnchor(1, ANCHOR.issued, None, ANCHOR.roots[::-1], 2)
    assert reversed_roots.encode() == ANCHOR.encode()
    assert TrustAnchor.decode(ANCHOR.encode()) == ANCHOR
    shown = ANCHOR.to_json()
    assert shown["hash"] == ANCHOR.hash.hex()
    assert [r["keyId"] for r in shown["roots"]] == sorted(r["keyId"] for r in shown["roots"])


@pytest.mark.req("ANCHOR-2")
@pytest.mark.parametrize(
    ("roots", "threshold"), [(ROOTS[:3], 0), (ROOTS[:3], 4), ((), 1), (ROOTS[:1] * 2, 1)]
)
def test_thresholds_and_root_lists_are_checked(roots: tuple[object, ...], threshold: int) -> None:
    with pytest.raises(UsageError):
        make_anchor(roots, threshold)  # type: ignore[arg-type]


@pytest.mark.req("ANCHOR-1")
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": "directory"}, MalformedInput),
        ({"version": 2}, UnsupportedVersion),
        ({"serial": 0}, MalformedInput),
        ({"previous": bytes(32)}, MalformedInput),
        ({"threshold": 4}, MalformedInput),
        ({"issued": -1}, MalformedInput),
        ({"issued": 2**41}, MalformedInput),
        ({"extra": 1}, MalformedInput),
        ({"roots": []}, MalformedInput),
        ({"roots": [{"key": bytes(32), "name": "zero"}]}, InvalidPeerKey),
        ({"roots": [{"key": ROOTS[0].public_key.raw, "name": " padded"}]}, MalformedInput),
        ({"roots": [{"key": ROOTS[0].public_key.raw, "name": "bell\x07"}]}, MalformedInput),
        ({"roots": [{"key": ROOTS[0].public_key.raw, "name": "x", "extra": 1}]}, MalformedInput),
    ],
)
def test_bad_anchor_documents_are_refused(
    change: dict[str, codec.Value], error: type[Exception]
) -> None:
    value = ANCHOR.to_value()
    assert isinstance(value, dict)
    value.update(change)
    with pytest.raises(error):
        TrustAnchor.decode(codec.encode(value))


@pytest.mark.req("ANCHOR-2")
def test_unsorted_roots_are_malformed() -> None:
    value = ANCHOR.to_value()
    assert isinstance(value, dict)
    assert isinstance(value["roots"], list)
    value["roots"] = value["roots"][::-1]
    with pytest.raises(MalformedInput, match="sorted"):
        TrustAnchor.decode(codec.encode(value))


# --- ANCHOR-3: the first anchor ----------------------------------------------------------


@pytest.mark.req("ANCHOR-3")
def test_the_first_anchor_needs_its_own_threshold() -> None:
    assert CHAIN.fingerprint == ANCHOR.hash
    assert CHAIN.current.anchor == ANCHOR
    with pytest.raises(BelowThreshold, match="1 of the required 2"):
        AnchorChain.trust(sign_with(ANCHOR.draft(), ROOTS[:1]))
    # a signature by another key is not counted (nor checked) in a first anchor
    with pytest.raises(BelowThreshold):
        AnchorChain.trust(sign_with(ANCHOR.draft(), [ROOTS[0], ROOTS[5]]))
    bad = SignedDocument.decode(ANCHOR_KIND, ANCHOR_FILE)
    broken = SignedDocument(
        ANCHOR_KIND,
        bad.document,
        (bad.signatures[0], RootSignature(bad.signatures[1].key_id, bytes(64))),
    )
    with pytest.raises(BadSignature, match="root key"):
        AnchorChain.trust(broken.encode())


@pytest.mark.req("ANCHOR-3")
def test_a_later_anchor_can_be_the_starting_point() -> None:
    chain = AnchorChain.trust(rotation_file(0, 1, 3, 4))  # the old roots' signatures are ignored
    assert chain.current.serial == 2
    assert chain.by_serial(1) is None
    # a directory signed under the first anchor cannot be checked by this verifier
    document, _ = genesis()
    with pytest.raises(UnknownKey, match="no trust anchor in the chain"):
        load_directory(signed(document), anchors=chain)


# --- ANCHOR-4, ANCHOR-5: rotation and the chain ------------------------------------------


@pytest.mark.req("ANCHOR-4", "ROT-7")
def test_a_rotation_signed_by_both_thresholds_extends_the_chain() -> None:
    chain = CHAIN.extend(rotation_file(0, 1, 3, 4))
    assert [a.serial for a in chain.anchors] == [1, 2]
    assert chain.current.anchor.previous == ANCHOR.hash
    assert chain.next_after(chain.anchors[0]) is chain.current
    assert chain.next_after(chain.current) is None
    assert chain.find(ROTATED.hash) is chain.current
    # a root kept in both anchors counts for both thresholds: ROOTS[2] is in both
    assert CHAIN.extend(rotation_file(0, 2, 3)).current.serial == 2
    assert AnchorChain.load([ANCHOR_FILE, rotation_file(0, 1, 3, 4)]).current.serial == 2


@pytest.mark.req("ANCHOR-4")
@pytest.mark.parametrize(
    ("signers", "message"),
    [
        ((0, 3, 4), "previous anchor's roots: 1 of the required 2"),
        ((3, 4), "previous anchor's roots: 0 of the required 2"),
        ((0, 1, 3), "new anchor's own roots: 1 of the required 2"),
        ((0, 1), "new anchor's own roots: 0 of the required 2"),
    ],
)
def test_a_rotation_below_either_threshold_is_refused(
    signers: tuple[int, ...], message: str
) -> None:
    with pytest.raises(BelowThreshold, match=message):
        CHAIN.extend(rotation_file(*signers))


@pytest.mark.req("ANCHOR-4")
def test_a_rotation_signed_by_an_outsider_is_refused() -> None:
    with pytest.raises(UnknownKey):
        CHAIN.extend(rotation_file(0, 1, 3, 4, 5))


@pytest.mark.req("ANCHOR-5")
def test_the_chain_refuses_rollback_fork_and_gaps() -> None:
    chain = CHAIN.extend(rotation_file(0, 1, 3, 4))
    assert chain.extend(rotation_file(0, 1, 3, 4)) is chain
    assert chain.extend(ANCHOR_FILE) is chain
    other = ANCHOR.successor(
        roots=[RootKey("other", ROOTS[5].public_key)], threshold=1, issued=T0 + 11 * DAY
    )
    with pytest.raises(Fork):
        chain.extend(sign_with(other.draft(), [ROOTS[0], ROOTS[1], ROOTS[5]]))
    later = chain.current.anchor.successor(
        roots=[RootKey("third", ROOTS[5].public_key)], threshold=1, issued=T0 + 20 * DAY
    )
    third = sign_with(later.draft(), [ROOTS[3], ROOTS[4], ROOTS[5]])
    with pytest.raises(BrokenChain, match="missing"):
        CHAIN.extend(third)
    started_late = AnchorChain.trust(third)
    with pytest.raises(Rollback):
        started_late.extend(ANCHOR_FILE)


@pytest.mark.req("ANCHOR-5")
def test_a_rotation_must_name_its_predecessor_and_come_later() -> None:
    wrong_previous = TrustAnchor(2, T0, bytes(32), ROTATED.roots, 2)
    with pytest.raises(BrokenChain, match="predecessor"):
        CHAIN.extend(sign_with(wrong_previous.draft(), ROOTS[:5]))
    not_later = TrustAnchor(2, ANCHOR.issued, ANCHOR.hash, ROTATED.roots, 2)
    with pytest.raises(BrokenChain, match="not issued after"):
        CHAIN.extend(sign_with(not_later.draft(), ROOTS[:5]))
    with pytest.raises(UsageError):
        ANCHOR.successor(roots=ROTATED.roots, threshold=2, issued=ANCHOR.issued)
    with pytest.raises(UsageError):
        AnchorChain(())
    with pytest.raises(UsageError):
        AnchorChain.load([])


# --- ANCHOR-6: which anchor vouches for which directory ----------------------------------


@pytest.mark.req("ANCHOR-6", "ROT-7")
def test_old_roots_cannot_sign_after_the_rotation() -> None:
    chain = CHAIN.extend(rotation_file(0, 1, 3, 4))
    document, _ = genesis()
    # issued before the rotation: still verifiable under the old anchor
    assert load_directory(signed(document), anchors=chain).anchor.serial == 1
    late = next_version(document, issued=ROTATED.issued)
    with pytest.raises(BrokenChain, match="outside the time of trust anchor 1"):
        load_directory(signed(late), anchors=chain)
    # the same version under the new anchor is fine
    moved = next_version(document, issued=ROTATED.issued, anchor=ROTATED.hash)
    assert load_directory(signed(moved, ROOTS[3], ROOTS[4]), anchors=chain).anchor.serial == 2
    # and a version issued before its own anchor is refused
    early = next_version(document, issued=T0 + DAY, anchor=ROTATED.hash)
    with pytest.raises(BrokenChain):
        load_directory(signed(early, ROOTS[3], ROOTS[4]), anchors=chain)
    assert "serials=1..2" in repr(chain)
    assert len(chain) == 2
    assert "VerifiedAnchor(serial=2" in repr(chain.current)
