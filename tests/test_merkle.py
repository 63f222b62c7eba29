"""The Merkle tree, its proofs and their verification (spec/log.md, LOG-1 .. LOG-5, LOG-11)."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncb_relay import InvalidProof, UsageError
from ncb_relay import merkle as m


def leaves_of(n: int) -> list[bytes]:
    return [m.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def reader(leaves: list[bytes]) -> m.NodeReader:
    return m.nodes_from_leaves(lambda start, end: leaves[start:end])


class NodeStore:
    """What a relay keeps: every perfect node CompactTree reports, keyed by (level, index)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.tree = m.CompactTree()
        self.reads = 0

    def append(self, leaf: bytes) -> None:
        for level, index, value in self.tree.append(leaf):
            assert (level, index) not in self.nodes  # written once, never changed
            self.nodes[level, index] = value

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[level, index]


@pytest.mark.req("LOG-1", "LOG-2")
def test_hashes_are_rfc_9162_with_sha256() -> None:
    entry = bytes(range(32))
    assert m.leaf_hash(entry) == hashlib.sha256(b"\x00" + entry).digest()
    left, right = m.leaf_hash(b"a"), m.leaf_hash(b"b")
    assert m.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert hashlib.sha256(b"").digest() == m.EMPTY_ROOT
    assert m.tree_root([]) == m.EMPTY_ROOT
    assert m.tree_root([left]) == left
    # three leaves split at 2: the left subtree is perfect
    assert m.tree_root([left, right, left]) == m.node_hash(m.node_hash(left, right), left)


@pytest.mark.req("LOG-2")
@given(st.lists(st.binary(max_size=8), max_size=40))
def test_the_compact_tree_agrees_with_the_definition(entries: list[bytes]) -> None:
    tree = m.CompactTree()
    leaves = [m.leaf_hash(e) for e in entries]
    for i, leaf in enumerate(leaves):
        tree.append(leaf)
        assert tree.size == i + 1
        assert len(tree.edge) == (i + 1).bit_count()  # O(log n) state
        assert tree.root() == m.tree_root(leaves[: i + 1])
    restored = m.CompactTree.restore(tree.size, tree.edge)
    assert restored.root() == tree.root()
    restored.append(m.leaf_hash(b"next"))
    assert restored.root() == m.tree_root([*leaves, m.leaf_hash(b"next")])


@pytest.mark.req("LOG-2")
def test_compact_tree_refuses_bad_input() -> None:
    tree = m.CompactTree()
    with pytest.raises(UsageError):
        tree.append(b"short")
    with pytest.raises(UsageError):
        m.CompactTree.restore(3, [bytes(32)])  # 3 has two set bits
    with pytest.raises(UsageError):
        m.CompactTree.restore(-1, [])
    with pytest.raises(UsageError):
        m.nodes_from_leaves(lambda start, end: [])(1, 0)


@pytest.mark.req("LOG-3")
@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_inclusion_proof_verifies(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = m.tree_root(leaves)
    proof = m.inclusion_proof(index, size, reader(leaves))
    assert len(proof) <= (size - 1).bit_length()
    m.verify_inclusion(leaves[index], index, size, proof, root)
    assert m.root_from_inclusion_proof(leaves[index], index, size, proof) == root


@pytest.mark.req("LOG-3")
@given(st.integers(min_value=2, max_value=40), st.data())
def test_any_single_byte_change_breaks_an_inclusion_proof(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = m.tree_root(leaves)
    proof = m.inclusion_proof(index, size, reader(leaves))
    parts = [leaves[index], *proof, root]
    which = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    at = data.draw(st.integers(min_value=0, max_value=31))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    changed = list(parts)
    changed[which] = (
        changed[which][:at] + bytes([changed[which][at] ^ mask]) + changed[which][at + 1 :]
    )
    with pytest.raises(InvalidProof):
        m.verify_inclusion(changed[0], index, size, changed[1:-1], changed[-1])


@pytest.mark.req("LOG-4")
@given(st.integers(min_value=0, max_value=70), st.data())
def test_every_consistency_proof_verifies(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=0, max_value=new))
    leaves = leaves_of(new)
    proof = m.consistency_proof(old, new, reader(leaves))
    assert len(proof) <= new.bit_length() + 1
    m.verify_consistency(old, new, m.tree_root(leaves[:old]), m.tree_root(leaves), proof)


@pytest.mark.req("LOG-4")
@given(st.integers(min_value=2, max_value=40), st.data())
def test_any_single_byte_change_breaks_a_consistency_proof(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new - 1))
    leaves = leaves_of(new)
    proof = m.consistency_proof(old, new, reader(leaves))
    parts = [m.tree_root(leaves[:old]), m.tree_root(leaves), *proof]
    which = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    at = data.draw(st.integers(min_value=0, max_value=31))
    changed = list(parts)
    changed[which] = (
        changed[which][:at] + bytes([changed[which][at] ^ 1]) + changed[which][at + 1 :]
    )
    with pytest.raises(InvalidProof):
        m.verify_consistency(old, new, changed[0], changed[1], changed[2:])


