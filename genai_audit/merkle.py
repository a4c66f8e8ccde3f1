"""RFC 6962 / RFC 9162 Merkle trees: hashes, inclusion and consistency proofs.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the
largest power of two below ``n``, so a tree of ``m`` leaves is always a prefix
of the tree of ``n >= m`` leaves, and a short consistency proof shows it.

:class:`MerkleTree` keeps every complete subtree hash it has built (about two
hashes per leaf), so roots and proofs for any prefix cost ``O(log² n)``
lookups and a handful of hashes, never a pass over the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaf hashes with its complete subtrees cached."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        # levels[k] holds the hashes of the complete subtrees of 2**k leaves, left to right
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def append(self, leaf: bytes) -> int:
        """Add one leaf hash; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self.size
        self._levels[0].append(leaf)
        level, position, current = 0, index, leaf
        while position & 1:  # this leaf completes a subtree: hash it with its left sibling
            current = node_hash(self._levels[level][position - 1], current)
            level += 1
            position >>= 1
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(current)
        return index

    def _hash(self, start: int, end: int) -> bytes:
        """The RFC 6962 hash of leaves ``[start, end)`` (``start`` aligned as the recursion keeps it)."""
        size = end - start
        if size == 0:
            return EMPTY_ROOT
        if size & (size - 1) == 0:  # complete subtree: cached
            level = size.bit_length() - 1
            return self._levels[level][start >> level]
        k = _split(size)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")
        return self._hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 ``PATH``)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start += k
        proof.reverse()  # the path is listed from the leaf up
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the first ``old_size`` leaves are a prefix of the first ``new_size`` (RFC 6962 ``PROOF``)."""
        new_size = self.size if new_size is None else new_size
        if not 0 <= old_size <= new_size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, new_size, True
        # walk down the new tree towards the old tree's right edge, collecting the siblings
        while True:
            size = end - start
            if old_size - start == size:
                if not whole:
                    proof.append(self._hash(start, end))
                break
            k = _split(size)
            if old_size - start <= k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start += k
                whole = False
        proof.reverse()
        return proof


def root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of a list of leaf hashes."""
    return MerkleTree(leaves).root()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``expected_root``."""
    if not 0 <= index < size:
        return False
    position, last = index, size - 1
    current = leaf
    for sibling in proof:
        if last == 0:
            return False
        if position & 1 or position == last:
            current = node_hash(sibling, current)
            if not position & 1:  # a right-edge node with no right sibling: climb past the levels it skips
                while position and not position & 1:
                    position >>= 1
                    last >>= 1
        else:
            current = node_hash(current, sibling)
        position >>= 1
        last >>= 1
    return last == 0 and current == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``)."""
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # the empty tree is a prefix of every tree
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root starts the path
        path.insert(0, old_root)
    if not path:
        return False
    old_index, new_index = old_size - 1, new_size - 1
    while old_index & 1:  # skip the levels where the old tree's last node is a right child
        old_index >>= 1
        new_index >>= 1
    old_hash = new_hash = path[0]
    for node in path[1:]:
        if new_index == 0:
            return False
        if old_index & 1 or old_index == new_index:
            old_hash = node_hash(node, old_hash)
            new_hash = node_hash(node, new_hash)
            if not old_index & 1:
                while old_index and not old_index & 1:
                    old_index >>= 1
                    new_index >>= 1
        else:
            new_hash = node_hash(new_hash, node)
        old_index >>= 1
        new_index >>= 1
    return new_index == 0 and old_hash == old_root and new_hash == new_root
