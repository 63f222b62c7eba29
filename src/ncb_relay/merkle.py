"""The relay's append-only Merkle tree: RFC 9162 hashing, proofs and their verification.

Theory of operation
-------------------
The log is the Merkle Tree Hash (MTH) of RFC 9162, section 2.1.1, with SHA-256:
a leaf is ``SHA-256(0x00 || entry)`` and an interior node
``SHA-256(0x01 || left || right)``, so no leaf can be passed off as a node
(LOG-1, LOG-2).  The tree of ``n`` leaves splits at ``k``, the largest power of
two below ``n``: the left part is always a *perfect* subtree, the right part
holds the rest.  Every hash a proof needs is therefore either a perfect subtree
(``node(level, index)``, covering leaves ``index * 2**level`` up to
``(index + 1) * 2**level``) or a right edge built from at most ``log2(n)``
perfect ones.

:class:`CompactTree` appends leaf hashes and keeps only the right edge, the
roots of the perfect subtrees that make up the tree so far, one per set bit
of the size: O(log n) memory, and each append reports the perfect nodes it
completed so that a store can keep them.  Proof generation reads perfect nodes
through a :data:`NodeReader` callback; a store that keeps only leaf hashes wraps
its range reader in :func:`nodes_from_leaves`.  Proofs have at most
``ceil(log2(n))`` hashes, and generation reads O(log^2 n) nodes.

Verification follows RFC 9162, sections 2.1.3.2 and 2.1.4.2, step by step and
raises :class:`~ncb_relay.errors.InvalidProof`; it never returns a bool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import primitives
from .errors import InvalidProof, UsageError

__all__ = [
    "EMPTY_ROOT",
    "HASH_BYTES",
    "MAX_PROOF_HASHES",
    "MAX_TREE_SIZE",
    "CompactTree",
    "LeafRangeReader",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_from_leaves",
    "root_from_inclusion_proof",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_BYTES = 32
MAX_TREE_SIZE = 2**63 - 1
MAX_PROOF_HASHES = 64  # a consistency proof for sizes below 2**63 has at most 63
EMPTY_ROOT = primitives.sha256(b"")
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: the root of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash."""

LeafRangeReader = Callable[[int, int], Sequence[bytes]]
"""``hashes(start, end)``: the leaf hashes ``start`` to ``end - 1``, in order."""


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)`` (RFC 9162, 2.1.1)."""
    return primitives.sha256(_LEAF_PREFIX + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162, 2.1.1)."""
    return primitives.sha256(_NODE_PREFIX + left + right)


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, by the recursive definition of RFC 9162, 2.1.1."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(tree_root(leaf_hashes[:k]), tree_root(leaf_hashes[k:]))


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise UsageError(f"{name} must be an integer from 0 to 2**63 - 1")