@pytest.mark.req("LOG-4")
@given(st.integers(min_value=1, max_value=40), st.data())
def test_a_rewritten_history_has_no_consistency_proof(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new))
    leaves = leaves_of(new)
    position = data.draw(st.integers(min_value=0, max_value=old - 1))
    rewritten = list(leaves)
    rewritten[position] = m.leaf_hash(b"rewritten")
    old_root = m.tree_root(leaves[:old])
    # the log's honest proof, and one made from the rewritten history, both fail
    for source in (leaves, rewritten):
        proof = m.consistency_proof(old, new, reader(source))
        with pytest.raises(InvalidProof):
            m.verify_consistency(old, new, old_root, m.tree_root(rewritten), proof)


@pytest.mark.req("LOG-4")
def test_consistency_edge_cases() -> None:
    leaves = leaves_of(5)
    r5 = m.tree_root(leaves)
    m.verify_consistency(5, 5, r5, r5, [])
    m.verify_consistency(0, 5, m.EMPTY_ROOT, r5, [])
    m.verify_consistency(0, 0, m.EMPTY_ROOT, m.EMPTY_ROOT, [])
    for args in (
        (6, 5, r5, r5, []),  # a smaller new tree
        (5, 5, r5, m.tree_root(leaves[:4]), []),
        (5, 5, r5, r5, [r5]),
        (0, 5, r5, r5, []),  # size 0 needs the empty root
        (0, 5, m.EMPTY_ROOT, r5, [r5]),
        (3, 5, m.tree_root(leaves[:3]), r5, []),  # an empty proof for 0 < m < n
    ):
        with pytest.raises(InvalidProof):
            m.verify_consistency(*args)
    with pytest.raises(UsageError):
        m.consistency_proof(6, 5, reader(leaves))


@pytest.mark.req("LOG-3", "LOG-5")
def test_verification_refuses_out_of_range_input_before_hashing() -> None:
    leaf = m.leaf_hash(b"x")
    for index, size, proof, root in (
        (0, 0, [], leaf),  # an empty tree includes nothing
        (1, 1, [], leaf),
        (-1, 1, [], leaf),
        (0, 2**63, [], leaf),
        (0, 2, [bytes(32)] * 65, leaf),
        (0, 2, [b"short"], leaf),
        (0, 1, [], b"short"),
        (True, 2, [leaf], leaf),
    ):
        with pytest.raises(InvalidProof):
            m.verify_inclusion(leaf, index, size, proof, root)
    with pytest.raises(InvalidProof):
        m.verify_consistency(1, 2**63, leaf, leaf, [leaf])
    with pytest.raises(InvalidProof):
        m.verify_consistency(1, 3, leaf, leaf, [leaf] * 65)
    with pytest.raises(UsageError):
        m.inclusion_proof(3, 3, reader(leaves_of(3)))


@pytest.mark.req("LOG-5")
def test_verification_returns_nothing() -> None:
    leaves = leaves_of(3)
    root = m.tree_root(leaves)
    proof = m.inclusion_proof(1, 3, reader(leaves))
    assert m.verify_inclusion(leaves[1], 1, 3, proof, root) is None  # type: ignore[func-returns-value]


@pytest.mark.req("LOG-11", "LOG-3", "LOG-4")
def test_a_relay_appending_in_batches_serves_consistent_heads_from_its_node_store() -> None:
    store = NodeStore()
    heads: list[tuple[int, bytes]] = [(0, m.EMPTY_ROOT)]
    leaves: list[bytes] = []
    for batch in (1, 3, 4, 7, 1, 16, 33):
        for _ in range(batch):
            leaf = m.leaf_hash(len(leaves).to_bytes(4, "big"))
            leaves.append(leaf)
            store.append(leaf)
        heads.append((store.tree.size, store.tree.root()))  # one checkpoint per batch
    assert len(store.nodes) == 2 * len(leaves) - len(leaves).bit_count()
    for (old, old_root), (new, new_root) in itertools.pairwise(heads):
        store.reads = 0
        proof = m.consistency_proof(old, new, store.node)
        assert proof == m.consistency_proof(old, new, reader(leaves[:new]))
        m.verify_consistency(old, new, old_root, new_root, proof)
        assert store.reads <= 2 * new.bit_length() ** 2  # O(log^2 n) reads, not O(n)
    size, root = heads[-1]
    for index in (0, 1, size // 2, size - 1):
        store.reads = 0
        proof = m.inclusion_proof(index, size, store.node)
        m.verify_inclusion(leaves[index], index, size, proof, root)
        assert store.reads <= 2 * size.bit_length() ** 2