class CompactTree:
    """An append-only Merkle tree that holds only its right edge (O(log n) hashes).

    ``edge`` lists the roots of the perfect subtrees that make up the tree,
    largest (leftmost) first: one per set bit of ``size``.  A relay persists
    ``size`` and ``edge`` and rebuilds the tree with :meth:`restore`.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[bytes] = []

    @classmethod
    def restore(cls, size: int, edge: Sequence[bytes]) -> CompactTree:
        """A tree of ``size`` leaves from its saved right edge."""
        _check_size("size", size)
        if len(edge) != size.bit_count() or any(
            not isinstance(h, bytes) or len(h) != HASH_BYTES for h in edge
        ):
            raise UsageError("the edge must hold one 32-byte hash per set bit of the size")
        tree = cls()
        tree._size = size
        tree._edge = list(edge)
        return tree

    @property
    def size(self) -> int:
        return self._size

    @property
    def edge(self) -> tuple[bytes, ...]:
        return tuple(self._edge)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every perfect node it completed as ``(level, index, hash)``.

        The first is the leaf itself (level 0); a store that keeps them all can
        answer :data:`NodeReader` calls directly.
        """
        if not isinstance(leaf, bytes) or len(leaf) != HASH_BYTES:
            raise UsageError("a leaf hash is 32 bytes")
        if self._size >= MAX_TREE_SIZE:
            raise UsageError("the tree is full")
        index = self._size
        completed = [(0, index, leaf)]
        current = leaf
        level = 0
        while index & 1:  # merge with the equal-sized subtree on the left
            current = node_hash(self._edge.pop(), current)
            index >>= 1
            level += 1
            completed.append((level, index, current))
        self._edge.append(current)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the leaves so far: the edge folded from the right."""
        if not self._edge:
            return EMPTY_ROOT
        root = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            root = node_hash(left, root)
        return root


def nodes_from_leaves(hashes: LeafRangeReader) -> NodeReader:
    """A :data:`NodeReader` for a store of leaf hashes only: reads ``2**level`` leaves per node."""

    def node(level: int, index: int) -> bytes:
        start = index << level
        leaves = list(hashes(start, start + (1 << level)))
        if len(leaves) != 1 << level:
            raise UsageError("the leaf store returned the wrong number of hashes")
        return tree_root(leaves)

    return node


def _subtree(start: int, end: int, node: NodeReader) -> bytes:
    """MTH of leaves ``[start, end)``; ``start`` is aligned as in the tree's own splits."""
    size = end - start
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(_subtree(start, start + k, node), _subtree(start + k, end, node))


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162, 2.1.3.1, leaf sibling first."""
    _check_size("size", size)
    if not isinstance(index, int) or not 0 <= index < size:
        raise UsageError("the leaf index must be below the tree size")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:  # walk down from the root, collecting siblings
        k = _split(end - start)
        if index < start + k:
            proof.append(_subtree(start + k, end, node))
            end = start + k
        else:
            proof.append(_subtree(start, start + k, node))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, node: NodeReader) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162, 2.1.4.1; empty if a size is 0 or they agree."""
    _check_size("old_size", old_size)
    _check_size("new_size", new_size)
    if old_size > new_size:
        raise UsageError("the old size must not exceed the new size")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:  # SUBPROOF(m, D[start:end], complete)
        k = _split(end - start)
        if m <= k:
            proof.append(_subtree(start + k, end, node))
            end = start + k
        else:
            proof.append(_subtree(start, start + k, node))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(_subtree(start, end, node))
    proof.reverse()
    return proof


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise InvalidProof(f"{name} is not a 32-byte hash")


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise InvalidProof("the proof has too many hashes")
    for item in proof:
        _check_hash("a proof element", item)


def _check_tree_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise InvalidProof(f"{name} is not a tree size")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162, 2.1.3.2, steps 1-4).

    Raises :class:`InvalidProof` if the proof has the wrong length for the index and size.
    """
    _check_hash("the leaf hash", leaf)
    _check_tree_size("the tree size", size)
    _check_proof(proof)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise InvalidProof("the leaf index is not below the tree size")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise InvalidProof("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("the inclusion proof is too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`InvalidProof` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    _check_hash("the root", root)
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if not primitives.constant_time_equal(computed, root):
        raise InvalidProof("the inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`InvalidProof` unless the tree ``new_root`` extends ``old_root`` (2.1.4.2).

    Equal sizes need equal roots and an empty proof; an old size of 0 needs the
    empty tree's root and an empty proof; otherwise the RFC's algorithm runs.
    """
    _check_tree_size("the old size", old_size)
    _check_tree_size("the new size", new_size)
    _check_hash("the old root", old_root)
    _check_hash("the new root", new_root)
    _check_proof(proof)
    if old_size > new_size:
        raise InvalidProof("the new tree is smaller than the old one")
    if old_size in (0, new_size):
        if proof:
            raise InvalidProof("the consistency proof must be empty")
        expected = EMPTY_ROOT if old_size == 0 else new_root
        if not primitives.constant_time_equal(old_root, expected):
            raise InvalidProof("the roots do not match")
        return
    if not proof:  # step 1
        raise InvalidProof("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: the old tree is a perfect subtree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise InvalidProof("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 7
        raise InvalidProof("the consistency proof is too short")
    if not primitives.constant_time_equal(fr, old_root):
        raise InvalidProof("the consistency proof does not lead to the old root")
    if not primitives.constant_time_equal(sr, new_root):
        raise InvalidProof("the consistency proof does not lead to the new root")
